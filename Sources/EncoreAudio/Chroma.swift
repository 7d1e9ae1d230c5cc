internal import CBLAS
import EncoreCore
import Foundation

/// A chroma filter bank over an STFT's bins, built as librosa's `filters.chroma` (12 pitch classes starting at C,
/// Gaussian bumps per FFT bin, each bin's column of weights of unit L2 norm, then weighted by a Gaussian over octaves
/// centered on octave 5 with a width of 2 octaves). Frames are normalized to a maximum of 1 (`chroma_stft`).
public struct Chroma: Sendable, Equatable {
    /// Pitch classes (rows of the bank).
    public let classes: Int
    /// FFT bins each filter spans (`nFFT / 2 + 1`).
    public let bins: Int
    /// Weights, classes x bins, row-major; row 0 is C.
    public let weights: [Float]

    /// The bank for `nFFT`-point frames at `sampleRate`; `tuning` is the deviation from A440 in fractions of a bin.
    public init(sampleRate: Double, nFFT: Int = 2048, classes: Int = 12, tuning: Double = 0,
                centerOctave: Double = 5, octaveWidth: Double? = 2) throws(AudioError) {
        guard sampleRate > 0, sampleRate.isFinite else {
            throw .invalidParameter(name: "sample rate", reason: "\(sampleRate) Hz is not positive")
        }
        guard nFFT >= 4, nFFT % 2 == 0 else { throw .invalidParameter(name: "n_fft", reason: "\(nFFT) is not an even size ≥ 4") }
        guard classes >= 1, classes <= 120 else {
            throw .invalidParameter(name: "chroma classes", reason: "\(classes) is not in 1...120")
        }
        guard tuning.isFinite, abs(tuning) <= 0.5 else {
            throw .invalidParameter(name: "tuning", reason: "\(tuning) is not in -0.5...0.5")
        }
        let n = Double(classes)
        let a440 = 440 * pow(2, tuning / n)
        // Fractional pitch-class bins of every FFT bin; the 0 Hz bin is placed 1.5 octaves below bin 1.
        var frq = [Double](repeating: 0, count: nFFT)
        for k in 1..<nFFT { frq[k] = n * log2(Double(k) * sampleRate / Double(nFFT) / (a440 / 16)) }
        frq[0] = frq[1] - 1.5 * n
        var width = [Double](repeating: 1, count: nFFT)
        for k in 0..<(nFFT - 1) { width[k] = max(frq[k + 1] - frq[k], 1) }
        let half = (n / 2).rounded()
        let bins = nFFT / 2 + 1
        var w = [Double](repeating: 0, count: classes * bins)
        for k in 0..<bins {
            var column = [Double](repeating: 0, count: classes)
            for c in 0..<classes {
                let raw = frq[k] - Double(c) + half + 10 * n
                let d = (raw - n * (raw / n).rounded(.down)) - half
                let z = 2 * d / width[k]
                column[c] = exp(-0.5 * z * z)
            }
            let norm = column.reduce(0) { $0 + $1 * $1 }.squareRoot()
            let octave = octaveWidth.map { exp(-0.5 * pow((frq[k] / n - centerOctave) / $0, 2)) } ?? 1
            for c in 0..<classes {
                let value = (norm > Double.leastNormalMagnitude ? column[c] / norm : column[c]) * octave
                // Rolled so that row 0 is C (the bank is built from A).
                let row = ((c - 3 * (classes / 12)) % classes + classes) % classes
                w[row * bins + k] = value
            }
        }
        self.classes = classes
        self.bins = bins
        self.weights = w.map { Float($0) }
    }

    /// Chroma of `frames` power spectra (frames x bins) into `output` (frames x classes), each frame divided by
    /// its maximum (frames of zeros stay zero).
    public func apply(_ power: UnsafePointer<Float>, frames: Int, into output: UnsafeMutablePointer<Float>) {
        guard frames > 0 else { return }
        weights.withUnsafeBufferPointer { w in
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(frames), Int32(classes), Int32(bins),
                        1, power, Int32(bins), w.baseAddress, Int32(bins), 0, output, Int32(classes))
        }
        for t in 0..<frames {
            let row = output + t * classes
            var peak: Float = 0
            for c in 0..<classes { peak = max(peak, abs(row[c])) }
            guard peak >= Float.leastNormalMagnitude else { continue }
            for c in 0..<classes { row[c] /= peak }
        }
    }

    /// The chroma of a power spectrogram (frames x bins): frames x classes.
    public func callAsFunction(_ power: Matrix) throws(AudioError) -> Matrix {
        guard power.cols == bins else {
            throw .invalidParameter(name: "spectrogram bins", reason: "\(power.cols) columns, expected \(bins)")
        }
        var out = Matrix(rows: power.rows, cols: classes)
        guard power.rows > 0 else { return out }
        power.storage.withUnsafeBufferPointer { p in
            out.storage.withUnsafeMutableBufferPointer { o in apply(p.baseAddress!, frames: power.rows, into: o.baseAddress!) }
        }
        return out
    }
}

/// Per-frame spectral shape from a power spectrum, as librosa's `spectral_centroid`, `spectral_rolloff` and
/// `spectral_flatness` (centroid and rolloff weigh the magnitude `sqrt(power)`, flatness the power).
public struct SpectralShape: Sendable {
    /// The center frequency of each bin in Hz.
    public let frequencies: [Float]
    /// The fraction of the magnitude below the rolloff frequency.
    public let rolloffFraction: Float
    /// The smallest power the flatness considers.
    public let amin: Float

    /// Shape measures for `stft`'s bins at `sampleRate`.
    public init(stft: STFT, sampleRate: Double, rolloffFraction: Float = 0.85, amin: Float = 1e-10) {
        self.frequencies = stft.binFrequencies(sampleRate: sampleRate).map { Float($0) }
        self.rolloffFraction = rolloffFraction
        self.amin = amin
    }

    /// The three measures of one frame of `frequencies.count` power values.
    public func measure(_ power: UnsafePointer<Float>) -> (centroidHz: Float, rolloffHz: Float, flatness: Float) {
        let bins = frequencies.count
        var total = 0.0, weighted = 0.0, logSum = 0.0, powerSum = 0.0
        frequencies.withUnsafeBufferPointer { f in
            for k in 0..<bins {
                let p = power[k]
                let m = Double(p.squareRoot())
                total += m
                weighted += m * Double(f[k])
                let q = Double(max(amin, p))
                logSum += log(q)
                powerSum += q
            }
        }
        let centroid = total > Double(Float.leastNormalMagnitude) ? weighted / total : weighted
        let threshold = Double(rolloffFraction) * total
        var cumulative = 0.0, rolloff = frequencies[bins - 1]
        for k in 0..<bins {
            cumulative += Double(power[k].squareRoot())
            if cumulative >= threshold { rolloff = frequencies[k]; break }
        }
        let flatness = exp(logSum / Double(bins)) / (powerSum / Double(bins))
        return (Float(centroid), rolloff, Float(flatness))
    }
}

/// Zero-crossing rate per frame, as librosa's `feature.zero_crossing_rate`: frames of `frameLength` samples every
/// `hopLength`, centered with the signal's edge values repeated, and the fraction of the frame's positions whose
/// sign differs from the previous sample's (values within `1e-10` of zero count as positive).
public struct ZeroCrossingStream: ~Copyable {
    /// Samples per frame.
    public let frameLength: Int
    /// Samples between frame centers.
    public let hopLength: Int
    private var pending: [Bool] = []
    private var lastSample: Float = 0
    private var started = false
    private var finished = false
    private var readPosition = 0
    /// The rate of each frame handed out so far.
    public private(set) var rates: [Float] = []

    /// A stream of `frameLength`-sample frames every `hopLength` samples.
    public init(frameLength: Int = 2048, hopLength: Int = 512) {
        self.frameLength = max(2, frameLength)
        self.hopLength = max(1, hopLength)
    }

    /// Adds a block of samples.
    public mutating func append(_ samples: UnsafeBufferPointer<Float>) {
        guard !finished, !samples.isEmpty else { return }
        if !started {
            started = true
            pending.append(contentsOf: repeatElement(Self.negative(samples[0]), count: frameLength / 2))
        }
        for x in samples { pending.append(Self.negative(x)) }
        lastSample = samples[samples.count - 1]
        drain()
    }

    /// Ends the signal (repeats its last sample `frameLength / 2` times) and counts the remaining frames.
    public mutating func finish() {
        guard !finished else { return }
        finished = true
        guard started else { return }
        pending.append(contentsOf: repeatElement(Self.negative(lastSample), count: frameLength / 2))
        drain()
    }

    private static func negative(_ x: Float) -> Bool { x < -1e-10 }

    private mutating func drain() {
        while pending.count - readPosition >= frameLength {
            var crossings = 0
            pending.withUnsafeBufferPointer { p in
                for i in (readPosition + 1)..<(readPosition + frameLength) where p[i] != p[i - 1] { crossings += 1 }
            }
            rates.append(Float(crossings) / Float(frameLength))
            readPosition += hopLength
        }
        if readPosition > 0, readPosition >= pending.count / 2 {
            pending.removeSubrange(0..<min(readPosition, pending.count))
            readPosition = 0
        }
    }

    /// The rates of a whole signal.
    public static func rates(_ samples: [Float], frameLength: Int = 2048, hopLength: Int = 512) -> [Float] {
        var stream = ZeroCrossingStream(frameLength: frameLength, hopLength: hopLength)
        samples.withUnsafeBufferPointer { stream.append($0) }
        stream.finish()
        return stream.rates
    }
}

internal import CBLAS
import EncoreCore
import Foundation

/// The mel scale used to place a filter bank's band edges.
public enum MelScale: String, Sendable {
    /// Slaney's Auditory Toolbox scale (librosa's default): linear below 1 kHz, logarithmic above.
    case slaney
    /// The HTK scale: `2595 log10(1 + f / 700)`.
    case htk

    /// Hz to mels.
    public func mel(hz: Double) -> Double {
        switch self {
        case .htk: return 2595 * log10(1 + hz / 700)
        case .slaney:
            let fSp = 200.0 / 3, minLogHz = 1000.0, minLogMel = minLogHz / fSp, logStep = log(6.4) / 27
            return hz >= minLogHz ? minLogMel + log(hz / minLogHz) / logStep : hz / fSp
        }
    }

    /// Mels to Hz.
    public func hz(mel: Double) -> Double {
        switch self {
        case .htk: return 700 * (pow(10, mel / 2595) - 1)
        case .slaney:
            let fSp = 200.0 / 3, minLogHz = 1000.0, minLogMel = minLogHz / fSp, logStep = log(6.4) / 27
            return mel >= minLogMel ? minLogHz * exp(logStep * (mel - minLogMel)) : fSp * mel
        }
    }
}

/// A bank of triangular mel filters over an STFT's bins, built as librosa's `filters.mel`.
public struct MelFilterBank: Sendable, Equatable {
    /// Number of mel bands.
    public let bands: Int
    /// FFT bins each filter spans (`nFFT / 2 + 1`).
    public let bins: Int
    /// Filter weights, bands x bins, row-major.
    public let weights: [Float]
    /// Band edges in Hz (`bands + 2` values: each band `i` rises from edge `i`, peaks at `i + 1`, falls to `i + 2`).
    public let edgesHz: [Double]
    /// The bins each band's triangle covers: band `i` is nonzero only in `spans[i]` (empty when the triangle falls
    /// between two bins).
    public let spans: [Range<Int>]

    /// A filter bank of `bands` filters from `fmin` to `fmax` Hz (`nil`: the Nyquist frequency); with
    /// `slaneyNorm` each triangle is scaled to unit area over Hz (`2 / (right - left)`), as librosa's `norm="slaney"`.
    public init(sampleRate: Double, nFFT: Int = 2048, bands: Int = 128, fmin: Double = 0, fmax: Double? = nil,
                scale: MelScale = .slaney, slaneyNorm: Bool = true) throws(AudioError) {
        let top = fmax ?? sampleRate / 2
        guard sampleRate > 0, sampleRate.isFinite else {
            throw .invalidParameter(name: "sample rate", reason: "\(sampleRate) Hz is not positive")
        }
        guard bands >= 1, bands <= 4096 else { throw .invalidParameter(name: "mel bands", reason: "\(bands) is not in 1...4096") }
        guard nFFT >= 4, nFFT % 2 == 0 else { throw .invalidParameter(name: "n_fft", reason: "\(nFFT) is not an even size ≥ 4") }
        guard fmin >= 0, fmin < top, top <= sampleRate / 2 + 1e-9 else {
            throw .invalidParameter(name: "mel range", reason: "fmin \(fmin) Hz and fmax \(top) Hz must satisfy 0 ≤ fmin < fmax ≤ \(sampleRate / 2)")
        }
        let bins = nFFT / 2 + 1
        let lowMel = scale.mel(hz: fmin), highMel = scale.mel(hz: top)
        let edges = (0..<(bands + 2)).map { scale.hz(mel: lowMel + (highMel - lowMel) * Double($0) / Double(bands + 1)) }
        let freqs = (0..<bins).map { Double($0) * sampleRate / Double(nFFT) }
        var w = [Float](repeating: 0, count: bands * bins)
        for i in 0..<bands {
            let lowerWidth = edges[i + 1] - edges[i], upperWidth = edges[i + 2] - edges[i + 1]
            let norm = slaneyNorm ? 2 / (edges[i + 2] - edges[i]) : 1
            for k in 0..<bins {
                let lower = (freqs[k] - edges[i]) / lowerWidth
                let upper = (edges[i + 2] - freqs[k]) / upperWidth
                w[i * bins + k] = Float(max(0, min(lower, upper))) * Float(norm)
            }
        }
        self.bands = bands
        self.bins = bins
        self.weights = w
        self.edgesHz = edges
        // A triangle is positive on one run of bins and zero elsewhere.
        self.spans = (0..<bands).map { i in
            let row = w[(i * bins)..<((i + 1) * bins)]
            guard let first = row.firstIndex(where: { $0 != 0 }), let last = row.lastIndex(where: { $0 != 0 }) else {
                return 0..<0
            }
            return (first - i * bins)..<(last - i * bins + 1)
        }
    }

    /// Applies the bank to `frames` power spectra (frames x bins, row-major) into `output` (frames x bands).
    ///
    /// Each band is a dot product over its span only (a triangle covers a few of the bins, so a dense product over
    /// all bins would mostly multiply zeros); every frame gets the same arithmetic however the frames are batched.
    public func apply(_ power: UnsafePointer<Float>, frames: Int, into output: UnsafeMutablePointer<Float>) {
        guard frames > 0 else { return }
        let bins = self.bins, bands = self.bands
        weights.withUnsafeBufferPointer { w in
            spans.withUnsafeBufferPointer { spans in
                let weights = w.baseAddress!
                for t in 0..<frames {
                    let row = power + t * bins, out = output + t * bands
                    for b in 0..<bands {
                        let span = spans[b]
                        out[b] = span.isEmpty ? 0
                            : Kernels.dot(weights + b * bins + span.lowerBound, row + span.lowerBound, span.count)
                    }
                }
            }
        }
    }
}

/// Decibels of a power spectrogram as librosa's `power_to_db`: `10 log10(max(amin, S)) - 10 log10(max(amin, ref))`,
/// then every value raised to at least the maximum over the whole array minus `topDB`.
public struct PowerToDB: Sendable, Equatable {
    /// The reference power (0 dB).
    public var reference: Float = 1
    /// The smallest power considered (avoids `log(0)`).
    public var amin: Float = 1e-10
    /// The dynamic range kept below the maximum, in dB; `nil` keeps everything.
    public var topDB: Float? = 80

    /// The default conversion (`ref` 1, `amin` 1e-10, `top_db` 80).
    public init(reference: Float = 1, amin: Float = 1e-10, topDB: Float? = 80) {
        self.reference = reference
        self.amin = amin
        self.topDB = topDB
    }

    /// Converts `values` in place to dB without the `topDB` clip; returns their maximum.
    ///
    /// Eight values at a time with a series for the logarithm (within 2e-5 dB of `10 log10f`); a value at or below
    /// `amin` gets exactly `10 log10f(amin)` minus the reference's dB. The result of a value does not depend on its
    /// position in `values`.
    @discardableResult
    public func convert(_ values: UnsafeMutableBufferPointer<Float>) -> Float {
        let offset = 10 * log10f(max(amin, reference))
        let floorDB = 10 * log10f(amin) - offset
        guard let base = values.baseAddress else { return -.infinity }
        guard amin >= .leastNormalMagnitude else {
            // The series needs normal floats; an `amin` below them lets subnormal powers through.
            var peak = -Float.infinity
            for i in values.indices {
                let db = 10 * log10f(max(amin, values[i])) - offset
                values[i] = db
                peak = max(peak, db)
            }
            return peak
        }
        var peaks = SIMD8<Float>(repeating: -.infinity)
        var i = 0
        while i + 8 <= values.count {
            let x = UnsafeRawPointer(base + i).loadUnaligned(as: SIMD8<Float>.self)
            var db = PowerToDB.decibels(x) - offset
            db.replace(with: floorDB, where: .!(x .> amin))
            UnsafeMutableRawPointer(base + i).storeBytes(of: db, as: SIMD8<Float>.self)
            peaks = pointwiseMax(peaks, db)
            i += 8
        }
        if i < values.count {
            // The last few values through the same lanes (the unused ones hold 1, 0 dB, and are not kept).
            let n = values.count - i
            var x = SIMD8<Float>(repeating: 1)
            for j in 0..<n { x[j] = base[i + j] }
            var db = PowerToDB.decibels(x) - offset
            db.replace(with: floorDB, where: .!(x .> amin))
            for j in 0..<n {
                base[i + j] = db[j]
                peaks[j] = max(peaks[j], db[j])
            }
        }
        return peaks.max()
    }

    /// `10 log10(x)` of eight positive normal floats: `x = m 2^e` with `m` in `[sqrt(1/2), sqrt(2))`, and
    /// `ln m = 2 atanh(s) = 2 (s + s^3/3 + ... + s^9/9)` with `s = (m - 1) / (m + 1)`, `|s| < 0.172`.
    @inline(__always)
    static func decibels(_ x: SIMD8<Float>) -> SIMD8<Float> {
        let shifted = unsafeBitCast(x, to: SIMD8<Int32>.self) &- 0x3f35_04f3
        let e = SIMD8<Float>(shifted &>> 23)
        let m = unsafeBitCast((shifted & 0x007f_ffff) &+ 0x3f35_04f3, to: SIMD8<Float>.self)
        let one = SIMD8<Float>(repeating: 1)
        let s: SIMD8<Float> = (m - one) / (m + one)
        let s2: SIMD8<Float> = s * s
        var series: SIMD8<Float> = s2 * Float(1.0 / 9) + Float(1.0 / 7)
        series = series * s2 + Float(1.0 / 5)
        series = series * s2 + Float(1.0 / 3)
        series = series * s2 + 1
        // ln 2 split in two so that e ln 2 is exact in its first part.
        let ln: SIMD8<Float> = e * Float(0.693_145_751_953_125) + (e * Float(1.428_606_765_330_187e-6) + (s + s) * series)
        return ln * Float(4.342_944_819_032_518)   // 10 / ln 10
    }

    /// Applies the `topDB` clip in place given the maximum over the whole array.
    public func clip(_ values: UnsafeMutableBufferPointer<Float>, maximum: Float) {
        guard let topDB else { return }
        let floor = maximum - topDB
        for i in values.indices where values[i] < floor { values[i] = floor }
    }

    /// The dB values of a whole array (converted, then clipped against its own maximum).
    public func callAsFunction(_ power: [Float]) -> [Float] {
        var out = power
        out.withUnsafeMutableBufferPointer { b in
            let peak = convert(b)
            clip(b, maximum: peak)
        }
        return out
    }
}

/// Mel spectrograms with librosa 0.11's defaults: the STFT (2048-point periodic Hann window, hop 512, centered),
/// power 2, a 128-band Slaney mel bank from 0 Hz to the Nyquist frequency, and `power_to_db` for the log-mel.
///
/// ```swift
/// let mel = try MelSpectrogram(sampleRate: 22_050)
/// let logMel = mel.logMel(samples)   // frames x 128, dB
/// ```
public struct MelSpectrogram: Sendable, Equatable {
    /// Samples per second of the input.
    public let sampleRate: Double
    /// The transform settings.
    public let stft: STFT
    /// The filter bank.
    public let filterBank: MelFilterBank
    /// The dB conversion used by ``logMel(_:)``.
    public let toDB: PowerToDB

    /// The bank and transform for `sampleRate`; see ``MelFilterBank`` for the other parameters.
    public init(sampleRate: Double, nFFT: Int = 2048, hopLength: Int = 512, bands: Int = 128, fmin: Double = 0,
                fmax: Double? = nil, scale: MelScale = .slaney, slaneyNorm: Bool = true,
                toDB: PowerToDB = PowerToDB()) throws(AudioError) {
        self.sampleRate = sampleRate
        self.stft = try STFT(nFFT: nFFT, hopLength: hopLength)
        self.filterBank = try MelFilterBank(sampleRate: sampleRate, nFFT: nFFT, bands: bands, fmin: fmin, fmax: fmax,
                                            scale: scale, slaneyNorm: slaneyNorm)
        self.toDB = toDB
    }

    /// Mel bands per frame.
    public var bands: Int { filterBank.bands }

    /// The mel power spectrogram of a whole signal: frames x bands.
    public func power(_ samples: [Float]) -> Matrix {
        // The filter bank is applied batch by batch, so the linear power spectrogram is never held whole.
        var out = Matrix(rows: stft.frameCount(samples: samples.count), cols: bands)
        var stream = SpectrogramStream(stft: stft, batchFrames: 32)
        var row = 0
        let bank = filterBank, bands = self.bands
        out.storage.withUnsafeMutableBufferPointer { o in
            let base = o.baseAddress!
            let rows = o.count / max(1, bands)
            let consume: (UnsafeBufferPointer<Float>, Int) -> Void = { power, frames in
                let kept = min(frames, rows - row)   // the stream hands out exactly `rows` frames
                bank.apply(power.baseAddress!, frames: kept, into: base + row * bands)
                row += kept
            }
            samples.withUnsafeBufferPointer { stream.appendWhole($0, consume) }
        }
        return out
    }

    /// The log-mel spectrogram of a whole signal in dB (frames x bands), clipped `topDB` below its maximum.
    public func logMel(_ samples: [Float]) -> Matrix {
        var m = power(samples)
        let toDB = self.toDB
        m.storage.withUnsafeMutableBufferPointer { b in
            let peak = toDB.convert(b)
            toDB.clip(b, maximum: peak)
        }
        return m
    }
}

/// Mel-frequency cepstral coefficients: the orthonormal DCT-II of each log-mel frame, first `coefficients` kept
/// (librosa's `feature.mfcc` with `dct_type=2, norm="ortho"`).
public struct MFCC: Sendable, Equatable {
    /// Coefficients kept per frame.
    public let coefficients: Int
    /// Mel bands of the input frames.
    public let bands: Int
    /// The DCT matrix, coefficients x bands, row-major.
    public let basis: [Float]

    /// `coefficients` coefficients (20 by default) from frames of `bands` mel bands.
    public init(coefficients: Int = 20, bands: Int = 128) throws(AudioError) {
        guard bands >= 1, coefficients >= 1, coefficients <= bands else {
            throw .invalidParameter(name: "MFCC coefficients", reason: "\(coefficients) is not in 1...\(bands)")
        }
        var b = [Float](repeating: 0, count: coefficients * bands)
        let n = Double(bands)
        for k in 0..<coefficients {
            let scale = k == 0 ? (1 / n).squareRoot() : (2 / n).squareRoot()
            for i in 0..<bands {
                b[k * bands + i] = Float(scale * cos(Double.pi * Double(k) * (2 * Double(i) + 1) / (2 * n)))
            }
        }
        self.coefficients = coefficients
        self.bands = bands
        self.basis = b
    }

    /// The coefficients of `frames` log-mel frames (frames x bands) into `output` (frames x coefficients), by BLAS.
    public func apply(_ logMel: UnsafePointer<Float>, frames: Int, into output: UnsafeMutablePointer<Float>) {
        guard frames > 0 else { return }
        basis.withUnsafeBufferPointer { d in
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(frames), Int32(coefficients), Int32(bands),
                        1, logMel, Int32(bands), d.baseAddress, Int32(bands), 0, output, Int32(coefficients))
        }
    }

    /// The coefficients of a log-mel spectrogram (frames x bands): frames x coefficients.
    public func callAsFunction(_ logMel: Matrix) throws(AudioError) -> Matrix {
        guard logMel.cols == bands else {
            throw .invalidParameter(name: "log-mel bands", reason: "\(logMel.cols) columns, expected \(bands)")
        }
        var out = Matrix(rows: logMel.rows, cols: coefficients)
        guard logMel.rows > 0 else { return out }
        logMel.storage.withUnsafeBufferPointer { m in
            out.storage.withUnsafeMutableBufferPointer { o in apply(m.baseAddress!, frames: logMel.rows, into: o.baseAddress!) }
        }
        return out
    }
}

internal import CKissFFT
import Foundation

/// Onset strength per frame as librosa's `onset.onset_strength` over a log-mel spectrogram: the mean over bands of
/// the positive first difference of dB frames (floored `topDB` below the loudest value), delayed by
/// `1 + nFFT / (2 hop)` frames so each value sits at its onset's frame, one value per STFT frame.
///
/// Frames arrive one batch at a time, so the loudest value is the loudest seen so far: the floor can only rise,
/// and the result differs from librosa's whole-track floor only where a band sits more than `topDB` below the
/// track's peak before the peak is reached.
public struct OnsetStrength: Sendable {
    /// Mel bands per frame.
    public let bands: Int
    /// The dynamic range kept below the loudest value, in dB.
    public let topDB: Float
    /// Zero frames put in front (librosa: `lag + n_fft // (2 * hop_length)`).
    public let delay: Int
    /// The envelope so far (one value per frame, delayed).
    public private(set) var envelope: [Float]
    private var previous: [Float]
    private var hasPrevious = false
    private var peak = -Float.infinity
    private var framesSeen = 0

    /// An envelope over frames of `bands` dB values for an STFT of `nFFT` points every `hopLength` samples.
    public init(bands: Int, nFFT: Int = 2048, hopLength: Int = 512, topDB: Float = 80) {
        self.bands = bands
        self.topDB = topDB
        self.delay = 1 + nFFT / (2 * hopLength)
        self.envelope = [Float](repeating: 0, count: delay)
        self.previous = [Float](repeating: 0, count: bands)
    }

    /// Adds `frames` unclipped dB frames (frames x bands); `framePeak` is their maximum.
    public mutating func append(_ db: UnsafePointer<Float>, frames: Int, framePeak: Float) {
        peak = max(peak, framePeak)
        let floor = peak - topDB
        for t in 0..<frames {
            let row = db + t * bands
            if hasPrevious {
                var sum: Float = 0
                for f in 0..<bands {
                    let diff = max(row[f], floor) - max(previous[f], floor)
                    if diff > 0 { sum += diff }
                }
                envelope.append(sum / Float(bands))
            }
            for f in 0..<bands { previous[f] = row[f] }
            hasPrevious = true
            framesSeen += 1
        }
    }

    /// The envelope, one value per frame seen (librosa trims the delayed envelope to the frame count).
    public var values: [Float] { Array(envelope.prefix(framesSeen)) }
}

/// Global tempo as librosa's `feature.tempo` (`beat.tempo`): the onset envelope's autocorrelation tempogram
/// (8-second periodic Hann windows centered on every frame, the envelope ramped linearly to zero outside it, each
/// window normalized by its lag-0 value), averaged over frames, weighted by a log-normal prior around `startBPM`
/// (one octave standard deviation), the best lag below `maxBPM` giving the tempo.
public struct TempoEstimator: Sendable {
    /// Samples per second of the signal the envelope came from.
    public let sampleRate: Double
    /// Samples between envelope frames.
    public let hopLength: Int
    /// The prior's center in BPM.
    public let startBPM: Double
    /// The prior's standard deviation in octaves.
    public let standardDeviation: Double
    /// The fastest tempo considered.
    public let maxBPM: Double
    /// Autocorrelation window length in frames (`floor(8 s * sampleRate / hopLength)`).
    public let windowFrames: Int

    /// An estimator with librosa's defaults (120 BPM prior, 1 octave, 8-second windows, below 320 BPM).
    public init(sampleRate: Double, hopLength: Int = 512, startBPM: Double = 120, standardDeviation: Double = 1,
                windowSeconds: Double = 8, maxBPM: Double = 320) {
        self.sampleRate = sampleRate
        self.hopLength = hopLength
        self.startBPM = startBPM
        self.standardDeviation = standardDeviation
        self.maxBPM = maxBPM
        self.windowFrames = max(2, Int(windowSeconds * sampleRate / Double(hopLength)))
    }

    /// The tempo of lag `k` frames, in BPM.
    public func bpm(lag: Int) -> Double { 60 * sampleRate / (Double(hopLength) * Double(lag)) }

    /// The mean normalized autocorrelation over frames, one value per lag `0..<windowFrames`.
    public func meanTempogram(_ envelope: [Float]) -> [Double] {
        let w = windowFrames, n = envelope.count
        guard n > 0 else { return [Double](repeating: 0, count: w) }
        let half = w / 2
        // Pad with linear ramps to zero (numpy's `linear_ramp`), then frame every sample.
        var padded = [Float](repeating: 0, count: n + 2 * half)
        let first = envelope[0], last = envelope[n - 1]
        for i in 0..<half { padded[i] = first * Float(i) / Float(half) }
        for i in 0..<n { padded[half + i] = envelope[i] }
        for j in 0..<half { padded[half + n + j] = last * Float(half - 1 - j) / Float(half) }
        let window = (0..<w).map { Float(0.5 - 0.5 * cos(2 * Double.pi * Double($0) / Double(w))) }
        var size = 1
        while size < 2 * w - 1 { size <<= 1 }
        let forward = kiss_fftr_alloc(Int32(size), 0, nil, nil)
        let inverse = kiss_fftr_alloc(Int32(size), 1, nil, nil)
        defer { free(UnsafeMutableRawPointer(forward)); free(UnsafeMutableRawPointer(inverse)) }
        var frame = [Float](repeating: 0, count: size)
        var spectrum = [kiss_fft_cpx](repeating: kiss_fft_cpx(), count: size / 2 + 1)
        var ac = [Float](repeating: 0, count: size)
        var sum = [Double](repeating: 0, count: w)
        for t in 0..<n {
            for i in 0..<w { frame[i] = padded[t + i] * window[i] }
            for i in w..<size { frame[i] = 0 }
            kiss_fftr(forward, frame, &spectrum)
            for k in 0..<spectrum.count {
                let re = spectrum[k].r, im = spectrum[k].i
                spectrum[k] = kiss_fft_cpx(r: re * re + im * im, i: 0)
            }
            kiss_fftri(inverse, spectrum, &ac)
            // KissFFT's inverse is unnormalized (a factor of `size`); the lag-0 normalization cancels it.
            let zero = ac[0]
            let scale: Float = abs(zero) >= Float.leastNormalMagnitude ? 1 / zero : 1 / Float(size)
            for k in 0..<w { sum[k] += Double(ac[k] * scale) }
        }
        return sum.map { $0 / Double(n) }
    }

    /// The tempo in BPM of an onset envelope.
    public func tempo(_ envelope: [Float]) -> Double {
        let tg = meanTempogram(envelope)
        var best = -Double.infinity, bestLag = 1
        for k in 1..<windowFrames {
            let b = bpm(lag: k)
            guard b < maxBPM else { continue }
            let prior = -0.5 * pow((log2(b) - log2(startBPM)) / standardDeviation, 2)
            let score = log1p(1e6 * tg[k]) + prior
            if score > best { best = score; bestLag = k }
        }
        return bpm(lag: bestLag)
    }
}

/// Onset detection as librosa's `onset.onset_detect` with its defaults: the envelope scaled to 0...1, then
/// `util.peak_pick` (a peak is the maximum of the 30 ms before it, at least 0.07 above the mean of the 100 ms around
/// it, and more than 30 ms after the previous peak).
public enum OnsetDetector {
    /// The frames of the onsets of `envelope` (frames `hopLength` samples apart at `sampleRate`).
    public static func onsets(_ envelope: [Float], sampleRate: Double, hopLength: Int = 512) -> [Int] {
        let n = envelope.count
        guard n > 0 else { return [] }
        let lo = envelope.min()!, hi = envelope.max()!
        let x = envelope.map { Double($0 - lo) / (Double(hi - lo) + Double(Float.leastNormalMagnitude)) }
        let framesPerSecond = sampleRate / Double(hopLength)
        let preMax = Int((0.03 * framesPerSecond).rounded(.down)), postMax = 1
        let preAvg = Int((0.10 * framesPerSecond).rounded(.down)), postAvg = preAvg + 1
        let wait = Int((0.03 * framesPerSecond).rounded(.down)), delta = 0.07
        var prefix = [Double](repeating: 0, count: n + 1)
        for i in 0..<n { prefix[i + 1] = prefix[i] + x[i] }
        var peaks: [Int] = []
        var lastOnset = Int.min / 2
        for i in 0..<n where x[i] > 0 {
            let maxRange = max(0, i - preMax)..<min(n, i + postMax)
            guard x[maxRange].max() == x[i] else { continue }
            let a = max(0, i - preAvg), b = min(n, i + postAvg)
            guard x[i] >= (prefix[b] - prefix[a]) / Double(b - a) + delta else { continue }
            if i > lastOnset + wait {
                peaks.append(i)
                lastOnset = i
            }
        }
        return peaks
    }
}

/// The major and minor key profiles a chroma vector is compared with.
public enum KeyProfile: String, Sendable, CaseIterable {
    /// Krumhansl and Kessler's probe-tone ratings (1982).
    case krumhanslKessler
    /// Temperley's profiles ("What's key for key?", 1999), as Essentia's `Key` (`profileType: temperley`).
    case temperley

    /// The major profile, from the tonic up.
    public var major: [Double] {
        switch self {
        case .krumhanslKessler: return [6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88]
        case .temperley: return [5.0, 2.0, 3.5, 2.0, 4.5, 4.0, 2.0, 4.5, 2.0, 3.5, 1.5, 4.0]
        }
    }

    /// The minor profile, from the tonic up.
    public var minor: [Double] {
        switch self {
        case .krumhanslKessler: return [6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17]
        case .temperley: return [5.0, 2.0, 3.5, 4.5, 2.0, 4.0, 2.0, 4.5, 3.5, 2.0, 1.5, 4.0]
        }
    }
}

/// Key and mode from a mean chroma vector: the Pearson correlation with the 24 rotations of a major and a minor
/// profile; the best one names the key (its tonic, C = 0) and the mode, its correlation is the strength (-1...1).
///
/// A chroma vector measured on audio holds each note's overtones as well as the note: the third harmonic sounds a
/// twelfth above (a fifth, in pitch classes), which pulls a bare profile match towards the key a fifth up. As
/// Essentia's `Key` (Gómez, "Tonal description of music audio signals", 2006), each profile degree is spread over
/// the pitch classes of its first `harmonics` harmonics, harmonic `h` weighted `slope^(h-1)` (a harmonic between two
/// pitch classes is split between them with weights `cos^2` of its distance), so the profile is compared with what
/// the notes of the key sound like.
public enum KeyEstimator {
    /// Krumhansl-Kessler's major profile, from the tonic up.
    public static let majorProfile = KeyProfile.krumhanslKessler.major
    /// Krumhansl-Kessler's minor profile, from the tonic up.
    public static let minorProfile = KeyProfile.krumhanslKessler.minor

    /// How much of a note each pitch class (relative to the note) receives from its first `harmonics` harmonics.
    public static func harmonicKernel(harmonics: Int, slope: Double) -> [Double] {
        var kernel = [Double](repeating: 0, count: 12)
        var weight = 1.0
        for h in 1...max(1, harmonics) {
            let index = 12 * log2(Double(h))
            let below = index.rounded(.down), above = index.rounded(.up)
            if below < above {
                kernel[Int(below) % 12] += pow(cos(0.5 * Double.pi * (index - below)), 2) * weight
                kernel[Int(above) % 12] += pow(cos(0.5 * Double.pi * (above - index)), 2) * weight
            } else {
                kernel[Int(below) % 12] += weight
            }
            weight *= slope
        }
        return kernel
    }

    /// `profile` with each degree spread over its harmonics (circular convolution with ``harmonicKernel(harmonics:slope:)``).
    public static func withHarmonics(_ profile: [Double], harmonics: Int, slope: Double) -> [Double] {
        let kernel = harmonicKernel(harmonics: harmonics, slope: slope)
        return (0..<12).map { i in (0..<12).reduce(0.0) { $0 + profile[$1] * kernel[((i - $1) % 12 + 12) % 12] } }
    }

    /// The key (0-11, C = 0), mode (1 major, 0 minor) and strength of a 12-class chroma vector starting at C.
    /// The defaults are Essentia's `Key` with Temperley's profiles (4 harmonics, slope 0.6); `harmonics: 1` compares
    /// with the bare profile.
    public static func estimate(
        _ chroma: [Double], profile: KeyProfile = .temperley, harmonics: Int = 4, slope: Double = 0.6
    ) -> (key: Int, mode: Int, strength: Double) {
        guard chroma.count == 12 else { return (0, 1, 0) }
        let major = withHarmonics(profile.major, harmonics: harmonics, slope: slope)
        let minor = withHarmonics(profile.minor, harmonics: harmonics, slope: slope)
        var best = (key: 0, mode: 1, strength: -Double.infinity)
        for (mode, profile) in [(1, major), (0, minor)] {
            for tonic in 0..<12 {
                let rotated = (0..<12).map { profile[(($0 - tonic) % 12 + 12) % 12] }
                let r = pearson(chroma, rotated)
                if r > best.strength { best = (tonic, mode, r) }
            }
        }
        if !best.strength.isFinite { best.strength = 0 }
        return best
    }

    static func pearson(_ a: [Double], _ b: [Double]) -> Double {
        let n = Double(a.count)
        let ma = a.reduce(0, +) / n, mb = b.reduce(0, +) / n
        var sab = 0.0, saa = 0.0, sbb = 0.0
        for i in a.indices {
            let x = a[i] - ma, y = b[i] - mb
            sab += x * y; saa += x * x; sbb += y * y
        }
        let d = (saa * sbb).squareRoot()
        return d > 0 ? sab / d : 0
    }
}

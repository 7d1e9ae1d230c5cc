import EncoreCore
import Foundation

/// Per-track audio descriptors, each defined in docs/audio.md.
public struct AudioDescriptors: Sendable, Equatable {
    /// Seconds of audio analyzed (the excerpt when an offset or duration is given).
    public var durationS: Double
    /// Global tempo in beats per minute (librosa's `feature.tempo`).
    public var tempoBPM: Double
    /// Tonic pitch class 0-11, C = 0.
    public var key: Int
    /// 1 major, 0 minor.
    public var mode: Int
    /// Correlation of the mean chroma with the chosen key profile (-1...1).
    public var keyStrength: Double
    /// Integrated loudness (EBU R128), LUFS.
    public var loudnessLUFS: Double
    /// Root mean square of the mono signal, in full-scale units (0...1).
    public var energy: Double
    /// Detrended-fluctuation danceability (Essentia's definition), 0...3.
    public var danceability: Double
    /// Mean spectral centroid, Hz.
    public var spectralCentroidHz: Double
    /// Mean 85% spectral rolloff, Hz.
    public var spectralRolloffHz: Double
    /// Mean spectral flatness (0...1).
    public var spectralFlatness: Double
    /// Mean zero-crossing rate (crossings per sample, 0...1).
    public var zeroCrossingRate: Double
    /// Onsets per second.
    public var onsetRate: Double

    /// The descriptor names as stored under `/descriptors/` in a features file, in a fixed order.
    public static let names = [
        "duration_s", "tempo_bpm", "key", "mode", "key_strength", "loudness_lufs", "energy", "danceability",
        "spectral_centroid_hz", "spectral_rolloff_hz", "spectral_flatness", "zero_crossing_rate", "onset_rate",
    ]

    /// The values in the order of ``names``.
    public var values: [Double] {
        [durationS, tempoBPM, Double(key), Double(mode), keyStrength, loudnessLUFS, energy, danceability,
         spectralCentroidHz, spectralRolloffHz, spectralFlatness, zeroCrossingRate, onsetRate]
    }
}

/// The result of analyzing one track: its descriptors and, when asked for, its log-mel spectrogram.
public struct AudioAnalysis: Sendable {
    /// The descriptors.
    public var descriptors: AudioDescriptors
    /// The log-mel spectrogram (frames x bands, dB, clipped 80 dB below the track's maximum), when requested.
    public var logMel: Matrix?
}

/// Settings of an analysis: the decoding, the spectrogram and whether the log-mel is kept.
public struct AnalysisOptions: Sendable {
    /// How files are decoded (rate, excerpt).
    public var decode: DecodeOptions
    /// FFT size.
    public var nFFT: Int
    /// Hop between frames.
    public var hopLength: Int
    /// Mel bands.
    public var melBands: Int
    /// Whether the log-mel spectrogram is returned.
    public var keepLogMel: Bool

    /// librosa's defaults at 22 050 Hz; descriptors only.
    public init(decode: DecodeOptions = DecodeOptions(), nFFT: Int = 2048, hopLength: Int = 512, melBands: Int = 128,
                keepLogMel: Bool = false) {
        self.decode = decode
        self.nFFT = nFFT
        self.hopLength = hopLength
        self.melBands = melBands
        self.keepLogMel = keepLogMel
    }
}

/// Computes a track's descriptors (and optionally its log-mel spectrogram) in one streaming pass over blocks of
/// mono samples: the STFT, mel bank, chroma and spectral shape run per batch of frames, so only per-frame summaries
/// (and the log-mel, when kept) grow with the track's length.
///
/// ```swift
/// let analysis = try AudioAnalyzer.analyze(path: "song.flac")
/// print(analysis.descriptors.tempoBPM, analysis.descriptors.key)
/// ```
public struct AudioAnalyzer: ~Copyable {
    /// Samples per second of the input blocks.
    public let sampleRate: Double
    private var stream: SpectrogramStream
    private var zcr: ZeroCrossingStream
    private var danceability: Danceability
    private let state: FrameSummaries
    private var sumSquares = 0.0
    private var samples = 0

    /// An analyzer for blocks at `sampleRate` with `options`' spectrogram settings.
    public init(sampleRate: Double, options: AnalysisOptions = AnalysisOptions()) throws(AudioError) {
        let mel = try MelSpectrogram(sampleRate: sampleRate, nFFT: options.nFFT, hopLength: options.hopLength,
                                     bands: options.melBands)
        let chroma = try Chroma(sampleRate: sampleRate, nFFT: options.nFFT)
        let danceability = try Danceability(sampleRate: Int(sampleRate.rounded()))
        self.sampleRate = sampleRate
        self.stream = SpectrogramStream(stft: mel.stft)
        self.state = FrameSummaries(mel: mel, chroma: chroma, keepLogMel: options.keepLogMel, batchFrames: stream.batchFrames)
        self.zcr = ZeroCrossingStream(frameLength: options.nFFT, hopLength: options.hopLength)
        self.danceability = danceability
    }

    /// Adds a block of mono samples.
    public mutating func append(_ block: UnsafeBufferPointer<Float>) {
        samples += block.count
        var s = 0.0
        for x in block { s += Double(x) * Double(x) }
        sumSquares += s
        zcr.append(block)
        danceability.add(block)
        let state = self.state
        stream.append(block) { power, count in state.consume(power, count) }
    }

    /// Adds a block of mono samples.
    public mutating func append(_ block: [Float]) {
        block.withUnsafeBufferPointer { append($0) }
    }

    /// Ends the track and returns its analysis; `loudnessLUFS` is the integrated loudness measured on the file's own
    /// channels (``analyze(path:options:)`` measures it while decoding), NaN when unknown or too quiet to measure.
    public consuming func finish(loudnessLUFS: Double? = nil) -> AudioAnalysis {
        let state = self.state
        stream.finish { power, count in state.consume(power, count) }
        zcr.finish()
        let mel = state.mel
        let n = Double(max(state.frames, 1))
        let (key, mode, strength) = KeyEstimator.estimate(state.chromaSum.map { $0 / n })
        let envelope = state.onset.values
        let tempo = TempoEstimator(sampleRate: sampleRate, hopLength: mel.stft.hopLength).tempo(envelope)
        let duration = Double(samples) / sampleRate
        let onsets = OnsetDetector.onsets(envelope, sampleRate: sampleRate, hopLength: mel.stft.hopLength)
        let rates = zcr.rates
        let descriptors = AudioDescriptors(
            durationS: duration, tempoBPM: tempo, key: key, mode: mode, keyStrength: strength, loudnessLUFS: loudnessLUFS ?? .nan,
            energy: samples > 0 ? (sumSquares / Double(samples)).squareRoot() : 0, danceability: danceability.finish(),
            spectralCentroidHz: state.centroidSum / n, spectralRolloffHz: state.rolloffSum / n,
            spectralFlatness: state.flatnessSum / n,
            zeroCrossingRate: rates.isEmpty ? 0 : rates.reduce(0.0) { $0 + Double($1) } / Double(rates.count),
            onsetRate: duration > 0 ? Double(onsets.count) / duration : 0)
        var logMelMatrix: Matrix?
        if state.keepLogMel {
            state.logMel.withUnsafeMutableBufferPointer { mel.toDB.clip($0, maximum: state.logMelPeak) }
            logMelMatrix = try? Matrix(rows: state.frames, cols: mel.bands, storage: state.logMel)
        }
        return AudioAnalysis(descriptors: descriptors, logMel: logMelMatrix)
    }
}

/// What the analyzer keeps per frame batch: mel, chroma and shape summaries, the onset envelope, the log-mel.
private final class FrameSummaries {
    let mel: MelSpectrogram
    let chroma: Chroma
    let shape: SpectralShape
    let keepLogMel: Bool
    var onset: OnsetStrength
    var melBatch: [Float]
    var chromaBatch: [Float]
    var logMel: [Float] = []
    var logMelPeak = -Float.infinity
    var chromaSum = [Double](repeating: 0, count: 12)
    var centroidSum = 0.0, rolloffSum = 0.0, flatnessSum = 0.0
    var frames = 0

    init(mel: MelSpectrogram, chroma: Chroma, keepLogMel: Bool, batchFrames: Int) {
        self.mel = mel
        self.chroma = chroma
        self.shape = SpectralShape(stft: mel.stft, sampleRate: mel.sampleRate)
        self.keepLogMel = keepLogMel
        self.onset = OnsetStrength(bands: mel.bands, nFFT: mel.stft.nFFT, hopLength: mel.stft.hopLength,
                                   topDB: mel.toDB.topDB ?? 80)
        self.melBatch = [Float](repeating: 0, count: batchFrames * mel.bands)
        self.chromaBatch = [Float](repeating: 0, count: batchFrames * chroma.classes)
    }

    func consume(_ power: UnsafeBufferPointer<Float>, _ count: Int) {
        let bands = mel.bands, bins = mel.stft.bins, classes = chroma.classes
        guard let p = power.baseAddress, count > 0 else { return }
        melBatch.withUnsafeMutableBufferPointer { m in
            mel.filterBank.apply(p, frames: count, into: m.baseAddress!)
            let db = UnsafeMutableBufferPointer(rebasing: m[0..<(count * bands)])
            let peak = mel.toDB.convert(db)
            logMelPeak = max(logMelPeak, peak)
            onset.append(m.baseAddress!, frames: count, framePeak: peak)
            if keepLogMel { logMel.append(contentsOf: db) }
        }
        chromaBatch.withUnsafeMutableBufferPointer { c in
            chroma.apply(p, frames: count, into: c.baseAddress!)
            for t in 0..<count { for k in 0..<classes { chromaSum[k] += Double(c[t * classes + k]) } }
        }
        for t in 0..<count {
            let m = shape.measure(p + t * bins)
            centroidSum += Double(m.centroidHz)
            rolloffSum += Double(m.rolloffHz)
            flatnessSum += Double(m.flatness)
        }
        frames += count
    }
}

extension AudioAnalyzer {
    /// Decodes `path` with `options.decode` and analyzes it in one streaming pass.
    ///
    /// - Throws: ``AudioError`` naming the file when it cannot be read, is damaged, empty or silent.
    public static func analyze(path: String, options: AnalysisOptions = AnalysisOptions()) throws(AudioError) -> AudioAnalysis {
        var decoder = try AudioDecoder(path: path, options: options.decode)
        var analyzer = try AudioAnalyzer(sampleRate: Double(decoder.sampleRate), options: options)
        let meter = try LoudnessMeter(sampleRate: decoder.nativeSampleRate, channels: decoder.channels)
        // The meter sees the file's own channels at its own rate (BS.1770 weighs channels, and mixdown changes loudness).
        // A meter that fails (libebur128 out of memory) fails the file: a NaN loudness would look like silence.
        var meterError: AudioError?
        let measure: (UnsafeBufferPointer<Float>) -> Void = { block in
            guard meterError == nil else { return }
            do throws(AudioError) { try meter.add(block) } catch { meterError = error }
        }
        while let block = try decoder.nextBlock(native: measure) {
            if let meterError {
                throw .file(FileError(path: path, operation: "measure the loudness", reason: meterError.description))
            }
            analyzer.append(block)
        }
        if let meterError {
            throw .file(FileError(path: path, operation: "measure the loudness", reason: meterError.description))
        }
        return analyzer.finish(loudnessLUFS: meter.integratedLoudness())
    }
}

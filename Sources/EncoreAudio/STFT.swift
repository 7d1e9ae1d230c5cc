internal import CKissFFT
import EncoreCore
#if canImport(Glibc)
import Glibc
#endif

/// Short-time Fourier transform settings, with librosa 0.11's defaults: a periodic Hann window of `nFFT` samples,
/// a hop of `hopLength` samples, and centered frames (the signal padded with `nFFT / 2` zeros on both sides).
///
/// A signal of `n` samples has `1 + n / hopLength` frames; frame `t` is centered on sample `t * hopLength`.
public struct STFT: Sendable, Equatable {
    /// FFT size and window length, in samples (even).
    public let nFFT: Int
    /// Samples between the centers of consecutive frames.
    public let hopLength: Int

    /// Settings for an `nFFT`-point transform every `hopLength` samples.
    public init(nFFT: Int = 2048, hopLength: Int = 512) throws(AudioError) {
        guard nFFT >= 4, nFFT % 2 == 0, nFFT <= 1 << 20 else {
            throw .invalidParameter(name: "n_fft", reason: "\(nFFT) is not an even size in 4...1048576")
        }
        guard hopLength >= 1, hopLength <= nFFT else {
            throw .invalidParameter(name: "hop length", reason: "\(hopLength) is not in 1...\(nFFT)")
        }
        self.nFFT = nFFT
        self.hopLength = hopLength
    }

    /// Frequency bins per frame (`nFFT / 2 + 1`, from 0 Hz to the Nyquist frequency).
    public var bins: Int { nFFT / 2 + 1 }

    /// The number of centered frames of a signal of `samples` samples (librosa: `1 + n // hop_length`).
    public func frameCount(samples: Int) -> Int { 1 + max(0, samples) / hopLength }

    /// The center frequency of each bin in Hz at `sampleRate` (librosa's `fft_frequencies`).
    public func binFrequencies(sampleRate: Double) -> [Double] {
        (0..<bins).map { Double($0) * sampleRate / Double(nFFT) }
    }

    /// The periodic Hann window of `nFFT` samples: `0.5 - 0.5 cos(2 pi k / nFFT)`.
    public var window: [Float] {
        (0..<nFFT).map { Float(0.5 - 0.5 * cos(2 * Double.pi * Double($0) / Double(nFFT))) }
    }

    /// The power spectrogram `|X|^2` of a whole signal: frames x bins, row-major.
    public func powerSpectrogram(_ samples: [Float]) -> Matrix {
        var out = Matrix(rows: 0, cols: bins)
        var stream = SpectrogramStream(stft: self)
        let consume: (UnsafeBufferPointer<Float>, Int) -> Void = { power, frames in
            let start = out.rows
            out.grow(toRows: start + frames)
            out.storage.withUnsafeMutableBufferPointer { o in
                _ = UnsafeMutableBufferPointer(rebasing: o[(start * self.bins)...]).initialize(from: power)
            }
        }
        out.storage.reserveCapacity(frameCount(samples: samples.count) * bins)
        samples.withUnsafeBufferPointer { stream.appendWhole($0, consume) }
        return out
    }
}

/// A KissFFT real-input plan; not shared between threads.
final class RealFFT {
    let n: Int
    private let config: kiss_fftr_cfg

    init(n: Int) {
        self.n = n
        // kiss_fftr_alloc fails only when out of memory; STFT validated the size.
        guard let config = kiss_fftr_alloc(Int32(n), 0, nil, nil) else {
            preconditionFailure("KissFFT could not allocate a \(n)-point plan")
        }
        self.config = config
    }

    /// The `n / 2 + 1` complex bins of `input` (`n` real samples), interleaved re, im into `output`.
    func forward(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>) {
        output.withMemoryRebound(to: kiss_fft_cpx.self, capacity: n / 2 + 1) { bins in
            kiss_fftr(config, input, bins)
        }
    }

    deinit { free(UnsafeMutableRawPointer(config)) }
}

/// Centered STFT frames of a signal that arrives in blocks: the power spectra are handed out in batches
/// (frames x bins, row-major), so a long signal is never held whole.
///
/// Call ``append(_:_:)`` with each block, then ``finish(_:)`` once; together they hand out exactly
/// `stft.frameCount(samples:)` frames, the same values as ``STFT/powerSpectrogram(_:)``.
public struct SpectrogramStream: ~Copyable {
    /// The transform settings.
    public let stft: STFT
    /// Frames per batch handed to the consumer (the last batch may be shorter).
    public let batchFrames: Int
    private let fft: RealFFT
    private let window: [Float]
    /// Padded samples not yet consumed by a frame; `pending[readPosition]` starts the next frame.
    private var pending: [Float]
    private var readPosition = 0
    private var batchPower: [Float]
    private var batchCount = 0
    private var frameInput: [Float]
    private var spectrum: [Float]
    /// Frames handed out so far.
    public private(set) var framesEmitted = 0
    /// Samples appended so far (without the padding).
    public private(set) var samplesSeen = 0
    private var finished = false

    /// A stream over `stft`'s frames, handing out `batchFrames` frames at a time.
    public init(stft: STFT, batchFrames: Int = 128) {
        self.stft = stft
        self.batchFrames = max(1, batchFrames)
        self.fft = RealFFT(n: stft.nFFT)
        self.window = stft.window
        self.pending = [Float](repeating: 0, count: stft.nFFT / 2)
        self.pending.reserveCapacity(stft.nFFT * 4)
        self.batchPower = [Float](repeating: 0, count: self.batchFrames * stft.bins)
        self.frameInput = [Float](repeating: 0, count: stft.nFFT)
        self.spectrum = [Float](repeating: 0, count: 2 * stft.bins)
    }

    /// Adds `samples` to the signal; `consume(power, frames)` is called for each full batch.
    public mutating func append(_ samples: UnsafeBufferPointer<Float>,
                                _ consume: (UnsafeBufferPointer<Float>, Int) -> Void) {
        guard !finished else { return }
        samplesSeen += samples.count
        pending.append(contentsOf: samples)
        drain(consume)
    }

    /// Adds a whole signal and ends the stream: the same frames as ``append(_:_:)`` of `samples` then
    /// ``finish(_:)``, but the frames that lie inside the signal are read where they are (no copy); only those
    /// reaching into the padding at either end are copied. On a stream that already has samples, it appends and
    /// finishes.
    public mutating func appendWhole(_ samples: UnsafeBufferPointer<Float>,
                                     _ consume: (UnsafeBufferPointer<Float>, Int) -> Void) {
        guard !finished else { return }
        guard samplesSeen == 0, readPosition == 0, let base = samples.baseAddress else {
            append(samples, consume)
            finish(consume)
            return
        }
        finished = true
        samplesSeen = samples.count
        let n = stft.nFFT, hop = stft.hopLength, half = n / 2, count = samples.count
        let total = stft.frameCount(samples: count)
        var edge = [Float](repeating: 0, count: n)
        var t = 0
        while t < total {
            let frames = min(total - t, batchFrames - batchCount)
            edge.withUnsafeMutableBufferPointer { e in
                transform(frames) { j in
                    let start = (t + j) * hop - half
                    if start >= 0, start + n <= count { return base + start }
                    // A frame over an end: the samples it covers, zeros beyond them.
                    for i in 0..<n {
                        let k = start + i
                        e[i] = k >= 0 && k < count ? base[k] : 0
                    }
                    return UnsafePointer(e.baseAddress!)
                }
            }
            t += frames
            if batchCount == batchFrames { flush(consume) }
        }
        flush(consume)
    }

    /// Ends the signal (pads `nFFT / 2` zeros) and hands out the remaining frames.
    public mutating func finish(_ consume: (UnsafeBufferPointer<Float>, Int) -> Void) {
        guard !finished else { return }
        finished = true
        pending.append(contentsOf: repeatElement(0, count: stft.nFFT / 2))
        drain(consume)
        flush(consume)
    }

    private mutating func drain(_ consume: (UnsafeBufferPointer<Float>, Int) -> Void) {
        let n = stft.nFFT, hop = stft.hopLength
        while pending.count - readPosition >= n {
            let available = 1 + (pending.count - readPosition - n) / hop
            let count = min(available, batchFrames - batchCount)
            let start = readPosition
            pending.withUnsafeBufferPointer { p in
                transform(count) { j in p.baseAddress! + start + j * hop }
            }
            readPosition += count * hop
            if batchCount == batchFrames { flush(consume) }
        }
        // Drop consumed samples once they outweigh what is kept.
        if readPosition > 0, readPosition >= pending.count / 2 {
            pending.removeSubrange(0..<min(readPosition, pending.count))
            readPosition = 0
        }
    }

    /// Windows, transforms and squares `count` frames (frame `j` starts at `frame(j)`, `nFFT` samples) into the
    /// batch's next rows, without leaving the buffers.
    private mutating func transform(_ count: Int, _ frame: (Int) -> UnsafePointer<Float>) {
        let n = stft.nFFT, bins = stft.bins, fft = self.fft, row0 = batchCount
        window.withUnsafeBufferPointer { w in
            frameInput.withUnsafeMutableBufferPointer { f in
                spectrum.withUnsafeMutableBufferPointer { s in
                    batchPower.withUnsafeMutableBufferPointer { b in
                        let fp = f.baseAddress!, wp = w.baseAddress!, sp = s.baseAddress!
                        for j in 0..<count {
                            let x = frame(j)
                            for i in 0..<n { fp[i] = x[i] * wp[i] }
                            fft.forward(fp, sp)
                            let out = b.baseAddress! + (row0 + j) * bins
                            for k in 0..<bins {
                                let re = sp[2 * k], im = sp[2 * k + 1]
                                out[k] = re * re + im * im
                            }
                        }
                    }
                }
            }
        }
        batchCount += count
        framesEmitted += count
    }

    private mutating func flush(_ consume: (UnsafeBufferPointer<Float>, Int) -> Void) {
        guard batchCount > 0 else { return }
        let count = batchCount
        batchPower.withUnsafeBufferPointer { b in
            consume(UnsafeBufferPointer(rebasing: b[0..<(count * stft.bins)]), count)
        }
        batchCount = 0
    }
}

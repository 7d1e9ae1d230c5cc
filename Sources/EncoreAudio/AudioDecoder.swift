internal import CSndFile
internal import CSoxr
import EncoreCore
#if canImport(Glibc)
import Glibc
#endif

/// How ``AudioDecoder`` reads a file: output rate, excerpt, block size and what counts as silence.
public struct DecodeOptions: Sendable, Equatable {
    /// Output samples per second (`nil`: the file's own rate, no resampling).
    public var sampleRate: Int?
    /// Seconds skipped at the start of the file.
    public var offset: Double
    /// Seconds decoded from the offset (`nil`: to the end).
    public var duration: Double?
    /// Frames read from the file at a time.
    public var blockFrames: Int
    /// A decoded excerpt whose samples all have magnitudes below this is refused as silent (`0` accepts silence).
    public var silenceThreshold: Float

    /// librosa's defaults: 22 050 Hz, the whole file; silence is a peak below 1e-4 (-80 dBFS).
    public init(sampleRate: Int? = 22_050, offset: Double = 0, duration: Double? = nil, blockFrames: Int = 65_536,
                silenceThreshold: Float = 1e-4) {
        self.sampleRate = sampleRate
        self.offset = offset
        self.duration = duration
        self.blockFrames = blockFrames
        self.silenceThreshold = silenceThreshold
    }
}

/// Reads an audio file (WAV, FLAC, OGG Vorbis, Opus, MP3, or anything else libsndfile reads) as mono samples, mixed
/// down as the mean of the channels and resampled by libsoxr at `soxr_hq` (librosa's `load`), handed out in blocks so
/// a long file is never held whole.
///
/// ```swift
/// var decoder = try AudioDecoder(path: "song.ogg")          // 22 050 Hz mono
/// while let block = try decoder.nextBlock() { consume(block) }
/// let samples = try AudioDecoder.decode(path: "song.ogg")  // or all at once
/// ```
///
/// The output has `ceil(n * sampleRate / nativeSampleRate)` samples for `n` decoded frames (librosa's length).
public struct AudioDecoder: ~Copyable {
    /// The file being read.
    public let path: String
    /// The file's samples per second.
    public let nativeSampleRate: Int
    /// The file's channels.
    public let channels: Int
    /// Frames in the file as its header declares them.
    public let nativeFrames: Int
    /// Output samples per second.
    public let sampleRate: Int
    private let options: DecodeOptions
    private var handle: OpaquePointer?
    private let fd: Int32
    private var resampler: soxr_t?
    /// Frames still to read (the excerpt's length).
    private var framesLeft: Int
    /// Frames the excerpt should have (for the truncation check).
    private let framesExpected: Int
    /// Frames read so far.
    public private(set) var framesRead = 0
    /// Output samples handed out so far.
    public private(set) var samplesEmitted = 0
    private var peak: Float = 0
    private var interleaved: [Float]
    private var flushed = false
    /// How many frames short of the header's length the stream may end and still be whole: an MP3's length is an
    /// estimate (encoder delay and padding), and libsndfile reads an Ogg stream's length from its last granule
    /// position, which can exceed the decodable frames by part of a block.
    private let shortfallAllowed: Int
    private var done = false
    /// The largest Vorbis block (8192 frames), above Opus's largest packet (5760 frames at 48 kHz).
    static let oggShortfall = 8_192

    /// Opens `path` and positions it at `options.offset`.
    public init(path: String, options: DecodeOptions = DecodeOptions()) throws(AudioError) {
        if let rate = options.sampleRate, rate < 1 || rate > 768_000 {
            throw .invalidParameter(name: "sample rate", reason: "\(rate) Hz is not in 1...768000")
        }
        guard options.offset.isFinite, options.offset >= 0 else {
            throw .invalidParameter(name: "offset", reason: "\(options.offset) s is not a non-negative number of seconds")
        }
        if let d = options.duration, !(d.isFinite && d > 0) {
            throw .invalidParameter(name: "duration", reason: "\(d) s is not a positive number of seconds")
        }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .file(FileError(path: path, operation: "open", errno: errno)) }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let code = errno
            close(fd)
            throw .file(FileError(path: path, operation: "stat", errno: code))
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            close(fd)
            throw .unsupported(path: path, reason: "not a regular file")
        }
        guard st.st_size > 0 else {
            close(fd)
            throw .empty(path: path, reason: "the file is 0 bytes")
        }
        var info = SF_INFO()
        // libsndfile leaves the descriptor open (close_desc 0); deinit closes it after sf_close.
        guard let handle = sf_open_fd(fd, Int32(SFM_READ), &info, 0) else {
            let code = sf_error(nil)
            let message = String(cString: sf_error_number(code))
            close(fd)
            switch Int(code) {
            case SF_ERR_UNRECOGNISED_FORMAT, SF_ERR_UNSUPPORTED_ENCODING:
                throw .unsupported(path: path, reason: message)
            case SF_ERR_SYSTEM:
                throw .file(FileError(path: path, operation: "read", reason: message))
            default:
                throw .corrupt(path: path, reason: message)
            }
        }
        var opened = false
        var resampler: soxr_t?
        defer {
            if !opened {
                sf_close(handle)
                close(fd)
                if let resampler { soxr_delete(resampler) }
            }
        }
        let nativeRate = Int(info.samplerate), channels = Int(info.channels), frames = Int(max(0, info.frames))
        guard info.samplerate > 0, info.channels > 0, info.channels <= 1024 else {
            throw .corrupt(path: path, reason: "the header declares \(info.samplerate) Hz and \(info.channels) channels")
        }
        if let truncation = Self.truncatedDataChunk(handle) { throw .corrupt(path: path, reason: truncation) }
        guard frames > 0 else { throw .empty(path: path, reason: "the file holds no samples") }
        let start = Self.frames(options.offset, nativeRate)
        guard start < frames else {
            throw .empty(path: path, reason: "offset \(options.offset) s is at or past the end (\(Self.seconds(frames, nativeRate)) s)")
        }
        let wanted = options.duration.map { Self.frames($0, nativeRate) } ?? Int.max
        guard wanted > 0 else {
            throw .empty(path: path, reason: "duration \(options.duration ?? 0) s is shorter than one sample")
        }
        if start > 0, sf_seek(handle, sf_count_t(start), SEEK_SET) < 0 {
            // Not seekable: read and drop up to the offset.
            var skip = start
            var scratch = [Float](repeating: 0, count: 4_096 * channels)
            while skip > 0 {
                let want = min(skip, 4_096)
                let got = scratch.withUnsafeMutableBufferPointer { sf_readf_float(handle, $0.baseAddress, sf_count_t(want)) }
                guard got > 0 else {
                    throw .corrupt(path: path, reason: "cannot reach offset \(options.offset) s: \(String(cString: sf_strerror(handle)))")
                }
                skip -= Int(got)
            }
        }
        let outputRate = options.sampleRate ?? nativeRate
        if outputRate != nativeRate {
            var error: soxr_error_t?
            var io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I)
            var quality = soxr_quality_spec(encore_SOXR_HQ(), 0)
            resampler = soxr_create(Double(nativeRate), Double(outputRate), 1, &error, &io, &quality, nil)
            guard resampler != nil, error == nil else {
                let reason = error.map { String(cString: $0) } ?? "unknown"
                throw .invalidParameter(name: "sample rate", reason: "libsoxr cannot resample \(nativeRate) Hz to \(outputRate) Hz: \(reason)")
            }
        }
        opened = true
        self.handle = handle
        self.fd = fd
        self.resampler = resampler
        self.path = path
        self.options = options
        self.nativeSampleRate = nativeRate
        self.channels = channels
        self.nativeFrames = frames
        self.sampleRate = outputRate
        self.framesLeft = min(wanted, frames - start)
        self.framesExpected = min(wanted, frames - start)
        switch Int(info.format) & SF_FORMAT_TYPEMASK {
        case SF_FORMAT_MPEG: self.shortfallAllowed = max(min(wanted, frames - start) / 100, 2 * nativeRate)
        case SF_FORMAT_OGG: self.shortfallAllowed = Self.oggShortfall
        default: self.shortfallAllowed = 0
        }
        self.interleaved = [Float](repeating: 0, count: max(256, options.blockFrames) * channels)
    }

    deinit {
        if let handle { sf_close(handle) }
        close(fd)
        if let resampler { soxr_delete(resampler) }
    }

    /// libsndfile reads a WAV whose data chunk runs past the end of the file as a shorter file, noting it in its log
    /// (`data : 44100 (should be 10000)`): that is a truncated file.
    private static func truncatedDataChunk(_ handle: OpaquePointer) -> String? {
        var log = [CChar](repeating: 0, count: 16_384)
        _ = sf_command(handle, Int32(SFC_GET_LOG_INFO), &log, Int32(log.count))
        log[log.count - 1] = 0
        let text = String(cString: log)
        for line in text.split(separator: "\n") where line.hasPrefix("data") && line.contains("(should be ") {
            let numbers = line.split(whereSeparator: { !$0.isNumber }).compactMap { Int($0) }
            guard numbers.count >= 2 else { continue }
            return "truncated: the data chunk declares \(numbers[0]) bytes but the file holds \(numbers[1])"
        }
        return nil
    }

    /// `seconds * rate` frames, rounded down, saturating at a very large count.
    private static func frames(_ seconds: Double, _ rate: Int) -> Int {
        let f = (seconds * Double(rate)).rounded(.down)
        return f >= 0x1p60 ? 1 << 60 : Int(f)
    }

    private static func seconds(_ frames: Int, _ rate: Int) -> String {
        let s = Double(frames) / Double(max(rate, 1))
        return "\((s * 1000).rounded() / 1000)"
    }

    /// The number of output samples for `frames` decoded frames: `ceil(frames * sampleRate / nativeSampleRate)`.
    public var targetLength: Int {
        sampleRate == nativeSampleRate ? framesRead
            : Int((Double(framesRead) * Double(sampleRate) / Double(nativeSampleRate)).rounded(.up))
    }

    /// The decoded length in seconds so far (at the file's rate).
    public var secondsRead: Double { Double(framesRead) / Double(nativeSampleRate) }

    /// The next block of mono samples at ``sampleRate``, or `nil` after the last one.
    ///
    /// - Throws: ``AudioError/corrupt(path:reason:)`` when the file ends early or holds non-finite samples,
    ///   ``AudioError/empty(path:reason:)`` when the excerpt is silent.
    public mutating func nextBlock() throws(AudioError) -> [Float]? {
        try nextBlock(native: nil)
    }

    /// The next block of mono samples at ``sampleRate``, or `nil` after the last one; `native` first sees the
    /// same frames as read from the file (interleaved, at ``nativeSampleRate``, before mixdown and resampling).
    public mutating func nextBlock(native: ((UnsafeBufferPointer<Float>) -> Void)?) throws(AudioError) -> [Float]? {
        while !done {
            if let block = try step(native), !block.isEmpty { return block }
        }
        return nil
    }

    private mutating func step(_ native: ((UnsafeBufferPointer<Float>) -> Void)?) throws(AudioError) -> [Float]? {
        guard let handle else { done = true; return nil }
        let channels = self.channels
        let blockFrames = interleaved.count / channels
        if framesLeft > 0 {
            let want = min(framesLeft, blockFrames)
            let got = Int(interleaved.withUnsafeMutableBufferPointer { sf_readf_float(handle, $0.baseAddress, sf_count_t(want)) })
            if got <= 0, sf_error(handle) == 0, framesExpected - framesRead <= shortfallAllowed {
                // An MP3's or an Ogg stream's length is approximate: a slightly short end is the real end.
                framesLeft = 0
                return []
            }
            if got <= 0 {
                let code = sf_error(handle)
                let reason = code != 0 ? String(cString: sf_strerror(handle)) + "; " : ""
                throw .corrupt(path: path, reason: "\(reason)truncated: \(framesRead) of \(framesExpected) frames could be read")
            }
            framesLeft -= got
            framesRead += got
            if let native {
                interleaved.withUnsafeBufferPointer { native(UnsafeBufferPointer(rebasing: $0[0..<(got * channels)])) }
            }
            let mono = interleaved.withUnsafeBufferPointer { x in
                [Float](unsafeUninitializedCapacity: got) { m, initialized in
                    let xp = x.baseAddress!, mp = m.baseAddress!
                    switch channels {
                    case 1: mp.initialize(from: xp, count: got)
                    case 2: for i in 0..<got { mp[i] = (xp[2 * i] + xp[2 * i + 1]) * 0.5 }
                    default:
                        let scale = 1 / Float(channels)
                        for i in 0..<got {
                            var s: Float = 0
                            for c in 0..<channels { s += xp[i * channels + c] }
                            mp[i] = s * scale
                        }
                    }
                    initialized = got
                }
            }
            // The largest magnitude as a bit pattern: finite floats' magnitudes order as their bits do, and infinities
            // and NaNs lie above them all, so one integer maximum (no branch, vectorized) gives the peak and the check.
            var top: UInt32 = 0
            mono.withUnsafeBufferPointer { m in
                for v in m { top = max(top, v.bitPattern & 0x7fff_ffff) }
            }
            guard top < Float.infinity.bitPattern else {
                throw .corrupt(path: path, reason: "non-finite sample values near \(Self.seconds(framesRead, nativeSampleRate)) s")
            }
            peak = max(peak, Float(bitPattern: top))
            return try resample(mono, last: false)
        }
        // End of the excerpt: flush the resampler, fix the length, check for silence.
        if flushed { done = true; return nil }
        flushed = true
        guard peak >= options.silenceThreshold else {
            throw .empty(path: path, reason: "the audio is silent (peak \(peak) below \(options.silenceThreshold))")
        }
        var tail = try resample([], last: true)
        let missing = targetLength - samplesEmitted - tail.count
        if missing > 0 { tail.append(contentsOf: repeatElement(0, count: missing)) }
        samplesEmitted += tail.count
        done = true
        return tail
    }

    /// Runs `mono` through the resampler (all of it; with `last`, flushes); caps the output at the target length.
    private mutating func resample(_ mono: [Float], last: Bool) throws(AudioError) -> [Float] {
        guard let resampler else {
            if !last { samplesEmitted += mono.count }
            return mono
        }
        let ratio = Double(sampleRate) / Double(nativeSampleRate)
        var out: [Float] = []
        var buffer = [Float](repeating: 0, count: Int(Double(max(mono.count, 4_096)) * ratio) + 64)
        var offset = 0
        var failure: String?
        while true {
            var consumed = 0, produced = 0
            let status: soxr_error_t? = mono.withUnsafeBufferPointer { input in
                buffer.withUnsafeMutableBufferPointer { output in
                    if last {
                        return soxr_process(resampler, nil, 0, nil, output.baseAddress, output.count, &produced)
                    }
                    return soxr_process(resampler, input.baseAddress.map { UnsafeRawPointer($0 + offset) },
                                        input.count - offset, &consumed, output.baseAddress, output.count, &produced)
                }
            }
            if let status { failure = String(cString: status); break }
            out.append(contentsOf: buffer[0..<produced])
            offset += consumed
            if last ? produced == 0 : offset >= mono.count && produced < buffer.count { break }
            if !last && consumed == 0 && produced == 0 { break }
        }
        if let failure { throw .corrupt(path: path, reason: "resampling failed: \(failure)") }
        let room = max(0, targetLength - samplesEmitted)
        if out.count > room { out.removeLast(out.count - room) }
        // The flushed tail is counted by the caller, after padding it to the target length.
        if !last { samplesEmitted += out.count }
        return out
    }

    /// Decodes the whole file (or excerpt) at once.
    public static func decode(path: String, options: DecodeOptions = DecodeOptions()) throws(AudioError) -> [Float] {
        var decoder = try AudioDecoder(path: path, options: options)
        var out: [Float] = []
        // The header's length may be damaged: reserve at most about ten minutes ahead.
        out.reserveCapacity(min(decoder.estimatedLength, decoder.sampleRate * 600))
        while let block = try decoder.nextBlock() { out.append(contentsOf: block) }
        return out
    }

    /// The expected output length from the header (an estimate for formats whose length is approximate).
    public var estimatedLength: Int {
        let n = (Double(framesExpected) * Double(sampleRate) / Double(nativeSampleRate)).rounded(.up)
        return n >= 0x1p60 ? 1 << 60 : Int(n)
    }
}

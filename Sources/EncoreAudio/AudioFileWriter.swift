internal import CSndFile
import EncoreCore

/// The container and codec of a written audio file.
public enum AudioFileFormat: String, Sendable, CaseIterable {
    /// 16-bit PCM WAV.
    case wav
    /// 16-bit FLAC.
    case flac
    /// OGG Vorbis.
    case ogg
    /// Opus in an OGG container (libsndfile writes it at 48 kHz and below).
    case opus
    /// MPEG-1/2 Layer III.
    case mp3

    /// The usual file extension, without the dot.
    public var fileExtension: String { rawValue }

    var sndfileFormat: Int32 {
        switch self {
        case .wav: return Int32(SF_FORMAT_WAV | SF_FORMAT_PCM_16)
        case .flac: return Int32(SF_FORMAT_FLAC | SF_FORMAT_PCM_16)
        case .ogg: return Int32(SF_FORMAT_OGG | SF_FORMAT_VORBIS)
        case .opus: return Int32(SF_FORMAT_OGG | SF_FORMAT_OPUS)
        case .mp3: return Int32(SF_FORMAT_MPEG | SF_FORMAT_MPEG_LAYER_III)
        }
    }
}

/// Writes interleaved float samples to an audio file through libsndfile, block by block.
///
/// ```swift
/// var writer = try AudioFileWriter(path: "tone.flac", format: .flac, sampleRate: 22_050, channels: 1)
/// try writer.write(samples)
/// try writer.close()
/// ```
public struct AudioFileWriter: ~Copyable {
    /// The file being written.
    public let path: String
    /// Samples per second per channel.
    public let sampleRate: Int
    /// Interleaved channels per frame.
    public let channels: Int
    private var handle: OpaquePointer?

    /// Creates (or replaces) the file at `path`.
    public init(path: String, format: AudioFileFormat, sampleRate: Int, channels: Int = 1, quality: Double? = nil) throws(AudioError) {
        guard sampleRate > 0, sampleRate <= 768_000 else {
            throw .invalidParameter(name: "sample rate", reason: "\(sampleRate) Hz is not in 1...768000")
        }
        guard channels > 0, channels <= 64 else {
            throw .invalidParameter(name: "channels", reason: "\(channels) is not in 1...64")
        }
        var info = SF_INFO()
        info.samplerate = Int32(sampleRate)
        info.channels = Int32(channels)
        info.format = format.sndfileFormat
        guard sf_format_check(&info) != 0 else {
            throw .unsupported(path: path, reason: "libsndfile cannot write \(format.rawValue) at \(sampleRate) Hz with \(channels) channels")
        }
        guard let handle = sf_open(path, Int32(SFM_WRITE), &info) else {
            throw .file(FileError(path: path, operation: "open for writing", reason: String(cString: sf_strerror(nil))))
        }
        self.path = path
        self.sampleRate = sampleRate
        self.channels = channels
        self.handle = handle
        if let quality {
            var q = min(max(quality, 0), 1)
            _ = sf_command(handle, Int32(SFC_SET_VBR_ENCODING_QUALITY), &q, Int32(MemoryLayout<Double>.size))
        }
    }

    /// Appends interleaved frames (`samples.count` must be a multiple of `channels`); values beyond ±1 are clipped.
    public mutating func write(_ samples: [Float]) throws(AudioError) {
        guard let handle else { throw .file(FileError(path: path, operation: "write", reason: "the file is closed")) }
        guard samples.count % channels == 0 else {
            throw .invalidParameter(name: "samples", reason: "\(samples.count) is not a multiple of \(channels) channels")
        }
        let written = samples.withUnsafeBufferPointer { buffer -> sf_count_t in
            guard let base = buffer.baseAddress else { return 0 }
            return sf_writef_float(handle, base, sf_count_t(samples.count / channels))
        }
        guard written == sf_count_t(samples.count / channels) else {
            throw .file(FileError(path: path, operation: "write", reason: String(cString: sf_strerror(handle))))
        }
    }

    /// Flushes and closes the file; a failure here means the file is incomplete.
    public mutating func close() throws(AudioError) {
        guard let handle else { return }
        self.handle = nil
        let status = sf_close(handle)
        guard status == 0 else {
            throw .file(FileError(path: path, operation: "close", reason: String(cString: sf_error_number(status))))
        }
    }

    deinit {
        if let handle { sf_close(handle) }
    }
}

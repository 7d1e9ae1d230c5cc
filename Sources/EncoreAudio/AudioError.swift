import EncoreCore

/// Why an audio file could not be read, written or analyzed; every case names the file.
public enum AudioError: Error, Sendable, Equatable, CustomStringConvertible, FileErrorConvertible {
    /// A failed system call on the file (open, read, write, rename).
    case file(FileError)
    /// The file's container or codec is not one Encore reads (WAV, FLAC, OGG Vorbis, Opus, MP3).
    case unsupported(path: String, reason: String)
    /// The file is recognized but its contents are damaged or cut short.
    case corrupt(path: String, reason: String)
    /// The file holds no samples, or none in the requested excerpt.
    case empty(path: String, reason: String)
    /// A parameter is out of range (sample rate, offset, duration, FFT size...).
    case invalidParameter(name: String, reason: String)

    public init(_ file: FileError) { self = .file(file) }

    public var description: String {
        switch self {
        case .file(let error): return error.description
        case .unsupported(let path, let reason): return "\(path): unsupported audio: \(reason)"
        case .corrupt(let path, let reason): return "\(path): corrupt audio: \(reason)"
        case .empty(let path, let reason): return "\(path): no audio: \(reason)"
        case .invalidParameter(let name, let reason): return "invalid \(name): \(reason)"
        }
    }
}

import Foundation
import EncoreStorage

/// Why the serving engine failed: the bundle, the index files, the event log or a query.
public enum ServingError: Error, CustomStringConvertible, Sendable {
    /// The bundle could not be read.
    case bundle(BundleError)
    /// The event log failed (open, append, read).
    case eventLog(String)
    /// The model failed on a query (a fold-in that did not solve, for example).
    case model(String)
    /// An item id the bundle does not know.
    case unknownItem(String)
    /// A parameter out of range.
    case invalidParameter(name: String, message: String)
    /// The model was refused by its validating child process (``BundleValidator``): a crash, a timeout, or an error.
    case validation(BundleValidationError)
    /// A posted track was refused (``PostedTrack``): the field, the track and why.
    case invalidTrack(TrackValidationError)
    /// The item has no vector in the space asked (`space=audio` for a track without an embedding, `cf` for one
    /// without plays).
    case notInSpace(item: String, space: String, reason: String)
    /// The item has no descriptors (the bundle's `/audio/descriptors` lacks it and none were posted).
    case noFeatures(item: String)

    public var description: String {
        switch self {
        case .bundle(let e): return "bundle: \(e)"
        case .eventLog(let m): return "event log: \(m)"
        case .model(let m): return "model: \(m)"
        case .unknownItem(let id): return "unknown item '\(id)'"
        case .invalidParameter(let name, let message): return "\(name): \(message)"
        case .validation(let e): return "bundle: \(e)"
        case .invalidTrack(let e): return "invalid track: \(e)"
        case .notInSpace(let item, let space, let reason): return "item '\(item)' has no vector in space '\(space)': \(reason)"
        case .noFeatures(let item):
            return "item '\(item)' has no descriptors (the bundle's /audio/descriptors does not cover it and none were posted)"
        }
    }
}

/// The identity of a file on disk (device, inode, modification time, size): a bundle replaced in place, by a rename
/// or a rewrite, changes it.
public struct FileIdentity: Sendable, Equatable, Codable {
    /// The device.
    public var device: UInt64
    /// The inode.
    public var inode: UInt64
    /// The modification time in nanoseconds since 1970.
    public var modifiedNs: Int64
    /// The size in bytes.
    public var size: Int64

    /// The identity of the file at `path`, or `nil` when it cannot be stat'ed.
    public static func of(_ path: String) -> FileIdentity? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        #if os(Linux)
        let ns = Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec)
        #else
        let ns = Int64(st.st_mtimespec.tv_sec) * 1_000_000_000 + Int64(st.st_mtimespec.tv_nsec)
        #endif
        return FileIdentity(device: UInt64(st.st_dev), inode: UInt64(st.st_ino), modifiedNs: ns, size: Int64(st.st_size))
    }
}

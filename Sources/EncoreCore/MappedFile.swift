import SystemPackage

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A whole regular file mapped read-only into memory (`PROT_READ`, `MAP_PRIVATE`), unmapped when the last reference
/// goes away.
///
/// ``bytes`` is valid for the lifetime of the `MappedFile`: keep a reference to it for as long as pointers into the
/// mapping are used. An empty file maps to an empty buffer (with no base address). The mapping is never written, so
/// it may be read from any thread.
public final class MappedFile: @unchecked Sendable {
    /// How the mapping will be read, passed to the kernel as advice.
    public enum Access: Sendable {
        /// No advice.
        case normal
        /// From start to end (more read-ahead).
        case sequential
        /// In no particular order (less read-ahead).
        case random
    }

    /// The path the file was mapped from.
    public let path: String
    /// The bytes of the file.
    public let bytes: UnsafeRawBufferPointer

    /// Opens and maps the file at `path`.
    /// - Throws: ``FileError`` naming `path`: the system's reason when the file cannot be opened or mapped (for a
    ///   missing file, "No such file or directory" with ``FileError/code`` `ENOENT`), or "not a regular file" for
    ///   directories, pipes and devices.
    public convenience init(path: String, access: Access = .normal) throws(FileError) {
        let descriptor: FileDescriptor
        do {
            descriptor = try FileDescriptor.open(path, .readOnly, options: [.closeOnExec])
        } catch {
            throw FileError(path: path, operation: "open the file", errno: FileError.code(of: error))
        }
        defer { try? descriptor.close() }
        try self.init(descriptor: descriptor, path: path, access: access)
    }

    /// Maps the regular file open as `descriptor` (which the caller still owns and may close right after).
    /// - Throws: ``FileError`` naming `path`, as ``init(path:access:)``.
    public init(descriptor: FileDescriptor, path: String, access: Access = .normal) throws(FileError) {
        self.path = path
        let status: Stat
        do {
            status = try descriptor.stat()
        } catch {
            throw FileError(path: path, operation: "stat the file", errno: error)
        }
        guard status.type != .directory else {
            throw FileError(path: path, operation: "map the file", reason: "not a regular file (a directory)")
        }
        guard status.type == .regular else {
            throw FileError(path: path, operation: "map the file", reason: "not a regular file")
        }
        let size = Int(status.size)
        guard size > 0 else {
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            return
        }
        guard let base = mmap(nil, size, PROT_READ, MAP_PRIVATE, descriptor.rawValue, 0), base != MAP_FAILED else {
            throw FileError(path: path, operation: "map the file", errno: errno)
        }
        switch access {
        case .normal: break
        case .sequential: _ = madvise(base, size, MADV_SEQUENTIAL)
        case .random: _ = madvise(base, size, MADV_RANDOM)
        }
        bytes = UnsafeRawBufferPointer(start: base, count: size)
    }

    deinit {
        if let base = bytes.baseAddress, bytes.count > 0 {
            munmap(UnsafeMutableRawPointer(mutating: base), bytes.count)
        }
    }
}

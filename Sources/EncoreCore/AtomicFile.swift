import Foundation
import SystemPackage

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// File-system steps of an atomic replace: a temporary sibling, `fsync`, `rename`, and a directory `fsync`.
///
/// ``write(to:as:_:)`` runs all of them; the single steps serve writers that create the temporary file another way
/// (the HDF5 library, for example).
public enum AtomicFile {
    /// The temporary file an atomic write fills, open for writing.
    public struct Output: Sendable {
        /// The open temporary file.
        public let descriptor: FileDescriptor
        /// The file being replaced.
        public let path: String
        /// The temporary sibling being written.
        public let temporaryPath: String

        /// Appends every byte of `bytes` (retrying short writes and interrupted calls).
        public func write<E: FileErrorConvertible>(_ bytes: UnsafeRawBufferPointer, as _: E.Type) throws(E) {
            do {
                try descriptor.writeAll(bytes)
            } catch {
                throw E(FileError(path: path, operation: "write \(temporaryPath)", errno: FileError.code(of: error)))
            }
        }

        /// Appends every byte of `bytes`.
        public func write<E: FileErrorConvertible>(_ bytes: [UInt8], as _: E.Type) throws(E) {
            var failure: E?
            bytes.withUnsafeBytes { raw in
                do throws(E) { try write(raw, as: E.self) } catch { failure = error }
            }
            if let failure { throw failure }
        }
    }

    /// Replaces the file at `path` with what `body` writes, atomically: readers see the old file or the whole new
    /// one, never a part.
    ///
    /// `body` writes into a fresh temporary sibling (``temporaryPath(for:)``), which is then `fsync`ed, closed and
    /// renamed over `path`; the directory is `fsync`ed last so the rename is durable. On any failure the temporary
    /// file is removed and `path` is left as it was.
    /// - Throws: the caller's error type: a ``FileError`` (naming `path`) for a missing directory or a failed
    ///   system call, or whatever `body` throws.
    public static func write<E: FileErrorConvertible>(
        to path: String, as _: E.Type, _ body: (Output) throws(E) -> Void
    ) throws(E) {
        try checkDirectory(for: path, operation: "write the file", as: E.self)
        let temporary = temporaryPath(for: path)
        let descriptor: FileDescriptor
        do {
            descriptor = try FileDescriptor.open(
                temporary, .writeOnly, options: [.create, .exclusiveCreate, .closeOnExec],
                permissions: FilePermissions(rawValue: 0o644))
        } catch {
            throw E(FileError(path: path, operation: "create \(temporary)", errno: FileError.code(of: error)))
        }
        do throws(E) {
            try body(Output(descriptor: descriptor, path: path, temporaryPath: temporary))
            guard fsync(descriptor.rawValue) == 0 else {
                throw E(FileError(path: path, operation: "fsync \(temporary)", errno: errno))
            }
        } catch {
            try? descriptor.close()
            removeIfPresent(temporary)
            throw error
        }
        do {
            try descriptor.close()
        } catch {
            removeIfPresent(temporary)
            throw E(FileError(path: path, operation: "close \(temporary)", errno: FileError.code(of: error)))
        }
        do throws(E) {
            try rename(temporary, to: path, as: E.self)
        } catch {
            removeIfPresent(temporary)
            throw error
        }
        try syncDirectory(of: path, as: E.self)
    }

    /// Replaces the file at `path` with `bytes` atomically (``write(to:as:_:)``).
    public static func write<E: FileErrorConvertible>(_ bytes: [UInt8], to path: String, as _: E.Type) throws(E) {
        try write(to: path, as: E.self) { (output) throws(E) in try output.write(bytes, as: E.self) }
    }

    /// A fresh temporary path next to `path`: `path + ".tmp-<pid>-<random hex>"`.
    public static func temporaryPath(for path: String) -> String {
        let random = String(UInt64.random(in: 0...UInt64.max), radix: 16)
        return "\(path).tmp-\(getpid())-\(random)"
    }

    /// The directory that holds `path` (`.` for a bare file name).
    public static func directory(of path: String) -> String {
        let dir = (path as NSString).deletingLastPathComponent
        return dir.isEmpty ? "." : dir
    }

    /// Fails unless the directory of `path` exists and is a directory; `operation` is what the error says could not
    /// be done (e.g. `"write the bundle"`).
    public static func checkDirectory<E: FileErrorConvertible>(
        for path: String, operation: String = "write the file", as _: E.Type
    ) throws(E) {
        let dir = directory(of: path)
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDir) else {
            throw E(FileError(path: path, operation: operation, reason: "the directory \(dir) does not exist"))
        }
        guard isDir.boolValue else {
            throw E(FileError(path: path, operation: operation, reason: "\(dir) is not a directory"))
        }
    }

    /// Flushes the contents of the file at `path` to stable storage.
    public static func sync<E: FileErrorConvertible>(file path: String, reportingAs bundlePath: String, as _: E.Type) throws(E) {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else {
            throw E(FileError(path: bundlePath, operation: "open \(path) to sync it", errno: errno))
        }
        defer { close(fd) }
        guard fsync(fd) == 0 else {
            throw E(FileError(path: bundlePath, operation: "fsync \(path)", errno: errno))
        }
    }

    /// Flushes the directory entry changes (the rename) of the directory that holds `path`.
    public static func syncDirectory<E: FileErrorConvertible>(of path: String, as _: E.Type) throws(E) {
        let dir = directory(of: path)
        let fd = open(dir, O_RDONLY | O_DIRECTORY)
        guard fd >= 0 else {
            throw E(FileError(path: path, operation: "open the directory \(dir) to sync it", errno: errno))
        }
        defer { close(fd) }
        // Some file systems cannot sync a directory (EINVAL): the rename is then as durable as they make it.
        guard fsync(fd) == 0 || errno == EINVAL else {
            throw E(FileError(path: path, operation: "fsync the directory \(dir)", errno: errno))
        }
    }

    /// Renames `from` to `to`, replacing `to` atomically.
    public static func rename<E: FileErrorConvertible>(_ from: String, to: String, as _: E.Type) throws(E) {
        guard Foundation.rename(from, to) == 0 else {
            throw E(FileError(path: to, operation: "rename \(from) into place", errno: errno))
        }
    }

    /// Removes `path` if it exists (errors are ignored: this is cleanup after a failure).
    public static func removeIfPresent(_ path: String) {
        _ = unlink(path)
    }
}

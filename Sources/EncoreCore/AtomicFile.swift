import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// File-system steps of an atomic replace: a temporary sibling, `fsync`, `rename`, and a directory `fsync`.
public enum AtomicFile {
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

    /// Fails unless the directory of `path` exists and is a directory.
    public static func checkDirectory<E: FileErrorConvertible>(for path: String, as _: E.Type) throws(E) {
        let dir = directory(of: path)
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDir) else {
            throw E(FileError(path: path, operation: "write the bundle", reason: "the directory \(dir) does not exist"))
        }
        guard isDir.boolValue else {
            throw E(FileError(path: path, operation: "write the bundle", reason: "\(dir) is not a directory"))
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

import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// File-system steps of an atomic replace: a temporary sibling, `fsync`, `rename`, and a directory `fsync`.
enum AtomicFile {
    /// A fresh temporary path next to `path`: `path + ".tmp-<pid>-<random hex>"`.
    static func temporaryPath(for path: String) -> String {
        let random = String(UInt64.random(in: 0...UInt64.max), radix: 16)
        return "\(path).tmp-\(getpid())-\(random)"
    }

    /// The directory that holds `path` (`.` for a bare file name).
    static func directory(of path: String) -> String {
        let dir = (path as NSString).deletingLastPathComponent
        return dir.isEmpty ? "." : dir
    }

    /// The text of `errno`.
    static func errnoText(_ code: Int32 = errno) -> String {
        String(cString: strerror(code)) + " (errno \(code))"
    }

    /// Fails unless the directory of `path` exists and is a directory.
    static func checkDirectory(for path: String) throws(BundleError) {
        let dir = directory(of: path)
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDir) else {
            throw .io(path: path, operation: "write the bundle", reason: "the directory \(dir) does not exist")
        }
        guard isDir.boolValue else {
            throw .io(path: path, operation: "write the bundle", reason: "\(dir) is not a directory")
        }
    }

    /// Flushes the contents of the file at `path` to stable storage.
    static func sync(file path: String, reportingAs bundlePath: String) throws(BundleError) {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else {
            throw .io(path: bundlePath, operation: "open \(path) to sync it", reason: errnoText())
        }
        defer { close(fd) }
        guard fsync(fd) == 0 else {
            throw .io(path: bundlePath, operation: "fsync \(path)", reason: errnoText())
        }
    }

    /// Flushes the directory entry changes (the rename) of the directory that holds `path`.
    static func syncDirectory(of path: String) throws(BundleError) {
        let dir = directory(of: path)
        let fd = open(dir, O_RDONLY | O_DIRECTORY)
        guard fd >= 0 else {
            throw .io(path: path, operation: "open the directory \(dir) to sync it", reason: errnoText())
        }
        defer { close(fd) }
        // Some file systems cannot sync a directory (EINVAL): the rename is then as durable as they make it.
        guard fsync(fd) == 0 || errno == EINVAL else {
            throw .io(path: path, operation: "fsync the directory \(dir)", reason: errnoText())
        }
    }

    /// Renames `from` to `to`, replacing `to` atomically.
    static func rename(_ from: String, to: String) throws(BundleError) {
        guard Foundation.rename(from, to) == 0 else {
            throw .io(path: to, operation: "rename \(from) into place", reason: errnoText())
        }
    }

    /// Removes `path` if it exists (errors are ignored: this is cleanup after a failure).
    static func removeIfPresent(_ path: String) {
        _ = unlink(path)
    }
}

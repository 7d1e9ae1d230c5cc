import SystemPackage

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A file-system operation that failed: the file, what was being done, and why.
///
/// Every error enum that touches files wraps this one (``FileErrorConvertible``), so a failed `open`, `fsync` or
/// `rename` reads the same wherever it happens.
public struct FileError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The file at fault.
    public var path: String
    /// What was being done, e.g. `"fsync the directory out"`.
    public var operation: String
    /// Why it failed: the system's text for the error number, or a sentence.
    public var reason: String
    /// The error number of the failed system call, or `nil` when `reason` is a sentence.
    public var code: Int32?

    /// A failure with its reason.
    public init(path: String, operation: String, reason: String) {
        self.path = path
        self.operation = operation
        self.reason = reason
        self.code = nil
    }

    /// A failure of a system call, with the text of its error number.
    public init(path: String, operation: String, errno code: Int32) {
        self.init(path: path, operation: operation, reason: FileError.errnoText(code))
        self.code = code
    }

    /// A failure of a swift-system call, with the text of its error number.
    public init(path: String, operation: String, errno: Errno) {
        self.init(path: path, operation: operation, errno: errno.rawValue)
    }

    public var description: String { "\(path): cannot \(operation): \(reason)" }

    /// The text of an error number, e.g. `"No such file or directory (errno 2)"`.
    public static func errnoText(_ code: Int32 = errno) -> String {
        "\(Errno(rawValue: code).description) (errno \(code))"
    }

    /// The error number of an error thrown by a swift-system call (`EIO` for any other error).
    public static func code(of error: any Error) -> Int32 { (error as? Errno)?.rawValue ?? EIO }
}

/// An error type that can carry a ``FileError`` (each layer's error enum), so shared file helpers throw the caller's
/// own error type.
public protocol FileErrorConvertible: Error {
    /// The error for a failed file operation.
    init(_ file: FileError)
}

extension FileError: FileErrorConvertible {
    /// The error itself, so the shared helpers can throw a plain ``FileError``.
    public init(_ file: FileError) { self = file }
}

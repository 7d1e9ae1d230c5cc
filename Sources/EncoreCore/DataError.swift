/// Errors from reading and shaping interaction data. Each names the file, line and field where it applies.
public enum DataError: Error, Equatable, CustomStringConvertible {
    /// The file could not be opened or read.
    case unreadable(file: String, reason: String)
    /// A row could not be parsed.
    case malformedRow(file: String, line: Int, field: String, reason: String)
    /// A column named in the format is not in the header.
    case missingColumn(file: String, column: String)
    /// The input has no usable rows.
    case empty(file: String)
    /// An id appears twice where ids must be unique.
    case duplicateID(String)
    /// An index is outside the matrix.
    case indexOutOfRange(String)
    /// An argument is outside its valid range.
    case invalidArgument(String)

    public var description: String {
        switch self {
        case .unreadable(let f, let r): return "\(f): cannot read: \(r)"
        case .malformedRow(let f, let l, let field, let r): return "\(f):\(l): field '\(field)': \(r)"
        case .missingColumn(let f, let c): return "\(f): no column '\(c)' in the header"
        case .empty(let f): return "\(f): no rows"
        case .duplicateID(let id): return "duplicate id '\(id)'"
        case .indexOutOfRange(let s): return "index out of range: \(s)"
        case .invalidArgument(let s): return "invalid argument: \(s)"
        }
    }
}

extension DataError: FileErrorConvertible {
    /// A file that could not be opened or read (``unreadable(file:reason:)``, with the system's reason).
    public init(_ file: FileError) { self = .unreadable(file: file.path, reason: file.reason) }
}

import EncoreFactorization
import EncoreIndex

/// Errors from building playlists, their inputs (catalog, histories, feedback) and their evaluation.
///
/// Every case carries enough context (the parameter and value, the file and line, the index) to act on the message
/// alone.
public enum PlaylistError: Error, Equatable, CustomStringConvertible {
    /// A parameter is outside its valid range: its name, the value given and what was expected.
    case invalidParameter(name: String, value: String, expected: String)
    /// A date is not `YYYY-MM-DD`, or a week date is not a Monday.
    case invalidDate(String, reason: String)
    /// Two inputs do not have compatible shapes (vector widths, item counts).
    case shapeMismatch(String)
    /// A user or item index is outside the data it indexes.
    case unknownIndex(String)
    /// A file could not be opened or read.
    case unreadable(file: String, reason: String)
    /// A row of a file could not be parsed.
    case malformedRow(file: String, line: Int, field: String, reason: String)
    /// A column the reader needs is not in the file's header.
    case missingColumn(file: String, column: String)
    /// The nearest-neighbor index failed.
    case index(IndexError)
    /// The factor model failed (fold-in, explanation).
    case model(FactorizationError)

    public var description: String {
        switch self {
        case .invalidParameter(let name, let value, let expected):
            return "invalid parameter '\(name)' = \(value): expected \(expected)"
        case .invalidDate(let text, let reason):
            return "invalid date '\(text)': \(reason)"
        case .shapeMismatch(let s):
            return "shape mismatch: \(s)"
        case .unknownIndex(let s):
            return "unknown index: \(s)"
        case .unreadable(let file, let reason):
            return "\(file): cannot read: \(reason)"
        case .malformedRow(let file, let line, let field, let reason):
            return "\(file):\(line): field '\(field)': \(reason)"
        case .missingColumn(let file, let column):
            return "\(file): no column '\(column)' in the header"
        case .index(let e):
            return "vector index: \(e)"
        case .model(let e):
            return "factor model: \(e)"
        }
    }
}

/// Errors from building text and sequence vectors. Each names the file, line and field where one applies.
public enum TextError: Error, Equatable, CustomStringConvertible {
    /// The input file could not be opened or read.
    case unreadable(file: String, reason: String)
    /// A row of the input could not be parsed.
    case malformedRow(file: String, line: Int, field: String, reason: String)
    /// A column the reader needs is not in the header.
    case missingColumn(file: String, column: String, header: [String])
    /// The corpus has no documents (or no sequences).
    case emptyCorpus(String)
    /// The vocabulary filters left no term.
    case emptyVocabulary(String)
    /// A parameter is outside its valid range.
    case invalidParameter(String)
    /// A LAPACK routine failed.
    case lapackFailure(routine: String, info: Int32)
    /// A result Encore assembled is inconsistent (a bug): what and why.
    case internalError(String)

    public var description: String {
        switch self {
        case .unreadable(let f, let r): return "\(f): cannot read: \(r)"
        case .malformedRow(let f, let l, let field, let r): return "\(f):\(l): field '\(field)': \(r)"
        case .missingColumn(let f, let c, let h):
            return "\(f): no column '\(c)' in the header (columns: \(h.joined(separator: ", ")))"
        case .emptyCorpus(let s): return "empty corpus: \(s)"
        case .emptyVocabulary(let s): return "empty vocabulary: \(s)"
        case .invalidParameter(let s): return "invalid parameter: \(s)"
        case .lapackFailure(let r, let info): return "\(r) failed with info=\(info)"
        case .internalError(let s): return "internal error: \(s)"
        }
    }
}

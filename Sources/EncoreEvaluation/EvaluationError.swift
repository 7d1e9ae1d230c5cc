/// Errors from splitting interaction logs and computing ranking metrics.
///
/// Every case carries enough context (the parameter, the value, the user) to act on the message alone.
public enum EvaluationError: Error, Equatable, CustomStringConvertible {
    /// A parameter is outside its valid range: its name, the value given and what was expected.
    case invalidParameter(name: String, value: String, expected: String)
    /// The operation needs timestamps and the interaction log has none.
    case missingTimestamps(operation: String)
    /// The interaction log is internally inconsistent (column lengths, indices outside the id maps).
    case inconsistentLog(String)
    /// Two inputs do not have compatible shapes.
    case shapeMismatch(String)
    /// A recommender returned an unusable list for a user (an id out of range, a duplicate, a wrong batch size).
    case invalidRecommendations(user: Int32, reason: String)
    /// No user had a test item, so no metric is defined.
    case noTestUsers
    /// A user's test items cover the whole catalog, so AUC (which needs at least one negative item) is undefined.
    case noNegativeItems(user: Int32, relevant: Int, itemCount: Int)
    /// Content given to an evaluation does not match the play log (no id in common, misaligned rows).
    case contentMismatch(source: String, reason: String)
    /// A stage of an evaluation failed in the layer below (the model fit, the text vectors); its error follows.
    case failed(stage: String, reason: String)

    public var description: String {
        switch self {
        case .invalidParameter(let name, let value, let expected):
            return "invalid parameter '\(name)' = \(value): expected \(expected)"
        case .missingTimestamps(let operation):
            return "\(operation) needs timestamps, but the interaction log has none"
        case .inconsistentLog(let s):
            return "inconsistent interaction log: \(s)"
        case .shapeMismatch(let s):
            return "shape mismatch: \(s)"
        case .invalidRecommendations(let user, let reason):
            return "invalid recommendations for user \(user): \(reason)"
        case .noTestUsers:
            return "no user has a test item: nothing to evaluate"
        case .noNegativeItems(let user, let relevant, let itemCount):
            return "user \(user) has \(relevant) test items out of \(itemCount) items: no negative item, AUC undefined"
        case .contentMismatch(let source, let reason):
            return "\(source): \(reason)"
        case .failed(let stage, let reason):
            return "\(stage) failed: \(reason)"
        }
    }
}

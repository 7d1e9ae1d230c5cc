/// Errors from building, training, saving and loading the audio embedding model, each naming what is at fault.
public enum AudioModelError: Error, Equatable, CustomStringConvertible {
    /// A configuration value or argument is out of range.
    case invalidParameter(name: String, reason: String)
    /// The training or embedding input is unusable (no log-mel features, NaN values, too few tracks, ...).
    case invalidInput(path: String, reason: String)
    /// A saved model or checkpoint does not match this library or the model it is loaded into.
    case incompatibleModel(path: String, reason: String)

    public var description: String {
        switch self {
        case .invalidParameter(let name, let reason): return "invalid \(name): \(reason)"
        case .invalidInput(let path, let reason): return "\(path): \(reason)"
        case .incompatibleModel(let path, let reason): return "\(path): incompatible audio model: \(reason)"
        }
    }
}

import Synchronization

/// A value guarded by a lock, shared by reference: the package's one lock type.
///
/// Built on `Synchronization.Mutex`. Keep the closures short: never suspend or run long work while holding the lock.
///
/// ```swift
/// let hits = Locked(0)
/// hits.withLock { $0 += 1 }
/// let total = hits.withLock { $0 }
/// ```
public final class Locked<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>

    /// A lock guarding `value`.
    public init(_ value: Value) { mutex = Mutex(value) }

    /// Runs `body` with exclusive access to the value and returns what it returns.
    @inline(__always)
    public func withLock<R, E: Error>(_ body: (inout Value) throws(E) -> R) throws(E) -> R {
        try mutex.withLock { (value: inout sending Value) throws(E) -> sending R in try body(&value) }
    }

    /// A copy of the value, read under the lock.
    public var value: Value { withLock { $0 } }
}

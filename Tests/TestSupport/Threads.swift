import Foundation

/// Runs `body(k)` for k in 0..<n on n threads of their own, started together, and returns when all have finished.
public func onThreads(_ n: Int, _ body: @escaping @Sendable (Int) -> Void) {
    let group = DispatchGroup()
    let start = DispatchSemaphore(value: 0)
    for k in 0..<n {
        group.enter()
        Thread.detachNewThread {
            start.wait()
            body(k)
            group.leave()
        }
    }
    for _ in 0..<n { start.signal() }
    group.wait()
}

import Dispatch
import Foundation
import Synchronization

/// Parallel loops over a fixed number of threads.
public enum Parallel {
    /// The number of cores this process may use.
    public static var coreCount: Int { ProcessInfo.processInfo.activeProcessorCount }

    /// Runs `body(i)` for `i` in `0..<count` on up to `threads` threads; returns when all are done.
    ///
    /// Work is handed out in blocks of `grain` indices from a shared counter, so uneven items (heavy users) balance.
    /// OpenBLAS is kept single-threaded for the duration so the two thread pools do not oversubscribe the cores.
    public static func forEach(_ count: Int, threads: Int, grain: Int = 1, _ body: (Int) -> Void) {
        guard count > 0 else { return }
        let t = max(1, min(threads, count))
        if t == 1 {
            for i in 0..<count { body(i) }
            return
        }
        let saved = BLAS.threads
        if saved != 1 { BLAS.setThreads(1) }
        defer { if saved != 1 { BLAS.setThreads(saved) } }
        let counter = AtomicCounter()
        let g = max(1, grain)
        withoutActuallyEscaping(body) { body in
            let sendableBody = UncheckedSendable(body)
            DispatchQueue.concurrentPerform(iterations: t) { _ in
                while true {
                    let start = counter.add(g)
                    if start >= count { break }
                    for i in start..<min(count, start + g) { sendableBody.value(i) }
                }
            }
        }
    }

    /// Runs `body(thread, range)` once per contiguous chunk of `0..<count`, `threads` chunks at most, with the thread
    /// number so the body can use per-thread scratch space.
    public static func chunks(_ count: Int, threads: Int, _ body: (Int, Range<Int>) -> Void) {
        guard count > 0 else { return }
        let t = max(1, min(threads, count))
        let size = (count + t - 1) / t
        forEach(t, threads: t) { c in
            let lo = c * size
            let hi = min(count, lo + size)
            if lo < hi { body(c, lo..<hi) }
        }
    }
}

/// A shared counter for handing out blocks of work (an atomic add, no lock).
package final class AtomicCounter: Sendable {
    private let value = Atomic<Int>(0)

    package init() {}

    /// Adds `n` and returns the value before the addition.
    package func add(_ n: Int) -> Int {
        value.wrappingAdd(n, ordering: .relaxed).oldValue
    }
}

/// One slot per chunk of work, each filled by exactly one worker and read in order afterwards.
package final class OrderedSlots<T: Sendable>: Sendable {
    private let slots: Locked<[T?]>

    package init(count: Int) { slots = Locked(Array(repeating: nil, count: count)) }

    package func set(_ i: Int, _ value: T) {
        slots.withLock { $0[i] = value }
    }

    /// The filled slots in order.
    package func take() -> [T] {
        slots.withLock { slots in
            let out = slots.compactMap { $0 }
            slots = []
            return out
        }
    }
}

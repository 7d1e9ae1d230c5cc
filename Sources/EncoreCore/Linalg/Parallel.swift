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
    /// OpenBLAS is kept single-threaded while any such region runs (see ``BLASThreadRegions``), so the two thread pools
    /// do not oversubscribe the cores.
    public static func forEach(_ count: Int, threads: Int, grain: Int = 1, _ body: (Int) -> Void) {
        guard count > 0 else { return }
        let t = max(1, min(threads, count))
        if t == 1 {
            for i in 0..<count { body(i) }
            return
        }
        BLASThreadRegions.shared.enter()
        defer { BLASThreadRegions.shared.leave() }
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

/// Keeps OpenBLAS on one thread while any parallel region runs, whichever threads start and end the regions.
///
/// The first region to start saves OpenBLAS's thread count and sets it to 1; the last one to end restores it. A count
/// set with ``BLAS/setThreads(_:)`` while regions run is saved and applied when the last one ends.
final class BLASThreadRegions: Sendable {
    /// The process's regions, over OpenBLAS's own thread count.
    static let shared = BLASThreadRegions()

    /// Regions running now, and the count to restore when the last one ends.
    private let state = Locked((active: 0, saved: 1))

    /// Starts a region.
    func enter() {
        state.withLock { s in
            if s.active == 0 {
                s.saved = BLAS.openBLASThreads
                if s.saved != 1 { BLAS.setOpenBLASThreads(1) }
            }
            s.active += 1
        }
    }

    /// Ends a region started with ``enter()``.
    func leave() {
        state.withLock { s in
            s.active -= 1
            if s.active == 0 && s.saved != 1 { BLAS.setOpenBLASThreads(s.saved) }
        }
    }

    /// Sets OpenBLAS's thread count now, or when the last region ends if regions are running.
    func setThreads(_ n: Int) {
        state.withLock { s in
            if s.active > 0 { s.saved = max(1, n) } else { BLAS.setOpenBLASThreads(n) }
        }
    }

    /// The count OpenBLAS has outside parallel regions: its current count, or the one the last region will restore.
    var threadsOutsideRegions: Int {
        state.withLock { s in s.active > 0 ? s.saved : BLAS.openBLASThreads }
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

import Dispatch
import Foundation

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
final class BLASThreadRegions: @unchecked Sendable {
    /// The process's regions, over OpenBLAS's own thread count.
    static let shared = BLASThreadRegions()

    private let lock = NSLock()
    /// Regions running now.
    private var active = 0
    /// The count to restore when the last region ends.
    private var saved = 1

    /// Starts a region.
    func enter() {
        lock.lock()
        defer { lock.unlock() }
        if active == 0 {
            saved = BLAS.openBLASThreads
            if saved != 1 { BLAS.setOpenBLASThreads(1) }
        }
        active += 1
    }

    /// Ends a region started with ``enter()``.
    func leave() {
        lock.lock()
        defer { lock.unlock() }
        active -= 1
        if active == 0 && saved != 1 { BLAS.setOpenBLASThreads(saved) }
    }

    /// Sets OpenBLAS's thread count now, or when the last region ends if regions are running.
    func setThreads(_ n: Int) {
        lock.lock()
        defer { lock.unlock() }
        if active > 0 { saved = max(1, n) } else { BLAS.setOpenBLASThreads(n) }
    }

    /// The count OpenBLAS has outside parallel regions: its current count, or the one the last region will restore.
    var threadsOutsideRegions: Int {
        lock.lock()
        defer { lock.unlock() }
        return active > 0 ? saved : BLAS.openBLASThreads
    }
}

/// A lock-protected counter; cheap enough for handing out blocks of work.
package final class AtomicCounter: @unchecked Sendable {
    private var value = 0
    private let lock = NSLock()

    package init() {}

    /// Adds `n` and returns the value before the addition.
    package func add(_ n: Int) -> Int {
        lock.lock()
        defer { lock.unlock() }
        let v = value
        value += n
        return v
    }
}

/// One slot per chunk of work, each filled by exactly one worker and read in order afterwards.
package final class OrderedSlots<T>: @unchecked Sendable {
    private var slots: [T?]
    private let lock = NSLock()

    package init(count: Int) { slots = Array(repeating: nil, count: count) }

    package func set(_ i: Int, _ value: T) {
        lock.lock()
        slots[i] = value
        lock.unlock()
    }

    /// The filled slots in order.
    package func take() -> [T] {
        lock.lock()
        defer { lock.unlock() }
        let out = slots.compactMap { $0 }
        slots = []
        return out
    }
}

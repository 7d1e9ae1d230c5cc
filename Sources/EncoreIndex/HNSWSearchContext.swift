internal import CKernels
import EncoreCore
import Foundation

/// A candidate during an HNSW search: a slot and its distance to the query.
struct HNSWItem {
    var distance: Float
    var slot: Int32
}

/// The order of an ``HNSWHeap``: whether an item with distance `a` belongs above one with distance `b`.
protocol HNSWHeapOrder {
    static func above(_ a: Float, _ b: Float) -> Bool
}

/// Closest on top (the candidates still to expand).
enum HNSWClosestFirst: HNSWHeapOrder {
    @inline(__always) static func above(_ a: Float, _ b: Float) -> Bool { a < b }
}

/// Farthest on top (the results so far: the worst is the one to drop).
enum HNSWFarthestFirst: HNSWHeapOrder {
    @inline(__always) static func above(_ a: Float, _ b: Float) -> Bool { a > b }
}

/// A binary heap of ``HNSWItem`` over a buffer it owns (grown by doubling, freed by ``release()``).
///
/// A plain struct over a raw buffer, so the search loop touches no reference counts; the owner copies it into a local
/// variable for the loop and stores it back afterwards. The order is a type parameter, so each heap is specialised
/// with its comparison inlined.
struct HNSWHeap<Order: HNSWHeapOrder> {
    private(set) var items: UnsafeMutablePointer<HNSWItem>
    private(set) var capacity: Int
    var count = 0

    init(capacity: Int) {
        self.capacity = max(16, capacity)
        items = .allocate(capacity: self.capacity)
    }

    func release() { items.deallocate() }

    @inline(__always) var isEmpty: Bool { count == 0 }
    @inline(__always) var top: HNSWItem { items[0] }

    @inline(__always)
    mutating func push(_ distance: Float, _ slot: Int32) {
        if count == capacity { grow() }
        var i = count
        count += 1
        while i > 0 {
            let p = (i - 1) >> 1
            if !Order.above(distance, items[p].distance) { break }
            items[i] = items[p]
            i = p
        }
        items[i] = HNSWItem(distance: distance, slot: slot)
    }

    @inline(__always)
    mutating func pop() {
        count -= 1
        if count == 0 { return }
        siftDown(items[count])
    }

    /// Keeps the best `limit` items seen: pushes while there are fewer, afterwards replaces the top (in one pass down
    /// the heap) when the new item belongs above it in the order's sense of "better", i.e. below it.
    @inline(__always)
    mutating func push(_ distance: Float, _ slot: Int32, keepingAtMost limit: Int) {
        if count < limit {
            push(distance, slot)
        } else if Order.above(items[0].distance, distance) {
            siftDown(HNSWItem(distance: distance, slot: slot))
        }
    }

    /// Places `item` from the root down, over `count` items.
    @inline(__always)
    private mutating func siftDown(_ item: HNSWItem) {
        var i = 0
        let n = count
        while true {
            let l = 2 * i + 1
            if l >= n { break }
            var c = l
            if l + 1 < n && Order.above(items[l + 1].distance, items[l].distance) { c = l + 1 }
            if !Order.above(items[c].distance, item.distance) { break }
            items[i] = items[c]
            i = c
        }
        items[i] = item
    }

    private mutating func grow() {
        let bigger = UnsafeMutablePointer<HNSWItem>.allocate(capacity: capacity * 2)
        bigger.moveInitialize(from: items, count: count)
        items.deallocate()
        items = bigger
        capacity *= 2
    }
}

/// The candidates of a search: closest on top.
typealias HNSWMinHeap = HNSWHeap<HNSWClosestFirst>
/// The results of a search: the worst on top.
typealias HNSWMaxHeap = HNSWHeap<HNSWFarthestFirst>

extension HNSWHeap where Order == HNSWFarthestFirst {
    /// Empties the heap into `out` (which must hold `count` items), closest first.
    mutating func drainAscending(into out: UnsafeMutablePointer<HNSWItem>) -> Int {
        let n = count
        var i = n - 1
        while count > 0 {
            out[i] = top
            pop()
            i -= 1
        }
        return n
    }
}

/// Per-search scratch state: a visited set with O(1) reset, the two heaps, buffers for the neighbor-selection
/// heuristic and the query, and the epoch marker that lets writers wait for in-flight searches before reusing a slot.
///
/// A context is used by one thread at a time (checked out of ``HNSWContextPool``), so its mutable state needs no lock;
/// only `epochMarker` is read by other threads (atomically).
final class HNSWSearchContext: @unchecked Sendable {
    /// Visit tags, one per slot: a slot is visited when its tag equals `tag`.
    private(set) var visited: UnsafeMutablePointer<UInt16>
    private(set) var visitedCapacity: Int
    private(set) var tag: UInt16 = 0

    var candidates = HNSWMinHeap(capacity: 256)
    var results = HNSWMaxHeap(capacity: 256)

    /// Scratch for sorted candidate lists and the heuristic's output.
    var sorted: UnsafeMutablePointer<HNSWItem>
    var selected: UnsafeMutablePointer<HNSWItem>
    private(set) var scratchCapacity: Int

    /// Scratch slot lists for linking (the chosen neighbors, a list being pruned).
    private(set) var picked: UnsafeMutablePointer<Int32>
    private(set) var members: UnsafeMutablePointer<Int32>
    private(set) var linkCapacity: Int

    /// Output of one expansion step (slots and distances), at least `2M` long.
    private(set) var expandSlots: UnsafeMutablePointer<Int32>
    private(set) var expandDistances: UnsafeMutablePointer<Float>
    private(set) var expandCapacity: Int

    /// A copy of the query (normalized for cosine), padded for the distance kernels.
    private(set) var query: UnsafeMutablePointer<Float>
    private(set) var queryCapacity: Int

    /// The query prepared for 8-bit codes (quantized indexes), as long as the code stride.
    private(set) var quantQuery: UnsafeMutablePointer<Float>
    private(set) var quantQueryCapacity: Int

    /// 0 while idle; otherwise the global epoch at which the current search started (seq-cst atomics).
    let epochMarker: UnsafeMutablePointer<Int64>

    init(slots: Int, dimension: Int) {
        visitedCapacity = max(1024, slots)
        visited = .allocate(capacity: visitedCapacity)
        visited.initialize(repeating: 0, count: visitedCapacity)
        scratchCapacity = 512
        sorted = .allocate(capacity: scratchCapacity)
        selected = .allocate(capacity: scratchCapacity)
        expandCapacity = 64
        linkCapacity = 64
        picked = .allocate(capacity: linkCapacity)
        members = .allocate(capacity: linkCapacity)
        expandSlots = .allocate(capacity: expandCapacity)
        expandDistances = .allocate(capacity: expandCapacity)
        queryCapacity = max(16, dimension)
        query = .allocate(capacity: queryCapacity)
        query.initialize(repeating: 0, count: queryCapacity)
        quantQueryCapacity = 16
        quantQuery = .allocate(capacity: quantQueryCapacity)
        quantQuery.initialize(repeating: 0, count: quantQueryCapacity)
        epochMarker = .allocate(capacity: 1)
        epochMarker.initialize(to: 0)
    }

    deinit {
        visited.deallocate()
        candidates.release()
        results.release()
        sorted.deallocate()
        selected.deallocate()
        query.deallocate()
        quantQuery.deallocate()
        expandSlots.deallocate()
        expandDistances.deallocate()
        picked.deallocate()
        members.deallocate()
        epochMarker.deallocate()
    }

    /// Bytes held by this context.
    var memoryUsage: Int {
        visitedCapacity * 2 + (candidates.capacity + results.capacity + 2 * scratchCapacity) * 8 + (queryCapacity + quantQueryCapacity) * 4 + 64
    }

    /// Makes room for `slots` visit tags (keeping none: callers start a new visit afterwards).
    func ensureVisited(slots: Int) {
        guard slots > visitedCapacity else { return }
        visited.deallocate()
        visitedCapacity = max(slots, visitedCapacity + visitedCapacity / 2)
        visited = .allocate(capacity: visitedCapacity)
        visited.initialize(repeating: 0, count: visitedCapacity)
        tag = 0
    }

    /// Starts a new visit: every slot becomes unvisited in O(1) (a full clear every 65 535 visits).
    @inline(__always)
    func newVisit() -> UInt16 {
        if tag == UInt16.max {
            visited.update(repeating: 0, count: visitedCapacity)
            tag = 0
        }
        tag &+= 1
        return tag
    }

    /// Makes room for `n` items in `sorted` and `selected`.
    func ensureScratch(_ n: Int) {
        guard n > scratchCapacity else { return }
        sorted.deallocate()
        selected.deallocate()
        scratchCapacity = max(n, scratchCapacity * 2)
        sorted = .allocate(capacity: scratchCapacity)
        selected = .allocate(capacity: scratchCapacity)
    }

    /// Makes room for `n` slots in `picked` and `members`.
    func ensureLinkScratch(_ n: Int) {
        guard n > linkCapacity else { return }
        picked.deallocate()
        members.deallocate()
        linkCapacity = n
        picked = .allocate(capacity: n)
        members = .allocate(capacity: n)
    }

    /// Makes room for `n` results of one expansion step.
    func ensureExpand(_ n: Int) {
        guard n > expandCapacity else { return }
        expandSlots.deallocate()
        expandDistances.deallocate()
        expandCapacity = n
        expandSlots = .allocate(capacity: n)
        expandDistances = .allocate(capacity: n)
    }

    /// Makes room for a prepared quantized query of `n` values.
    func ensureQuantQuery(_ n: Int) { Self.grow(&quantQuery, capacity: &quantQueryCapacity, to: n) }

    /// Makes room for a query of `n` values.
    func ensureQuery(_ n: Int) { Self.grow(&query, capacity: &queryCapacity, to: n) }

    /// Replaces `buffer` by a zeroed one of `n` values when it holds fewer.
    private static func grow(_ buffer: inout UnsafeMutablePointer<Float>, capacity: inout Int, to n: Int) {
        guard n > capacity else { return }
        buffer.deallocate()
        capacity = n
        buffer = .allocate(capacity: n)
        buffer.initialize(repeating: 0, count: n)
    }
}

/// A pool of search contexts, one per concurrently running search or insertion; contexts are created on demand and
/// kept (their number is the peak concurrency), so a search allocates nothing in the steady state.
final class HNSWContextPool: Sendable {
    private struct Contexts: Sendable {
        var free: [HNSWSearchContext] = []
        var all: [HNSWSearchContext] = []
    }

    private let contexts = Locked(Contexts())
    private let dimension: Int

    init(dimension: Int) { self.dimension = dimension }

    /// A context with room for `slots` visit tags, for the caller's exclusive use until ``checkin(_:)``.
    func checkout(slots: Int) -> HNSWSearchContext {
        let ctx = contexts.withLock { c in
            if let free = c.free.popLast() { return free }
            let fresh = HNSWSearchContext(slots: slots, dimension: dimension)
            c.all.append(fresh)
            return fresh
        }
        ctx.ensureVisited(slots: slots)
        return ctx
    }

    /// Returns a context to the pool.
    func checkin(_ ctx: HNSWSearchContext) {
        contexts.withLock { $0.free.append(ctx) }
    }

    /// Every context ever created (for epoch scans).
    func allContexts() -> [HNSWSearchContext] {
        contexts.withLock { $0.all }
    }

    /// Bytes held by the pooled contexts.
    var memoryUsage: Int {
        contexts.withLock { $0.all.reduce(0) { $0 + $1.memoryUsage } }
    }
}

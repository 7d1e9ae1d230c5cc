internal import CKernels
import Foundation
import EncoreCore

// MARK: - Acceptors: which nodes a search may return

/// Decides whether a search may return a node; specialised per kind so the hot loop has no dynamic dispatch.
protocol HNSWAcceptor {
    /// False when every reachable node is acceptable (no deletions, no filter): the walk then stops as early as
    /// plain HNSW does.
    var screens: Bool { get }
    func accepts(_ index: HNSWIndex, _ slot: Int) -> Bool
}

/// Accepts every node (no filter, no pending deletion).
struct HNSWAcceptAll: HNSWAcceptor {
    var screens: Bool { false }
    @inline(__always) func accepts(_ index: HNSWIndex, _ slot: Int) -> Bool { true }
}

/// Accepts live nodes.
struct HNSWAcceptLive: HNSWAcceptor {
    var screens: Bool { true }
    @inline(__always) func accepts(_ index: HNSWIndex, _ slot: Int) -> Bool {
        index.flags(slot) & HNSWIndex.deletedFlag == 0
    }
}

/// Accepts live nodes whose id's bit is set (`allowed`) or clear (not `allowed`) in a bitset.
struct HNSWAcceptBits: HNSWAcceptor {
    let words: UnsafeBufferPointer<UInt64>
    let allowed: Bool
    var screens: Bool { true }
    @inline(__always) func accepts(_ index: HNSWIndex, _ slot: Int) -> Bool {
        guard index.flags(slot) & HNSWIndex.deletedFlag == 0 else { return false }
        let id = Int(index.label(slot))
        let w = id >> 6
        let set = id >= 0 && w < words.count && words[w] & (1 << UInt64(id & 63)) != 0
        return set == allowed
    }
}

/// Accepts live nodes for which a predicate holds.
struct HNSWAcceptPredicate: HNSWAcceptor {
    let predicate: @Sendable (Int32) -> Bool
    var screens: Bool { true }
    @inline(__always) func accepts(_ index: HNSWIndex, _ slot: Int) -> Bool {
        index.flags(slot) & HNSWIndex.deletedFlag == 0 && predicate(index.label(slot))
    }
}

extension HNSWIndex {
    // MARK: - Public search API

    /// The `k` nearest live vectors to `query` that `filter` allows, closest first, using the index's default ``ef``.
    ///
    /// - Throws: ``IndexError/dimensionMismatch(expected:got:)`` for a query of the wrong length,
    ///   ``IndexError/invalidVector(id:reason:)`` (id -1) for a query holding NaN or infinity,
    ///   ``IndexError/invalidParameter(_:)`` for a negative `k`.
    public func search(_ query: [Float], k: Int, filter: SearchFilter? = nil) throws(IndexError) -> [Neighbor] {
        try search(query, k: k, ef: ef, filter: filter)
    }

    /// The `k` nearest live vectors to `query` that `filter` allows, closest first, with a candidate list of
    /// `max(ef, k)` (larger is slower and more accurate). See the type's notes on filters.
    ///
    /// - Throws: as ``search(_:k:filter:)``; also ``IndexError/invalidParameter(_:)`` when `ef < 1`.
    public func search(_ query: [Float], k: Int, ef: Int, filter: SearchFilter? = nil) throws(IndexError) -> [Neighbor] {
        guard query.count == dimension else { throw .dimensionMismatch(expected: dimension, got: query.count) }
        guard k >= 0 else { throw .invalidParameter("k \(k) must be non-negative") }
        guard ef >= 1 else { throw .invalidParameter("ef \(ef) must be at least 1") }
        if k == 0 { return [] }
        let ctx = checkoutSearchContext()
        defer { checkinSearchContext(ctx) }
        try query.withUnsafeBufferPointer { (q) throws(IndexError) in try prepareQuery(q.baseAddress!, into: ctx) }
        return searchPrepared(ctx, k: k, ef: ef, filter: filter)
    }

    /// Searches every row of `queries` on up to `threads` threads; result `i` answers row `i`.
    ///
    /// - Parameters:
    ///   - ef: the candidate-list size (the index's default ``ef`` when nil).
    /// - Throws: as ``search(_:k:ef:filter:)``; for an invalid row the error of the first such row.
    public func search(
        queries: Matrix, k: Int, ef: Int? = nil, filter: SearchFilter? = nil, threads: Int = Parallel.coreCount
    ) throws(IndexError) -> [[Neighbor]] {
        guard queries.cols == dimension else { throw .dimensionMismatch(expected: dimension, got: queries.cols) }
        guard k >= 0 else { throw .invalidParameter("k \(k) must be non-negative") }
        let efValue = ef ?? self.ef
        guard efValue >= 1 else { throw .invalidParameter("ef \(efValue) must be at least 1") }
        let n = queries.rows
        guard n > 0 else { return [] }
        if k == 0 { return [[Neighbor]](repeating: [], count: n) }
        // Validate first so the parallel part cannot fail.
        try queries.storage.withUnsafeBufferPointer { (s) throws(IndexError) in
            for r in 0..<n { try validateQuery(s.baseAddress! + r * dimension) }
        }
        var out = [[Neighbor]](repeating: [], count: n)
        queries.storage.withUnsafeBufferPointer { s in
            out.withUnsafeMutableBufferPointer { o in
                let src = UncheckedSendable(s.baseAddress!)
                let dst = UncheckedSendable(o.baseAddress!)
                Parallel.forEach(n, threads: max(1, threads), grain: 4) { r in
                    let ctx = self.checkoutSearchContext()
                    defer { self.checkinSearchContext(ctx) }
                    // Validated above: preparing cannot fail.
                    do { try self.prepareQuery(src.value + r * self.dimension, into: ctx) } catch { return }
                    dst.value[r] = self.searchPrepared(ctx, k: k, ef: efValue, filter: filter)
                }
            }
        }
        return out
    }

    // MARK: - Contexts and epochs

    /// A context for one search, registered in the current epoch (so no slot it may reach is reused under it).
    func checkoutSearchContext() -> HNSWSearchContext {
        let ctx = pool.checkout(slots: slotCount + 1024)
        encore_store_seqcst_i64(ctx.epochMarker, encore_load_seqcst_i64(epochCell))
        return ctx
    }

    func checkinSearchContext(_ ctx: HNSWSearchContext) {
        encore_store_release_i64(ctx.epochMarker, 0)
        pool.checkin(ctx)
    }

    func validateQuery(_ q: UnsafePointer<Float>) throws(IndexError) {
        for i in 0..<dimension {
            let v = q[i]
            guard v.isFinite else { throw .invalidVector(id: -1, reason: "the query holds \(v) at index \(i)") }
        }
    }

    /// Copies the query into the context (normalized for cosine; a zero query stays zero) after validating it.
    func prepareQuery(_ q: UnsafePointer<Float>, into ctx: HNSWSearchContext) throws(IndexError) {
        try validateQuery(q)
        ctx.ensureQuery(dimension)
        let dst = ctx.query
        dst.update(from: q, count: dimension)
        if metric == .cosine {
            let norm2 = encore_dot(dst, dst, dimension)
            let inv = norm2 > 0 ? 1 / norm2.squareRoot() : 0
            for i in 0..<dimension { dst[i] *= inv }
        }
    }

    // MARK: - Search core

    /// The search behind every public entry point, on the prepared query in `ctx`.
    func searchPrepared(_ ctx: HNSWSearchContext, k: Int, ef: Int, filter: SearchFilter?) -> [Neighbor] {
        let live = count
        guard live > 0 else { return [] }
        let q = UnsafePointer(ctx.query)
        let d = queryDistance
        // The walk's distance: the codes' for a quantized index (then exact re-ranking of the candidates), otherwise
        // the exact one.
        let walk: Walk
        if codeStride > 0 {
            walk = Walk(distance: prepareQuantizedQuery(ctx, exact: d), query: UnsafePointer(ctx.quantQuery), rerank: true)
        } else {
            walk = Walk(distance: d, query: q, rerank: false)
        }
        let efEff = max(ef, k)
        let scanLimit = max(4 * efEff, Int((Double(efEff) * Double(maxM0) * Double(live) / 2).squareRoot()))
        var allowedEstimate: Int? = nil
        var out: [Neighbor]
        switch filter {
        case nil:
            if pendingDeletions == 0 {
                out = graphSearch(ctx, walk, d, q, k: k, ef: efEff, HNSWAcceptAll())
            } else {
                out = graphSearch(ctx, walk, d, q, k: k, ef: efEff, HNSWAcceptLive())
            }
        case .allowed(let bits):
            let a = bits.count
            allowedEstimate = a
            if a <= scanLimit { return scanAllowed(ctx, d, q, k: k, bits: bits) }
            out = bits.words.withUnsafeBufferPointer { w in
                graphSearch(ctx, walk, d, q, k: k, ef: efEff, HNSWAcceptBits(words: w, allowed: true))
            }
        case .excluded(let bits):
            let a = max(0, live - bits.count)
            if a <= scanLimit { return scanAll(ctx, d, q, k: k, filter: filter) }
            out = bits.words.withUnsafeBufferPointer { w in
                graphSearch(ctx, walk, d, q, k: k, ef: efEff, HNSWAcceptBits(words: w, allowed: false))
            }
        case .predicate(let p):
            out = graphSearch(ctx, walk, d, q, k: k, ef: efEff, HNSWAcceptPredicate(predicate: p))
        }
        if out.count < k && out.count < min(live, allowedEstimate ?? live) {
            // The walk found too few (a selective predicate, or a graph cut by deletions): answer exactly.
            return scanAll(ctx, d, q, k: k, filter: filter)
        }
        return out
    }

    /// The distance a search walks the graph with, and whether its candidates are re-ranked by the exact one.
    struct Walk {
        let distance: Distance
        let query: UnsafePointer<Float>
        let rerank: Bool
    }

    /// Greedy descent through the upper levels, then a best-first search of level 0, by the walk's distance; the
    /// results are re-ranked by the exact `exact` from `exactQuery` when the walk is quantized.
    @inline(__always)
    func graphSearch<A: HNSWAcceptor>(
        _ ctx: HNSWSearchContext, _ walk: Walk, _ exact: Distance, _ exactQuery: UnsafePointer<Float>, k: Int, ef: Int,
        _ acceptor: A
    ) -> [Neighbor] {
        let d = walk.distance
        let q = walk.query
        guard let (entry, top) = loadEntry() else { return [] }
        var cur = entry
        var dcur = distance(d, q, cur)
        var level = top
        while level > 0 {
            (cur, dcur) = greedyClosest(d, q, from: cur, distance: dcur, level: level)
            level -= 1
        }
        searchLayer(ctx, d, q, entry: cur, entryDistance: dcur, ef: ef, level: 0, acceptor, seeds: usesOrigin ? originLinks : nil)
        if walk.rerank {
            // In heap order: the re-ranking sorts them by exact distance anyway.
            let n = ctx.results.count
            ctx.ensureScratch(n)
            ctx.sorted.update(from: ctx.results.items, count: n)
            ctx.results.count = 0
            rerankSorted(ctx, count: n, exact, exactQuery)
            return neighbors(fromSorted: ctx, count: n, k: k)
        }
        return collectResults(ctx, k: k)
    }

    /// Moves from `start` to ever closer neighbors at `level` until none is closer.
    @inline(__always)
    func greedyClosest(
        _ d: Distance, _ q: UnsafePointer<Float>, from start: Int, distance startDistance: Float, level: Int
    ) -> (Int, Float) {
        var cur = start
        var dcur = startDistance
        var changed = true
        while changed {
            changed = false
            let list = links(cur, level: level)
            let n = Int(encore_load_acquire_i32(list))
            for j in 0..<n {
                let nb = Int(encore_load_acquire_i32(list + 1 + j))
                let dist = distance(d, q, nb)
                if dist < dcur {
                    dcur = dist
                    cur = nb
                    changed = true
                }
            }
        }
        return (cur, dcur)
    }

    /// Best-first search of one level from `entry`: leaves the up to `ef` nearest nodes the acceptor accepts in
    /// `ctx.results` (a max-heap). Rejected nodes are still expanded; when the acceptor screens, the walk goes on
    /// until `ef` accepted nodes are held and no candidate is closer than the worst of them.
    @inline(__always)
    func searchLayer<A: HNSWAcceptor>(
        _ ctx: HNSWSearchContext, _ d: Distance, _ q: UnsafePointer<Float>, entry: Int, entryDistance: Float,
        ef: Int, level: Int, _ acceptor: A, seeds: UnsafeMutablePointer<Int32>? = nil
    ) {
        var cand = ctx.candidates
        var res = ctx.results
        cand.count = 0
        res.count = 0
        let tag = ctx.newVisit()
        let visited = ctx.visited
        let visitedCapacity = ctx.visitedCapacity
        let screens = acceptor.screens
        let vectorOffset = self.vectorOffset
        if entry < visitedCapacity { visited[entry] = tag }
        var lowerBound = Float.infinity
        if !screens || acceptor.accepts(self, entry) {
            res.push(entryDistance, Int32(entry))
            lowerBound = entryDistance
        }
        cand.push(entryDistance, Int32(entry))
        if let seeds {
            // Extra entry points (a link list: count, then slots), treated as neighbors of the entry.
            let n = Int(encore_load_acquire_i32(seeds))
            for j in 0..<n {
                let s = Int(encore_load_acquire_i32(seeds + 1 + j))
                if s >= visitedCapacity || visited[s] == tag { continue }
                visited[s] = tag
                let dist = distance(d, q, s)
                cand.push(dist, Int32(s))
                if !screens || acceptor.accepts(self, s) {
                    res.push(dist, Int32(s), keepingAtMost: ef)
                }
                if !res.isEmpty { lowerBound = res.top.distance }
            }
        }
        ctx.ensureExpand(maxM0)
        let outSlots = ctx.expandSlots
        let outDistances = ctx.expandDistances
        let chunks = UnsafePointer(chunkTable)
        let kindCode: Int32
        switch d.kind {
        case .l2: kindCode = 0
        case .dot: kindCode = 1
        case .augmented: kindCode = 2
        case .mobius: kindCode = 3
        case .sq8L2: kindCode = 0
        case .sq8Dot: kindCode = 1
        }
        let sq8 = d.kind == .sq8L2 || d.kind == .sq8Dot
        let codeChunks = UnsafePointer(codeChunkTable)
        while !cand.isEmpty {
            let current = cand.top
            if current.distance > lowerBound && (res.count >= ef || !screens) { break }
            cand.pop()
            let list = links(Int(current.slot), level: level)
            let n = min(Int(encore_load_acquire_i32(list)), maxM0)
            let found = sq8
                ? encore_hnsw_expand_sq8(
                    list + 1, n, visited, visitedCapacity, tag, codeChunks, Int32(chunkShift), chunkMask, codeStride, q,
                    kindCode, d.offset, outSlots, outDistances)
                : encore_hnsw_expand(
                    list + 1, n, visited, visitedCapacity, tag, chunks, Int32(chunkShift), chunkMask, recordSize,
                    vectorOffset, q, dimension, kindCode, d.offset, d.qs, outSlots, outDistances)
            for i in 0..<found {
                let dist = outDistances[i]
                if res.count < ef || dist < lowerBound {
                    let nb = outSlots[i]
                    cand.push(dist, nb)
                    if !screens || acceptor.accepts(self, Int(nb)) {
                        res.push(dist, nb, keepingAtMost: ef)
                    }
                    if !res.isEmpty { lowerBound = res.top.distance }
                }
            }
            // The next node to expand: fetch its link list while the heap work finishes.
            if level == 0 && !cand.isEmpty { encore_prefetch(record(Int(cand.top.slot)) + 24) }
        }
        ctx.candidates = cand
        ctx.results = res
    }

    /// The best `k` of `ctx.results` as neighbors, closest first, without repeated ids (an update racing with the
    /// search could otherwise show one id twice).
    func collectResults(_ ctx: HNSWSearchContext, k: Int) -> [Neighbor] {
        var res = ctx.results
        ctx.ensureScratch(res.count)
        let n = res.drainAscending(into: ctx.sorted)
        ctx.results = res
        return neighbors(fromSorted: ctx, count: n, k: k)
    }

    /// The first `k` distinct ids of `ctx.sorted[0..<n]` (sorted closest first) as neighbors.
    func neighbors(fromSorted ctx: HNSWSearchContext, count n: Int, k: Int) -> [Neighbor] {
        var out: [Neighbor] = []
        out.reserveCapacity(min(k, n))
        var seen: Set<Int32>? = k > 32 ? Set(minimumCapacity: k) : nil
        for i in 0..<n {
            if out.count == k { break }
            let item = ctx.sorted[i]
            let id = label(Int(item.slot))
            if seen != nil {
                guard seen!.insert(id).inserted else { continue }
            } else if out.contains(where: { $0.id == id }) {
                continue
            }
            out.append(Neighbor(id: id, distance: item.distance))
        }
        return out
    }

    // MARK: - Exact scans

    /// Exact top `k` over every live vector the filter allows.
    func scanAll(_ ctx: HNSWSearchContext, _ d: Distance, _ q: UnsafePointer<Float>, k: Int, filter: SearchFilter?) -> [Neighbor] {
        var res = ctx.results
        res.count = 0
        let slots = slotCount
        for s in 0..<slots {
            let f = flags(s)
            guard f & HNSWIndex.validFlag != 0, f & HNSWIndex.deletedFlag == 0 else { continue }
            if let filter, !filter.allows(label(s)) { continue }
            let dist = distance(d, q, s)
            res.push(dist, Int32(s), keepingAtMost: k)
        }
        ctx.results = res
        return collectResults(ctx, k: k)
    }

    /// Exact top `k` over the live vectors whose ids are in `bits` (looked up in the id map).
    func scanAllowed(_ ctx: HNSWSearchContext, _ d: Distance, _ q: UnsafePointer<Float>, k: Int, bits: IDBitset) -> [Neighbor] {
        var slots: [Int32] = []
        labelToSlot.withLock { map in
            for (w, word) in bits.words.enumerated() where word != 0 {
                var rest = word
                while rest != 0 {
                    let id = Int32(w * 64 + rest.trailingZeroBitCount)
                    rest &= rest - 1
                    if let s = map[id] { slots.append(s) }
                }
            }
        }
        var res = ctx.results
        res.count = 0
        for s32 in slots {
            let s = Int(s32)
            let f = flags(s)
            guard f & HNSWIndex.validFlag != 0, f & HNSWIndex.deletedFlag == 0 else { continue }
            let dist = distance(d, q, s)
            res.push(dist, s32, keepingAtMost: k)
        }
        ctx.results = res
        return collectResults(ctx, k: k)
    }
}

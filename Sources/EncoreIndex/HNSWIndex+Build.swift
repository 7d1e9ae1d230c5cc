internal import CKernels
import Foundation
import EncoreCore

extension HNSWIndex {
    // MARK: - Public mutation API

    /// Adds one vector under `id`.
    ///
    /// - Throws: ``IndexError/dimensionMismatch(expected:got:)``, ``IndexError/invalidVector(id:reason:)`` (NaN,
    ///   infinity, or a norm that overflows), ``IndexError/invalidID(_:reason:)`` when `id` is negative or present.
    public func add(id: Int32, vector: [Float]) throws(IndexError) {
        guard vector.count == dimension else { throw .dimensionMismatch(expected: dimension, got: vector.count) }
        writerLock.lock()
        defer { writerLock.unlock() }
        try vector.withUnsafeBufferPointer { (v) throws(IndexError) in
            try addLocked(ids: [id], vectors: v.baseAddress!, threads: 1)
        }
    }

    /// Adds the rows of `vectors` under `ids` (row `i` gets `ids[i]`), inserting on up to `threads` threads.
    ///
    /// Levels are drawn in row order before the parallel insertion; with `threads: 1` the graph is deterministic for
    /// a given seed and insertion history. The batch is validated first: on error nothing is added.
    /// - Throws: as ``add(id:vector:)``; ``IndexError/invalidParameter(_:)`` when `ids.count != vectors.rows`;
    ///   ``IndexError/invalidID(_:reason:)`` for an id repeated in the batch.
    public func add(ids: [Int32], vectors: Matrix, threads: Int = Parallel.coreCount) throws(IndexError) {
        guard vectors.cols == dimension else { throw .dimensionMismatch(expected: dimension, got: vectors.cols) }
        guard ids.count == vectors.rows else {
            throw .invalidParameter("\(ids.count) ids for \(vectors.rows) vectors")
        }
        guard !ids.isEmpty else { return }
        writerLock.lock()
        defer { writerLock.unlock() }
        try vectors.storage.withUnsafeBufferPointer { (v) throws(IndexError) in
            try addLocked(ids: ids, vectors: v.baseAddress!, threads: max(1, threads))
        }
    }

    /// Replaces the vector of `id` and relinks it: the old node is deleted (its slot reused later, see the type's
    /// notes) and the new vector inserted under the same id.
    ///
    /// - Throws: ``IndexError/invalidID(_:reason:)`` when `id` is not live; otherwise as ``add(id:vector:)`` (on
    ///   error the old vector stays).
    public func update(id: Int32, vector: [Float]) throws(IndexError) {
        guard vector.count == dimension else { throw .dimensionMismatch(expected: dimension, got: vector.count) }
        writerLock.lock()
        defer { writerLock.unlock() }
        try vector.withUnsafeBufferPointer { (v) throws(IndexError) in
            try validateVector(v.baseAddress!, id: id)
        }
        guard let old = labelToSlot.withLock({ $0[id] }) else { throw .invalidID(id, reason: "not in the index") }
        markDeleted(slot: Int(old), id: id)
        try vector.withUnsafeBufferPointer { (v) throws(IndexError) in
            try addLocked(ids: [id], vectors: v.baseAddress!, threads: 1)
        }
    }

    // MARK: - Validation

    func validateVector(_ v: UnsafePointer<Float>, id: Int32) throws(IndexError) {
        var norm2: Float = 0
        for i in 0..<dimension {
            let x = v[i]
            guard x.isFinite else { throw .invalidVector(id: id, reason: "holds \(x) at index \(i)") }
            norm2 += x * x
        }
        guard norm2.isFinite else { throw .invalidVector(id: id, reason: "its squared norm overflows Float") }
    }

    // MARK: - Adding (writer lock held)

    func addLocked(ids: [Int32], vectors: UnsafePointer<Float>, threads: Int) throws(IndexError) {
        let n = ids.count
        // Validate everything before changing anything.
        var batchIDs = Set<Int32>(minimumCapacity: n)
        var maxNorm2: Float = 0
        for i in 0..<n {
            let id = ids[i]
            guard id >= 0 else { throw .invalidID(id, reason: "ids must be non-negative") }
            guard batchIDs.insert(id).inserted else { throw .invalidID(id, reason: "appears twice in the batch") }
            let v = vectors + i * dimension
            try validateVector(v, id: id)
            maxNorm2 = max(maxNorm2, encore_dot(v, v, dimension))
        }
        let present = labelToSlot.withLock { map in ids.first { map[$0] != nil } }
        if let present { throw .invalidID(present, reason: "already in the index") }
        guard Int(encore_load_acquire_i64(liveCountCell)) + pendingDeletions + n <= Int(Int32.max) - 1 else {
            throw .invalidParameter("the index cannot hold more than \(Int32.max - 1) vectors")
        }

        if metric == .innerProduct && innerProductGraph == .normAugmented && maxNorm2 > phiSquared {
            growPhi(toNorm2: maxNorm2)
        }

        // Slots and levels, in order (deterministic for a seed).
        var slots = [Int32](repeating: 0, count: n)
        var levels = [Int](repeating: 0, count: n)
        for i in 0..<n {
            levels[i] = drawLevel()
            slots[i] = Int32(allocateSlot())
        }
        for i in 0..<n {
            writeRecord(slot: Int(slots[i]), id: ids[i], vector: vectors + i * dimension, level: levels[i])
        }
        labelToSlot.withLock { map in for i in 0..<n { map[ids[i]] = slots[i] } }

        // Insert: in parallel for batches.
        if threads <= 1 || n < 2 * threads {
            let ctx = pool.checkout(slots: slotCount)
            for i in 0..<n { insert(slot: Int(slots[i]), level: levels[i], ctx: ctx) }
            pool.checkin(ctx)
        } else {
            slots.withUnsafeBufferPointer { s in
                levels.withUnsafeBufferPointer { l in
                    let sp = UncheckedSendable(s.baseAddress!)
                    let lp = UncheckedSendable(l.baseAddress!)
                    let total = slotCount
                    Parallel.forEach(n, threads: threads, grain: 8) { i in
                        let ctx = self.pool.checkout(slots: total)
                        self.insert(slot: Int(sp.value[i]), level: lp.value[i], ctx: ctx)
                        self.pool.checkin(ctx)
                    }
                }
            }
        }
        _ = encore_fetch_add_i64(liveCountCell, Int64(n))
    }

    /// A random level: `⌊−ln U / ln M⌋`, capped at ``maxLevel``.
    func drawLevel() -> Int {
        rngDraws += 1
        var u = rng.nextDouble()
        if u < 1e-300 { u = 1e-300 }
        return min(HNSWIndex.maxLevel, Int(-Foundation.log(u) * levelMult))
    }

    /// A slot for a new node: a free one, else (after reclaiming pending deletions when enough are waiting) a new one.
    func allocateSlot() -> Int {
        if freeSlots.isEmpty && pendingDeleted.count >= max(16, slotCount / 100) { reclaimDeleted() }
        if let s = freeSlots.popLast() { return Int(s) }
        let s = slotCount
        if s & chunkMask == 0 {
            let bytes = chunkBytes
            // Zeroed, 64-byte aligned, and on transparent huge pages when a chunk is 2 MiB or more (searches read
            // records at random: with 4 KiB pages most of those reads also miss the TLB).
            guard let chunk = encore_alloc_table(bytes) else {
                preconditionFailure("HNSWIndex: out of memory allocating a chunk of \(bytes) bytes")
            }
            chunkTable[s >> chunkShift] = chunk
            if codeStride > 0 {
                guard let codes = encore_alloc_table(codeChunkBytes) else {
                    preconditionFailure("HNSWIndex: out of memory allocating a chunk of \(codeChunkBytes) bytes")
                }
                codeChunkTable[s >> chunkShift] = codes
            }
            chunkCount += 1
        }
        encore_store_release_i64(slotCountCell, Int64(s + 1))
        return s
    }

    /// Fills a fresh or reclaimed slot's record; it becomes visible to scans (valid) but is not linked yet.
    func writeRecord(slot: Int, id: Int32, vector: UnsafePointer<Float>, level: Int) {
        let r = record(slot)
        let flagsCell = flagsPointer(slot)
        encore_store_release_i32(flagsCell, Int32(level))
        r.storeBytes(of: id, as: Int32.self)
        if let old = r.load(fromByteOffset: 16, as: UnsafeMutablePointer<Int32>?.self) {
            old.deallocate()  // not reached: reclaiming a slot frees its block
            r.storeBytes(of: nil, toByteOffset: 16, as: UnsafeMutablePointer<Int32>?.self)
        }
        if level > 0 {
            let count = level * upperStride
            let block = UnsafeMutablePointer<Int32>.allocate(capacity: count)
            block.initialize(repeating: 0, count: count)
            r.storeBytes(of: block, toByteOffset: 16, as: UnsafeMutablePointer<Int32>?.self)
            upperBytes += count * 4
        }
        let list0 = links(slot, level: 0)
        encore_store_release_i32(list0, 0)
        let v = vectorPointer(slot)
        v.update(from: vector, count: dimension)
        let norm2 = encore_dot(v, v, dimension)
        switch metric {
        case .cosine:
            // A zero vector (or one whose squared norm underflows) is stored as zeros: at distance 1 from everything.
            let inv = norm2 > 0 ? 1 / norm2.squareRoot() : 0
            for i in 0..<dimension { v[i] *= inv }
            r.storeBytes(of: Float(0), toByteOffset: 8, as: Float.self)
        case .l2:
            r.storeBytes(of: Float(0), toByteOffset: 8, as: Float.self)
        case .innerProduct:
            // Möbius: 1/‖x‖² (a zero vector is kept, far from everything); norm-augmented: √(Φ² − ‖x‖²); plain: unused.
            let extra: Float
            switch innerProductGraph {
            case .mobius: extra = 1 / max(norm2, 1e-30)
            case .normAugmented: extra = max(0, phiSquared - norm2).squareRoot()
            case .plain: extra = 0
            }
            r.storeBytes(of: extra, toByteOffset: 8, as: Float.self)
        }
        // Codes before the node is linked (as its vector), so a quantized walk that reaches it reads them whole.
        if codeStride > 0 { encodeSlot(slot) }
        encore_store_release_i32(flagsCell, Int32(level) | HNSWIndex.validFlag)
    }

    /// Raises Φ for the norm-augmenting transform so that every vector fits: to the norm itself for the first data,
    /// to 1.1 × the norm afterwards (headroom, so a stream of slightly longer vectors does not rescale each time), and
    /// recomputes every node's extra coordinate.
    func growPhi(toNorm2 norm2: Float) {
        let empty = slotCount == 0
        phiSquared = empty ? norm2 : norm2 * 1.21
        let slots = slotCount
        for s in 0..<slots {
            let f = flags(s)
            guard f & HNSWIndex.validFlag != 0, f & HNSWIndex.freeFlag == 0 else { continue }
            let v = vectorPointer(s)
            let a = max(0, phiSquared - encore_dot(v, v, dimension)).squareRoot()
            record(s).storeBytes(of: a, toByteOffset: 8, as: Float.self)
        }
    }

    // MARK: - Insertion

    /// Links the node in `slot` (record written) into the graph at levels `0...level`.
    func insert(slot q: Int, level: Int, ctx: HNSWSearchContext) {
        var holdsEntry = false
        var entry = loadEntry()
        if entry == nil || level > entry!.level {
            entryLock.lock()
            holdsEntry = true
            entry = loadEntry()
            if let e = entry, level <= e.level {
                entryLock.unlock()
                holdsEntry = false
            }
        }
        guard let (ep, top) = entry else {
            storeEntry(q, level: level)
            entryLock.unlock()
            return
        }
        let qv = UnsafePointer(vectorPointer(q))
        let d = buildDistance(from: q)
        var cur = ep
        var dcur = distance(d, qv, cur)
        var l = top
        while l > level {
            (cur, dcur) = greedyClosest(d, qv, from: cur, distance: dcur, level: l)
            l -= 1
        }
        l = min(level, top)
        while l >= 0 {
            if pendingDeletions == 0 {
                searchLayer(ctx, d, qv, entry: cur, entryDistance: dcur, ef: efConstruction, level: l, HNSWAcceptAll())
            } else {
                searchLayer(ctx, d, qv, entry: cur, entryDistance: dcur, ef: efConstruction, level: l, HNSWAcceptLive())
            }
            var res = ctx.results
            ctx.ensureScratch(res.count + maxM0 + 1)
            let found = res.drainAscending(into: ctx.sorted)
            ctx.results = res
            if found > 0 {
                cur = Int(ctx.sorted[0].slot)
                dcur = ctx.sorted[0].distance
                connect(q, level: l, candidates: found, ctx: ctx)
            }
            l -= 1
        }
        if holdsEntry {
            storeEntry(q, level: level)
            entryLock.unlock()
        }
        if usesOrigin { offerToOrigin(q, ctx: ctx) }
    }

    // MARK: - The origin's links (Möbius inner product)

    /// Offers node `q` to the origin's link list: appended while there is room, else kept by the heuristic if it is
    /// longer than the shortest listed vector. In Möbius space the origin's squared distance to `x / ‖x‖²` is
    /// `s = 1/‖x‖²`, the record's extra value.
    func offerToOrigin(_ q: Int, ctx: HNSWSearchContext) {
        let s = augmentation(q)
        encore_spin_lock(originLock)
        defer { encore_spin_unlock(originLock) }
        let n = Int(encore_load_relaxed_i32(originLinks))
        var worst: Float = 0
        for j in 0..<n {
            let e = Int(encore_load_relaxed_i32(originLinks + 1 + j))
            if e == q { return }
            worst = max(worst, augmentation(e))
        }
        if n < maxM0 {
            encore_store_release_i32(originLinks + 1 + n, Int32(q))
            encore_store_release_i32(originLinks, Int32(n + 1))
            return
        }
        guard s < worst else { return }
        var members = [Int32](repeating: 0, count: n + 1)
        for j in 0..<n { members[j] = encore_load_relaxed_i32(originLinks + 1 + j) }
        members[n] = Int32(q)
        writeOriginLinks(members, ctx: ctx)
    }

    /// Rebuilds the origin's list from the live nodes (after reclaiming deletions, or loading): the heuristic over
    /// the `8M` longest vectors.
    func rebuildOrigin(ctx: HNSWSearchContext) {
        guard usesOrigin else { return }
        var longest = HNSWMaxHeap(capacity: 8 * m + 1)
        defer { longest.release() }
        for s in 0..<slotCount {
            let f = flags(s)
            guard f & HNSWIndex.validFlag != 0, f & HNSWIndex.deletedFlag == 0 else { continue }
            longest.push(augmentation(s), Int32(s), keepingAtMost: 8 * m)
        }
        var members: [Int32] = []
        while !longest.isEmpty {
            members.append(longest.top.slot)
            longest.pop()
        }
        encore_spin_lock(originLock)
        defer { encore_spin_unlock(originLock) }
        writeOriginLinks(members, ctx: ctx)
    }

    /// Writes the heuristic's choice among `members` (live ones) as the origin's list. `originLock` held.
    func writeOriginLinks(_ members: [Int32], ctx: HNSWSearchContext) {
        ctx.ensureScratch(members.count)
        var c = 0
        for e in members where flags(Int(e)) & HNSWIndex.deletedFlag == 0 {
            ctx.sorted[c] = HNSWItem(distance: augmentation(Int(e)), slot: e)
            c += 1
        }
        var items = UnsafeMutableBufferPointer(start: ctx.sorted, count: c)
        items.sort { (a: HNSWItem, b: HNSWItem) -> Bool in
            if a.distance != b.distance { return a.distance < b.distance }
            return a.slot < b.slot
        }
        let kept = selectNeighbors(ctx.sorted, count: c, limit: maxM0, into: ctx.selected)
        for i in 0..<kept { encore_store_release_i32(originLinks + 1 + i, ctx.selected[i].slot) }
        encore_store_release_i32(originLinks, Int32(kept))
    }

    /// Links `q` at `level` to the heuristic's choice among the `count` candidates in `ctx.sorted` (ascending
    /// distance to `q`), and links them back to `q`, pruning their lists with the heuristic when full.
    func connect(_ q: Int, level: Int, candidates count: Int, ctx: HNSWSearchContext) {
        let chosen = selectNeighbors(ctx.sorted, count: count, limit: m, into: ctx.selected)
        let maxL = maxLinks(level)
        // Copy the choice: `ctx.selected` is reused by the pruning below.
        ctx.ensureLinkScratch(2 * maxM0 + 2)
        let picked = ctx.picked
        let members = ctx.members
        for i in 0..<chosen { picked[i] = ctx.selected[i].slot }

        // Own list: normally empty; other inserters may already have linked back to `q` (it is reachable from the
        // upper levels while it is being linked), so merge rather than overwrite.
        lockNode(q)
        let own = links(q, level: level)
        let existing = Int(encore_load_relaxed_i32(own))
        if existing == 0 {
            for i in 0..<chosen { encore_store_release_i32(own + 1 + i, picked[i]) }
            encore_store_release_i32(own, Int32(chosen))
        } else {
            var c = 0
            for j in 0..<existing {
                members[c] = encore_load_relaxed_i32(own + 1 + j)
                c += 1
            }
            for i in 0..<chosen where !UnsafeBufferPointer(start: members, count: existing).contains(picked[i]) {
                members[c] = picked[i]
                c += 1
            }
            writePruned(q, list: own, members: UnsafeBufferPointer(start: members, count: c), maxLinks: maxL, ctx: ctx)
        }
        unlockNode(q)

        for i in 0..<chosen {
            let s = Int(picked[i])
            guard s != q, Int(flags(s) & HNSWIndex.levelMask) >= level else { continue }
            lockNode(s)
            let list = links(s, level: level)
            let n = Int(encore_load_relaxed_i32(list))
            var present = false
            for j in 0..<n where encore_load_relaxed_i32(list + 1 + j) == Int32(q) {
                present = true
                break
            }
            if !present {
                if n < maxL {
                    encore_store_release_i32(list + 1 + n, Int32(q))
                    encore_store_release_i32(list, Int32(n + 1))
                } else {
                    for j in 0..<n { members[j] = encore_load_relaxed_i32(list + 1 + j) }
                    members[n] = Int32(q)
                    writePruned(s, list: list, members: UnsafeBufferPointer(start: members, count: n + 1), maxLinks: maxL, ctx: ctx)
                }
            }
            unlockNode(s)
        }
    }

    /// Writes into `list` (the links of `owner`, whose lock the caller holds) the heuristic's choice among `members`
    /// (deleted ones dropped), or all of them when they fit.
    func writePruned(
        _ owner: Int, list: UnsafeMutablePointer<Int32>, members: UnsafeBufferPointer<Int32>, maxLinks: Int,
        ctx: HNSWSearchContext
    ) {
        ctx.ensureScratch(members.count)
        let d = buildDistance(from: owner)
        let ov = UnsafePointer(vectorPointer(owner))
        var c = 0
        for s in members where Int(s) != owner && flags(Int(s)) & HNSWIndex.deletedFlag == 0 {
            ctx.sorted[c] = HNSWItem(distance: distance(d, ov, Int(s)), slot: s)
            c += 1
        }
        var items = UnsafeMutableBufferPointer(start: ctx.sorted, count: c)
        items.sort { (a: HNSWItem, b: HNSWItem) -> Bool in
            if a.distance != b.distance { return a.distance < b.distance }
            return a.slot < b.slot
        }
        let kept: Int
        if c <= maxLinks {
            for i in 0..<c { ctx.selected[i] = ctx.sorted[i] }
            kept = c
        } else {
            kept = selectNeighbors(ctx.sorted, count: c, limit: maxLinks, into: ctx.selected)
        }
        for i in 0..<kept { encore_store_release_i32(list + 1 + i, ctx.selected[i].slot) }
        encore_store_release_i32(list, Int32(kept))
    }

    /// The neighbor-selection heuristic (algorithm 4, without keeping pruned connections): walks the candidates
    /// closest first and keeps one when it is closer to the base than to every candidate kept so far, up to `limit`.
    /// With fewer than `limit` candidates, keeps them all (as hnswlib). Returns the number written to `out`.
    func selectNeighbors(
        _ sorted: UnsafeMutablePointer<HNSWItem>, count: Int, limit: Int, into out: UnsafeMutablePointer<HNSWItem>
    ) -> Int {
        if count <= limit {
            for i in 0..<count { out[i] = sorted[i] }
            return count
        }
        var kept = 0
        for i in 0..<count {
            if kept >= limit { break }
            let c = sorted[i]
            let cs = Int(c.slot)
            let dc = buildDistance(from: cs)
            let cv = UnsafePointer(vectorPointer(cs))
            var good = true
            for j in 0..<kept where distance(dc, cv, Int(out[j].slot)) < c.distance {
                good = false
                break
            }
            if good {
                out[kept] = c
                kept += 1
            }
        }
        return kept
    }
}

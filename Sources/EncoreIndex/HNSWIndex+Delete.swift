internal import CKernels
import Foundation

extension HNSWIndex {
    /// Removes `id`: it is never returned by a search that starts afterwards. Its node stays in the graph as a
    /// waypoint until enough deletions are pending; then they are unlinked and their slots reused (see the type's
    /// notes on removal).
    ///
    /// - Throws: ``IndexError/invalidID(_:reason:)`` when `id` is not live.
    public func remove(id: Int32) throws(IndexError) {
        writerLock.lock()
        defer { writerLock.unlock() }
        guard let slot = labelToSlot.withLock({ $0[id] }) else { throw .invalidID(id, reason: "not in the index") }
        markDeleted(slot: Int(slot), id: id)
    }

    /// Unlinks every pending deletion now and frees their slots for reuse (waiting for running searches to finish).
    /// Done automatically when 1 % of the slots are pending, and before saving.
    public func purgeDeleted() {
        writerLock.lock()
        defer { writerLock.unlock() }
        if !pendingDeleted.isEmpty { reclaimDeleted() }
    }

    /// Marks `slot` (holding `id`) deleted. Writer lock held.
    func markDeleted(slot: Int, id: Int32) {
        _ = encore_fetch_or_i32(flagsPointer(slot), HNSWIndex.deletedFlag)
        labelToSlot.withLock { $0[id] = nil }
        pendingDeleted.append(Int32(slot))
        _ = encore_fetch_add_i64(pendingCountCell, 1)
        _ = encore_fetch_add_i64(liveCountCell, -1)
    }

    /// Unlinks the pending deletions from the graph, moves the entry point off them, waits for the searches that
    /// may still reach them, and puts their slots on the free list. Writer lock held (so no insertion runs).
    func reclaimDeleted() {
        let slots = slotCount
        var dead = [Bool](repeating: false, count: slots)
        for s in pendingDeleted { dead[Int(s)] = true }
        let ctx = pool.checkout(slots: slots)
        var members: [Int32] = []
        for p in 0..<slots {
            let f = flags(p)
            guard f & HNSWIndex.validFlag != 0, f & HNSWIndex.deletedFlag == 0 else { continue }
            let top = Int(f & HNSWIndex.levelMask)
            for level in 0...top {
                let list = links(p, level: level)
                let n = Int(encore_load_relaxed_i32(list))
                var touched = false
                for j in 0..<n where dead[Int(encore_load_relaxed_i32(list + 1 + j))] {
                    touched = true
                    break
                }
                guard touched else { continue }
                // Keep the live links, and offer the deleted neighbors' live links in their place.
                members.removeAll(keepingCapacity: true)
                for j in 0..<n {
                    let e = encore_load_relaxed_i32(list + 1 + j)
                    if !dead[Int(e)] && !members.contains(e) { members.append(e) }
                }
                for j in 0..<n {
                    let dl = Int(encore_load_relaxed_i32(list + 1 + j))
                    guard dead[dl], Int(flags(dl) & HNSWIndex.levelMask) >= level else { continue }
                    let other = links(dl, level: level)
                    let on = Int(encore_load_relaxed_i32(other))
                    for i in 0..<on {
                        let e = encore_load_relaxed_i32(other + 1 + i)
                        guard Int(e) != p, Int(e) < slots, !dead[Int(e)], !members.contains(e) else { continue }
                        let ef = flags(Int(e))
                        guard ef & HNSWIndex.validFlag != 0, ef & HNSWIndex.deletedFlag == 0,
                            Int(ef & HNSWIndex.levelMask) >= level
                        else { continue }
                        members.append(e)
                    }
                }
                lockNode(p)
                members.withUnsafeBufferPointer { mb in
                    writePruned(p, list: list, members: mb, maxLinks: maxLinks(level), ctx: ctx)
                }
                unlockNode(p)
            }
        }
        rebuildOrigin(ctx: ctx)
        pool.checkin(ctx)

        if let (ep, _) = loadEntry(), dead[ep] {
            var best = -1
            var bestLevel = -1
            for s in 0..<slots {
                let f = flags(s)
                guard f & HNSWIndex.validFlag != 0, f & HNSWIndex.deletedFlag == 0 else { continue }
                let l = Int(f & HNSWIndex.levelMask)
                if l > bestLevel {
                    best = s
                    bestLevel = l
                }
            }
            entryLock.lock()
            if best < 0 {
                encore_store_release_i64(entryCell, -1)
            } else {
                storeEntry(best, level: bestLevel)
            }
            entryLock.unlock()
        }

        waitForReaders()

        for s32 in pendingDeleted {
            let s = Int(s32)
            let r = record(s)
            let level = Int(flags(s) & HNSWIndex.levelMask)
            if let up = r.load(fromByteOffset: 16, as: UnsafeMutablePointer<Int32>?.self) {
                up.deallocate()
                upperBytes -= level * upperStride * 4
                r.storeBytes(of: nil, toByteOffset: 16, as: UnsafeMutablePointer<Int32>?.self)
            }
            encore_store_release_i32(links(s, level: 0), 0)
            encore_store_release_i32(flagsPointer(s), HNSWIndex.deletedFlag | HNSWIndex.freeFlag)
        }
        // Lowest slots are reused first.
        freeSlots.append(contentsOf: pendingDeleted.sorted(by: >))
        freeSlots.sort(by: >)
        pendingDeleted.removeAll()
        encore_store_release_i64(pendingCountCell, 0)
    }

    /// Waits until every search that started before now has finished (searches register the epoch they start in).
    func waitForReaders() {
        let epoch = encore_fetch_add_i64(epochCell, 1) + 1
        for ctx in pool.allContexts() {
            while true {
                let marker = encore_load_seqcst_i64(ctx.epochMarker)
                if marker == 0 || marker >= epoch { break }
                encore_spin_yield()
            }
        }
    }
}

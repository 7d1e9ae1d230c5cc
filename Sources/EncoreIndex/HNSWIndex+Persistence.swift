internal import CKernels
import Foundation
import EncoreCore

/// File layout of a saved ``HNSWIndex`` (an ``IndexFile`` of kind `hnsw`):
///
/// - string attribute `ip_graph`: the ``InnerProductGraph`` (`mobius`, `norm-augmented` or `plain`);
/// - integer attributes: `m`, `ef_construction`, `ef`, `seed` (bit pattern), `slots` (records stored), `entry`
///   (`level << 32 | slot`, or -1 when empty), `rng_draws` (levels drawn so far, so later adds continue the same
///   sequence), `phi2_bits` (Φ² of the inner-product transform, as `Float` bits), `record_size`, `layout` (1);
/// - section `records`: `slots × record_size` bytes, the in-memory level-0 records (label, flags, extra coordinate,
///   level-0 links, vector; the upper-block pointer zeroed);
/// - section `upper`: `Int32` values, for each slot in order that is live and has a level `l > 0`, its `l` upper link
///   lists of `1 + m` values (count, then links).
///
/// - section `origin`: `Int32` slots, the origin's link list (Möbius inner-product graphs; empty otherwise).
/// - string attribute `quantization`: the ``VectorQuantization`` (`none` or `int8`; absent in files written before
///   it existed, which load as `none`). The codes are not stored: each depends on its vector alone, so loading
///   recomputes exactly the codes the index had.
///
/// Pending deletions are reclaimed before saving, so a file holds live slots and free slots only.
extension HNSWIndex {
    static let fileKind = "hnsw"
    static let fileLayout: Int64 = 1

    /// Writes the index to `path` (atomically: a temporary file renamed into place).
    ///
    /// Holds the writer lock (adds wait; searches go on) and first reclaims pending deletions, so the file is a
    /// consistent snapshot.
    /// - Throws: ``IndexError/io(path:reason:)`` when the file cannot be written.
    public func save(to path: String) throws(IndexError) {
        writerLock.lock()
        defer { writerLock.unlock() }
        if !pendingDeleted.isEmpty { reclaimDeleted() }
        let slots = slotCount
        let records = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, slots * recordSize), alignment: 64)
        defer { records.deallocate() }
        var upper: [Int32] = []
        for s in 0..<slots {
            let dst = records.baseAddress! + s * recordSize
            dst.copyMemory(from: record(s), byteCount: recordSize)
            dst.storeBytes(of: 0, toByteOffset: 16, as: UInt64.self)
            let f = flags(s)
            let level = Int(f & HNSWIndex.levelMask)
            if f & HNSWIndex.freeFlag == 0 && level > 0 {
                let up = links(s, level: 1)
                upper.append(contentsOf: UnsafeBufferPointer(start: up, count: level * upperStride))
            }
        }
        let originCount = Int(encore_load_acquire_i32(originLinks))
        let origin = (0..<originCount).map { originLinks[1 + $0] }
        let attributes: [String: Int64] = [
            "m": Int64(m), "ef_construction": Int64(efConstruction), "ef": Int64(ef),
            "seed": Int64(bitPattern: seed), "slots": Int64(slots), "entry": encore_load_acquire_i64(entryCell),
            "rng_draws": rngDraws, "phi2_bits": Int64(phiSquared.bitPattern), "record_size": Int64(recordSize),
            "layout": HNSWIndex.fileLayout,
        ]
        var failure: IndexError?
        upper.withUnsafeBytes { up in origin.withUnsafeBytes { originBytes in
            do throws(IndexError) {
                try IndexFile.write(
                    to: path, kind: HNSWIndex.fileKind, metric: metric, dimension: dimension, count: count,
                    attributes: attributes,
                    stringAttributes: [
                        "library": "Encore", "ip_graph": innerProductGraph.rawValue, "quantization": quantization.rawValue,
                    ],
                    sections: [
                        ("records", UnsafeRawBufferPointer(rebasing: records[0..<(slots * recordSize)])), ("upper", up),
                        ("origin", originBytes),
                    ])
            } catch {
                failure = error
            }
        } }
        if let failure { throw failure }
    }

    /// Loads an index saved by ``save(to:)``.
    ///
    /// - Throws: ``IndexError/io(path:reason:)`` when the file cannot be read; ``IndexError/corruptFile(path:reason:)``
    ///   when it is not an HNSW index file, is truncated or damaged (checksums), or its sections disagree with its
    ///   header (sizes, link targets, levels, labels, non-finite vectors).
    public static func load(from path: String) throws(IndexError) -> HNSWIndex {
        let file = try IndexFile.open(path: path, expectedKind: fileKind)
        func corrupt(_ reason: String) -> IndexError { .corruptFile(path: path, reason: reason) }
        func attribute(_ key: String) throws(IndexError) -> Int64 {
            guard let v = file.attributes[key] else { throw corrupt("attribute '\(key)' is missing") }
            return v
        }
        guard try attribute("layout") == fileLayout else { throw corrupt("unknown HNSW layout \(try attribute("layout"))") }
        let m = try attribute("m"), efc = try attribute("ef_construction"), ef = try attribute("ef")
        guard (2...256).contains(m), efc >= m, efc <= 1_000_000, ef >= 1, ef <= Int64(Int32.max) else {
            throw corrupt("parameters out of range (m \(m), ef_construction \(efc), ef \(ef))")
        }
        let slots = try attribute("slots")
        guard slots >= 0, slots < Int64(Int32.max) else { throw corrupt("slot count \(slots) is out of range") }
        guard let graph = InnerProductGraph(rawValue: file.stringAttributes["ip_graph"] ?? "") else {
            throw corrupt("unknown inner-product graph '\(file.stringAttributes["ip_graph"] ?? "")'")
        }
        let quantizationName = file.stringAttributes["quantization"] ?? VectorQuantization.none.rawValue
        guard let quantization = VectorQuantization(rawValue: quantizationName) else {
            throw corrupt("unknown quantization '\(quantizationName)'")
        }
        let index: HNSWIndex
        do {
            index = try HNSWIndex(
                dimension: file.dimension, metric: file.metric, m: Int(m), efConstruction: Int(efc), ef: Int(ef),
                seed: UInt64(bitPattern: try attribute("seed")), capacity: Int(slots), innerProductGraph: graph,
                quantization: quantization)
        } catch {
            throw corrupt("invalid index parameters: \(error)")
        }
        guard try attribute("record_size") == Int64(index.recordSize) else {
            throw corrupt("record size \(try attribute("record_size")) does not match m \(m) and dimension \(file.dimension)")
        }
        let n = Int(slots)
        let records = try file.section("records")
        guard records.count == n * index.recordSize else {
            throw corrupt("section 'records' is \(records.count) bytes, expected \(n) × \(index.recordSize)")
        }
        let upperRaw = try file.section("upper")
        guard upperRaw.count % 4 == 0 else { throw corrupt("section 'upper' is not a whole number of Int32 values") }
        let draws = try attribute("rng_draws")
        guard draws >= 0 else { throw corrupt("rng_draws \(draws) is negative") }
        let phi2 = Float(bitPattern: UInt32(truncatingIfNeeded: try attribute("phi2_bits")))
        guard phi2.isFinite, phi2 >= 0 else { throw corrupt("Φ² is not a finite non-negative number") }

        index.writerLock.lock()
        defer { index.writerLock.unlock() }
        // Pass 1: copy the records and check each on its own.
        let known = HNSWIndex.levelMask | HNSWIndex.deletedFlag | HNSWIndex.validFlag | HNSWIndex.freeFlag
        var labels: [Int32: Int32] = [:]
        var free: [Int32] = []
        var upperNeeded = 0
        for s in 0..<n {
            let slot = index.allocateSlot()
            let r = index.record(slot)
            r.copyMemory(from: records.baseAddress! + s * index.recordSize, byteCount: index.recordSize)
            r.storeBytes(of: 0, toByteOffset: 16, as: UInt64.self)
            let f = r.load(fromByteOffset: 4, as: Int32.self)
            guard f & ~known == 0, Int(f & HNSWIndex.levelMask) <= HNSWIndex.maxLevel else {
                throw corrupt("slot \(s) has invalid flags \(f)")
            }
            if f & HNSWIndex.freeFlag != 0 {
                r.storeBytes(of: HNSWIndex.deletedFlag | HNSWIndex.freeFlag, toByteOffset: 4, as: Int32.self)
                r.storeBytes(of: 0, toByteOffset: 24, as: Int32.self)
                free.append(Int32(s))
                continue
            }
            guard f & HNSWIndex.validFlag != 0, f & HNSWIndex.deletedFlag == 0 else {
                throw corrupt("slot \(s) is neither live nor free (flags \(f))")
            }
            let id = r.load(as: Int32.self)
            guard id >= 0 else { throw corrupt("slot \(s) has a negative id \(id)") }
            guard labels.updateValue(Int32(s), forKey: id) == nil else { throw corrupt("id \(id) appears twice") }
            let v = index.vectorPointer(slot)
            for i in 0..<index.dimension where !v[i].isFinite { throw corrupt("the vector of id \(id) is not finite") }
            let a = r.load(fromByteOffset: 8, as: Float.self)
            guard a.isFinite else { throw corrupt("the extra coordinate of id \(id) is not finite") }
            let c0 = r.load(fromByteOffset: 24, as: Int32.self)
            guard c0 >= 0, Int(c0) <= index.maxM0 else { throw corrupt("slot \(s) has \(c0) level-0 links (max \(index.maxM0))") }
            upperNeeded += Int(f & HNSWIndex.levelMask) * index.upperStride
        }
        guard upperNeeded * 4 == upperRaw.count else {
            throw corrupt("section 'upper' is \(upperRaw.count) bytes, the levels need \(upperNeeded * 4)")
        }
        // Pass 2: upper blocks, then every link's target.
        var offset = 0
        for s in 0..<n where index.flags(s) & HNSWIndex.freeFlag == 0 {
            let level = Int(index.flags(s) & HNSWIndex.levelMask)
            guard level > 0 else { continue }
            let count = level * index.upperStride
            let block = UnsafeMutablePointer<Int32>.allocate(capacity: count)
            block.initialize(repeating: 0, count: count)
            UnsafeMutableRawPointer(block).copyMemory(from: upperRaw.baseAddress! + offset * 4, byteCount: count * 4)
            index.record(s).storeBytes(of: block, toByteOffset: 16, as: UnsafeMutablePointer<Int32>?.self)
            index.upperBytes += count * 4
            offset += count
        }
        for s in 0..<n where index.flags(s) & HNSWIndex.freeFlag == 0 {
            let top = Int(index.flags(s) & HNSWIndex.levelMask)
            for level in 0...top {
                let list = index.links(s, level: level)
                let c = Int(list[0])
                guard c >= 0, c <= index.maxLinks(level) else { throw corrupt("slot \(s) has \(c) links at level \(level)") }
                for j in 0..<c {
                    let e = Int(list[1 + j])
                    guard e >= 0, e < n, e != s else { throw corrupt("slot \(s) links to invalid slot \(e)") }
                    let ef = index.flags(e)
                    guard ef & HNSWIndex.freeFlag == 0, Int(ef & HNSWIndex.levelMask) >= level else {
                        throw corrupt("slot \(s) links at level \(level) to slot \(e), which is free or lower")
                    }
                }
            }
        }
        let entry = try attribute("entry")
        if labels.isEmpty {
            guard entry == -1 else { throw corrupt("an empty index has an entry point") }
        } else {
            let es = Int(entry & 0xFFFF_FFFF), el = Int(entry >> 32)
            guard entry >= 0, es < n, index.flags(es) & HNSWIndex.freeFlag == 0,
                Int(index.flags(es) & HNSWIndex.levelMask) == el
            else { throw corrupt("the entry point \(entry) is not a live node at its level") }
            index.storeEntry(es, level: el)
        }
        guard labels.count == file.count else {
            throw corrupt("the header counts \(file.count) vectors, the records hold \(labels.count)")
        }
        index.labelToSlot.withLock { $0 = labels }
        index.freeSlots = free.reversed()
        encore_store_release_i64(index.liveCountCell, Int64(labels.count))
        index.phiSquared = phi2
        for _ in 0..<draws { _ = index.rng.next() }
        index.rngDraws = draws
        let origin = try file.section("origin")
        let originCount = origin.count / 4
        guard origin.count % 4 == 0, originCount <= index.maxM0, originCount == 0 || index.usesOrigin else {
            throw corrupt("section 'origin' is \(origin.count) bytes (at most \(index.maxM0) links, Möbius inner product only)")
        }
        for j in 0..<originCount {
            let e = origin.loadUnaligned(fromByteOffset: 4 * j, as: Int32.self)
            guard e >= 0, Int(e) < n, index.flags(Int(e)) & HNSWIndex.freeFlag == 0 else {
                throw corrupt("the origin links to invalid slot \(e)")
            }
            index.originLinks[1 + j] = e
        }
        index.originLinks[0] = Int32(originCount)
        if index.codeStride > 0 {
            for (_, slot) in labels { index.encodeSlot(Int(slot)) }
        }
        return index
    }
}

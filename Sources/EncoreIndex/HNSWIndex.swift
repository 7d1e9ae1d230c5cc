internal import CKernels
import Foundation
import EncoreCore

/// How an ``HNSWIndex`` over ``VectorMetric/innerProduct`` builds its graph. Searches always rank by the exact `−q·x`;
/// only the distance between stored vectors used to choose links differs.
///
/// Möbius, the default, suits collaborative-filtering factors, whose popular items have long vectors that a plain
/// graph links every list to. Isotropic high-dimensional directions are hard for any graph (as for l2 on such data);
/// there the plain graph wins because its hubs, the longest vectors, are the answers. See docs/benchmarks.md for
/// measurements.
public enum InnerProductGraph: String, Sendable, CaseIterable {
    /// The Möbius transformation (Zhou et al., NeurIPS 2019): links are chosen by L2 distance between
    /// `x / ‖x‖²`, a graph on which greedy inner-product search is reliable for skewed and isotropic norms alike.
    /// The origin of the transformed space also gets a link list (the heuristic's choice among the vectors nearest
    /// to it there, i.e. the longest ones, in diverse directions); searches start from the usual entry point plus
    /// those links (32 more distances per search), which keep long vectors in new directions reachable (see
    /// docs/benchmarks.md). Each node keeps `1/‖x‖²`; there is no global state, so later adds need no rescaling.
    /// (The default.)
    case mobius
    /// The norm-augmenting transform (Bachrach et al. 2014): links by L2 distance between `(x, √(Φ² − ‖x‖²))`, Φ the
    /// largest norm (grown to 1.1 × a longer vector's norm when one is added, recomputing every node's extra
    /// coordinate). The query `(q, 0)` lies far from the data sphere, which greedy search handles poorly.
    case normAugmented = "norm-augmented"
    /// No transform: links chosen by `−x·y` itself (hnswlib's `ip` space). Good when norms vary little or
    /// directions are isotropic; on collaborative-filtering factors every list fills with the few longest vectors
    /// and recall collapses (see docs/benchmarks.md).
    case plain
}

/// Whether an ``HNSWIndex`` keeps a compact copy of its vectors for the graph walk.
///
/// With ``int8`` every stored vector `x` (after the metric's normalization) is also kept as 8-bit codes, one signed
/// byte per dimension, with its own scale: `x_i ≈ s c_i`, `s = max_i |x_i| / 127`, `c_i = round(x_i / s)`. The
/// greedy descent and the level-0 candidate search rank by the distance from the float query to the decoded vector
/// (64 bytes of codes, one cache line, for a 64-dimensional vector instead of four); the `ef` candidates found are
/// then re-ranked by the exact float distance, so the reported distances are exact. The graph build, filters' exact
/// scans and the stored floats are unchanged. See docs/index.md.
public enum VectorQuantization: String, Sendable, CaseIterable {
    /// Float distances everywhere (the default).
    case none
    /// 8-bit codes with a per-vector scale for the walk, exact float re-ranking of the candidates.
    case int8

    /// Parses an option value (`none` or `int8`).
    /// - Throws: ``IndexError/invalidParameter(_:)`` naming the accepted values.
    public init(parsing text: String) throws(IndexError) {
        guard let q = VectorQuantization(rawValue: text) else {
            let names = VectorQuantization.allCases.map(\.rawValue).joined(separator: ", ")
            throw .invalidParameter("quantization '\(text)' is not one of \(names)")
        }
        self = q
    }
}

/// An approximate k-nearest-neighbor index: a hierarchical navigable small-world graph (Malkov and Yashunin, 2018).
///
/// ## Building
/// Vectors are inserted one at a time (``add(id:vector:)``) or in parallel batches (``add(ids:vectors:threads:)``).
/// Each gets a random top level (`⌊−ln U · 1/ln M⌋`, from a ``SplitMix64`` seeded with `seed`, drawn in insertion
/// order, so a single-threaded build is deterministic), is linked at every level up to it to neighbors chosen by
/// the paper's heuristic (algorithm 4 without `keepPrunedConnections`, as hnswlib): at most `M` links per node on the
/// upper levels and `2M` on level 0. A batch draws its levels in order, then inserts on all threads.
///
/// ## Metrics
/// - ``VectorMetric/cosine``: vectors (and queries) are L2-normalized; distance `1 − a·b`. A zero vector stays zero,
///   at distance 1 from everything.
/// - ``VectorMetric/l2``: squared Euclidean distance.
/// - ``VectorMetric/innerProduct``: distance `−q·x`. Greedy search ranks by the exact inner product, but the links
///   are chosen by a proper metric on transformed vectors (plain HNSW on inner product loses recall on
///   collaborative-filtering factors, whose popular items have long vectors that every list links to). The default
///   transform is Möbius (`x / ‖x‖²`); the norm-augmenting one (`(x, √(Φ² − ‖x‖²))`, Φ the largest norm) and no
///   transform are available for comparison (see ``InnerProductGraph``; docs/benchmarks.md compares their recall).
///   A transform needs one scalar per node (kept in its record, not in the vector), so queries compute plain dot
///   products and reported distances are the exact `−q·x`.
///
/// ## Filters
/// A filter is applied during the graph walk: filtered nodes are traversed but never returned, and the walk goes on
/// until `ef` allowed nodes are held, so a search returns `k` results whenever at least `k` allowed live vectors
/// exist. When a filter allows few vectors (an estimated `A` allowed out of `n` live, with
/// `A ≤ max(4·ef, √(ef · 2M · n / 2))`, the point where scanning them costs less than walking the graph for them),
/// the search scans the allowed vectors exactly instead. The estimate is exact for ``SearchFilter/allowed(_:)``
/// (the bitset's population), `n − |excluded|` for ``SearchFilter/excluded(_:)``, and unknown for a predicate. If
/// the walk still returns fewer than `k` (a predicate allowing few ids, or a graph cut by deletions), an exact scan
/// over all live vectors completes the answer.
///
/// ## Removal and reuse
/// ``remove(id:)`` marks the node deleted at once (it is never returned again) and leaves it in the graph as a
/// waypoint. Once enough deletions are pending (1 % of the slots, at least 16), or on ``purgeDeleted()`` and
/// ``save(to:)``, the next structural operation unlinks them: every live node that links to one is relinked to the
/// best of its remaining links plus the deleted node's live neighbors (the heuristic again); then the writer waits
/// until every search that started before the unlinking has finished (an epoch counter per search context) and the
/// slots go to a free list, reused by later adds. A saved file holds no pending deletions, only free slots.
/// ``update(id:vector:)`` removes the old node and inserts the new vector into a fresh slot, so a concurrent search
/// sees the old vector or the new one (or, for an instant, neither), never a half-written one, and never both.
///
/// ## Concurrency
/// Any number of searches may run on any threads while one writer adds, updates, removes or saves. Searches take no
/// lock held by writers: vectors live in fixed-size chunks that never move (a chunk table allocated up front), link
/// lists are read with acquire loads and written with release stores, a node becomes reachable only after its vector
/// and links are written, and the entry point and top level are one atomic word. Writers are serialized by one lock
/// (a batch add then inserts on many threads, each modifying a node's links under one of 4 096 striped spin locks,
/// held for one list update). A search that starts during an add may or may not see the vectors being added.
///
/// ## Memory layout
/// One record per slot, in chunks: label, flags (level, deleted), the inner-product scalar, the upper-level block
/// pointer, the level-0 link count and `2M` links, then the vector (16-byte aligned): `16·⌈(28 + 8M)/16⌉ + 4d`
/// bytes rounded up to 16 (416 bytes for M 16, d 64). Upper-level links (a node reaches level `l > 0` with
/// probability `M^−l`) are in a separate block per node, `4(1 + M)` bytes per level. See ``memoryUsage``. A chunk
/// of 2 MiB or more is mapped at a 2 MiB boundary and advised for transparent huge pages (`MADV_HUGEPAGE`, which
/// the kernel honors when `/sys/kernel/mm/transparent_hugepage/enabled` is `madvise` or `always`): searches read
/// records at random, and with 4 KiB pages most of those reads would also miss the TLB.
///
/// With ``VectorQuantization/int8``, the codes live beside the records in chunks of their own (as many slots per
/// chunk): first every slot's codes, `codeStride` bytes each (the dimension rounded up to 16, 32 or 64 when at most
/// 64, so one vector's codes never straddle a cache line, else to a multiple of 64), then every slot's scale (a
/// `Float`; 16 per cache line, so the scales of 100 000 vectors, 400 KB, mostly stay in cache). See
/// ``VectorQuantization``.
public final class HNSWIndex: VectorIndex, @unchecked Sendable {
    // Thread-safety: immutable configuration in `let`s; shared mutable state is either raw memory accessed with the
    // atomics of CKernels (links, flags, entry point, counters, epochs), or guarded by `writerLock` (everything that
    // only writers touch: free lists, the RNG, Φ) or `entryLock` (changes of the entry point); the id map is a `Locked`.

    /// The dimension of the vectors.
    public let dimension: Int
    /// The metric results are ranked by.
    public let metric: VectorMetric
    /// The number of links per node on the upper levels (`2M` on level 0).
    public let m: Int
    /// The size of the dynamic candidate list while inserting.
    public let efConstruction: Int
    /// The seed of the level generator.
    public let seed: UInt64
    /// How the graph is built for ``VectorMetric/innerProduct`` (ignored for the other metrics).
    public let innerProductGraph: InnerProductGraph
    /// Whether the graph walk ranks by 8-bit codes before exact re-ranking (see ``VectorQuantization``).
    public let quantization: VectorQuantization

    // Layout.
    let maxM0: Int
    let levelMult: Double
    let recordSize: Int
    let vectorOffset: Int
    let chunkShift: Int
    let chunkMask: Int
    /// The bytes of one chunk of records (allocated and freed with `encore_alloc_table` / `encore_free_table`).
    var chunkBytes: Int { recordSize << chunkShift }
    let maxChunks: Int
    let chunkTable: UnsafeMutablePointer<UnsafeMutableRawPointer?>
    let upperStride: Int  // Int32 values per upper level: count + M links

    // Atomically accessed cells (see the type's thread-safety note).
    /// `level << 32 | slot`, or -1 when the graph is empty.
    let entryCell: UnsafeMutablePointer<Int64>
    /// Number of slots handed out (the high-water mark); slots below it are allocated.
    let slotCountCell: UnsafeMutablePointer<Int64>
    /// Number of live vectors.
    let liveCountCell: UnsafeMutablePointer<Int64>
    /// Number of deleted nodes still linked into the graph.
    let pendingCountCell: UnsafeMutablePointer<Int64>
    /// The global epoch for slot reclamation.
    let epochCell: UnsafeMutablePointer<Int64>
    /// The default search `ef`.
    let efCell: UnsafeMutablePointer<Int64>
    /// Striped spin locks over the nodes' link lists.
    let stripeLocks: UnsafeMutablePointer<Int32>
    /// Möbius inner-product graphs: the link list of the origin (count, then up to `2M` slots): diverse long vectors,
    /// the candidates for a maximum inner product, used as extra entry points. Guarded for writers by `originLock`.
    let originLinks: UnsafeMutablePointer<Int32>
    let originLock: UnsafeMutablePointer<Int32>
    static let stripeCount = 4096

    let writerLock = NSLock()
    let entryLock = NSLock()
    let pool: HNSWContextPool

    /// The id map: each live id's slot.
    let labelToSlot = Locked<[Int32: Int32]>([:])
    // Guarded by writerLock.
    var freeSlots: [Int32] = []
    var pendingDeleted: [Int32] = []
    var rng: SplitMix64
    var rngDraws: Int64 = 0
    /// Φ² for the inner-product transform (0 until the first vector).
    var phiSquared: Float = 0
    var chunkCount = 0
    var upperBytes = 0

    // Quantization (see VectorQuantization); the table has one entry when the index is not quantized.
    /// Bytes of codes per slot (a multiple of 16; 0 when not quantized).
    let codeStride: Int
    /// Code chunks: `chunkMask + 1` slots' codes (`codeStride` bytes each), then their scales (`Float`).
    let codeChunkTable: UnsafeMutablePointer<UnsafeMutableRawPointer?>
    /// The bytes of one code chunk.
    var codeChunkBytes: Int { (codeStride + 4) << chunkShift }

    static let levelMask: Int32 = 0xFF
    static let deletedFlag: Int32 = 0x100
    static let validFlag: Int32 = 0x200
    static let freeFlag: Int32 = 0x400
    static let maxLevel = 31

    /// Creates an empty index.
    ///
    /// - Parameters:
    ///   - dimension: the vectors' dimension (1...65 536).
    ///   - metric: the distance.
    ///   - m: links per node on the upper levels, `2m` on level 0 (2...256; 12-48 is typical).
    ///   - efConstruction: candidate-list size while inserting (at least `m`; higher builds slower, better graphs).
    ///   - ef: the default candidate-list size of ``search(_:k:filter:)`` (at least 1; `max(ef, k)` is used).
    ///   - seed: seeds the level generator.
    ///   - capacity: the expected number of vectors, used to size storage chunks (not a limit).
    ///   - innerProductGraph: the transform the inner-product graph is built on (see ``InnerProductGraph``).
    ///   - quantization: whether searches walk the graph on 8-bit codes (see ``VectorQuantization``).
    /// - Throws: ``IndexError/invalidParameter(_:)`` when a parameter is out of range.
    public init(
        dimension: Int, metric: VectorMetric, m: Int = 16, efConstruction: Int = 200, ef: Int = 64, seed: UInt64 = 42,
        capacity: Int = 0, innerProductGraph: InnerProductGraph = .mobius, quantization: VectorQuantization = .none
    ) throws(IndexError) {
        guard (1...65_536).contains(dimension) else { throw .invalidParameter("dimension \(dimension) must be in 1...65536") }
        guard (2...256).contains(m) else { throw .invalidParameter("m \(m) must be in 2...256") }
        guard efConstruction >= m, efConstruction <= 1_000_000 else {
            throw .invalidParameter("efConstruction \(efConstruction) must be at least m (\(m)) and at most 1000000")
        }
        guard ef >= 1 else { throw .invalidParameter("ef \(ef) must be at least 1") }
        guard capacity >= 0 else { throw .invalidParameter("capacity \(capacity) must be non-negative") }
        self.dimension = dimension
        self.metric = metric
        self.m = m
        self.efConstruction = efConstruction
        self.seed = seed
        self.innerProductGraph = innerProductGraph
        self.quantization = quantization
        maxM0 = 2 * m
        levelMult = 1 / Foundation.log(Double(m))
        upperStride = 1 + m
        // label 0, flags 4, extra coordinate 8, (spare) 12, upper-level block 16, level-0 count 24, links 28...
        let headerBytes = 28 + 4 * maxM0
        vectorOffset = (headerBytes + 15) & ~15
        recordSize = (vectorOffset + 4 * dimension + 15) & ~15
        // Chunks of about a sixteenth of the expected size (1 024 to 65 536 slots), so growth wastes little.
        var shift = 10
        while shift < 16 && (1 << shift) < capacity / 16 { shift += 1 }
        chunkShift = shift
        chunkMask = (1 << shift) - 1
        maxChunks = (Int(Int32.max) >> shift) + 1
        chunkTable = .allocate(capacity: maxChunks)
        chunkTable.initialize(repeating: nil, count: maxChunks)
        func cell(_ v: Int64) -> UnsafeMutablePointer<Int64> {
            let p = UnsafeMutablePointer<Int64>.allocate(capacity: 1)
            p.initialize(to: v)
            return p
        }
        entryCell = cell(-1)
        slotCountCell = cell(0)
        liveCountCell = cell(0)
        pendingCountCell = cell(0)
        epochCell = cell(1)
        efCell = cell(Int64(ef))
        stripeLocks = .allocate(capacity: Self.stripeCount)
        stripeLocks.initialize(repeating: 0, count: Self.stripeCount)
        originLinks = .allocate(capacity: 1 + 2 * m)
        originLinks.initialize(repeating: 0, count: 1 + 2 * m)
        originLock = .allocate(capacity: 1)
        originLock.initialize(to: 0)
        pool = HNSWContextPool(dimension: dimension)
        rng = SplitMix64(seed: seed)
        switch quantization {
        case .none: codeStride = 0
        case .int8: codeStride = dimension <= 16 ? 16 : dimension <= 32 ? 32 : (dimension + 63) & ~63
        }
        codeChunkTable = .allocate(capacity: codeStride > 0 ? maxChunks : 1)
        codeChunkTable.initialize(repeating: nil, count: codeStride > 0 ? maxChunks : 1)
    }

    deinit {
        let slots = Int(slotCountCell.pointee)
        for s in 0..<slots {
            let r = record(s)
            if let up = r.load(fromByteOffset: 16, as: UnsafeMutablePointer<Int32>?.self) { up.deallocate() }
        }
        for c in 0..<maxChunks {
            guard let chunk = chunkTable[c] else { break }
            encore_free_table(chunk, chunkBytes)
        }
        chunkTable.deallocate()
        if codeStride > 0 {
            for c in 0..<maxChunks {
                guard let chunk = codeChunkTable[c] else { break }
                encore_free_table(chunk, codeChunkBytes)
            }
        }
        codeChunkTable.deallocate()
        for p in [entryCell, slotCountCell, liveCountCell, pendingCountCell, epochCell, efCell] { p.deallocate() }
        stripeLocks.deallocate()
        originLinks.deallocate()
        originLock.deallocate()
    }

    // MARK: Properties

    /// The number of live (not deleted) vectors.
    public var count: Int { Int(encore_load_acquire_i64(liveCountCell)) }

    /// The default `ef` of ``search(_:k:filter:)`` (at least 1). Setting it is safe while searches run.
    public var ef: Int {
        get { Int(encore_load_acquire_i64(efCell)) }
        set { encore_store_release_i64(efCell, Int64(max(1, newValue))) }
    }

    /// The number of slots in use, live or deleted-but-not-yet-reused (the level-0 records held).
    public var slotCount: Int { Int(encore_load_acquire_i64(slotCountCell)) }

    /// The number of deleted vectors whose slots are not yet free for reuse.
    public var pendingDeletions: Int { Int(encore_load_acquire_i64(pendingCountCell)) }

    /// The top level of the graph (-1 when empty).
    public var maxLevel: Int {
        let e = encore_load_acquire_i64(entryCell)
        return e < 0 ? -1 : Int(e >> 32)
    }

    /// Bytes held by the index: record chunks (vectors and level-0 links), code chunks (quantized indexes), upper-level
    /// link blocks, the id map, the chunk table's used part and the pooled search contexts (visited sets, heaps).
    /// Divide by ``count`` for bytes per vector.
    public var memoryUsage: Int {
        writerLock.lock()
        let chunks = chunkCount * (chunkBytes + (codeStride > 0 ? codeChunkBytes : 0))
        let upper = upperBytes
        writerLock.unlock()
        let map = labelToSlot.withLock { $0.capacity } * 9 + 64
        return chunks + upper + map + maxChunks * 8 / 64 + pool.memoryUsage
    }

    /// Whether `id` is a live vector of the index.
    public func contains(id: Int32) -> Bool {
        labelToSlot.withLock { $0[id] != nil }
    }

    /// The stored vector of `id` (L2-normalized for cosine), or nil when `id` is not live.
    public func vector(for id: Int32) -> [Float]? {
        writerLock.lock()
        defer { writerLock.unlock() }
        guard let slot = labelToSlot.withLock({ $0[id] }) else { return nil }
        let v = vectorPointer(Int(slot))
        return Array(UnsafeBufferPointer(start: v, count: dimension))
    }

    /// All live ids, in no particular order.
    public var ids: [Int32] {
        labelToSlot.withLock { Array($0.keys) }
    }

    // MARK: Records

    /// The record of `slot` (which must be allocated).
    @inline(__always)
    func record(_ slot: Int) -> UnsafeMutableRawPointer {
        chunkTable[slot >> chunkShift].unsafelyUnwrapped + (slot & chunkMask) * recordSize
    }

    @inline(__always)
    func vectorPointer(_ slot: Int) -> UnsafeMutablePointer<Float> {
        (record(slot) + vectorOffset).assumingMemoryBound(to: Float.self)
    }

    /// The 8-bit codes of `slot` (quantized indexes only; the slot must be allocated).
    @inline(__always)
    func codePointer(_ slot: Int) -> UnsafeMutablePointer<Int8> {
        (codeChunkTable[slot >> chunkShift].unsafelyUnwrapped + (slot & chunkMask) * codeStride)
            .assumingMemoryBound(to: Int8.self)
    }

    /// The scale of `slot`'s codes (quantized indexes only).
    @inline(__always)
    func codeScalePointer(_ slot: Int) -> UnsafeMutablePointer<Float> {
        (codeChunkTable[slot >> chunkShift].unsafelyUnwrapped + (chunkMask + 1) * codeStride + 4 * (slot & chunkMask))
            .assumingMemoryBound(to: Float.self)
    }

    @inline(__always)
    func flagsPointer(_ slot: Int) -> UnsafeMutablePointer<Int32> {
        (record(slot) + 4).assumingMemoryBound(to: Int32.self)
    }

    @inline(__always)
    func flags(_ slot: Int) -> Int32 { encore_load_acquire_i32(flagsPointer(slot)) }

    @inline(__always)
    func label(_ slot: Int) -> Int32 { record(slot).load(as: Int32.self) }

    @inline(__always)
    func augmentation(_ slot: Int) -> Float { record(slot).load(fromByteOffset: 8, as: Float.self) }

    /// The link list of `slot` at `level`: the count, then the links. The node must have that level.
    @inline(__always)
    func links(_ slot: Int, level: Int) -> UnsafeMutablePointer<Int32> {
        let r = record(slot)
        if level == 0 { return (r + 24).assumingMemoryBound(to: Int32.self) }
        let up = r.load(fromByteOffset: 16, as: UnsafeMutablePointer<Int32>.self)
        return up + (level - 1) * upperStride
    }

    @inline(__always)
    func maxLinks(_ level: Int) -> Int { level == 0 ? maxM0 : m }

    @inline(__always)
    func lockNode(_ slot: Int) { encore_spin_lock(stripeLocks + (slot & (Self.stripeCount - 1))) }

    @inline(__always)
    func unlockNode(_ slot: Int) { encore_spin_unlock(stripeLocks + (slot & (Self.stripeCount - 1))) }

    /// The entry point and top level, or nil when the graph is empty.
    @inline(__always)
    func loadEntry() -> (slot: Int, level: Int)? {
        let e = encore_load_acquire_i64(entryCell)
        return e < 0 ? nil : (Int(e & 0xFFFF_FFFF), Int(e >> 32))
    }

    func storeEntry(_ slot: Int, level: Int) {
        encore_store_release_i64(entryCell, Int64(level) << 32 | Int64(slot))
    }

    // MARK: Distances

    /// How a search measures distance from its query (`q`, with scalar `qs`) to a stored node `x` (with scalar `s`,
    /// the record's extra value).
    struct Distance {
        /// `sq8L2` and `sq8Dot` read a slot's 8-bit codes; their query is prepared by `prepareQuantizedQuery`.
        enum Kind { case l2, dot, augmented, mobius, sq8L2, sq8Dot }
        let kind: Kind
        /// `1` for cosine (`1 − q·x`), `0` for the inner product (`−q·x`).
        let offset: Float
        /// The node scalar's factor (augmented, Möbius).
        let qs: Float
    }

    /// The distance used by searches: the index metric, with the inner product as `−q·x`.
    var queryDistance: Distance {
        switch metric {
        case .l2: return Distance(kind: .l2, offset: 0, qs: 0)
        case .cosine: return Distance(kind: .dot, offset: 1, qs: 0)
        case .innerProduct: return Distance(kind: .dot, offset: 0, qs: 0)
        }
    }

    /// The distance used to build the graph from node `slot`. For the inner product it is a metric on transformed
    /// vectors: Möbius, `‖x/‖x‖² − y/‖y‖²‖² = s_x + s_y − 2 x·y s_x s_y` with `s = 1/‖x‖²`; or norm-augmented,
    /// `½‖x' − y'‖² − Φ² = −x·y − a_x a_y` with `a = √(Φ² − ‖x‖²)`.
    @inline(__always)
    func buildDistance(from slot: Int) -> Distance {
        switch metric {
        case .l2: return Distance(kind: .l2, offset: 0, qs: 0)
        case .cosine: return Distance(kind: .dot, offset: 1, qs: 0)
        case .innerProduct:
            switch innerProductGraph {
            case .mobius: return Distance(kind: .mobius, offset: 0, qs: augmentation(slot))
            case .normAugmented: return Distance(kind: .augmented, offset: 0, qs: augmentation(slot))
            case .plain: return Distance(kind: .dot, offset: 0, qs: 0)
            }
        }
    }

    @inline(__always)
    func distance(_ d: Distance, _ q: UnsafePointer<Float>, _ slot: Int) -> Float {
        let r = record(slot)
        let x = (r + vectorOffset).assumingMemoryBound(to: Float.self)
        switch d.kind {
        case .l2:
            return encore_squared_distance(q, x, dimension)
        case .dot:
            return d.offset - encore_dot(q, x, dimension)
        case .augmented:
            return -encore_dot(q, x, dimension) - d.qs * r.load(fromByteOffset: 8, as: Float.self)
        case .mobius:
            let s = r.load(fromByteOffset: 8, as: Float.self)
            return d.qs + s - 2 * encore_dot(q, x, dimension) * d.qs * s
        case .sq8L2:
            return encore_sq8_l2(q, codeScalePointer(slot).pointee, codePointer(slot), codeStride)
        case .sq8Dot:
            return d.offset - codeScalePointer(slot).pointee * encore_sq8_dot(q, codePointer(slot), codeStride)
        }
    }

    /// Whether searches seed the walk with the origin's links (Möbius inner-product graphs).
    var usesOrigin: Bool { metric == .innerProduct && innerProductGraph == .mobius }

    /// The build distance between two stored nodes.
    @inline(__always)
    func nodeDistance(_ a: Int, _ b: Int) -> Float {
        distance(buildDistance(from: a), vectorPointer(a), b)
    }
}

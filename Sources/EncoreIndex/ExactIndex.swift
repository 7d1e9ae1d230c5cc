import Foundation
import EncoreCore

/// Exact k-nearest-neighbor search by brute force over BLAS: the ground truth for approximate indexes and the right
/// index for small catalogs (up to a few hundred thousand vectors, or when every query must be exact).
///
/// Vectors live in one row-major block. A batch of queries is scored against it in tiles with `sgemm`
/// (``BLAS/gemmABt(_:_:_:m:n:k:alpha:beta:)``) and a bounded heap (``TopK``) keeps the best `k` of each query row; query
/// tiles run in parallel on all cores. A single query is scored with one `sgemv`.
///
/// Metrics (smaller is closer):
/// - ``VectorMetric/cosine``: vectors and queries are L2-normalized; distance `1 − q·x`. A zero vector stays zero,
///   at distance 1 from everything.
/// - ``VectorMetric/l2``: squared distance, ranked by `‖q‖² − 2q·x + ‖x‖²` with the norms precomputed, then the
///   best candidates' distances recomputed directly (`Σ (qᵢ − xᵢ)²`) so the reported values are exact.
/// - ``VectorMetric/innerProduct``: `−q·x`.
///
/// Removing an id moves the last vector into its slot, so storage stays dense and removed ids never return.
/// Filters are applied to every candidate, so a filtered search is exact too. Ties are broken by storage slot.
///
/// `ExactIndex` is a value type: copies are independent, and any number of threads may search one value at once.
public struct ExactIndex: VectorIndex, Sendable {
    /// The kind recorded in saved files.
    public static let fileKind = "exact"

    /// The dimension of the vectors.
    public let dimension: Int
    /// The metric results are ranked by.
    public let metric: VectorMetric

    /// Row-major vectors, `count × dimension` (L2-normalized for cosine).
    private var vectors: [Float] = []
    /// The id of each row.
    private var rowIDs: [Int32] = []
    /// `‖x‖²` of each row (used by l2).
    private var squaredNorms: [Float] = []
    /// The row of each id.
    private var rowOfID: [Int32: Int] = [:]

    /// Query rows per `sgemm` tile.
    static let queryTile = 64
    /// Catalog rows per `sgemm` tile.
    static let baseTile = 4096

    /// An empty index.
    /// - Throws: ``IndexError/invalidParameter(_:)`` when `dimension` is not positive.
    public init(dimension: Int, metric: VectorMetric) throws(IndexError) {
        guard dimension > 0 else { throw .invalidParameter("dimension must be positive, got \(dimension)") }
        self.dimension = dimension
        self.metric = metric
    }

    /// An index over the rows of `vectors`, with ids `ids` (default `0..<rows`).
    /// - Throws: as ``add(ids:vectors:)``.
    public init(vectors: Matrix, ids: [Int32]? = nil, metric: VectorMetric) throws(IndexError) {
        try self.init(dimension: vectors.cols, metric: metric)
        guard vectors.rows <= Int(Int32.max) else { throw .invalidParameter("too many vectors: \(vectors.rows)") }
        try add(ids: ids ?? (0..<Int32(vectors.rows)).map { $0 }, vectors: vectors)
    }

    /// The number of live vectors.
    public var count: Int { rowIDs.count }

    /// The live ids, in storage order.
    public var ids: [Int32] { rowIDs }

    /// Approximate heap bytes held (vectors, ids, norms and the id map).
    public var memoryUsage: Int {
        vectors.capacity * 4 + rowIDs.capacity * 4 + squaredNorms.capacity * 4 + rowOfID.capacity * 24
    }

    /// Whether `id` is in the index.
    public func contains(id: Int32) -> Bool { rowOfID[id] != nil }

    /// The stored vector of `id` (normalized for cosine), or nil when absent.
    public func vector(for id: Int32) -> [Float]? {
        guard let r = rowOfID[id] else { return nil }
        return Array(vectors[(r * dimension)..<((r + 1) * dimension)])
    }

    // MARK: Adding and removing

    /// Adds one vector under `id`.
    /// - Throws: ``IndexError/dimensionMismatch(expected:got:)``, ``IndexError/invalidVector(id:reason:)`` (NaN or
    ///   infinity), ``IndexError/invalidID(_:reason:)`` (negative or already present).
    public mutating func add(id: Int32, vector: [Float]) throws(IndexError) {
        guard vector.count == dimension else { throw .dimensionMismatch(expected: dimension, got: vector.count) }
        let m: Matrix
        do { m = try Matrix(rows: 1, cols: dimension, storage: vector) } catch { throw .dimensionMismatch(expected: dimension, got: vector.count) }
        try add(ids: [id], vectors: m)
    }

    /// Adds the rows of `vectors` under `ids` (one id per row). All or nothing: on error nothing is added.
    /// - Throws: ``IndexError/dimensionMismatch(expected:got:)`` when the column count differs from the index's,
    ///   ``IndexError/invalidParameter(_:)`` when the id and row counts differ, ``IndexError/invalidVector(id:reason:)``,
    ///   ``IndexError/invalidID(_:reason:)`` (negative, already present, or repeated in `ids`).
    public mutating func add(ids newIDs: [Int32], vectors newVectors: Matrix) throws(IndexError) {
        try add(ids: newIDs, vectors: newVectors, normalized: false)
    }

    /// `add(ids:vectors:)`; `normalized` skips re-normalizing cosine vectors that were stored normalized already.
    private mutating func add(ids newIDs: [Int32], vectors newVectors: Matrix, normalized: Bool) throws(IndexError) {
        guard newVectors.cols == dimension else { throw .dimensionMismatch(expected: dimension, got: newVectors.cols) }
        guard newIDs.count == newVectors.rows else {
            throw .invalidParameter("\(newIDs.count) ids for \(newVectors.rows) vectors")
        }
        guard count + newIDs.count <= Int(Int32.max) else { throw .invalidParameter("the index would exceed \(Int32.max) vectors") }
        let d = dimension
        var seen = Set<Int32>(minimumCapacity: newIDs.count)
        var norms = [Float](repeating: 0, count: newIDs.count)
        for (r, id) in newIDs.enumerated() {
            guard id >= 0 else { throw .invalidID(id, reason: "ids must be non-negative") }
            guard rowOfID[id] == nil, seen.insert(id).inserted else { throw .invalidID(id, reason: "already present") }
            var sum: Double = 0
            for c in 0..<d {
                let v = newVectors.storage[r * d + c]
                guard v.isFinite else { throw .invalidVector(id: id, reason: "holds NaN or infinity at position \(c)") }
                sum += Double(v) * Double(v)
            }
            guard Float(sum).isFinite else { throw .invalidVector(id: id, reason: "its norm overflows Float") }
            norms[r] = Float(sum)
        }
        let base = count
        vectors.reserveCapacity(vectors.count + newVectors.storage.count)
        if metric == .cosine && !normalized {
            for r in 0..<newIDs.count {
                // A zero vector stays zero: its cosine with anything is 0.
                let inv = norms[r] > 0 ? Float(1 / Double(norms[r]).squareRoot()) : 0
                for c in 0..<d { vectors.append(newVectors.storage[r * d + c] * inv) }
                norms[r] = 1
            }
        } else {
            vectors.append(contentsOf: newVectors.storage)
            if metric == .cosine { norms = [Float](repeating: 1, count: newIDs.count) }
        }
        rowIDs.append(contentsOf: newIDs)
        squaredNorms.append(contentsOf: norms)
        for (r, id) in newIDs.enumerated() { rowOfID[id] = base + r }
    }

    /// Removes `id`; it is never returned again (until added anew).
    /// - Throws: ``IndexError/invalidID(_:reason:)`` when `id` is not in the index.
    public mutating func remove(id: Int32) throws(IndexError) {
        guard let r = rowOfID.removeValue(forKey: id) else { throw .invalidID(id, reason: "not in the index") }
        let last = count - 1
        if r != last {
            let d = dimension
            vectors.withUnsafeMutableBufferPointer { v in
                for c in 0..<d { v[r * d + c] = v[last * d + c] }
            }
            rowIDs[r] = rowIDs[last]
            squaredNorms[r] = squaredNorms[last]
            rowOfID[rowIDs[r]] = r
        }
        vectors.removeLast(dimension)
        rowIDs.removeLast()
        squaredNorms.removeLast()
    }

    // MARK: Searching

    /// The `k` nearest live vectors to `query` that `filter` allows, closest first (fewer when fewer exist).
    ///
    /// Scores the whole catalog with one `sgemv` on the calling thread.
    /// - Throws: ``IndexError/dimensionMismatch(expected:got:)``, ``IndexError/invalidParameter(_:)`` for a negative
    ///   `k` or a query holding NaN or infinity.
    public func search(_ query: [Float], k: Int, filter: SearchFilter? = nil) throws(IndexError) -> [Neighbor] {
        guard query.count == dimension else { throw .dimensionMismatch(expected: dimension, got: query.count) }
        guard k >= 0 else { throw .invalidParameter("k must be non-negative, got \(k)") }
        var q = query
        let qNorm = try prepare(&q, 0, label: "the query")
        guard k > 0, count > 0 else { return [] }
        let n = count, d = dimension
        var scores = [Float](repeating: 0, count: n)
        let pool = poolSize(k)
        var heap = TopK(k: pool)
        vectors.withUnsafeBufferPointer { x in
            q.withUnsafeBufferPointer { qp in
                scores.withUnsafeMutableBufferPointer { s in
                    BLAS.gemv(x.baseAddress!, m: n, n: d, qp.baseAddress!, s.baseAddress!)
                    select(UnsafePointer(s.baseAddress!), rows: 0..<n, queryNorm: qNorm, filter: filter, into: &heap)
                }
            }
        }
        return q.withUnsafeBufferPointer { finish(&heap, k: k, query: $0.baseAddress!) }
    }

    /// The `k` nearest neighbors of every row of `queries`, exact, computed in `sgemm` tiles on `threads` threads
    /// (0 = every core).
    /// - Throws: ``IndexError/dimensionMismatch(expected:got:)``, ``IndexError/invalidParameter(_:)`` for a negative
    ///   `k` or a query row holding NaN or infinity.
    public func search(queries: Matrix, k: Int, filter: SearchFilter? = nil, threads: Int = 0) throws(IndexError) -> [[Neighbor]] {
        guard queries.cols == dimension else { throw .dimensionMismatch(expected: dimension, got: queries.cols) }
        guard k >= 0 else { throw .invalidParameter("k must be non-negative, got \(k)") }
        let nq = queries.rows, d = dimension, n = count
        var q = queries.storage
        var qNorms = [Float](repeating: 0, count: nq)
        for i in 0..<nq { qNorms[i] = try prepare(&q, i, label: "query \(i)") }
        guard k > 0, n > 0, nq > 0 else { return [[Neighbor]](repeating: [], count: nq) }

        let t = threads > 0 ? threads : Parallel.coreCount
        // Enough query tiles to keep every thread busy, at most `queryTile` rows each.
        let qTile = max(1, min(Self.queryTile, (nq + t - 1) / t))
        let tiles = (nq + qTile - 1) / qTile
        let nTile = min(n, Self.baseTile)
        let pool = poolSize(k)
        var results = [[Neighbor]](repeating: [], count: nq)
        results.withUnsafeMutableBufferPointer { out in
            vectors.withUnsafeBufferPointer { xb in
                q.withUnsafeBufferPointer { qb in
                    let x = xb.baseAddress!, qp = qb.baseAddress!
                    Parallel.forEach(tiles, threads: min(t, tiles)) { tile in
                        let q0 = tile * qTile, q1 = min(nq, q0 + qTile), m = q1 - q0
                        var heaps = (0..<m).map { _ in TopK(k: pool) }
                        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: m * nTile)
                        defer { scratch.deallocate() }
                        var b0 = 0
                        while b0 < n {
                            let nb = min(nTile, n - b0)
                            BLAS.gemmABt(qp + q0 * d, x + b0 * d, scratch, m: m, n: nb, k: d)
                            for i in 0..<m {
                                select(UnsafePointer(scratch + i * nb), rows: b0..<(b0 + nb), queryNorm: qNorms[q0 + i],
                                       filter: filter, into: &heaps[i])
                            }
                            b0 += nb
                        }
                        for i in 0..<m { out[q0 + i] = finish(&heaps[i], k: k, query: qp + (q0 + i) * d) }
                    }
                }
            }
        }
        return results
    }

    /// Checks row `row` of `q` (finite), normalizes it for cosine (a zero row stays zero), and returns `‖q‖²` after that.
    private func prepare(_ q: inout [Float], _ row: Int, label: @autoclosure () -> String) throws(IndexError) -> Float {
        let d = dimension
        var sum: Double = 0
        for c in 0..<d {
            let v = q[row * d + c]
            guard v.isFinite else { throw .invalidParameter("\(label()) holds NaN or infinity at position \(c)") }
            sum += Double(v) * Double(v)
        }
        guard metric == .cosine else { return Float(sum) }
        guard sum > 0 else { return 1 }
        let inv = Float(1 / sum.squareRoot())
        for c in 0..<d { q[row * d + c] *= inv }
        return 1
    }

    /// Candidates kept per query: l2 keeps a few extra, re-ranked by their directly computed distances.
    private func poolSize(_ k: Int) -> Int { metric == .l2 ? k + min(k, 16) : k }

    /// Offers rows `rows` (the dot product of row `r` at `dots[r − rows.lowerBound]`) to `heap`, scored as minus the distance.
    @inline(__always)
    private func select(
        _ dots: UnsafePointer<Float>, rows: Range<Int>, queryNorm: Float, filter: SearchFilter?, into heap: inout TopK
    ) {
        squaredNorms.withUnsafeBufferPointer { norms in
            rowIDs.withUnsafeBufferPointer { ids in
                var threshold = heap.threshold
                let first = rows.lowerBound
                for r in rows {
                    let dot = dots[r - first]
                    let score: Float
                    switch metric {
                    case .cosine: score = dot - 1
                    case .innerProduct: score = dot
                    case .l2: score = -max(0, queryNorm + norms[r] - 2 * dot)
                    }
                    if score < threshold { continue }
                    if let filter, !filter.allows(ids[r]) { continue }
                    heap.push(Int32(r), score)
                    threshold = heap.threshold
                }
            }
        }
    }

    /// The best `k` of `heap` as neighbors (l2: distances recomputed directly and re-ranked).
    private func finish(_ heap: inout TopK, k: Int, query: UnsafePointer<Float>) -> [Neighbor] {
        heap.finish()
        var out = zip(heap.indices, heap.scores).map { (row: Int($0.0), distance: -$0.1) }
        if metric == .l2 {
            vectors.withUnsafeBufferPointer { x in
                for i in out.indices {
                    out[i].distance = Kernels.squaredDistance(query, x.baseAddress! + out[i].row * dimension, dimension)
                }
            }
            out.sort { $0.distance < $1.distance || ($0.distance == $1.distance && $0.row < $1.row) }
        }
        return out.prefix(k).map { Neighbor(id: rowIDs[$0.row], distance: $0.distance) }
    }

    // MARK: Saving and loading

    /// Writes the index to `path` as an ``IndexFile`` of kind `exact` (sections `vectors`: `Float`, `count ×
    /// dimension`, normalized for cosine; `ids`: `Int32`), atomically.
    /// - Throws: ``IndexError/io(path:reason:)`` when the file cannot be written.
    public func save(to path: String) throws(IndexError) {
        var b = IndexFile.Builder(kind: Self.fileKind, metric: metric, dimension: dimension, count: count)
        b.stringAttributes["encore_version"] = Encore.version
        b.append("vectors", vectors)
        b.append("ids", rowIDs)
        try b.write(to: path)
    }

    /// Reads an index written by ``save(to:)``.
    /// - Throws: ``IndexError/io(path:reason:)`` for a missing or unreadable file, ``IndexError/corruptFile(path:reason:)``
    ///   for a damaged, foreign or non-`exact` file, or one whose vectors or ids are invalid.
    public static func load(from path: String) throws(IndexError) -> ExactIndex {
        let file = try IndexFile.open(path: path, expectedKind: fileKind)
        return try load(from: file)
    }

    /// Builds an index from an opened ``IndexFile`` of kind `exact` (the data are copied out of the mapping).
    /// - Throws: ``IndexError/corruptFile(path:reason:)`` when the kind, sections or values are invalid.
    public static func load(from file: IndexFile) throws(IndexError) -> ExactIndex {
        func corrupt(_ reason: String) -> IndexError { .corruptFile(path: file.path, reason: reason) }
        guard file.kind == fileKind else { throw corrupt("wrong kind: the file holds a '\(file.kind)' index, expected '\(fileKind)'") }
        guard file.dimension > 0 else { throw corrupt("dimension \(file.dimension) is not positive") }
        let (n, overflow) = file.count.multipliedReportingOverflow(by: file.dimension)
        guard !overflow else { throw corrupt("count \(file.count) × dimension \(file.dimension) overflows") }
        let vectors = try file.array("vectors", of: Float.self, count: n)
        let ids = try file.array("ids", of: Int32.self, count: file.count)
        var index: ExactIndex
        do { index = try ExactIndex(dimension: file.dimension, metric: file.metric) } catch { throw corrupt("\(error)") }
        let m: Matrix
        do { m = try Matrix(rows: file.count, cols: file.dimension, storage: Array(vectors)) } catch { throw corrupt("\(error)") }
        do { try index.add(ids: Array(ids), vectors: m, normalized: true) } catch { throw corrupt("invalid contents: \(error)") }
        return index
    }
}

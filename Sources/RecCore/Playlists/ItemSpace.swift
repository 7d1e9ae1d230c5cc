/// A space of item vectors in which tracks are "near" each other: collaborative-filtering factors today, audio
/// embeddings or text vectors later, or a hybrid of them.
///
/// The space keeps its vectors L2-normalised, so the similarity of two items is the cosine of their vectors. Items
/// without a vector (a zero row, or not in `validItems`) are never near anything: their similarity is 0 and they are
/// never returned as neighbours.
///
/// Neighbour queries go through a ``VectorIndex`` when one is given (HNSW for a large catalogue; its ids must be the
/// item indices and it should rank by cosine over these vectors, or by inner product or L2 over the normalised
/// vectors), otherwise through an exact scan of all vectors. Either way the similarities returned are the exact
/// cosines recomputed from the vectors, so two spaces give comparable numbers whatever their index.
public struct ItemSpace: Sendable {
    /// The space's name (`cf`, `audio`, `text`, ...), recorded with the candidates it produces.
    public let name: String
    /// One L2-normalised row per item (zero rows for items without a vector).
    public let vectors: Matrix
    /// The index over the items' vectors, or `nil` for exact scans.
    public let index: (any VectorIndex)?
    /// Items that have a vector.
    public let hasVector: IDBitset

    /// A space over the rows of `vectors` (normalised here).
    ///
    /// - Parameters:
    ///   - name: the space's name.
    ///   - vectors: one row per item, any scale.
    ///   - index: an index over the same items (ids = item indices), or `nil`.
    ///   - validItems: when given, only these items have a vector (for example the items with training plays: the
    ///     factors of an item nobody played are noise).
    /// - Throws: ``PlaylistError/shapeMismatch(_:)`` when the index's dimension differs from the vectors'.
    public init(name: String, vectors: Matrix, index: (any VectorIndex)? = nil, validItems: IDBitset? = nil) throws(PlaylistError) {
        if let index, index.dimension != vectors.cols {
            throw .shapeMismatch("the index of space '\(name)' has dimension \(index.dimension), the vectors \(vectors.cols)")
        }
        var v = vectors.rowNormalized()
        var present = IDBitset(capacity: vectors.rows)
        let norms = vectors.rowNorms()
        for r in 0..<vectors.rows {
            if norms[r] > 0 && norms[r].isFinite && (validItems?.contains(Int32(r)) ?? true) {
                present.insert(Int32(r))
            } else {
                for c in 0..<vectors.cols { v[r, c] = 0 }
            }
        }
        self.name = name
        self.vectors = v
        self.index = index
        self.hasVector = present
    }

    /// The collaborative-filtering space of a model: its item factors, with only the items that have an entry in
    /// `userItems` (the training matrix) when it is given.
    /// - Throws: as ``init(name:vectors:index:validItems:)``.
    public static func collaborative(
        _ model: ImplicitALS, userItems: CSRMatrix? = nil, index: (any VectorIndex)? = nil
    ) throws(PlaylistError) -> ItemSpace {
        var valid: IDBitset? = nil
        if let userItems {
            var b = IDBitset(capacity: model.itemCount)
            for i in userItems.indices { b.insert(i) }
            valid = b
        }
        return try ItemSpace(name: "cf", vectors: model.itemFactors, index: index, validItems: valid)
    }

    /// The number of items.
    public var itemCount: Int { vectors.rows }
    /// The dimension of the vectors.
    public var dimension: Int { vectors.cols }

    /// The normalised vector of `item` (zeros when it has none or is out of range).
    public func vector(_ item: Int32) -> [Float] {
        guard item >= 0, Int(item) < vectors.rows else { return [Float](repeating: 0, count: vectors.cols) }
        return vectors.row(Int(item))
    }

    /// The cosine similarity of two items (0 when either has no vector).
    @inline(__always)
    public func cosine(_ a: Int32, _ b: Int32) -> Float {
        guard a >= 0, b >= 0, Int(a) < vectors.rows, Int(b) < vectors.rows else { return 0 }
        let d = vectors.cols
        return vectors.storage.withUnsafeBufferPointer { s in
            Kernels.dot(s.baseAddress! + Int(a) * d, s.baseAddress! + Int(b) * d, d)
        }
    }

    /// The cosine similarity of `item` to a (not necessarily normalised) vector `q` of norm `qNorm`.
    func cosine(_ item: Int32, toUnit q: [Float]) -> Float {
        guard item >= 0, Int(item) < vectors.rows, q.count == vectors.cols else { return 0 }
        let d = vectors.cols
        return vectors.storage.withUnsafeBufferPointer { s in
            q.withUnsafeBufferPointer { Kernels.dot(s.baseAddress! + Int(item) * d, $0.baseAddress!, d) }
        }
    }

    /// The `k` items nearest to `query` by cosine that `filter` allows (items without a vector are never returned),
    /// most similar first, as `(item, cosine)`.
    /// - Throws: ``PlaylistError/shapeMismatch(_:)`` for a query of the wrong dimension, ``PlaylistError/index(_:)``
    ///   when the index fails.
    public func neighbours(
        of query: [Float], k: Int, filter: SearchFilter? = nil
    ) throws(PlaylistError) -> [(item: Int32, similarity: Float)] {
        guard query.count == vectors.cols else {
            throw .shapeMismatch("a query of \(query.count) values in space '\(name)' of dimension \(vectors.cols)")
        }
        guard k > 0, vectors.rows > 0 else { return [] }
        var norm: Float = 0
        for x in query { norm += x * x }
        norm = norm.squareRoot()
        guard norm > 0, norm.isFinite else { return [] }
        let unit = query.map { $0 / norm }
        let present = hasVector
        if let index {
            let allowed: SearchFilter
            if let filter {
                allowed = .predicate { present.contains($0) && filter.allows($0) }
            } else {
                allowed = .allowed(present)
            }
            let found: [Neighbor]
            do { found = try index.search(unit, k: k, filter: allowed) } catch { throw .index(error) }
            var out = found.map { (item: $0.id, similarity: cosine($0.id, toUnit: unit)) }
            out.sort { $0.similarity != $1.similarity ? $0.similarity > $1.similarity : $0.item < $1.item }
            return out
        }
        var scores = [Float](repeating: 0, count: vectors.rows)
        vectors.storage.withUnsafeBufferPointer { s in
            unit.withUnsafeBufferPointer { q in
                scores.withUnsafeMutableBufferPointer { out in
                    BLAS.gemv(s.baseAddress!, m: vectors.rows, n: vectors.cols, q.baseAddress!, out.baseAddress!)
                }
            }
        }
        let picked = scores.withUnsafeBufferPointer { s in
            TopK.select(s, k: k, exclude: { !present.contains($0) || !(filter?.allows($0) ?? true) })
        }
        return zip(picked.indices, picked.scores).map { (item: $0, similarity: $1) }
    }

    /// The `k` items nearest to item `item` (itself left out), as ``neighbours(of:k:filter:)``.
    public func neighbours(
        ofItem item: Int32, k: Int, filter: SearchFilter? = nil
    ) throws(PlaylistError) -> [(item: Int32, similarity: Float)] {
        guard item >= 0, Int(item) < vectors.rows else { throw .unknownIndex("item \(item) of \(vectors.rows) in space '\(name)'") }
        guard hasVector.contains(item) else { return [] }
        let inner: SearchFilter = .predicate { $0 != item && (filter?.allows($0) ?? true) }
        return try neighbours(of: vector(item), k: k, filter: inner)
    }
}

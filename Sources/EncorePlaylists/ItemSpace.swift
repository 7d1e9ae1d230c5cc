import EncoreCore
import EncoreFactorization
import EncoreIndex

/// A space of item vectors in which tracks are "near" each other: collaborative-filtering factors today, audio
/// embeddings or text vectors later, or a hybrid of them.
///
/// The space keeps its vectors L2-normalized, so the similarity of two items is the cosine of their vectors. Items
/// without a vector (a zero row, or not in `validItems`) are never near anything: their similarity is 0 and they are
/// never returned as neighbors.
///
/// Neighbor queries go through a ``VectorIndex`` when one is given (HNSW for a large catalog; its ids must be the
/// item indices and it should rank by cosine over these vectors, or by inner product or L2 over the normalized
/// vectors), otherwise through an exact scan of all vectors. Either way the similarities returned are the exact
/// cosines recomputed from the vectors, so two spaces give comparable numbers whatever their index.
public struct ItemSpace: Sendable {
    /// The space's name (`cf`, `audio`, `text`, ...), recorded with the candidates it produces.
    public let name: String
    /// One L2-normalized row per item (zero rows for items without a vector).
    public let vectors: Matrix
    /// The index over the items' vectors, or `nil` for exact scans.
    public private(set) var index: (any VectorIndex)?
    /// Items that have a vector.
    public let hasVector: IDBitset
    /// Items without a vector (the complement of ``hasVector`` over the items), for index filters.
    let noVector: IDBitset
    /// Precomputed nearest neighbors of every item (see ``withNeighborLists(count:threads:progress:)``), or `nil`.
    public private(set) var neighborLists: NeighborLists?

    /// Every item's `count` nearest items in a space, most similar first, computed once and shared by every user's
    /// playlists: `items[start[i]..<start[i + 1]]` are item `i`'s neighbors and `similarities` their cosines.
    ///
    /// A list shorter than ``count`` holds every neighbor the space has for the item.
    public struct NeighborLists: Sendable {
        /// The neighbors asked per item.
        public let count: Int
        /// Offsets of each item's list (`itemCount + 1`).
        public let start: [Int]
        /// The neighbors, item after item.
        public let items: [Int32]
        /// Their cosines to the item.
        public let similarities: [Float]
    }

    /// A space over the rows of `vectors` (normalized here).
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
        var absent = IDBitset(capacity: vectors.rows)
        for r in 0..<vectors.rows where !present.contains(Int32(r)) { absent.insert(Int32(r)) }
        self.name = name
        self.vectors = v
        self.index = index
        self.hasVector = present
        self.noVector = absent
        self.neighborLists = nil
    }

    /// This space with an HNSW index (cosine, M 16) over its items that have a vector, built on `threads` threads
    /// (0: every core), for a space too large to scan once per neighbor query. A build on more than one thread is
    /// not reproducible link for link, so neither are the neighbors an approximate search returns.
    /// - Throws: ``PlaylistError/index(_:)`` when the index cannot be built.
    public func indexed(
        efConstruction: Int = 100, ef: Int = 100, seed: UInt64 = 42, threads: Int = 0
    ) throws(PlaylistError) -> ItemSpace {
        let ids = (0..<Int32(vectors.rows)).filter { hasVector.contains($0) }
        var rows = Matrix(rows: ids.count, cols: vectors.cols)
        for (r, i) in ids.enumerated() { rows.setRow(r, vectors.row(Int(i))) }
        let built: HNSWIndex
        do {
            built = try HNSWIndex(
                dimension: max(1, vectors.cols), metric: .cosine, efConstruction: efConstruction, ef: ef, seed: seed,
                capacity: ids.count)
            if !ids.isEmpty { try built.add(ids: ids, vectors: rows, threads: threads > 0 ? threads : Parallel.coreCount) }
        } catch { throw .index(error) }
        var out = self
        out.index = built
        return out
    }

    /// This space with every item's `count` nearest neighbors precomputed (one query per item, on `threads`
    /// threads), so ``neighbors(ofItem:k:filter:)`` answers from the lists: the first `k` neighbors of the list
    /// that the filter allows, or a query of the index (or scan) when fewer than `k` of the list are allowed and the
    /// list is full. Worth it when many more item queries than items are asked (ten per user for the heavy rotation
    /// of every user's Discover Weekly).
    ///
    /// - Parameters:
    ///   - count: the neighbors kept per item (memory: 8 bytes each).
    ///   - threads: worker threads; 0 uses every core.
    ///   - progress: called with the number of items done so far (from worker threads).
    /// - Throws: ``PlaylistError/invalidParameter(name:value:expected:)`` for `count < 1`, ``PlaylistError/index(_:)``
    ///   when the index fails.
    public func withNeighborLists(
        count: Int, threads: Int = 0, progress: (@Sendable (Int) -> Void)? = nil
    ) throws(PlaylistError) -> ItemSpace {
        guard count >= 1 else { throw .invalidParameter(name: "count", value: "\(count)", expected: ">= 1") }
        let n = itemCount
        let blocks = (n + 255) / 256
        let slots = OrderedSlots<Result<[[(item: Int32, similarity: Float)]], PlaylistError>>(count: blocks)
        let done = AtomicCounter()
        var plain = self
        plain.neighborLists = nil
        let space = plain
        Parallel.forEach(blocks, threads: threads > 0 ? threads : Parallel.coreCount) { b in
            var lists: [[(item: Int32, similarity: Float)]] = []
            let range = (b * 256)..<min(n, (b + 1) * 256)
            do throws(PlaylistError) {
                for i in range { lists.append(try space.neighbors(ofItem: Int32(i), k: count)) }
                slots.set(b, .success(lists))
            } catch { slots.set(b, .failure(error)) }
            progress?(done.add(range.count) + range.count)
        }
        var start = [Int](repeating: 0, count: n + 1)
        var items: [Int32] = [], similarities: [Float] = []
        items.reserveCapacity(n * count)
        similarities.reserveCapacity(n * count)
        var i = 0
        for block in slots.take() {
            let lists: [[(item: Int32, similarity: Float)]]
            switch block {
            case .success(let l): lists = l
            case .failure(let e): throw e
            }
            for list in lists {
                for x in list { items.append(x.item); similarities.append(x.similarity) }
                i += 1
                start[i] = items.count
            }
        }
        var out = space
        out.neighborLists = NeighborLists(count: count, start: start, items: items, similarities: similarities)
        return out
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

    /// The normalized vector of `item` (zeros when it has none or is out of range).
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

    /// The cosine similarity of `item` to a (not necessarily normalized) vector `q` of norm `qNorm`.
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
    public func neighbors(
        of query: [Float], k: Int, filter: SearchFilter? = nil
    ) throws(PlaylistError) -> [(item: Int32, similarity: Float)] {
        try neighbors(of: query, k: k, filter: filter, besides: nil)
    }

    /// ``neighbors(of:k:filter:)`` leaving out `besides` as well (the query item itself).
    func neighbors(
        of query: [Float], k: Int, filter: SearchFilter?, besides: Int32?
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
            let found: [Neighbor]
            do { found = try index.search(unit, k: k, filter: indexFilter(filter, besides: besides)) } catch { throw .index(error) }
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
            TopK.select(s, k: k, exclude: { $0 == besides || !present.contains($0) || !(filter?.allows($0) ?? true) })
        }
        return zip(picked.indices, picked.scores).map { (item: $0, similarity: $1) }
    }

    /// The filter an index search uses: `filter` restricted to the items with a vector, and without `item`. Bitset
    /// filters stay bitsets (a word-wise union or intersection, far cheaper in the search than a closure).
    func indexFilter(_ filter: SearchFilter?, besides item: Int32?) -> SearchFilter {
        switch filter {
        case nil:
            var b = noVector
            if let item { b.insert(item) }
            return .excluded(b)
        case .excluded(let bits)?:
            var b = noVector
            b.formUnion(bits)
            if let item { b.insert(item) }
            return .excluded(b)
        case .allowed(let bits)?:
            var b = bits
            b.formIntersection(hasVector)
            if let item { b.remove(item) }
            return .allowed(b)
        case .predicate(let p)?:
            let present = hasVector
            return .predicate { $0 != (item ?? -1) && present.contains($0) && p($0) }
        }
    }

    /// The `k` items nearest to item `item` (itself left out), as ``neighbors(of:k:filter:)``; from the precomputed
    /// ``neighborLists`` when they hold `k` allowed neighbors.
    public func neighbors(
        ofItem item: Int32, k: Int, filter: SearchFilter? = nil
    ) throws(PlaylistError) -> [(item: Int32, similarity: Float)] {
        guard item >= 0, Int(item) < vectors.rows else { throw .unknownIndex("item \(item) of \(vectors.rows) in space '\(name)'") }
        guard hasVector.contains(item) else { return [] }
        guard k > 0 else { return [] }
        if let lists = neighborLists {
            let range = lists.start[Int(item)]..<lists.start[Int(item) + 1]
            var out: [(item: Int32, similarity: Float)] = []
            out.reserveCapacity(min(k, range.count))
            for j in range where filter?.allows(lists.items[j]) ?? true {
                out.append((lists.items[j], lists.similarities[j]))
                if out.count == k { return out }
            }
            // The whole list is allowed-filtered and still short: it was every neighbor there is.
            if range.count < lists.count { return out }
        }
        return try neighbors(of: vector(item), k: k, filter: filter, besides: item)
    }
}

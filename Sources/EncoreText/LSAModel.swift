import EncoreCore

/// How the truncated SVD is computed.
public enum SVDAlgorithm: String, Sendable, Equatable, CaseIterable {
    /// Halko-Martinsson-Tropp randomized SVD (``TruncatedSVD/randomized(_:rank:oversamples:powerIterations:seed:threads:progress:)``).
    case randomized
    /// A dense LAPACK SVD, for small corpora.
    case exact
}

/// The options of latent semantic analysis: weighting, then a truncated SVD.
public struct LSAOptions: Sendable, Equatable {
    /// Tokenizer, vocabulary and weighting.
    public var vectorizer: TextVectorizerOptions
    /// The number of dimensions (SVD components).
    public var dimensions: Int
    /// Randomized or exact SVD.
    public var algorithm: SVDAlgorithm
    /// Extra random directions of the randomized SVD (scikit-learn's `n_oversamples`).
    public var oversamples: Int
    /// Power iterations of the randomized SVD (scikit-learn's `n_iter`).
    public var powerIterations: Int
    /// The seed of the random test matrix.
    public var seed: UInt64

    /// Options; the defaults are scikit-learn's `TruncatedSVD(n_components=100)` after `TfidfVectorizer()`.
    public init(vectorizer: TextVectorizerOptions = TextVectorizerOptions(), dimensions: Int = 100,
                algorithm: SVDAlgorithm = .randomized, oversamples: Int = 10, powerIterations: Int = 5,
                seed: UInt64 = 0) {
        self.vectorizer = vectorizer
        self.dimensions = dimensions
        self.algorithm = algorithm
        self.oversamples = oversamples
        self.powerIterations = powerIterations
        self.seed = seed
    }
}

/// Latent semantic analysis: a fitted ``TextVectorizer`` and the truncated SVD of its document matrix.
///
/// A document's vector is its weighted row projected on the components (`x V^T`, scikit-learn's
/// `TruncatedSVD.transform`), scaled to unit length. Training documents and new ones (``foldIn(_:threads:)``) go
/// through the same projection, so a training document folds in to its own vector.
public struct LSAModel: Sendable {
    /// The options it was fitted with.
    public let options: LSAOptions
    /// Tokenizer, vocabulary and weights.
    public let vectorizer: TextVectorizer
    /// The decomposition of the weighted training matrix.
    public let svd: TruncatedSVD
    /// The components transposed (`terms x dimensions`), for projections.
    private let basis: [Float]

    /// The number of dimensions.
    public var dimensions: Int { svd.rank }

    /// Fits the model and returns it with the unit-length vectors of the training documents (`documents x dimensions`)
    /// and their weighted documents x terms matrix.
    ///
    /// `progress` receives a stage name, the steps done and the steps of that stage.
    public static func fit(
        _ documents: [String], options: LSAOptions = LSAOptions(), threads: Int = 1,
        progress: (@Sendable (String, Int, Int) -> Void)? = nil
    ) throws(TextError) -> (model: LSAModel, vectors: Matrix, weighted: CSRMatrix) {
        let n = documents.count
        let (vectorizer, matrix) = try TextVectorizer.fit(
            documents, options: options.vectorizer, threads: threads,
            progress: progress.map { p in { @Sendable done in p("tokenize", done, n) } })
        let svd: TruncatedSVD
        switch options.algorithm {
        case .randomized:
            svd = try TruncatedSVD.randomized(
                matrix, rank: options.dimensions, oversamples: options.oversamples,
                powerIterations: options.powerIterations, seed: options.seed, threads: threads,
                progress: progress.map { p in { done, total in p("svd", done, total) } })
        case .exact:
            progress?("svd", 0, 1)
            svd = try TruncatedSVD.exact(matrix, rank: options.dimensions)
            progress?("svd", 1, 1)
        }
        let model = LSAModel(options: options, vectorizer: vectorizer, svd: svd)
        return (model, try model.vectors(of: matrix, threads: threads), matrix)
    }

    /// A model from its parts.
    public init(options: LSAOptions, vectorizer: TextVectorizer, svd: TruncatedSVD) {
        self.options = options
        self.vectorizer = vectorizer
        self.svd = svd
        let k = svd.rank, d = svd.components.cols
        var b = [Float](repeating: 0, count: d * k)
        for i in 0..<k { for j in 0..<d { b[j * k + i] = svd.components[i, j] } }
        basis = b
    }

    /// The unit-length projections of weighted rows (a documents x terms matrix of this vectorizer).
    ///
    /// - Throws: ``TextError/invalidParameter(_:)`` when `matrix` has another number of terms.
    public func vectors(of matrix: CSRMatrix, threads: Int = 1) throws(TextError) -> Matrix {
        let k = svd.rank
        guard matrix.cols == svd.components.cols else {
            throw .invalidParameter("the matrix has \(matrix.cols) terms, the model \(svd.components.cols)")
        }
        var out = [Float](repeating: 0, count: matrix.rows * k)
        SparseProducts.multiply(matrix, basis, columns: k, into: &out, threads: threads)
        do {
            return try Matrix(rows: matrix.rows, cols: k, storage: out).rowNormalized()
        } catch {
            throw .internalError("projections of \(matrix.rows) documents: \(error)")
        }
    }

    /// The unit-length vectors of new documents (zero vectors for documents without a vocabulary term).
    public func foldIn(_ documents: [String], threads: Int = 1) throws(TextError) -> Matrix {
        try vectors(of: vectorizer.transform(documents, threads: threads), threads: threads)
    }
}

/// Vectors keyed by id: the text vectors of tracks and artists, or the sequence vectors of items.
public struct IDVectors: Sendable, Equatable {
    /// The ids, row order of `vectors`.
    public var ids: [String]
    /// One unit-length row per id.
    public var vectors: Matrix
    /// Whether an id's vector was inherited (a track without text takes its artist's).
    public var inherited: [Bool]

    /// Vectors for `ids`; none inherited.
    public init(ids: [String], vectors: Matrix, inherited: [Bool]? = nil) throws(TextError) {
        guard vectors.rows == ids.count else {
            throw .invalidParameter("\(ids.count) ids but \(vectors.rows) vectors")
        }
        let inh = inherited ?? [Bool](repeating: false, count: ids.count)
        guard inh.count == ids.count else { throw .invalidParameter("\(ids.count) ids but \(inh.count) inherited flags") }
        self.ids = ids
        self.vectors = vectors
        self.inherited = inh
    }

    /// One vector per distinct id: the normalized sum of the unit vectors of that id's documents (ids in order of
    /// first appearance). Ids whose documents have no vocabulary term (all-zero vectors) are left out.
    public static func combining(documentIDs: [String], vectors: Matrix) throws(TextError) -> IDVectors {
        guard documentIDs.count == vectors.rows else {
            throw .invalidParameter("\(documentIDs.count) document ids but \(vectors.rows) vectors")
        }
        return try combiningCounted(documentIDs: documentIDs, vectors: vectors).vectors
    }

    /// ``combining(documentIDs:vectors:)`` and the number of distinct ids (those left out included).
    static func combiningCounted(documentIDs: [String], vectors: Matrix) throws(TextError)
        -> (vectors: IDVectors, distinct: Int) {
        guard documentIDs.count == vectors.rows else {
            throw .invalidParameter("\(documentIDs.count) document ids but \(vectors.rows) vectors")
        }
        var index: [String: Int32] = [:]
        index.reserveCapacity(documentIDs.count)
        var ids: [String] = []
        var rowOf = [Int32](repeating: 0, count: documentIDs.count)
        for (d, id) in documentIDs.enumerated() {
            if let found = index[id] {
                rowOf[d] = found
            } else {
                rowOf[d] = Int32(ids.count)
                index[id] = Int32(ids.count)
                ids.append(id)
            }
        }
        let k = vectors.cols
        var sums = [Float](repeating: 0, count: ids.count * k)
        vectors.storage.withUnsafeBufferPointer { v in
            sums.withUnsafeMutableBufferPointer { s in
                for d in 0..<documentIDs.count {
                    let o = Int(rowOf[d]) * k, src = d * k
                    for c in 0..<k { s[o + c] += v[src + c] }
                }
            }
        }
        var summed = Matrix(rows: ids.count, cols: k)
        summed.storage = sums
        summed = summed.rowNormalized()
        let norms = summed.rowNorms()
        let keep = (0..<ids.count).filter { norms[$0] > 0 }
        if keep.count == ids.count { return (try IDVectors(ids: ids, vectors: summed), ids.count) }
        var out = Matrix(rows: keep.count, cols: k)
        summed.storage.withUnsafeBufferPointer { src in
            out.storage.withUnsafeMutableBufferPointer { dst in
                for (r, i) in keep.enumerated() { for c in 0..<k { dst[r * k + c] = src[i * k + c] } }
            }
        }
        return (try IDVectors(ids: keep.map { ids[$0] }, vectors: out), ids.count)
    }

    /// Adds, for every track of `trackArtists` (track id, artist id) without a vector of its own, its artist's vector,
    /// marked as inherited. Tracks whose artist has no vector either stay out.
    public func inheriting(trackArtists: [(track: String, artist: String)]) -> IDVectors {
        var row: [String: Int] = [:]
        for (i, id) in ids.enumerated() { row[id] = i }
        var out = self
        var added = Set<String>()
        for (track, artist) in trackArtists where row[track] == nil && !added.contains(track) {
            guard let a = row[artist] else { continue }
            added.insert(track)
            out.ids.append(track)
            out.inherited.append(true)
            out.vectors.grow(toRows: out.ids.count)
            out.vectors.setRow(out.ids.count - 1, vectors.row(a))
        }
        return out
    }
}

import EncoreCore
import Foundation

/// A document-frequency limit, as scikit-learn's `min_df` and `max_df`: a document count or a proportion of the
/// documents.
public enum DocumentFrequencyBound: Sendable, Equatable, CustomStringConvertible {
    /// At least (or at most) this many documents.
    case count(Int)
    /// This proportion of the documents, in `[0, 1]`.
    case proportion(Double)

    /// The bound in documents for a corpus of `n` documents (`proportion * n`, not rounded, as scikit-learn).
    public func documents(of n: Int) -> Double {
        switch self {
        case .count(let c): return Double(c)
        case .proportion(let p): return p * Double(n)
        }
    }

    /// Parses `"2"` as a count and `"0.95"` (any text with a point or exponent) as a proportion.
    public init?(parsing text: String) {
        if let c = Int(text) {
            self = .count(c)
        } else if let p = Double(text), p.isFinite {
            self = .proportion(p)
        } else {
            return nil
        }
    }

    public var description: String {
        switch self {
        case .count(let c): return "\(c)"
        case .proportion(let p): return "\(p)"
        }
    }

    func validate(_ name: String) throws(TextError) {
        switch self {
        case .count(let c): guard c >= 0 else { throw .invalidParameter("\(name) must be >= 0, got \(c)") }
        case .proportion(let p):
            guard p >= 0, p <= 1 else { throw .invalidParameter("\(name) as a proportion must be in [0, 1], got \(p)") }
        }
    }
}

/// How term counts become weights.
public enum TermWeighting: String, Sendable, Equatable, CaseIterable {
    /// scikit-learn's `TfidfVectorizer`: `tf * (ln((1 + n) / (1 + df)) + 1)`.
    case tfidf
    /// Okapi BM25: `ln(1 + (n - df + 0.5) / (df + 0.5)) * tf (k1 + 1) / (tf + k1 (1 - b + b dl / avgdl))`.
    case bm25
}

/// The options of ``TextVectorizer``; the defaults are `TfidfVectorizer()`'s.
public struct TextVectorizerOptions: Sendable, Equatable {
    /// How text becomes terms.
    public var tokenizer: TokenizerOptions
    /// Terms in fewer documents are dropped (`min_df`).
    public var minDF: DocumentFrequencyBound
    /// Terms in more documents are dropped (`max_df`).
    public var maxDF: DocumentFrequencyBound
    /// Keep only the terms most frequent over the corpus (`max_features`; ties in vocabulary order).
    public var maxFeatures: Int?
    /// The weighting.
    public var weighting: TermWeighting
    /// `1 + ln(tf)` in place of `tf` (TF-IDF only).
    public var sublinearTF: Bool
    /// BM25's term-frequency saturation.
    public var bm25K1: Double
    /// BM25's length normalization.
    public var bm25B: Double
    /// Scale each document's row to unit Euclidean length.
    public var normalize: Bool

    /// Options.
    public init(tokenizer: TokenizerOptions = TokenizerOptions(), minDF: DocumentFrequencyBound = .count(1),
                maxDF: DocumentFrequencyBound = .proportion(1.0), maxFeatures: Int? = nil,
                weighting: TermWeighting = .tfidf, sublinearTF: Bool = false, bm25K1: Double = 1.2,
                bm25B: Double = 0.75, normalize: Bool = true) {
        self.tokenizer = tokenizer
        self.minDF = minDF
        self.maxDF = maxDF
        self.maxFeatures = maxFeatures
        self.weighting = weighting
        self.sublinearTF = sublinearTF
        self.bm25K1 = bm25K1
        self.bm25B = bm25B
        self.normalize = normalize
    }

    /// Checks the ranges.
    public func validate() throws(TextError) {
        try tokenizer.validate()
        try minDF.validate("min_df")
        try maxDF.validate("max_df")
        if let maxFeatures, maxFeatures <= 0 {
            throw .invalidParameter("max_features must be positive, got \(maxFeatures)")
        }
        if weighting == .bm25 {
            guard !sublinearTF else { throw .invalidParameter("sublinear tf applies to tfidf weighting only") }
            guard bm25K1 >= 0, bm25K1.isFinite else { throw .invalidParameter("BM25 k1 must be >= 0, got \(bm25K1)") }
            guard bm25B >= 0, bm25B <= 1 else { throw .invalidParameter("BM25 b must be in [0, 1], got \(bm25B)") }
        }
    }
}

/// Term counts of a range of documents, over terms local to that range.
struct ChunkCounts: Sendable {
    var table = TermTable()
    /// Document `d` of the chunk has terms `rowPtr[d]..<rowPtr[d+1]` of `ids`/`counts`, in order of first occurrence.
    var rowPtr: [Int] = [0]
    var ids: [Int32] = []
    var counts: [Int32] = []
    /// Documents containing each local term.
    var df: [Int32] = []
    /// Occurrences of each local term.
    var total: [Int64] = []
}

/// A fitted bag-of-words model: tokenizer, vocabulary and weights, as scikit-learn's `TfidfVectorizer`.
///
/// ``fit(_:options:threads:progress:)`` learns the vocabulary (sorted by code point, as scikit-learn's
/// `vocabulary_`), its document frequencies and idf, and returns the weighted documents x terms matrix;
/// ``transform(_:threads:)`` weights new documents with them (unknown terms are ignored).
public struct TextVectorizer: Sendable {
    /// The options it was fitted with.
    public let options: TextVectorizerOptions
    /// The vocabulary: column `j` is `terms[j]`, in code-point order.
    public let terms: [String]
    /// The number of training documents containing each term.
    public let documentFrequency: [Int32]
    /// The inverse document frequency of each term (the BM25 idf with `.bm25`).
    public let idf: [Double]
    /// The number of training documents.
    public let documentCount: Int
    /// The mean number of vocabulary tokens per training document (BM25's `avgdl`).
    public let averageLength: Double
    private let lookup: TermTable
    private let tokenizer: Tokenizer

    /// The number of terms.
    public var termCount: Int { terms.count }

    /// The column of `term`, or nil.
    public func column(of term: String) -> Int32? { lookup.find(term) }

    /// Fits the vocabulary and weights to `documents` and returns the model and the weighted documents x terms matrix.
    ///
    /// - Throws: ``TextError/emptyCorpus(_:)`` without documents, ``TextError/emptyVocabulary(_:)`` when no document
    ///   has a token or the frequency filters remove every term, ``TextError/invalidParameter(_:)``.
    public static func fit(
        _ documents: [String], options: TextVectorizerOptions = TextVectorizerOptions(), threads: Int = 1,
        progress: (@Sendable (Int) -> Void)? = nil
    ) throws(TextError) -> (model: TextVectorizer, matrix: CSRMatrix) {
        try options.validate()
        let n = documents.count
        guard n > 0 else { throw .emptyCorpus("no documents") }
        let tokenizer = Tokenizer(options: options.tokenizer)
        let chunks = count(documents, tokenizer: tokenizer, threads: threads, progress: progress)

        // Merge the chunks' terms into one table.
        var global = TermTable(capacity: chunks.map(\.table.count).max() ?? 16)
        var df: [Int32] = []
        var total: [Int64] = []
        var localToGlobal: [[Int32]] = []
        for c in chunks {
            var map = [Int32](repeating: 0, count: c.table.count)
            for l in 0..<c.table.count {
                let g = c.table.withBytes(l) { global.intern($0, hash: c.table.storedHash(l)) }
                if Int(g) == df.count { df.append(0); total.append(0) }
                df[Int(g)] += c.df[l]
                total[Int(g)] += c.total[l]
                map[l] = g
            }
            localToGlobal.append(map)
        }
        guard global.count > 0 else {
            throw .emptyVocabulary("no document has a token; perhaps the documents only contain stop words")
        }

        // Filter by document frequency, then keep the max_features most frequent (ties in vocabulary order).
        let high = options.maxDF.documents(of: n), low = options.minDF.documents(of: n)
        guard high >= low else {
            throw .invalidParameter("max_df (\(options.maxDF), \(high) documents) is below min_df (\(options.minDF), \(low) documents)")
        }
        var kept = (0..<global.count).filter { Double(df[$0]) <= high && Double(df[$0]) >= low }
        kept.sort { global.less($0, $1) }
        if let limit = options.maxFeatures, kept.count > limit {
            let order = kept.indices.sorted { a, b in
                total[kept[a]] != total[kept[b]] ? total[kept[a]] > total[kept[b]] : a < b
            }
            kept = order.prefix(limit).sorted().map { kept[$0] }
        }
        guard !kept.isEmpty else {
            throw .emptyVocabulary("after pruning no terms remain (\(global.count) terms before min_df \(options.minDF), max_df \(options.maxDF)\(options.maxFeatures.map { ", max_features \($0)" } ?? "")); try a lower min_df or a higher max_df")
        }
        var column = [Int32](repeating: -1, count: global.count)
        var lookup = TermTable(capacity: kept.count)
        for (j, g) in kept.enumerated() {
            column[g] = Int32(j)
            _ = global.withBytes(g) { lookup.intern($0, hash: global.storedHash(g)) }
        }
        let terms = kept.map { global.term($0) }
        let keptDF = kept.map { df[$0] }

        // Each document's kept counts, as (column, count) sorted by column: chunks in parallel, then joined.
        let columnOf = column, maps = localToGlobal
        let parts = OrderedSlots<(cols: [Int32], counts: [Int32], ends: [Int])>(count: chunks.count)
        Parallel.forEach(chunks.count, threads: threads) { ci in
            let c = chunks[ci], map = maps[ci]
            var keys: [UInt64] = []
            var cols: [Int32] = [], counts: [Int32] = [], ends: [Int] = []
            cols.reserveCapacity(c.ids.count)
            counts.reserveCapacity(c.ids.count)
            ends.reserveCapacity(c.rowPtr.count - 1)
            for r in 0..<(c.rowPtr.count - 1) {
                keys.removeAll(keepingCapacity: true)
                for p in c.rowPtr[r]..<c.rowPtr[r + 1] {
                    let j = columnOf[Int(map[Int(c.ids[p])])]
                    if j >= 0 { keys.append(UInt64(UInt32(j)) << 32 | UInt64(UInt32(c.counts[p]))) }
                }
                keys.sort()
                for key in keys {
                    cols.append(Int32(truncatingIfNeeded: key >> 32))
                    counts.append(Int32(truncatingIfNeeded: key))
                }
                ends.append(cols.count)
            }
            parts.set(ci, (cols, counts, ends))
        }
        var rowPtr = [Int](repeating: 0, count: n + 1)
        var cols: [Int32] = []
        var counts: [Int32] = []
        var d = 0
        for part in parts.take() {
            let base = cols.count
            for e in part.ends {
                d += 1
                rowPtr[d] = base + e
            }
            cols.append(contentsOf: part.cols)
            counts.append(contentsOf: part.counts)
        }
        var totalLength: Int64 = 0
        for k in counts { totalLength += Int64(k) }
        let averageLength = Double(totalLength) / Double(n)
        let idf: [Double] = keptDF.map { f in
            switch options.weighting {
            case .tfidf: return Foundation.log(Double(1 + n) / Double(1 + Int(f))) + 1
            case .bm25: return Foundation.log(1 + (Double(n) - Double(f) + 0.5) / (Double(f) + 0.5))
            }
        }
        let model = TextVectorizer(
            options: options, terms: terms, documentFrequency: keptDF, idf: idf, documentCount: n,
            averageLength: averageLength, lookup: lookup, tokenizer: tokenizer)
        let values = model.weights(rowPtr: rowPtr, cols: cols, counts: counts, threads: threads)
        do {
            return (model, try CSRMatrix(rows: n, cols: terms.count, indptr: rowPtr, indices: cols, values: values))
        } catch {
            throw .internalError("the weighted documents x terms matrix: \(error)")
        }
    }

    /// Weights new documents with the fitted vocabulary and idf (terms outside the vocabulary are ignored).
    public func transform(_ documents: [String], threads: Int = 1) throws(TextError) -> CSRMatrix {
        let n = documents.count
        let chunkCount = max(1, min(n, max(1, threads) * 4))
        let size = (n + chunkCount - 1) / max(1, chunkCount)
        let slots = OrderedSlots<([Int], [Int32], [Int32])>(count: chunkCount)
        Parallel.forEach(chunkCount, threads: threads) { c in
            let lo = c * size, hi = min(n, lo + size)
            var ptr = [0], cols = [Int32](), counts = [Int32]()
            var scratch = TokenScratch()
            var ids: [Int32] = []
            if lo < hi {
                for d in lo..<hi {
                    ids.removeAll(keepingCapacity: true)
                    tokenizer.forEachTerm(documents[d], scratch: &scratch) { t in
                        if let j = lookup.find(t) { ids.append(j) }
                    }
                    Self.forEachDistinct(&ids) { id, k in
                        cols.append(id)
                        counts.append(k)
                    }
                    ptr.append(cols.count)
                }
            }
            slots.set(c, (ptr, cols, counts))
        }
        var rowPtr = [0], cols = [Int32](), counts = [Int32]()
        for (ptr, c, k) in slots.take() {
            let base = cols.count
            rowPtr.append(contentsOf: ptr.dropFirst().map { $0 + base })
            cols.append(contentsOf: c)
            counts.append(contentsOf: k)
        }
        while rowPtr.count < n + 1 { rowPtr.append(cols.count) }
        let values = weights(rowPtr: rowPtr, cols: cols, counts: counts, threads: threads)
        do {
            return try CSRMatrix(rows: n, cols: terms.count, indptr: rowPtr, indices: cols, values: values)
        } catch {
            throw .internalError("the weighted matrix of \(n) new documents: \(error)")
        }
    }

    /// The weights of counted rows (Double arithmetic, Float results).
    private func weights(rowPtr: [Int], cols: [Int32], counts: [Int32], threads: Int) -> [Float] {
        var values = [Float](repeating: 0, count: cols.count)
        let rows = rowPtr.count - 1
        let opts = options
        values.withUnsafeMutableBufferPointer { out in
            let o = UncheckedSendable(out.baseAddress!)
            Parallel.forEach(rows, threads: threads, grain: 256) { r in
                let lo = rowPtr[r], hi = rowPtr[r + 1]
                guard hi > lo else { return }
                var length = 0.0
                if opts.weighting == .bm25 { for p in lo..<hi { length += Double(counts[p]) } }
                let norm = averageLength > 0 ? length / averageLength : 1
                // The weight of entry p (computed twice rather than buffered: no allocation per row).
                @inline(__always) func weight(_ p: Int) -> Double {
                    let tf = Double(counts[p])
                    let idf = self.idf[Int(cols[p])]
                    switch opts.weighting {
                    case .tfidf:
                        return (opts.sublinearTF ? 1 + Foundation.log(tf) : tf) * idf
                    case .bm25:
                        let k1 = opts.bm25K1, b = opts.bm25B
                        return idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * norm))
                    }
                }
                var sq = 0.0
                for p in lo..<hi {
                    let x = weight(p)
                    sq += x * x
                }
                let scale = opts.normalize && sq > 0 ? 1 / sq.squareRoot() : 1
                for p in lo..<hi { o.value[p] = Float(weight(p) * scale) }
            }
        }
        return values
    }

    /// Sorts a document's term ids and calls `body` with each distinct id and its count, in increasing id order.
    @inline(__always)
    static func forEachDistinct(_ ids: inout [Int32], _ body: (Int32, Int32) -> Void) {
        ids.sort()
        var p = 0
        while p < ids.count {
            var q = p + 1
            while q < ids.count && ids[q] == ids[p] { q += 1 }
            body(ids[p], Int32(q - p))
            p = q
        }
    }

    /// Tokenizes and counts `documents` in parallel chunks.
    static func count(_ documents: [String], tokenizer: Tokenizer, threads: Int,
                      progress: (@Sendable (Int) -> Void)?) -> [ChunkCounts] {
        let n = documents.count
        let t = max(1, threads)
        let chunkCount = max(1, min(n, t == 1 ? 1 : t * 4))
        let size = (n + chunkCount - 1) / chunkCount
        let slots = OrderedSlots<ChunkCounts>(count: chunkCount)
        let done = AtomicCounter()
        Parallel.forEach(chunkCount, threads: t) { c in
            let lo = c * size, hi = min(n, lo + size)
            var chunk = ChunkCounts()
            var scratch = TokenScratch()
            // Per local term: the last document (within the chunk) that had it, and its entry in that row.
            var seenIn: [Int32] = [], entry: [Int32] = []
            if lo < hi {
                for d in lo..<hi {
                    let doc = Int32(d - lo)
                    tokenizer.forEachTerm(documents[d], scratch: &scratch) { term in
                        let id = Int(chunk.table.intern(term))
                        if id == chunk.df.count {
                            chunk.df.append(0)
                            chunk.total.append(0)
                            seenIn.append(-1)
                            entry.append(0)
                        }
                        if seenIn[id] != doc {
                            seenIn[id] = doc
                            entry[id] = Int32(chunk.ids.count)
                            chunk.ids.append(Int32(id))
                            chunk.counts.append(1)
                            chunk.df[id] += 1
                        } else {
                            chunk.counts[Int(entry[id])] += 1
                        }
                        chunk.total[id] += 1
                    }
                    chunk.rowPtr.append(chunk.ids.count)
                    if (d - lo) % 4096 == 4095, let progress { progress(done.add(4096) + 4096) }
                }
                if let progress { progress(done.add((hi - lo) % 4096) + (hi - lo) % 4096) }
            }
            slots.set(c, chunk)
        }
        return slots.take()
    }
}

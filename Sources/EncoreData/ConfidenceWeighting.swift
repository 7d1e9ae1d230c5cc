import Foundation
import EncoreCore

/// How raw interaction strengths `r` (play counts, ratings) become the confidences implicit ALS trains on.
///
/// Only stored values are transformed; absent entries stay absent. The values must be non-negative (the loader
/// guarantees it).
///
/// - ``none``: the values as they are.
/// - ``linear(alpha:)``: `1 + alpha * r` (Hu, Koren, Volinsky 2008, eq. 6).
/// - ``logarithmic(alpha:epsilon:)``: `1 + alpha * ln(1 + r / epsilon)` (Hu et al. 2008, eq. 7).
/// - ``bm25(k1:b:)``: BM25 weighting, computed as Python `implicit` 0.7's
///   `implicit.nearest_neighbours.bm25_weight(X, K1, B)` on the matrix as given, whose rows are the "documents":
///   with `N` = number of rows, `df[c]` = number of stored values in column `c`, `idf[c] = ln(N) - ln(1 + df[c])`,
///   `rowSum[r]` = sum of row `r`, `lengthNorm[r] = (1 - b) + b * rowSum[r] / mean(rowSum)` (the mean over all `N`
///   rows), each value becomes `v * (k1 + 1) / (k1 * lengthNorm[r] + v) * idf[c]`. Like implicit's, an `idf` is
///   negative for a column stored in more than `N - 1` rows. Computed in `Double`, rounded to `Float`.
///
/// Orientation matters for BM25 only. `implicit`'s Last.fm example (`examples/lastfm.py`) applies
/// `bm25_weight(artist_user_plays, K1=100, B=0.8)` to the **items x users** matrix (artists are the documents, users
/// the terms) and then transposes to users x items for fitting. ``apply(toUserItems:)`` reproduces that on a
/// users x items matrix (transpose, weight, transpose back); ``apply(to:)`` weights the matrix as given.
public enum ConfidenceWeighting: Sendable, Equatable, CustomStringConvertible {
    /// The raw values.
    case none
    /// `1 + alpha * r`.
    case linear(alpha: Float)
    /// `1 + alpha * ln(1 + r / epsilon)`; `epsilon` must be positive.
    case logarithmic(alpha: Float, epsilon: Float)
    /// BM25 with saturation `k1` and length normalization `b`, as `implicit`'s `bm25_weight`.
    case bm25(k1: Float, b: Float)

    /// `alpha` of ``linear(alpha:)`` when the CLI does not give one: 40, as in Hu et al. 2008.
    public static let defaultLinearAlpha: Float = 40
    /// `alpha` of ``logarithmic(alpha:epsilon:)`` when the CLI does not give one.
    public static let defaultLogAlpha: Float = 1
    /// `epsilon` of ``logarithmic(alpha:epsilon:)`` when the CLI does not give one.
    public static let defaultLogEpsilon: Float = 1
    /// `k1` of ``bm25(k1:b:)`` when the CLI does not give one: 100, `implicit`'s default and Last.fm example.
    public static let defaultBM25K1: Float = 100
    /// `b` of ``bm25(k1:b:)`` when the CLI does not give one: 0.8, `implicit`'s default and Last.fm example.
    public static let defaultBM25B: Float = 0.8

    /// BM25 with `implicit`'s defaults, `k1 = 100`, `b = 0.8`.
    public static let bm25Default = ConfidenceWeighting.bm25(k1: defaultBM25K1, b: defaultBM25B)

    /// The CLI spelling with all parameters, e.g. `bm25:k1=100,b=0.8`; ``init(parsing:)`` reads it back.
    public var description: String {
        switch self {
        case .none: return "none"
        case .linear(let a): return "linear:alpha=\(a)"
        case .logarithmic(let a, let e): return "log:alpha=\(a),epsilon=\(e)"
        case .bm25(let k1, let b): return "bm25:k1=\(k1),b=\(b)"
        }
    }

    /// A weighting from its CLI name and optional parameters (missing ones take the defaults above).
    ///
    /// Names: `none`; `linear` (`alpha`); `log` or `logarithmic` (`alpha`, `epsilon`); `bm25` (`k1`, `b`).
    /// A parameter the scheme does not use is an error, so a typo is not silently ignored.
    /// - Throws: ``DataError/invalidArgument(_:)`` for an unknown name, an unused or invalid parameter.
    public init(
        name: String, alpha: Float? = nil, epsilon: Float? = nil, k1: Float? = nil, b: Float? = nil
    ) throws(DataError) {
        func unused(_ names: [(String, Float?)]) throws(DataError) {
            for (n, v) in names where v != nil { throw .invalidArgument("weighting '\(name)' takes no parameter '\(n)'") }
        }
        switch name.lowercased() {
        case "none":
            try unused([("alpha", alpha), ("epsilon", epsilon), ("k1", k1), ("b", b)])
            self = .none
        case "linear":
            try unused([("epsilon", epsilon), ("k1", k1), ("b", b)])
            self = .linear(alpha: alpha ?? Self.defaultLinearAlpha)
        case "log", "logarithmic":
            try unused([("k1", k1), ("b", b)])
            self = .logarithmic(alpha: alpha ?? Self.defaultLogAlpha, epsilon: epsilon ?? Self.defaultLogEpsilon)
        case "bm25":
            try unused([("alpha", alpha), ("epsilon", epsilon)])
            self = .bm25(k1: k1 ?? Self.defaultBM25K1, b: b ?? Self.defaultBM25B)
        default:
            throw .invalidArgument("unknown weighting '\(name)' (expected none, linear, log or bm25)")
        }
        try validate()
    }

    /// A weighting from one CLI string: a name, optionally followed by `:` and `key=value` pairs separated by
    /// commas, e.g. `none`, `linear`, `linear:alpha=40`, `log:alpha=2,epsilon=0.5`, `bm25`, `bm25:k1=100,b=0.8`.
    /// - Throws: ``DataError/invalidArgument(_:)`` for an unknown name or key, a bad number, or an invalid value.
    public init(parsing text: String) throws(DataError) {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let parts = trimmed.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        let name = String(parts[0]).trimmingCharacters(in: .whitespaces)
        var values: [String: Float] = [:]
        if parts.count == 2 {
            for pair in parts[1].split(separator: ",") {
                let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                let key = kv[0].trimmingCharacters(in: .whitespaces).lowercased()
                guard kv.count == 2, let v = Float(kv[1].trimmingCharacters(in: .whitespaces)) else {
                    throw .invalidArgument("weighting '\(text)': expected key=number, got '\(pair)'")
                }
                guard ["alpha", "epsilon", "k1", "b"].contains(key) else {
                    throw .invalidArgument("weighting '\(text)': unknown parameter '\(key)'")
                }
                guard values.updateValue(v, forKey: key) == nil else {
                    throw .invalidArgument("weighting '\(text)': parameter '\(key)' given twice")
                }
            }
        }
        try self.init(name: name, alpha: values["alpha"], epsilon: values["epsilon"], k1: values["k1"], b: values["b"])
    }

    /// Checks the parameters: all finite, `alpha >= 0`, `epsilon > 0`, `k1 >= 0`, `0 <= b <= 1`.
    /// - Throws: ``DataError/invalidArgument(_:)`` naming the bad parameter.
    public func validate() throws(DataError) {
        switch self {
        case .none: return
        case .linear(let a):
            guard a.isFinite, a >= 0 else { throw .invalidArgument("linear weighting: alpha must be >= 0, got \(a)") }
        case .logarithmic(let a, let e):
            guard a.isFinite, a >= 0 else { throw .invalidArgument("log weighting: alpha must be >= 0, got \(a)") }
            guard e.isFinite, e > 0 else { throw .invalidArgument("log weighting: epsilon must be > 0, got \(e)") }
        case .bm25(let k1, let b):
            guard k1.isFinite, k1 >= 0 else { throw .invalidArgument("bm25 weighting: k1 must be >= 0, got \(k1)") }
            guard b.isFinite, b >= 0, b <= 1 else {
                throw .invalidArgument("bm25 weighting: b must be in [0, 1], got \(b)")
            }
        }
    }

    /// The weighted matrix, same shape and sparsity; for BM25 the rows of `matrix` are the documents.
    public func apply(to matrix: CSRMatrix) -> CSRMatrix {
        switch self {
        case .none:
            return matrix
        case .linear(let alpha):
            let a = Double(alpha)
            return matrix.mapValues { Float(1 + a * Double($0)) }
        case .logarithmic(let alpha, let epsilon):
            let a = Double(alpha), e = Double(epsilon)
            return matrix.mapValues { Float(1 + a * Foundation.log1p(Double($0) / e)) }
        case .bm25(let k1, let b):
            return Self.bm25(matrix, k1: Double(k1), b: Double(b))
        }
    }

    /// Weights a users x items matrix the way `implicit`'s Last.fm example does: BM25 on the items x users
    /// transpose (items are the documents), transposed back. For the other schemes it equals ``apply(to:)``.
    public func apply(toUserItems matrix: CSRMatrix) -> CSRMatrix {
        guard case .bm25 = self else { return apply(to: matrix) }
        return apply(to: matrix.transposed()).transposed()
    }

    /// `implicit.nearest_neighbours.bm25_weight(X, K1, B)` in `Double`.
    private static func bm25(_ x: CSRMatrix, k1: Double, b: Double) -> CSRMatrix {
        let n = x.rows
        guard n > 0, x.nnz > 0 else { return x }
        var df = [Int](repeating: 0, count: x.cols)
        for c in x.indices { df[Int(c)] += 1 }
        let logN = Foundation.log(Double(n))
        let idf = df.map { logN - Foundation.log1p(Double($0)) }
        var rowSums = [Double](repeating: 0, count: n)
        var total = 0.0
        for r in 0..<n {
            var s = 0.0
            for p in x.indptr[r]..<x.indptr[r + 1] { s += Double(x.values[p]) }
            rowSums[r] = s
            total += s
        }
        let average = total / Double(n)
        var out = x
        for r in 0..<n {
            // An all-zero matrix has no average length; implicit divides by zero there, Encore uses the plain (1-b)+b.
            let lengthNorm = (1 - b) + b * (average > 0 ? rowSums[r] / average : 1)
            for p in x.indptr[r]..<x.indptr[r + 1] {
                let v = Double(x.values[p])
                let denominator = k1 * lengthNorm + v
                let w = denominator > 0 ? v * (k1 + 1) / denominator * idf[Int(x.indices[p])] : 0
                out.values[p] = Float(w)
            }
        }
        return out
    }
}

/// What a model keeps of its training weighting, so that listens arriving after training are weighted as training
/// weighted them (the server folds new plays into a user's row on the same scale as the stored confidences).
///
/// For BM25 over a users x items matrix (``ConfidenceWeighting/apply(toUserItems:)``: items are the documents,
/// users the terms) it keeps each item's length norm and the number of items at training time; a user's `idf` comes
/// from the number of distinct items in their row. The other schemes need nothing beyond their parameters.
public struct ConfidenceContext: Sendable, Equatable {
    /// The scheme and its parameters.
    public var weighting: ConfidenceWeighting
    /// BM25 only: `(1 - b) + b * plays[i] / mean(plays)` of each item at training time; empty otherwise.
    public var itemLengthNorms: [Float]
    /// BM25 only: the number of items (documents) at training time.
    public var itemCount: Int

    /// A context from its parts.
    public init(weighting: ConfidenceWeighting, itemLengthNorms: [Float] = [], itemCount: Int = 0) {
        self.weighting = weighting
        self.itemLengthNorms = itemLengthNorms
        self.itemCount = itemCount
    }

    /// The context of weighting the raw users x items matrix `raw` with `weighting.apply(toUserItems:)`.
    public init(weighting: ConfidenceWeighting, rawUserItems raw: CSRMatrix) {
        guard case .bm25(_, let b) = weighting else {
            self.init(weighting: weighting)
            return
        }
        var sums = [Double](repeating: 0, count: raw.cols)
        for p in 0..<raw.nnz { sums[Int(raw.indices[p])] += Double(raw.values[p]) }
        let average = raw.cols > 0 ? sums.reduce(0, +) / Double(raw.cols) : 0
        let norms = sums.map { Float((1 - Double(b)) + Double(b) * (average > 0 ? $0 / average : 1)) }
        self.init(weighting: weighting, itemLengthNorms: norms, itemCount: raw.cols)
    }

    /// BM25's `idf` of a user with `distinct` items in their row.
    private func idf(_ distinct: Int) -> Double {
        Foundation.log(Double(max(1, itemCount))) - Foundation.log1p(Double(distinct))
    }

    /// The confidence of `raw` listens of `item` by a user with `distinct` items in their row.
    public func confidence(raw: Float, item: Int32, distinct: Int) -> Float {
        let v = Double(raw)
        switch weighting {
        case .none: return raw
        case .linear(let a): return Float(1 + Double(a) * v)
        case .logarithmic(let a, let e): return Float(1 + Double(a) * Foundation.log1p(v / Double(e)))
        case .bm25(let k1, _):
            let norm = Int(item) < itemLengthNorms.count ? Double(itemLengthNorms[Int(item)]) : 1
            let denominator = Double(k1) * norm + v
            return denominator > 0 ? Float(v * (Double(k1) + 1) / denominator * idf(distinct)) : 0
        }
    }

    /// The raw listens behind a stored confidence (the inverse of ``confidence(raw:item:distinct:)``), or `nil` when
    /// the weighting cannot be inverted there (a zero `idf` or slope).
    public func raw(confidence c: Float, item: Int32, distinct: Int) -> Float? {
        let w = Double(c)
        switch weighting {
        case .none: return c
        case .linear(let a): return a > 0 ? Float((w - 1) / Double(a)) : nil
        case .logarithmic(let a, let e): return a > 0 ? Float(Double(e) * Foundation.expm1((w - 1) / Double(a))) : nil
        case .bm25(let k1, _):
            let f = idf(distinct)
            guard f != 0 else { return nil }
            let norm = Int(item) < itemLengthNorms.count ? Double(itemLengthNorms[Int(item)]) : 1
            let q = w / f
            let k = Double(k1)
            guard k + 1 - q > 0 else { return nil }
            return Float(q * k * norm / (k + 1 - q))
        }
    }

    /// A user's training row (`items`, their stored `confidences`) with `added` raw listens per item on top,
    /// weighted as training would weight the sum: for BM25 the user's `idf` follows the new number of distinct
    /// items. Items come out in increasing order.
    public func row(items: [Int32], confidences: [Float], adding added: [Int32: Float]) -> (items: [Int32], values: [Float]) {
        var raw: [Int32: Float] = [:]
        for (i, c) in zip(items, confidences) { raw[i] = self.raw(confidence: c, item: i, distinct: items.count) ?? 1 }
        for (i, n) in added where n > 0 { raw[i, default: 0] += n }
        let out = raw.keys.sorted()
        return (out, out.map { confidence(raw: raw[$0]!, item: $0, distinct: out.count) })
    }
}

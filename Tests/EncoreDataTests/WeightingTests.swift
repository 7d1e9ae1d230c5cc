import Foundation
import Testing
@testable import EncoreCore
@testable import EncoreData


/// The 3 x 4 matrix the weighting tests use:
/// ```
/// [1 0 2 0]
/// [3 4 0 0]
/// [5 0 0 6]
/// ```
private let weightingRows: [[Double]] = [[1, 0, 2, 0], [3, 4, 0, 0], [5, 0, 0, 6]]

private func weightingMatrix() throws -> CSRMatrix {
    var r: [Int32] = [], c: [Int32] = [], v: [Float] = []
    for (i, row) in weightingRows.enumerated() {
        for (j, x) in row.enumerated() where x != 0 {
            r.append(Int32(i)); c.append(Int32(j)); v.append(Float(x))
        }
    }
    return try CSRMatrix(rows: 3, cols: 4, rowIndices: r, colIndices: c, values: v)
}

/// The stored values of `m` in row-major order.
private func stored(_ m: CSRMatrix) -> [Float] { m.values }

/// `|a - b| <= tol * max(1, |b|)` elementwise.
private func close(_ a: [Float], _ b: [Double], tol: Double = 1e-6) -> Bool {
    a.count == b.count && zip(a, b).allSatisfy { abs(Double($0) - $1) <= tol * max(1, abs($1)) }
}

/// BM25 written out for a dense matrix whose rows are documents (independent of the library's sparse loop).
private func denseBM25(_ x: [[Double]], k1: Double, b: Double) -> [Double] {
    let n = Double(x.count)
    let cols = x[0].count
    let df = (0..<cols).map { j in Double(x.filter { $0[j] != 0 }.count) }
    let idf = df.map { log(n) - log(1 + $0) }
    let sums = x.map { $0.reduce(0, +) }
    let avg = sums.reduce(0, +) / n
    var out: [Double] = []
    for (i, row) in x.enumerated() {
        let norm = (1 - b) + b * sums[i] / avg
        for (j, v) in row.enumerated() where v != 0 { out.append(v * (k1 + 1) / (k1 * norm + v) * idf[j]) }
    }
    return out
}

@Suite("ConfidenceWeighting")
struct WeightingTests {
    @Test("none leaves the matrix unchanged")
    func none() throws {
        let m = try weightingMatrix()
        #expect(ConfidenceWeighting.none.apply(to: m) == m)
        #expect(ConfidenceWeighting.none.apply(toUserItems: m) == m)
    }

    @Test("linear: 1 + alpha * r on stored values only")
    func linear() throws {
        let m = try weightingMatrix()
        let w = ConfidenceWeighting.linear(alpha: 2).apply(to: m)
        #expect(stored(w) == [3, 5, 7, 9, 11, 13])
        #expect(w.indices == m.indices && w.indptr == m.indptr)
        #expect(ConfidenceWeighting.linear(alpha: 2).apply(toUserItems: m) == w)
    }

    @Test("logarithmic: 1 + alpha * ln(1 + r / epsilon)")
    func logarithmic() throws {
        let w = ConfidenceWeighting.logarithmic(alpha: 2, epsilon: 0.5).apply(to: try weightingMatrix())
        let expected = [1.0, 2, 3, 4, 5, 6].map { 1 + 2 * log(1 + $0 / 0.5) }
        #expect(close(stored(w), expected))
        // numpy: 1 + 2 * np.log1p(r / 0.5) for r = 1...6, as float32.
        #expect(close(stored(w), [3.1972246, 4.2188759, 4.8918204, 5.3944492, 5.7957907, 6.1298985]))
    }

    @Test("bm25 on the matrix as given equals implicit's bm25_weight")
    func bm25() throws {
        let m = try weightingMatrix()
        for (k1, b) in [(100.0, 0.8), (1.2, 0.75)] {
            let w = ConfidenceWeighting.bm25(k1: Float(k1), b: Float(b)).apply(to: m)
            #expect(close(stored(w), denseBM25(weightingRows, k1: k1, b: b)), "k1 \(k1) b \(b)")
            #expect(w.indices == m.indices && w.indptr == m.indptr)
        }
        // Hand-worked first value (k1 100, b 0.8): N = 3, column 0 is in 3 rows so idf = ln 3 - ln 4;
        // row sums 3, 7, 11 (mean 7), so row 0's length norm is 0.2 + 0.8 * 3/7.
        let norm0 = 0.2 + 0.8 * 3.0 / 7.0
        let first = 1 * 101 / (100 * norm0 + 1) * (log(3.0) - log(4.0))
        #expect(close([ConfidenceWeighting.bm25Default.apply(to: m).values[0]], [first]))
        // implicit 0.7's bm25_weight(X, 100, 0.8) and (X, 1.2, 0.75) on this matrix, from Python (float32).
        #expect(close(stored(ConfidenceWeighting.bm25Default.apply(to: m)),
                      [-0.52555871, 1.4551463, -0.84628808, 1.575076, -0.96393937, 1.61956954]))
        #expect(close(stored(ConfidenceWeighting.bm25(k1: 1.2, b: 0.75).apply(to: m)),
                      [-0.37544951, 0.66427267, -0.45207188, 0.68617177, -0.47130892, 0.69379586]))
    }

    @Test("bm25 in implicit's Last.fm orientation: items are the documents")
    func bm25UserItems() throws {
        let m = try weightingMatrix()
        let w = ConfidenceWeighting.bm25Default.apply(toUserItems: m)
        // Dense BM25 of the transpose (4 documents = columns), read back in the original row-major order.
        let t = (0..<4).map { j in weightingRows.map { $0[j] } }
        let byColumn = denseBM25(t, k1: 100, b: 0.8)  // column-major order of the stored values
        var k = 0
        var value: [String: Double] = [:]
        for j in 0..<4 { for i in 0..<3 where weightingRows[i][j] != 0 { value["\(i),\(j)"] = byColumn[k]; k += 1 } }
        var expected: [Double] = []
        for i in 0..<3 { for j in 0..<4 where weightingRows[i][j] != 0 { expected.append(value["\(i),\(j)"]!) } }
        #expect(close(stored(w), expected))
        #expect(w.indices == m.indices && w.indptr == m.indptr)
        // Python: bm25_weight(X.T.tocsr(), 100, 0.8).T, float32.
        #expect(close(stored(w), [0.18373190, 1.1073933, 0.54431188, 1.3681023, 0.89599651, 1.4846073]))
    }

    @Test("CLI strings parse with defaults and parameters")
    func parsing() throws {
        #expect(try ConfidenceWeighting(parsing: "none") == .none)
        #expect(try ConfidenceWeighting(parsing: "linear") == .linear(alpha: 40))
        #expect(try ConfidenceWeighting(parsing: "linear:alpha=2.5") == .linear(alpha: 2.5))
        #expect(try ConfidenceWeighting(parsing: "log") == .logarithmic(alpha: 1, epsilon: 1))
        #expect(try ConfidenceWeighting(parsing: "log:alpha=2, epsilon=0.5") == .logarithmic(alpha: 2, epsilon: 0.5))
        #expect(try ConfidenceWeighting(parsing: "logarithmic:epsilon=3") == .logarithmic(alpha: 1, epsilon: 3))
        #expect(try ConfidenceWeighting(parsing: "bm25") == .bm25(k1: 100, b: 0.8))
        #expect(try ConfidenceWeighting(parsing: " BM25:k1=1.2,b=0.75 ") == .bm25(k1: 1.2, b: 0.75))
        #expect(try ConfidenceWeighting(name: "bm25", b: 0.5) == .bm25(k1: 100, b: 0.5))
        for w in [ConfidenceWeighting.none, .linear(alpha: 3), .logarithmic(alpha: 2, epsilon: 0.25), .bm25Default] {
            #expect(try ConfidenceWeighting(parsing: w.description) == w)
        }
    }

    @Test("CLI strings that are wrong are errors")
    func parsingErrors() throws {
        for text in ["", "tfidf", "linear:k1=3", "none:alpha=1", "bm25:b=2", "bm25:k1=-1", "linear:alpha=x",
                     "linear:alpha", "log:epsilon=0", "linear:alpha=1,alpha=2", "bm25:c=1", "linear:alpha=nan"] {
            #expect(throws: DataError.self, "\(text)") { try ConfidenceWeighting(parsing: text) }
        }
        #expect(throws: DataError.invalidArgument("weighting 'linear' takes no parameter 'k1'")) {
            try ConfidenceWeighting(parsing: "linear:k1=3")
        }
    }

    @Test("an empty matrix stays empty")
    func emptyMatrix() throws {
        let m = try CSRMatrix(rows: 2, cols: 3, indptr: [0, 0, 0], indices: [], values: [])
        #expect(ConfidenceWeighting.bm25Default.apply(to: m) == m)
        #expect(ConfidenceWeighting.bm25Default.apply(toUserItems: m) == m)
    }
}

import EncoreCore
import Foundation
import Testing

@testable import EncoreText

/// A documents x terms matrix with `topics` planted topics (each a block of terms) and noise, so its spectrum decays.
func topicMatrix(documents: Int, terms: Int, topics: Int, seed: UInt64) -> CSRMatrix {
    var rng = SplitMix64(seed: seed)
    var rows: [Int32] = [], cols: [Int32] = [], vals: [Float] = []
    let block = terms / topics
    for d in 0..<documents {
        let topic = d % topics
        for _ in 0..<12 {
            let t = rng.nextFloat() < 0.85 ? topic * block + Int(rng.next() % UInt64(block)) : Int(rng.next() % UInt64(terms))
            rows.append(Int32(d)); cols.append(Int32(t)); vals.append(1 + rng.nextFloat())
        }
    }
    return try! CSRMatrix(rows: documents, cols: terms, rowIndices: rows, colIndices: cols, values: vals)
}

/// `m * v` for a dense vector.
func times(_ m: CSRMatrix, _ v: [Float]) -> [Double] {
    (0..<m.rows).map { r in
        zip(m.columns(ofRow: r), m.values(ofRow: r)).reduce(0.0) { $0 + Double($1.1) * Double(v[Int($1.0)]) }
    }
}

@Suite("Text: truncated SVD")
struct SVDTests {
    @Test("the exact decomposition: orthonormal components, ||A v_i|| = s_i, descending, signs fixed")
    func exactProperties() throws {
        let a = topicMatrix(documents: 40, terms: 30, topics: 4, seed: 3)
        let svd = try TruncatedSVD.exact(a, rank: 6)
        #expect(svd.rank == 6 && svd.components.rows == 6 && svd.components.cols == 30)
        for i in 0..<6 {
            let v = svd.components.row(i)
            for j in 0..<6 {
                let dot = zip(v, svd.components.row(j)).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
                #expect(abs(dot - (i == j ? 1 : 0)) < 1e-4)
            }
            let av = times(a, v)
            let norm = av.reduce(0) { $0 + $1 * $1 }.squareRoot()
            #expect(abs(norm - Double(svd.singularValues[i])) < 1e-3 * Double(svd.singularValues[0]))
            if i > 0 { #expect(svd.singularValues[i] <= svd.singularValues[i - 1]) }
            let big = v.indices.max { abs(v[$0]) < abs(v[$1]) }!
            #expect(v[big] > 0)
        }
    }

    @Test("randomized SVD matches the exact one: singular values and subspace", arguments: [(120, 50), (40, 150)])
    func randomizedVsExact(shape: (Int, Int)) throws {
        let a = topicMatrix(documents: shape.0, terms: shape.1, topics: 5, seed: 11)
        let k = 5
        let exact = try TruncatedSVD.exact(a, rank: k)
        let approx = try TruncatedSVD.randomized(a, rank: k, oversamples: 10, powerIterations: 5, seed: 7, threads: 2)
        for i in 0..<k {
            #expect(abs(approx.singularValues[i] - exact.singularValues[i]) <= 1e-3 * exact.singularValues[i], "s\(i)")
        }
        // Every randomized component lies in the exact subspace: its projection there keeps its length
        // (the cosine of the largest principal angle is at least 0.999).
        for i in 0..<k {
            let v = approx.components.row(i)
            var projected = 0.0
            for j in 0..<k {
                let d = zip(v, exact.components.row(j)).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
                projected += d * d
            }
            #expect(projected.squareRoot() > 0.999, "component \(i)")
        }
        // Same seed, same result; the sign convention makes components comparable with the exact ones.
        let again = try TruncatedSVD.randomized(a, rank: k, seed: 7, threads: 1)
        for i in 0..<k {
            let d = zip(again.components.row(i), exact.components.row(i)).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
            #expect(d > 0.99, "component \(i) agrees with the exact one in sign")
        }
    }

    @Test("a rank above min(documents, terms) and bad parameters are clear errors")
    func errors() {
        let a = topicMatrix(documents: 10, terms: 30, topics: 2, seed: 1)
        #expect(throws: TextError.invalidParameter("11 dimensions exceed min(documents 10, terms 30) = 10")) {
            _ = try TruncatedSVD.randomized(a, rank: 11)
        }
        #expect(throws: TextError.invalidParameter("the number of dimensions must be positive, got 0")) {
            _ = try TruncatedSVD.exact(a, rank: 0)
        }
        #expect(throws: TextError.invalidParameter("power iterations must be >= 0, got -1")) {
            _ = try TruncatedSVD.randomized(a, rank: 2, powerIterations: -1)
        }
    }

    @Test("the sparse x dense product equals a dense loop (register blocks of 32 and 8 columns, a masked tail)",
          arguments: [3, 8, 45, 110])
    func sparseProduct(columns: Int) {
        let a = topicMatrix(documents: 150, terms: 20, topics: 2, seed: 5)
        var rng = SplitMix64(seed: 2)
        let x = (0..<(20 * columns)).map { _ in rng.nextFloat() - 0.5 }
        var y: [Float] = []
        SparseProducts.multiply(a, x, columns: columns, into: &y, threads: 3)
        #expect(y.count == 150 * columns)
        for c in 0..<columns {
            let col = (0..<20).map { x[$0 * columns + c] }
            let want = times(a, col)
            for r in 0..<150 { #expect(abs(Double(y[r * columns + c]) - want[r]) < 1e-5) }
        }
    }

    /// A matrix whose rows 0, 1 and 2 have 1000, 129 and 300 entries (past the kernel's runs of 128), then short
    /// rows and an empty one.
    static func longRows(columns terms: Int) -> CSRMatrix {
        var rng = SplitMix64(seed: 9)
        var rows: [Int32] = [], cols: [Int32] = [], vals: [Float] = []
        for (r, n) in [1000, 129, 300, 5, 0, 17].enumerated() {
            var picked = Set<Int32>()
            while picked.count < n { picked.insert(Int32(rng.next() % UInt64(terms))) }
            for c in picked { rows.append(Int32(r)); cols.append(c); vals.append(rng.nextFloat() - 0.5) }
        }
        return try! CSRMatrix(rows: 6, cols: terms, rowIndices: rows, colIndices: cols, values: vals)
    }

    @Test("the product over rows longer than the kernel's runs of 128 entries equals a dense loop", arguments: [8, 45, 110])
    func sparseProductLongRows(columns: Int) {
        let a = Self.longRows(columns: 1500)
        var rng = SplitMix64(seed: 4)
        let x = (0..<(1500 * columns)).map { _ in rng.nextFloat() - 0.5 }
        var y: [Float] = []
        SparseProducts.multiply(a, x, columns: columns, into: &y, threads: 2)
        for c in 0..<columns {
            let want = times(a, (0..<1500).map { x[$0 * columns + c] })
            for r in 0..<6 { #expect(abs(Double(y[r * columns + c]) - want[r]) < 1e-4, "row \(r) column \(c)") }
        }
    }

    @Test("the transposed product from A's rows equals a dense loop over A's columns, on 1 to 3 threads",
          arguments: [(3, 1), (8, 2), (45, 3), (110, 2)])
    func transposedProduct(shape: (Int, Int)) {
        let (columns, threads) = shape
        for a in [topicMatrix(documents: 150, terms: 20, topics: 2, seed: 5), Self.longRows(columns: 1500)] {
            var rng = SplitMix64(seed: 6)
            let x = (0..<(a.rows * columns)).map { _ in rng.nextFloat() - 0.5 }
            // y starts with stale values: the product overwrites them.
            var y = [Float](repeating: 7, count: a.cols * columns)
            SparseProducts.multiplyTransposed(a, x, columns: columns, into: &y, threads: threads)
            #expect(y.count == a.cols * columns)
            let at = a.transposed()
            for c in 0..<columns {
                let want = times(at, (0..<a.rows).map { x[$0 * columns + c] })
                for t in 0..<a.cols {
                    #expect(abs(Double(y[t * columns + c]) - want[t]) < 1e-4, "term \(t) column \(c)")
                }
            }
        }
    }

    @Test("the Gaussian test matrix: the same values on any number of threads, mean 0 and variance 1")
    func gaussianMatrix() {
        let one = TruncatedSVD.gaussianMatrix(count: 100_001, seed: 3, threads: 1)
        let three = TruncatedSVD.gaussianMatrix(count: 100_001, seed: 3, threads: 3)
        #expect(one == three)
        #expect(one != TruncatedSVD.gaussianMatrix(count: 100_001, seed: 4, threads: 1))
        let mean = one.reduce(0.0) { $0 + Double($1) } / Double(one.count)
        let variance = one.reduce(0.0) { $0 + (Double($1) - mean) * (Double($1) - mean) } / Double(one.count)
        let tail = Double(one.filter { abs($0) > 1.959964 }.count) / Double(one.count)
        #expect(abs(mean) < 0.01)
        #expect(abs(variance - 1) < 0.02)
        #expect(abs(tail - 0.05) < 0.004, "share beyond the two-sided 5% quantile")
    }

    @Test("the tall SVD through CholeskyQR2 equals LAPACK's sgesdd: values, left and right vectors")
    func tallSVDMatchesLAPACK() throws {
        let rows = 400, cols = 12
        var rng = SplitMix64(seed: 8)
        // Columns scaled 1 to 1/12 so the singular values spread.
        let m = (0..<(rows * cols)).map { i in (rng.nextFloat() - 0.5) / Float(1 + i % cols) }
        var a = m, b = m
        let fast = try TruncatedSVD.tallSVD(&a, rows: rows, cols: cols, threads: 2)
        let lapack = try TruncatedSVD.thinSVD(&b, rows: rows, cols: cols)
        for i in 0..<cols {
            #expect(abs(fast.s[i] - lapack.s[i]) <= 1e-4 * lapack.s[0], "s\(i)")
            // The same singular pair up to a common sign.
            let du = (0..<rows).reduce(0.0) { $0 + Double(fast.u[$1 * cols + i]) * Double(lapack.u[$1 * cols + i]) }
            let dv = (0..<cols).reduce(0.0) { $0 + Double(fast.vt[i * cols + $1]) * Double(lapack.vt[i * cols + $1]) }
            #expect(abs(abs(du) - 1) < 1e-3 && abs(abs(dv) - 1) < 1e-3 && du * dv > 0, "pair \(i)")
        }
    }

    @Test("orthonormalize falls back to Householder QR on nearly dependent columns; normalizeBasis to LU")
    func illConditionedFallbacks() throws {
        let rows = 200, cols = 4
        var rng = SplitMix64(seed: 12)
        var m = (0..<(rows * cols)).map { _ in rng.nextFloat() - 0.5 }
        // Column 3 = column 0 + 1e-6 noise: condition about 10^6, past CholeskyQR's limit.
        for r in 0..<rows { m[r * cols + 3] = m[r * cols] + 1e-6 * (rng.nextFloat() - 0.5) }
        var q = m
        try TruncatedSVD.orthonormalize(&q, rows: rows, cols: cols)
        for i in 0..<cols {
            for j in 0..<cols {
                let qq = (0..<rows).reduce(0.0) { $0 + Double(q[$1 * cols + i]) * Double(q[$1 * cols + j]) }
                #expect(abs(qq - (i == j ? 1 : 0)) < 1e-4, "q\(i) . q\(j)")
            }
        }
        // A zero column: no Cholesky factor, so the basis is scikit-learn's LU one, exactly.
        var z = m
        for r in 0..<rows { z[r * cols + 2] = 0 }
        var viaBasis = z, viaLU = z, s1: [Float] = [], s2: [Float] = []
        try TruncatedSVD.normalizeBasis(&viaBasis, rows: rows, cols: cols, scratch: &s1, threads: 2)
        try TruncatedSVD.normalizeLU(&viaLU, rows: rows, cols: cols, scratch: &s2, threads: 1)
        #expect(viaBasis == viaLU)
    }

    @Test("normalizeBasis keeps the column space and makes the columns orthonormal")
    func basisNormalizer() throws {
        let rows = 300, cols = 7
        var rng = SplitMix64(seed: 13)
        let m = (0..<(rows * cols)).map { i in (rng.nextFloat() - 0.5) * Float(1 + i % cols) }
        var q = m, scratch: [Float] = []
        try TruncatedSVD.normalizeBasis(&q, rows: rows, cols: cols, scratch: &scratch, threads: 3)
        for i in 0..<cols {
            for j in 0..<cols {
                let qq = (0..<rows).reduce(0.0) { $0 + Double(q[$1 * cols + i]) * Double(q[$1 * cols + j]) }
                #expect(abs(qq - (i == j ? 1 : 0)) < 1e-4)
            }
        }
        // Each column of A is in span(Q): A - Q Q^T A is zero.
        for j in 0..<cols {
            let coef = (0..<cols).map { i in (0..<rows).reduce(0.0) { $0 + Double(q[$1 * cols + i]) * Double(m[$1 * cols + j]) } }
            var residual = 0.0, norm = 0.0
            for r in 0..<rows {
                let back = (0..<cols).reduce(0.0) { $0 + coef[$1] * Double(q[r * cols + $1]) }
                residual += (Double(m[r * cols + j]) - back) * (Double(m[r * cols + j]) - back)
                norm += Double(m[r * cols + j]) * Double(m[r * cols + j])
            }
            #expect(residual.squareRoot() < 1e-4 * norm.squareRoot(), "column \(j)")
        }
    }

    @Test("the LU normalizer gives scipy's lu(permute_l=True): hand-computed 3 x 2, and P L spans A's columns")
    func luNormalizer() throws {
        var a: [Float] = [1, 2, 3, 4, 5, 6]
        var scratch: [Float] = []
        try TruncatedSVD.normalizeLU(&a, rows: 3, cols: 2, scratch: &scratch)
        // Pivot 5 (row 3), then 0.8 (row 1): P L = [[0.2, 1], [0.6, 0.5], [1, 0]], as scipy.linalg.lu gives.
        let want: [Float] = [0.2, 1, 0.6, 0.5, 1, 0]
        for i in 0..<6 { #expect(abs(a[i] - want[i]) < 1e-6) }

        let rows = 200, cols = 7
        var rng = SplitMix64(seed: 9)
        let m = (0..<(rows * cols)).map { _ in rng.nextFloat() - 0.5 }
        var b = m
        try TruncatedSVD.normalizeLU(&b, rows: rows, cols: cols, scratch: &scratch)
        #expect(b.allSatisfy { abs($0) <= 1 + 1e-6 })
        // Every column of A is in the span of P L: its residual after projecting on an orthonormal basis of P L is 0.
        var q = b
        try TruncatedSVD.orthonormalize(&q, rows: rows, cols: cols)
        for j in 0..<cols {
            var residual = (0..<rows).map { Double(m[$0 * cols + j]) }
            for k in 0..<cols {
                let d = (0..<rows).reduce(0.0) { $0 + Double(q[$1 * cols + k]) * residual[$1] }
                for i in 0..<rows { residual[i] -= d * Double(q[i * cols + k]) }
            }
            #expect(residual.reduce(0) { $0 + $1 * $1 }.squareRoot() < 1e-4)
        }
    }

    @Test("orthonormalize gives orthonormal columns Q with Q^T A upper triangular (A = Q R)")
    func orthonormalizeQR() throws {
        let rows = 150, cols = 9
        var rng = SplitMix64(seed: 3)
        let m = (0..<(rows * cols)).map { _ in rng.nextFloat() - 0.5 }
        var q = m
        try TruncatedSVD.orthonormalize(&q, rows: rows, cols: cols)
        for i in 0..<cols {
            for j in 0..<cols {
                let qq = (0..<rows).reduce(0.0) { $0 + Double(q[$1 * cols + i]) * Double(q[$1 * cols + j]) }
                #expect(abs(qq - (i == j ? 1 : 0)) < 1e-5)
                let qa = (0..<rows).reduce(0.0) { $0 + Double(q[$1 * cols + i]) * Double(m[$1 * cols + j]) }
                if i > j { #expect(abs(qa) < 1e-5) }
            }
        }
    }
}

@Suite("Text: LSA, fold-in and ids")
struct LSATests {
    static let corpus = [
        "guitar riff distortion amplifier rock drums", "rock guitar solo loud drums riff",
        "distortion amplifier guitar rock anthem", "saxophone trumpet swing jazz improvisation",
        "jazz piano trio swing improvisation bass", "trumpet bebop jazz saxophone solo",
        "violin orchestra symphony cello", "symphony orchestra conductor violin concerto",
        "cello concerto orchestra strings symphony", "rock drums loud amplifier",
    ]

    @Test("a training document folds in to its own vector; a new document lands near its topic")
    func foldIn() throws {
        let options = LSAOptions(dimensions: 3, algorithm: .randomized, seed: 4)
        let (model, vectors, _) = try LSAModel.fit(Self.corpus, options: options, threads: 2)
        #expect(vectors.rows == Self.corpus.count && vectors.cols == 3)
        let again = try model.foldIn(Self.corpus)
        for i in 0..<vectors.storage.count { #expect(abs(again.storage[i] - vectors.storage[i]) < 1e-6) }
        for n in vectors.rowNorms() { #expect(abs(n - 1) < 1e-5) }
        let fresh = try model.foldIn(["a jazz saxophone swing record", "no known words"])
        func cos(_ a: [Float], _ b: [Float]) -> Float { zip(a, b).reduce(0) { $0 + $1.0 * $1.1 } }
        let jazz = cos(fresh.row(0), vectors.row(3)), rock = cos(fresh.row(0), vectors.row(0)),
            classical = cos(fresh.row(0), vectors.row(6))
        #expect(jazz > 0.9 && jazz > rock && jazz > classical)
        #expect(fresh.row(1).allSatisfy { $0 == 0 })
        let terms = model.vectorizer.termCount
        let other = CSRMatrix.empty(rows: 1, cols: terms + 1)
        #expect(throws: TextError.invalidParameter("the matrix has \(terms + 1) terms, the model \(terms)")) {
            _ = try model.vectors(of: other)
        }
    }

    @Test("documents with one id combine into one vector; a track without text inherits its artist's, marked")
    func combineAndInherit() throws {
        var m = Matrix(rows: 4, cols: 2)
        m.setRow(0, [1, 0]); m.setRow(1, [0, 1]); m.setRow(2, [0.6, 0.8]); m.setRow(3, [0, 0])
        let v = try IDVectors.combining(documentIDs: ["t1", "t1", "a1", "t9"], vectors: m)
        #expect(v.ids == ["t1", "a1"])  // t9 has no term: left out
        let h = Float(0.5).squareRoot()
        #expect(abs(v.vectors[0, 0] - h) < 1e-6 && abs(v.vectors[0, 1] - h) < 1e-6)
        #expect(v.vectors.row(1) == [0.6, 0.8])
        let w = v.inheriting(trackArtists: [("t1", "a1"), ("t2", "a1"), ("t3", "a7"), ("t2", "a1")])
        #expect(w.ids == ["t1", "a1", "t2"])
        #expect(w.inherited == [false, false, true])
        #expect(w.vectors.row(2) == [0.6, 0.8])
        #expect(throws: TextError.invalidParameter("3 document ids but 4 vectors")) {
            _ = try IDVectors.combining(documentIDs: ["a", "b", "c"], vectors: m)
        }
    }
}

import Testing
@testable import EncoreCore
@testable import EncoreData

@Suite struct LinalgTests {
    @Test func kernelsMatchNaiveLoops() {
        var rng = SplitMix64(seed: 1)
        for n in [0, 1, 7, 8, 15, 16, 17, 64, 100, 257] {
            let a = (0..<n).map { _ in Float(rng.nextGaussian()) }
            let b = (0..<n).map { _ in Float(rng.nextGaussian()) }
            var dot = 0.0, dist = 0.0
            for i in 0..<n {
                dot += Double(a[i]) * Double(b[i])
                dist += Double(a[i] - b[i]) * Double(a[i] - b[i])
            }
            let gotDot = a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { Kernels.dot(pa.baseAddress!, $0.baseAddress!, n) } }
            let gotDist = a.withUnsafeBufferPointer { pa in
                b.withUnsafeBufferPointer { Kernels.squaredDistance(pa.baseAddress!, $0.baseAddress!, n) }
            }
            #expect(abs(Double(gotDot) - dot) < 1e-4 * (1 + abs(dot)), "dot n=\(n)")
            #expect(abs(Double(gotDist) - dist) < 1e-4 * (1 + dist), "distance n=\(n)")
            var y = b
            a.withUnsafeBufferPointer { pa in y.withUnsafeMutableBufferPointer { Kernels.axpy(0.5, pa.baseAddress!, $0.baseAddress!, n) } }
            for i in 0..<n { #expect(abs(y[i] - (b[i] + 0.5 * a[i])) < 1e-5) }
        }
    }

    @Test func gramMatchesNaiveProductForAnyThreadCount() throws {
        let m = Matrix.random(rows: 3000, cols: 5, scale: 1, seed: 2)
        for threads in [1, 2, 3] {
            let g = BLAS.gram(m, threads: threads)
            for j in 0..<5 {
                for k in 0..<5 {
                    var s = 0.0
                    for r in 0..<3000 { s += Double(m[r, j]) * Double(m[r, k]) }
                    #expect(abs(Double(g[j, k]) - s) < 1e-3 * s, "threads \(threads) (\(j),\(k))")
                }
            }
        }
    }

    @Test func choleskySolvesASmallSystem() throws {
        // A = [[4, 2], [2, 3]], b = [2, 1] -> x = [0.5, 0].
        var a: [Float] = [4, 2, 2, 3]
        var b: [Float] = [2, 1]
        try a.withUnsafeMutableBufferPointer { pa in
            try b.withUnsafeMutableBufferPointer { try BLAS.choleskySolve(pa.baseAddress!, n: 2, $0.baseAddress!) }
        }
        #expect(abs(b[0] - 0.5) < 1e-6 && abs(b[1]) < 1e-6)
        var singular: [Float] = [1, 2, 2, 4]
        var rhs: [Float] = [1, 1]
        #expect(throws: LinalgError.self) {
            try singular.withUnsafeMutableBufferPointer { pa in
                try rhs.withUnsafeMutableBufferPointer { try BLAS.choleskySolve(pa.baseAddress!, n: 2, $0.baseAddress!) }
            }
        }
    }

    @Test func topKSelectsTheLargestWithStableTies() {
        var rng = SplitMix64(seed: 5)
        let scores = (0..<1000).map { _ in Float(Int(rng.next() % 50)) }
        let picked = scores.withUnsafeBufferPointer { TopK.select($0, k: 10, exclude: { $0 % 7 == 0 }) }
        let brute = scores.enumerated().filter { $0.offset % 7 != 0 }
            .sorted { $0.element > $1.element || ($0.element == $1.element && $0.offset < $1.offset) }
            .prefix(10)
        #expect(picked.indices == brute.map { Int32($0.offset) })
        #expect(picked.scores == brute.map(\.element))
        let few = [Float(1), 3, 2].withUnsafeBufferPointer { TopK.select($0, k: 10) }
        #expect(few.indices == [1, 2, 0])
    }

    @Test func matrixShapeChecks() throws {
        #expect(throws: LinalgError.self) { try Matrix(rows: 2, cols: 2, storage: [1, 2, 3]) }
        var m = try Matrix(rows: 2, cols: 2, storage: [3, 4, 0, 0])
        #expect(m.rowNorms() == [5, 0])
        #expect(m.rowNormalized().row(0) == [0.6, 0.8])
        m.grow(toRows: 4)
        #expect(m.rows == 4 && m.row(3) == [0, 0])
        // Rows 1 and 3 are zero (-0.0 is zero); one tiny value makes row 2 non-zero.
        m[2, 1] = -1e-30
        m[3, 0] = -0.0
        #expect((0..<4).map { m.isZeroRow($0) } == [false, true, false, true])
    }

    @Test func seededGeneratorIsDeterministic() {
        var a = SplitMix64(seed: 9), b = SplitMix64(seed: 9), c = SplitMix64(seed: 10)
        let xs = (0..<5).map { _ in a.next() }
        #expect(xs == (0..<5).map { _ in b.next() })
        #expect(xs != (0..<5).map { _ in c.next() })
        var g = SplitMix64(seed: 3)
        let normals = (0..<20000).map { _ in g.nextGaussian() }
        let mean = normals.reduce(0, +) / 20000
        let variance = normals.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 20000
        #expect(abs(mean) < 0.03 && abs(variance - 1) < 0.05)
    }
}

@Suite struct DataCoreTests {
    @Test func csrFromUnsortedTriplesSumsDuplicates() throws {
        let m = try CSRMatrix(rows: 3, cols: 4, rowIndices: [2, 0, 2, 0, 2, 1], colIndices: [1, 3, 1, 0, 0, 2],
                              values: [1, 2, 3, 4, 5, 6])
        #expect(m.indptr == [0, 2, 3, 5])
        #expect(m.indices == [0, 3, 2, 0, 1])
        #expect(m.values == [4, 2, 6, 5, 4])
        #expect(m.value(row: 2, col: 1) == 4)
        #expect(m.value(row: 1, col: 0) == 0)
        let t = m.transposed()
        #expect(t.rows == 4 && t.cols == 3)
        for r in 0..<3 { for c in 0..<4 { #expect(t.value(row: c, col: Int32(r)) == m.value(row: r, col: Int32(c))) } }
        #expect(t.transposed() == m)
        #expect(m.selectingRows([2, 0]).indptr == [0, 2, 4])
        #expect(throws: DataError.self) { try CSRMatrix(rows: 1, cols: 1, rowIndices: [0], colIndices: [1], values: [1]) }
        #expect(throws: DataError.self) { try CSRMatrix(rows: 1, cols: 3, indptr: [0, 2], indices: [2, 1], values: [1, 1]) }
    }

    @Test func idMapIsStableAndRejectsDuplicates() throws {
        var ids = IDMap()
        #expect(ids.intern("b") == 0)
        #expect(ids.intern("a") == 1)
        #expect(ids.intern("b") == 0)
        #expect(ids.index(of: "a") == 1 && ids.index(of: "c") == nil)
        #expect(try IDMap(ids: ["b", "a"]) == ids)
        #expect(throws: DataError.self) { try IDMap(ids: ["x", "x"]) }
    }

    @Test func interactionsBuildAMatrixWithSummedRepeats() throws {
        var log = Interactions()
        log.append(user: "u1", item: "i1", weight: 2, timestamp: 10)
        log.append(user: "u2", item: "i1", weight: 1, timestamp: 11)
        log.append(user: "u1", item: "i1", weight: 3, timestamp: 12)
        let m = log.matrix()
        #expect(m.rows == 2 && m.cols == 1 && m.value(row: 0, col: 0) == 5)
        #expect(log.subset([2]).matrix().value(row: 0, col: 0) == 3)
        #expect(log.timestamps == [10, 11, 12])
    }
}

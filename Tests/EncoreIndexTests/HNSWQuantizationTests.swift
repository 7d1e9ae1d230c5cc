import Foundation
import Testing
@testable import EncoreCore
@testable import EncoreIndex

/// Builds a quantized index over the rows of `data` (ids = rows).
private func buildQuantized(
    _ data: Matrix, _ metric: VectorMetric, efConstruction: Int = 64, threads: Int = 2, seed: UInt64 = 7
) throws -> HNSWIndex {
    let index = try HNSWIndex(
        dimension: data.cols, metric: metric, m: 16, efConstruction: efConstruction, seed: seed, capacity: data.rows,
        quantization: .int8)
    try index.add(ids: (0..<Int32(data.rows)).map { $0 }, vectors: data, threads: threads)
    return index
}

/// Rewrites the index file at `path` with its attributes and sections changed by `edit`.
private func rewrite(
    _ path: String, to out: String,
    _ edit: (inout [String: String], inout [(name: String, bytes: [UInt8])]) -> Void
) throws {
    let file = try IndexFile.open(path: path)
    var strings = file.stringAttributes
    var sections: [(name: String, bytes: [UInt8])] = []
    for name in file.sectionNames { sections.append((name, Array(try file.section(name)))) }
    edit(&strings, &sections)
    func write(_ i: Int, _ done: [(name: String, bytes: UnsafeRawBufferPointer)]) throws {
        if i == sections.count {
            try IndexFile.write(
                to: out, kind: file.kind, metric: file.metric, dimension: file.dimension, count: file.count,
                attributes: file.attributes, stringAttributes: strings, sections: done)
            return
        }
        try sections[i].bytes.withUnsafeBytes { b in try write(i + 1, done + [(sections[i].name, b)]) }
    }
    try write(0, [])
}

@Suite("HNSW int8 quantization")
struct HNSWQuantizationTests {
    // MARK: Kernels

    /// Σ q_i c_i and Σ (q_i − s c_i)² in Double.
    static func reference(_ a: [Float], _ s: Float, _ c: [Int8]) -> (dot: Double, l2: Double) {
        var dot = 0.0, l2 = 0.0
        for i in 0..<c.count {
            dot += Double(a[i]) * Double(c[i])
            let t = Double(a[i]) - Double(s) * Double(c[i])
            l2 += t * t
        }
        return (dot, l2)
    }

    @Test func kernelsMatchAHandComputedCase() {
        // 16 values: q = 1, 2, ..., 16, scale 0.5, codes 1, -1, 2, -2, ..., 8, -8.
        let a = (1...16).map { Float($0) }
        let s: Float = 0.5
        let c: [Int8] = (1...8).flatMap { [Int8($0), -Int8($0)] }
        // Σ a_i c_i = Σ_k ((2k−1)·k − 2k·k) = −Σ k = −36.
        // Σ (q_i − 0.5 c_i)²: pairs (2k−1 − k/2)² + (2k + k/2)² = (1.5k − 1)² + (2.5k)² summed over k = 1...8:
        // Σ 2.25k² − 3k + 1 + 6.25k² = 8.5 · 204 − 3 · 36 + 8 = 1634.
        // Level 0 is the portable version, 1 the AVX2+FMA one (or the portable one again on a CPU without AVX2).
        for level in [0, 1] {
            #expect(SQ8Kernels.dot(level: level, a, c) == -36, "level \(level)")
            #expect(SQ8Kernels.l2(level: level, a, s, c) == 1634, "level \(level)")
        }
    }

    @Test func kernelsMatchADoublePrecisionReferenceOnRandomVectors() {
        var rng = SplitMix64(seed: 5)
        for stride in [16, 32, 64, 128, 320] {
            for _ in 0..<50 {
                let a = (0..<stride).map { _ in Float(rng.nextGaussian()) }
                let s = Float(rng.nextDouble() * 0.05)
                let c = (0..<stride).map { _ in Int8(Int(rng.next() % 255) - 127) }
                let want = Self.reference(a, s, c)
                // Float accumulation error: a few ulps of the sum of magnitudes per term.
                var magnitude = 0.0, squares = 0.0
                for i in 0..<stride {
                    magnitude += abs(Double(a[i]) * Double(c[i]))
                    let t = Double(a[i]) - Double(s) * Double(c[i])
                    squares += t * t + abs(Double(a[i]) * Double(s) * Double(c[i]))
                }
                for level in [0, 1] {
                    let dot = Double(SQ8Kernels.dot(level: level, a, c))
                    let l2 = Double(SQ8Kernels.l2(level: level, a, s, c))
                    #expect(abs(dot - want.dot) <= 1e-6 * Double(stride) * magnitude, "dot, stride \(stride), level \(level)")
                    #expect(abs(l2 - want.l2) <= 1e-6 * Double(stride) * squares, "l2, stride \(stride), level \(level)")
                }
            }
        }
    }

    // MARK: Codes

    @Test func encodingIsSymmetricPerVector() {
        // max |x| = 2.54, so s = 0.02: 2.54 → 127, −1.0 → −50, 0.011 → 1 (0.55 rounds up), 0.009 → 0; padded with 0.
        let (codes, scale) = SQ8Kernels.encode([2.54, -1.0, 0.011, 0.009, 0], stride: 16)
        #expect(abs(scale - 0.02) < 1e-7)
        #expect(codes == [127, -50, 1, 0, 0] + [Int8](repeating: 0, count: 11))
        // A zero vector: zero codes and scale.
        let zero = SQ8Kernels.encode([0, 0, 0], stride: 16)
        #expect(zero.scale == 0 && zero.codes.allSatisfy { $0 == 0 })
        // The largest magnitude is ±127 exactly: −3 → −127, 1 → 42.33 → 42, 2 → 84.67 → 85.
        #expect(SQ8Kernels.encode([-3, 1, 2], stride: 16).codes.prefix(3) == [-127, 42, 85])
    }

    @Test(arguments: VectorMetric.allCases)
    func codesDecodeWithinHalfAStepOfTheStoredVector(metric: VectorMetric) throws {
        let data = HNSWTestData.factorLike(1500, 20, seed: 31)
        let index = try buildQuantized(data, metric)
        for id in stride(from: Int32(0), to: 1500, by: 7) {
            let stored = try #require(index.vector(for: id))
            let decoded = try #require(index.quantizedVector(for: id))
            let s = stored.map(abs).max()! / 127
            for i in 0..<20 {
                #expect(abs(decoded[i] - stored[i]) <= s * 0.5001 + 1e-7, "id \(id) dim \(i)")
            }
        }
        // An unquantized index has no codes.
        #expect(try HNSWTestData.build(HNSWTestData.gaussian(100, 12, seed: 42), .l2).quantizedVector(for: 0) == nil)
    }

    @Test func theWalkRanksByTheCodes() throws {
        // Every vector has a first coordinate of 1000 and N(0, 1) elsewhere: its scale is about 7.9, so every other
        // coordinate is coded 0 and all vectors look alike to the walk. With ef = k the candidates are arbitrary, so
        // recall collapses, while the float index finds the neighbors; the reported distances stay exact.
        var data = HNSWTestData.gaussian(1500, 16, seed: 61)
        for r in 0..<1500 { data[r, 0] = 1000 }
        var queries = HNSWTestData.gaussian(30, 16, seed: 62)
        for r in 0..<30 { queries[r, 0] = 1000 }
        let float = try HNSWTestData.build(data, .l2, threads: 1)
        let quantized = try buildQuantized(data, .l2, threads: 1)
        let rf = try HNSWTestData.recall(float, data, queries, k: 10, ef: 10)
        let rq = try HNSWTestData.recall(quantized, data, queries, k: 10, ef: 10)
        #expect(rf >= 0.8, "float recall \(rf)")
        #expect(rq <= 0.3, "quantized recall \(rq) with indistinguishable codes")
        let got = try quantized.search(queries.row(0), k: 10, ef: 10)
        for n in got {
            let want = HNSWTestData.distance(data.row(Int(n.id))[...], queries.row(0)[...], .l2)
            #expect(abs(Double(n.distance) - want) <= 1e-5 * (1 + want))
        }
    }

    // MARK: Recall and distances

    // Bound: recall@10 at least 0.95 (as the float index's tests) and at most 0.01 below the float index's at the same
    // ef, on the same graph (same seed, one build thread, so both indexes have identical links).
    static func compareRecall(_ data: Matrix, _ queries: Matrix, _ metric: VectorMetric, ef: Int) throws -> (Double, Double) {
        let float = try HNSWTestData.build(data, metric, threads: 1)
        let quantized = try buildQuantized(data, metric, threads: 1)
        let rf = try HNSWTestData.recall(float, data, queries, k: 10, ef: ef)
        let rq = try HNSWTestData.recall(quantized, data, queries, k: 10, ef: ef)
        return (rf, rq)
    }

    @Test(arguments: VectorMetric.allCases)
    func recallOnRandomDataMatchesTheFloatIndex(metric: VectorMetric) throws {
        let data = metric == .innerProduct
            ? HNSWTestData.factorLike(3000, 24, seed: 11) : HNSWTestData.gaussian(3000, 24, seed: 11)
        let queries = metric == .innerProduct
            ? HNSWTestData.factorLike(50, 24, seed: 12) : HNSWTestData.gaussian(50, 24, seed: 12)
        let (rf, rq) = try Self.compareRecall(data, queries, metric, ef: 64)
        #expect(rq >= 0.95, "quantized recall@10 \(rq) on random data, \(metric)")
        #expect(rq >= rf - 0.01, "quantized recall@10 \(rq) vs float \(rf), \(metric)")
    }

    @Test(arguments: VectorMetric.allCases)
    func recallOnClusteredDataMatchesTheFloatIndex(metric: VectorMetric) throws {
        let data = HNSWTestData.clustered(3000, 24, clusters: 30, seed: 21)
        let queries = HNSWTestData.clustered(50, 24, clusters: 30, seed: 21, stream: 1)
        let (rf, rq) = try Self.compareRecall(data, queries, metric, ef: 64)
        #expect(rq >= 0.95, "quantized recall@10 \(rq) on clustered data, \(metric)")
        #expect(rq >= rf - 0.01, "quantized recall@10 \(rq) vs float \(rf), \(metric)")
    }

    @Test(arguments: VectorMetric.allCases)
    func reportedDistancesAreExactAndSorted(metric: VectorMetric) throws {
        let data = HNSWTestData.factorLike(2000, 32, seed: 51)
        let index = try buildQuantized(data, metric)
        let queries = HNSWTestData.factorLike(20, 32, seed: 52)
        for q in 0..<queries.rows {
            let query = queries.row(q)
            let got = try index.search(query, k: 10, ef: 50)
            #expect(got.count == 10)
            for (a, b) in zip(got, got.dropFirst()) { #expect(a.distance <= b.distance) }
            for n in got {
                let want = HNSWTestData.distance(data.row(Int(n.id))[...], query[...], metric)
                #expect(abs(Double(n.distance) - want) <= 1e-5 * (1 + abs(want)), "id \(n.id): \(n.distance) vs \(want)")
            }
        }
    }

    // MARK: Everything else with quantization on

    @Test func filtersDeletionUpdateAndAddsWork() throws {
        let data = HNSWTestData.clustered(3000, 16, clusters: 20, seed: 71)
        let index = try buildQuantized(data, .l2)
        let queries = HNSWTestData.clustered(20, 16, clusters: 20, seed: 71, stream: 1)
        var wide = IDBitset(capacity: 3000), narrow = IDBitset(capacity: 3000)
        var rng = SplitMix64(seed: 73)
        for id in 0..<Int32(3000) {
            let u = rng.nextDouble()
            if u < 0.6 { wide.insert(id) }
            if u < 0.01 { narrow.insert(id) }
        }
        let filters: [(String, SearchFilter, (Int32) -> Bool)] = [
            ("allowed 60%", .allowed(wide), { wide.contains($0) }),
            ("allowed 1% (exact scan)", .allowed(narrow), { narrow.contains($0) }),
            ("excluded 60%", .excluded(wide), { !wide.contains($0) }),
            ("predicate 50%", .predicate({ $0 % 2 == 1 }), { $0 % 2 == 1 }),
            ("predicate 2% (walk, then exact scan)", .predicate({ $0 % 50 == 3 }), { $0 % 50 == 3 }),
        ]
        try HNSWTestData.expectFilteredRecall(index, data: data, queries: queries, filters: filters)

        // Deletions: never returned, before and after purging; the slots are reused by later adds.
        let removed = Set(stride(from: Int32(0), to: 3000, by: 3))
        for id in removed { try index.remove(id: id) }
        for q in 0..<queries.rows {
            #expect(try index.search(queries.row(q), k: 10, ef: 40).allSatisfy { !removed.contains($0.id) })
        }
        index.purgeDeleted()
        #expect(index.pendingDeletions == 0)
        let slotsBefore = index.slotCount
        let extra = HNSWTestData.clustered(500, 16, clusters: 20, seed: 74)
        try index.add(ids: (0..<Int32(500)).map { 10_000 + $0 }, vectors: extra, threads: 2)
        #expect(index.slotCount == slotsBefore)
        for r in stride(from: 0, to: 500, by: 25) {
            let got = try index.search(extra.row(r), k: 1)
            #expect(got.first?.id == 10_000 + Int32(r))
            #expect(got.first.map { $0.distance <= 1e-5 } == true)
        }
        // Update: the new vector is found (its codes rewritten), the old one is gone.
        let far = [Float](repeating: 40, count: 16)
        try index.update(id: 1, vector: far)
        #expect(try index.search(far, k: 1).first?.id == 1)
        #expect(try index.search(data.row(1), k: 5).allSatisfy { $0.id != 1 })
        #expect(index.quantizedVector(for: 1) == [Float](repeating: 40, count: 16))
    }

    @Test func concurrentQueriesDuringAddsSeeExactDistances() async throws {
        let dim = 16
        let base = HNSWTestData.gaussian(1100, dim, seed: 141)
        let extra = HNSWTestData.gaussian(1000, dim, seed: 142)
        let index = try buildQuantized(base, .l2)
        let problems = try await HNSWTestData.problemsOfQueriesDuringAdds(
            index: index, base: base, extra: extra, rounds: 100, tolerance: 1e-4)
        #expect(problems.isEmpty, "\(problems.prefix(5))")
        #expect(index.count == 1100 + 1000 - 100)
    }

    // MARK: Persistence and options

    @Test func saveAndLoadRecomputeTheSameCodesAndGiveIdenticalResults() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("hnsw-sq8-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for metric in VectorMetric.allCases {
            let data = HNSWTestData.factorLike(1500, 16, seed: 121)
            let index = try buildQuantized(data, metric)
            for id in stride(from: Int32(0), to: 1500, by: 11) { try index.remove(id: id) }
            let path = dir + "/\(metric.rawValue).encoreix"
            try index.save(to: path)
            let loaded = try HNSWIndex.load(from: path)
            #expect(loaded.quantization == .int8)
            for id in stride(from: Int32(1), to: 1500, by: 11) {
                #expect(loaded.quantizedVector(for: id) == index.quantizedVector(for: id))
            }
            try HNSWTestData.expectSameAnswers(loaded, index)
        }
    }

    @Test func filesWithoutTheQuantizationAttributeLoadUnquantized() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("hnsw-sq8-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let data = HNSWTestData.gaussian(1200, 8, seed: 9)
        let index = try HNSWTestData.build(data, .cosine)
        try index.save(to: dir + "/new.encoreix")
        // A file as written before quantization existed: no attribute, no section.
        try rewrite(dir + "/new.encoreix", to: dir + "/old.encoreix") { strings, _ in strings["quantization"] = nil }
        let old = try HNSWIndex.load(from: dir + "/old.encoreix")
        #expect(old.quantization == .none && old.quantizedVector(for: 3) == nil)
        #expect(try old.search(data.row(3), k: 5) == index.search(data.row(3), k: 5))
    }

    @Test func badQuantizationValuesGetClearErrors() throws {
        #expect(throws: IndexError.invalidParameter("quantization 'int4' is not one of none, int8")) {
            try VectorQuantization(parsing: "int4")
        }
        #expect(try VectorQuantization(parsing: "int8") == .int8)
        #expect(try VectorQuantization(parsing: "none") == VectorQuantization.none)

        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("hnsw-sq8-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let index = try buildQuantized(HNSWTestData.gaussian(1100, 8, seed: 19), .l2)
        let good = dir + "/good.encoreix"
        try index.save(to: good)
        let unknown = dir + "/unknown.encoreix"
        try rewrite(good, to: unknown) { strings, _ in strings["quantization"] = "int4" }
        #expect(throws: IndexError.corruptFile(path: unknown, reason: "unknown quantization 'int4'")) {
            try HNSWIndex.load(from: unknown)
        }
    }
}

import Foundation
import Testing
@testable import EncoreCore
@testable import EncoreIndex
import EncoreTestSupport

/// Independent reference: every distance in Double by a plain loop, sorted (ties by id).
private func bruteForce(
    _ vectors: [[Float]], ids: [Int32], query: [Float], metric: VectorMetric, allow: (Int32) -> Bool = { _ in true }
) -> [(id: Int32, distance: Double)] {
    func norm(_ v: [Float]) -> Double { v.reduce(0) { $0 + Double($1) * Double($1) }.squareRoot() }
    var out: [(id: Int32, distance: Double)] = []
    for (i, v) in vectors.enumerated() where allow(ids[i]) {
        var dot = 0.0, l2 = 0.0
        for c in v.indices {
            dot += Double(v[c]) * Double(query[c])
            l2 += (Double(v[c]) - Double(query[c])) * (Double(v[c]) - Double(query[c]))
        }
        let d: Double
        switch metric {
        case .cosine: d = 1 - dot / (norm(v) * norm(query))
        case .l2: d = l2
        case .innerProduct: d = -dot
        }
        out.append((ids[i], d))
    }
    return out.sorted { $0.distance < $1.distance || ($0.distance == $1.distance && $0.id < $1.id) }
}

/// Checks `got` against the reference: the same distances rank by rank, and each returned id really is at the distance
/// reported (robust to near-ties, which may come out in either order).
private func expectMatches(
    _ got: [Neighbor], _ truth: [(id: Int32, distance: Double)], k: Int, sourceLocation: SourceLocation = #_sourceLocation
) {
    let want = Array(truth.prefix(k))
    #expect(got.count == want.count, sourceLocation: sourceLocation)
    let byID = Dictionary(uniqueKeysWithValues: truth.map { ($0.id, $0.distance) })
    for (r, n) in zip(got, want).map({ $0 }).enumerated().map({ ($0.offset, $0.element.0) }) {
        let tol = 1e-4 * max(1, abs(want[r].distance))
        #expect(abs(Double(n.distance) - want[r].distance) <= tol, "rank \(r): \(n.distance) vs \(want[r].distance)", sourceLocation: sourceLocation)
        guard let d = byID[n.id] else {
            Issue.record("id \(n.id) is not allowed or not present", sourceLocation: sourceLocation)
            continue
        }
        #expect(abs(Double(n.distance) - d) <= tol, "id \(n.id): reported \(n.distance), true \(d)", sourceLocation: sourceLocation)
    }
    #expect(Set(got.map(\.id)).count == got.count, "duplicate ids", sourceLocation: sourceLocation)
}

private func randomVectors(_ n: Int, _ d: Int, seed: UInt64) -> [[Float]] {
    var rng = SplitMix64(seed: seed)
    return (0..<n).map { _ in (0..<d).map { _ in Float(rng.nextGaussian()) } }
}

private func matrix(_ rows: [[Float]], cols: Int) -> Matrix {
    try! Matrix(rows: rows.count, cols: cols, storage: rows.flatMap { $0 })
}

@Suite("ExactIndex")
struct ExactIndexTests {
    static let d = 7
    let base = randomVectors(300, ExactIndexTests.d, seed: 1)
    let queries = randomVectors(20, ExactIndexTests.d, seed: 2)
    /// Sparse, shuffled ids.
    let ids: [Int32] = {
        var rng = SplitMix64(seed: 3)
        var ids = (0..<300).map { Int32($0 * 7 + 5) }
        ids.shuffle(using: &rng)
        return ids
    }()

    @Test("single and batched searches equal brute force", arguments: VectorMetric.allCases)
    func matchesBruteForce(metric: VectorMetric) throws {
        let index = try ExactIndex(vectors: matrix(base, cols: Self.d), ids: ids, metric: metric)
        #expect(index.count == 300)
        let batch = try index.search(queries: matrix(queries, cols: Self.d), k: 10, threads: 3)
        for (i, q) in queries.enumerated() {
            let truth = bruteForce(base, ids: ids, query: q, metric: metric)
            let single = try index.search(q, k: 10)
            expectMatches(single, truth, k: 10)
            expectMatches(batch[i], truth, k: 10)
            #expect(single.map(\.id) == batch[i].map(\.id))
        }
    }

    @Test("tiles: more rows than a tile and more queries than a query tile, on 1 and 2 threads")
    func tiling() throws {
        let n = ExactIndex.baseTile + 300
        let big = randomVectors(n, 4, seed: 10)
        let qs = randomVectors(ExactIndex.queryTile * 2 + 5, 4, seed: 11)
        let bigIDs = (0..<n).map { Int32($0) }
        for metric in VectorMetric.allCases {
            let index = try ExactIndex(vectors: matrix(big, cols: 4), metric: metric)
            let one = try index.search(queries: matrix(qs, cols: 4), k: 5, threads: 1)
            let two = try index.search(queries: matrix(qs, cols: 4), k: 5, threads: 2)
            #expect(one == two)
            for i in stride(from: 0, to: qs.count, by: 17) {
                expectMatches(one[i], bruteForce(big, ids: bigIDs, query: qs[i], metric: metric), k: 5)
            }
        }
    }

    @Test("filters are honored exactly", arguments: VectorMetric.allCases)
    func filters(metric: VectorMetric) throws {
        let index = try ExactIndex(vectors: matrix(base, cols: Self.d), ids: ids, metric: metric)
        let allowedIDs = ids.enumerated().filter { $0.offset % 5 == 0 }.map(\.element)
        let allowed = IDBitset(allowedIDs)
        let filters: [(SearchFilter, (Int32) -> Bool)] = [
            (.allowed(allowed), { allowed.contains($0) }),
            (.excluded(allowed), { !allowed.contains($0) }),
            (.predicate({ $0 % 3 == 0 }), { $0 % 3 == 0 }),
        ]
        for (filter, allow) in filters {
            let batch = try index.search(queries: matrix(queries, cols: Self.d), k: 8, filter: filter, threads: 2)
            for (i, q) in queries.enumerated() {
                let truth = bruteForce(base, ids: ids, query: q, metric: metric, allow: allow)
                expectMatches(try index.search(q, k: 8, filter: filter), truth, k: 8)
                expectMatches(batch[i], truth, k: 8)
            }
        }
        // A filter that allows only three ids returns exactly those, even with a larger k.
        let three = try index.search(queries[0], k: 10, filter: .allowed(IDBitset(ids.prefix(3))))
        #expect(Set(three.map(\.id)) == Set(ids.prefix(3)))
        #expect(try index.search(queries[0], k: 10, filter: .predicate { _ in false }).isEmpty)
    }

    @Test("removed ids never return; a removed id can be added again")
    func removal() throws {
        var index = try ExactIndex(vectors: matrix(base, cols: Self.d), ids: ids, metric: .l2)
        let removed = Set(ids.enumerated().filter { $0.offset % 3 != 1 }.map(\.element))
        for id in ids where removed.contains(id) { try index.remove(id: id) }
        #expect(index.count == 300 - removed.count)
        #expect(throws: IndexError.invalidID(ids[0], reason: "not in the index")) { try index.remove(id: ids[0]) }
        let keptRows = ids.enumerated().filter { !removed.contains($0.element) }
        let keptVectors = keptRows.map { base[$0.offset] }, keptIDs = keptRows.map(\.element)
        let batch = try index.search(queries: matrix(queries, cols: Self.d), k: 10)
        for (i, q) in queries.enumerated() {
            let truth = bruteForce(keptVectors, ids: keptIDs, query: q, metric: .l2)
            let got = try index.search(q, k: 10)
            #expect(got.allSatisfy { !removed.contains($0.id) })
            expectMatches(got, truth, k: 10)
            expectMatches(batch[i], truth, k: 10)
        }
        // The query itself, re-added under a removed id, comes back first at distance 0.
        try index.add(id: ids[0], vector: queries[0])
        #expect(try index.search(queries[0], k: 1).first == Neighbor(id: ids[0], distance: 0))
        #expect(index.contains(id: ids[0]) && index.vector(for: ids[0]) == queries[0])
        // Removing everything leaves an empty index that answers with nothing.
        for id in index.ids { try index.remove(id: id) }
        #expect(index.count == 0)
        #expect(try index.search(queries[1], k: 3).isEmpty)
        #expect(try index.search(queries: matrix(queries, cols: Self.d), k: 3).allSatisfy(\.isEmpty))
    }

    @Test("k larger than the index, k = 0, and hand-checked distances")
    func smallCases() throws {
        var index = try ExactIndex(dimension: 2, metric: .cosine)
        try index.add(id: 10, vector: [2, 0])      // scaled: cosine normalizes
        try index.add(id: 11, vector: [0, 3])
        try index.add(id: 12, vector: [-1, -1])
        let r = try index.search([1, 0], k: 5)
        #expect(r.map(\.id) == [10, 11, 12])
        #expect(abs(r[0].distance) < 1e-6 && abs(r[1].distance - 1) < 1e-6 && abs(r[2].distance - (1 + Float(0.5).squareRoot())) < 1e-6)
        #expect(try index.search([1, 0], k: 0).isEmpty)

        var ip = try ExactIndex(dimension: 2, metric: .innerProduct)
        try ip.add(ids: [0, 1], vectors: matrix([[1, 1], [3, -1]], cols: 2))
        #expect(try ip.search([1, 2], k: 2) == [Neighbor(id: 0, distance: -3), Neighbor(id: 1, distance: -1)])

        var l2 = try ExactIndex(dimension: 2, metric: .l2)
        try l2.add(ids: [5, 6], vectors: matrix([[1000, 1000], [1000.5, 1000]], cols: 2))
        // Large norms, tiny distances: the reported squared distances are exact, not ‖q‖² − 2q·x + ‖x‖² rounding.
        #expect(try l2.search([1000.25, 1000], k: 2).map(\.distance) == [0.0625, 0.0625])
        #expect(try l2.search([1000.5, 1001], k: 1) == [Neighbor(id: 6, distance: 1)])
    }

    @Test("cosine accepts zero vectors, stored and queried, at distance exactly 1 from everything")
    func cosineZeroVectors() throws {
        let zero = [Float](repeating: 0, count: Self.d)
        let zeroIDs: [Int32] = (0..<10).map { 10_000 + $0 }
        let plain = try ExactIndex(vectors: matrix(base, cols: Self.d), ids: ids, metric: .cosine)
        var mixed = try ExactIndex(vectors: matrix(base, cols: Self.d), ids: ids, metric: .cosine)
        try mixed.add(ids: Array(zeroIDs.prefix(5)), vectors: matrix(Array(repeating: zero, count: 5), cols: Self.d))
        for id in zeroIDs.dropFirst(5) { try mixed.add(id: id, vector: zero) }
        #expect(mixed.count == 310 && mixed.vector(for: zeroIDs[0]) == zero)
        // Among non-zero vectors nothing changes: the same neighbors as without the zero vectors, and as brute force.
        let batch = try mixed.search(queries: matrix(queries, cols: Self.d), k: 10, threads: 2)
        for (i, q) in queries.enumerated() {
            let single = try mixed.search(q, k: 10)
            #expect(try single == plain.search(q, k: 10))
            #expect(batch[i].map(\.id) == single.map(\.id))  // gemm and gemv round differently in the last bits
            expectMatches(single, bruteForce(base, ids: ids, query: q, metric: .cosine), k: 10)
            // The zero vectors themselves are at distance exactly 1.
            let onlyZero = try mixed.search(q, k: 20, filter: .allowed(IDBitset(zeroIDs)))
            #expect(Set(onlyZero.map(\.id)) == Set(zeroIDs) && onlyZero.allSatisfy { $0.distance == 1 })
        }
        // A zero query is at distance exactly 1 from every vector, zero or not, alone or in a batch.
        let fromZero = try mixed.search(zero, k: 400)
        #expect(fromZero.count == 310 && fromZero.allSatisfy { $0.distance == 1 })
        let zeroRow = try mixed.search(queries: matrix([queries[0], zero], cols: Self.d), k: 5)
        #expect(try zeroRow[0].map(\.id) == mixed.search(queries[0], k: 5).map(\.id))
        #expect(zeroRow[1].count == 5 && zeroRow[1].allSatisfy { $0.distance == 1 })
        // Saved and loaded, the zero vectors stay zero.
        let dir = makeTemporaryDirectory("exact-zero")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try mixed.save(to: dir + "/x")
        let loaded = try ExactIndex.load(from: dir + "/x")
        #expect(loaded.vector(for: zeroIDs[9]) == zero)
        #expect(try loaded.search(zero, k: 3).allSatisfy { $0.distance == 1 })
    }

    @Test("bad input is refused with the right error and leaves the index unchanged")
    func badInput() throws {
        #expect(throws: IndexError.self) { _ = try ExactIndex(dimension: 0, metric: .l2) }
        var index = try ExactIndex(dimension: 3, metric: .cosine)
        #expect(throws: IndexError.dimensionMismatch(expected: 3, got: 2)) { try index.add(id: 1, vector: [1, 2]) }
        #expect(throws: IndexError.self) { try index.add(id: 1, vector: [1, .nan, 2]) }
        #expect(throws: IndexError.self) { try index.add(id: 1, vector: [1, .infinity, 2]) }
        #expect(throws: IndexError.invalidID(-1, reason: "ids must be non-negative")) { try index.add(id: -1, vector: [1, 2, 3]) }
        try index.add(id: 1, vector: [1, 2, 3])
        #expect(throws: IndexError.invalidID(1, reason: "already present")) { try index.add(id: 1, vector: [1, 2, 3]) }
        // A batch with a repeated id or a bad row adds nothing.
        #expect(throws: IndexError.self) { try index.add(ids: [2, 2], vectors: matrix([[1, 0, 0], [0, 1, 0]], cols: 3)) }
        #expect(throws: IndexError.self) { try index.add(ids: [3, 4], vectors: matrix([[1, 0, 0], [0, .nan, 0]], cols: 3)) }
        #expect(throws: IndexError.self) { try index.add(ids: [3], vectors: matrix([[1, 0, 0], [0, 1, 0]], cols: 3)) }
        #expect(index.count == 1 && index.ids == [1])

        #expect(throws: IndexError.dimensionMismatch(expected: 3, got: 4)) { _ = try index.search([1, 2, 3, 4], k: 1) }
        #expect(throws: IndexError.self) { _ = try index.search([1, .nan, 3], k: 1) }
        #expect(throws: IndexError.self) { _ = try index.search([1, 2, 3], k: -1) }
        #expect(throws: IndexError.dimensionMismatch(expected: 3, got: 2)) { _ = try index.search(queries: Matrix(rows: 2, cols: 2), k: 1) }
        #expect(throws: IndexError.self) { _ = try index.search(queries: matrix([[1, 2, 3], [0, .nan, 0]], cols: 3), k: 1) }
    }

    @Test("save and load keep vectors, ids and results; damaged or foreign files are refused", arguments: VectorMetric.allCases)
    func saveLoad(metric: VectorMetric) throws {
        let dir = makeTemporaryDirectory("exact")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var index = try ExactIndex(vectors: matrix(base, cols: Self.d), ids: ids, metric: metric)
        try index.remove(id: ids[7])
        let path = dir + "/exact.encoreix"
        try index.save(to: path)
        let loaded = try ExactIndex.load(from: path)
        #expect(loaded.metric == metric && loaded.dimension == Self.d && loaded.count == 299)
        #expect(loaded.ids == index.ids)
        for id in index.ids { #expect(loaded.vector(for: id) == index.vector(for: id)) }
        let qm = matrix(queries, cols: Self.d)
        #expect(try loaded.search(queries: qm, k: 10) == index.search(queries: qm, k: 10))

        // Another kind of index file is refused by name.
        try IndexFile.write(to: dir + "/other", kind: "hnsw", metric: metric, dimension: Self.d, count: 0, sections: [])
        #expect(throws: IndexError.corruptFile(path: dir + "/other", reason: "wrong kind: the file holds a 'hnsw' index, expected 'exact'")) {
            _ = try ExactIndex.load(from: dir + "/other")
        }
        // A file of kind exact whose ids repeat is refused.
        let vs = [Float](repeating: 1, count: 2 * Self.d), dupIDs: [Int32] = [4, 4]
        var b = IndexFile.Builder(kind: "exact", metric: metric, dimension: Self.d, count: 2)
        b.append("vectors", vs)
        b.append("ids", dupIDs)
        try b.write(to: dir + "/dup")
        #expect(throws: IndexError.self) { _ = try ExactIndex.load(from: dir + "/dup") }
        // Sections of the wrong size are refused.
        var c = IndexFile.Builder(kind: "exact", metric: metric, dimension: Self.d, count: 3)
        c.append("vectors", vs)
        c.append("ids", dupIDs)
        try c.write(to: dir + "/short")
        #expect(throws: IndexError.self) { _ = try ExactIndex.load(from: dir + "/short") }
        #expect(throws: IndexError.io(path: dir + "/none", reason: "no such file")) { _ = try ExactIndex.load(from: dir + "/none") }
    }
}

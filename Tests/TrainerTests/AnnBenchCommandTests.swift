import ArgumentParser
import Foundation
import Testing
@testable import RecCore
@testable import Trainer
@testable import EncoreWeekly
import EncoreTestSupport

/// `encore-train ann-bench` end to end on small NumPy files: the recall it reports is recounted here by brute force
/// from the ids it saves, the inner-product graph it was asked for is the one it built, and bad input is refused with
/// a message naming what is wrong.
@Suite(.serialized) struct AnnBenchCommandTests {
    /// Seeded points around 12 Gaussian centers (spread 3, unit noise).
    static func clustered(_ n: Int, _ dim: Int, seed: UInt64) -> Matrix {
        var centers = SplitMix64(seed: 1000)
        let c = (0..<12 * dim).map { _ in Float(centers.nextGaussian() * 3) }
        var rng = SplitMix64(seed: seed)
        var m = Matrix(rows: n, cols: dim)
        for r in 0..<n {
            let k = Int(rng.next() % 12)
            for j in 0..<dim { m.storage[r * dim + j] = c[k * dim + j] + Float(rng.nextGaussian()) }
        }
        return m
    }

    /// The metric's distance in Double.
    static func distance(_ a: ArraySlice<Float>, _ b: ArraySlice<Float>, _ metric: VectorMetric) -> Double {
        var dot = 0.0, na = 0.0, nb = 0.0, l2 = 0.0
        for (x, y) in zip(a, b) {
            dot += Double(x) * Double(y)
            na += Double(x) * Double(x)
            nb += Double(y) * Double(y)
            l2 += (Double(x) - Double(y)) * (Double(x) - Double(y))
        }
        switch metric {
        case .cosine: return 1 - dot / (na.squareRoot() * nb.squareRoot())
        case .l2: return l2
        case .innerProduct: return -dot
        }
    }

    /// Recall@k of `found` (queries x k ids, -1 for none) counted by brute force, ties within 1e-6 as hits.
    static func bruteForceRecall(base: Matrix, queries: Matrix, found: Matrix, k: Int, metric: VectorMetric) -> Double {
        var hits = 0
        for q in 0..<queries.rows {
            let qv = queries.row(q)[...]
            let all = (0..<base.rows).map { distance(base.row($0)[...], qv, metric) }.sorted()
            let limit = all[k - 1] + 1e-6 * abs(all[k - 1])
            var seen = Set<Int>()
            for j in 0..<k {
                let id = Int(found.storage[q * k + j])
                guard id >= 0, seen.insert(id).inserted else { continue }
                if distance(base.row(id)[...], qv, metric) <= limit { hits += 1 }
            }
        }
        return Double(hits) / Double(queries.rows * k)
    }

    @Test(arguments: [VectorMetric.cosine, .l2, .innerProduct])
    func reportedRecallMatchesBruteForce(metric: VectorMetric) throws {
        let dir = makeTemporaryDirectory("annbench")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let base = Self.clustered(1500, 12, seed: 5), queries = Self.clustered(40, 12, seed: 6)
        try NumPyArray.write(base, to: "\(dir)/base.npy")
        try NumPyArray.write(queries, to: "\(dir)/queries.npy")
        var command = try EncoreTrain.parseAsRoot([
            "ann-bench", "--base", "\(dir)/base.npy", "--queries", "\(dir)/queries.npy", "--metric", metric.rawValue,
            "--k", "5", "--m", "8", "--ef-construction", "64", "--ef", "5,64", "--threads", "2", "--runs", "1",
            "--json", "\(dir)/out.json", "--save-results", "\(dir)/ids",
        ])
        try command.run()
        let json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(dir)/out.json"))) as? [String: Any])
        #expect(json["metric"] as? String == metric.rawValue)
        #expect(json["n"] as? Int == 1500)
        #expect((json["build_seconds"] as? Double ?? -1) > 0)
        #expect((json["memory_bytes"] as? Int ?? 0) >= 1500 * 12 * 4)
        let results = try #require(json["results"] as? [[String: Any]])
        #expect(results.map { $0["ef"] as? Int } == [5, 64])
        for r in results {
            let ef = try #require(r["ef"] as? Int)
            let reported = try #require(r["recall"] as? Double)
            let found = try NumPyArray.read(path: "\(dir)/ids-ef\(ef).npy")
            #expect(found.rows == 40 && found.cols == 5)
            let recount = Self.bruteForceRecall(base: base, queries: queries, found: found, k: 5, metric: metric)
            #expect(abs(recount - reported) < 1e-9, "ef \(ef): reported \(reported), brute force \(recount)")
            #expect((r["qps"] as? Double ?? 0) > 0)
            if ef == 64 { #expect(reported >= 0.95, "\(metric) recall@5 at ef 64: \(reported)") }
        }
    }

    @Test func ipGraphOptionChoosesTheGraph() throws {
        let dir = makeTemporaryDirectory("annbench")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try NumPyArray.write(Self.clustered(300, 8, seed: 7), to: "\(dir)/base.npy")
        try NumPyArray.write(Self.clustered(10, 8, seed: 8), to: "\(dir)/queries.npy")
        for graph in InnerProductGraph.allCases {
            var command = try EncoreTrain.parseAsRoot([
                "ann-bench", "--base", "\(dir)/base.npy", "--queries", "\(dir)/queries.npy", "--metric", "ip",
                "--ip-graph", graph.rawValue, "--ef", "16", "--runs", "1", "--json", "\(dir)/\(graph.rawValue).json",
            ])
            try command.run()
            let json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(dir)/\(graph.rawValue).json"))) as? [String: Any])
            #expect(json["ip_graph"] as? String == graph.rawValue)
        }
        let graph = errorMessage {
            _ = try EncoreTrain.parseAsRoot(["ann-bench", "--base", "b.npy", "--queries", "q.npy", "--ip-graph", "hnsw"])
        }
        #expect(graph?.contains("--ip-graph") == true && graph?.contains("'hnsw'") == true, "\(graph ?? "no error")")
    }

    @Test func quantizationOptionBuildsAQuantizedIndex() throws {
        let dir = makeTemporaryDirectory("annbench")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let base = Self.clustered(1500, 12, seed: 11), queries = Self.clustered(30, 12, seed: 12)
        try NumPyArray.write(base, to: "\(dir)/base.npy")
        try NumPyArray.write(queries, to: "\(dir)/queries.npy")
        var command = try EncoreTrain.parseAsRoot([
            "ann-bench", "--base", "\(dir)/base.npy", "--queries", "\(dir)/queries.npy", "--metric", "l2",
            "--quantization", "int8", "--k", "5", "--m", "8", "--ef-construction", "64", "--ef", "64", "--runs", "1",
            "--json", "\(dir)/out.json", "--save-results", "\(dir)/ids",
        ])
        try command.run()
        let json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(dir)/out.json"))) as? [String: Any])
        #expect(json["quantization"] as? String == "int8")
        let reported = try #require((json["results"] as? [[String: Any]])?.first?["recall"] as? Double)
        let found = try NumPyArray.read(path: "\(dir)/ids-ef64.npy")
        let recount = Self.bruteForceRecall(base: base, queries: queries, found: found, k: 5, metric: .l2)
        #expect(abs(recount - reported) < 1e-9 && reported >= 0.95, "reported \(reported), brute force \(recount)")
        let bad = errorMessage {
            _ = try EncoreTrain.parseAsRoot(["ann-bench", "--base", "b.npy", "--queries", "q.npy", "--quantization", "int4"])
        }
        #expect(bad?.contains("--quantization") == true && bad?.contains("'int4'") == true, "\(bad ?? "no error")")
    }

    @Test func badInputIsRefusedWithAClearMessage() throws {
        let dir = makeTemporaryDirectory("annbench")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try NumPyArray.write(Self.clustered(100, 8, seed: 9), to: "\(dir)/base.npy")
        try NumPyArray.write(Self.clustered(5, 6, seed: 10), to: "\(dir)/queries6.npy")
        try Data("not a numpy file".utf8).write(to: URL(fileURLWithPath: "\(dir)/junk.npy"))

        func message(_ arguments: [String]) -> String {
            do {
                var command = try EncoreTrain.parseAsRoot(["ann-bench"] + arguments)
                try command.run()
                return ""
            } catch {
                return EncoreTrain.message(for: error) + " \(error)"
            }
        }
        let mismatch = message(["--base", "\(dir)/base.npy", "--queries", "\(dir)/queries6.npy"])
        #expect(mismatch.contains("dimension mismatch") && mismatch.contains("queries6.npy"), "\(mismatch)")
        let junk = message(["--base", "\(dir)/junk.npy", "--queries", "\(dir)/queries6.npy"])
        #expect(junk.contains("junk.npy"), "\(junk)")
        let missing = message(["--base", "\(dir)/absent.npy", "--queries", "\(dir)/queries6.npy"])
        #expect(missing.contains("absent.npy"), "\(missing)")
        let ef = message(["--base", "\(dir)/base.npy", "--queries", "\(dir)/base.npy", "--ef", "10,x"])
        #expect(ef.contains("--ef") && ef.contains("'x'"), "\(ef)")
        let m = message(["--base", "\(dir)/base.npy", "--queries", "\(dir)/base.npy", "--m", "1"])
        #expect(m.contains("--m"), "\(m)")
    }
}

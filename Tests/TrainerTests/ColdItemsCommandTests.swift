import ArgumentParser
import Foundation
import Testing
@testable import EncoreStorage
@testable import RecCore
@testable import Trainer
import EncoreTestSupport

/// `encore-train evaluate --split cold-items` on the tiny generated world, and its refusals.
@Suite(.serialized) struct ColdItemsCommandTests {
    /// An embeddings file in `embed`'s layout (`/tracks/ids`, `/embeddings`) with seeded random vectors.
    static func writeEmbeddings(ids: [String], dim: Int, to path: String) throws {
        var rng = SplitMix64(seed: 8)
        let values = (0..<(ids.count * dim)).map { _ in Float(rng.nextGaussian()) }
        var file = try HDF5File.create(at: path, overwrite: true)
        try file.write(strings: ids, at: "/tracks/ids")
        try file.write(values, shape: [ids.count, dim], at: "/embeddings")
        try file.close()
    }

    @Test("held-out tracks of the tiny world rank their real listeners' above random by text and by the hybrid")
    func tinyWorld() throws {
        let dir = makeTemporaryDirectory("colditems")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try run(["generate", "--preset", "tiny", "--output", "\(dir)/w", "--seed", "5"])
        // Audio embeddings that carry no information (random), for a third of the tracks: the row must exist and
        // the hybrid must not be hurt by it.
        let tracks = try TextCorpus.read(path: "\(dir)/w/tracks.tsv", idColumn: "item", textColumn: "artist").ids
        try Self.writeEmbeddings(ids: tracks.enumerated().filter { $0.offset % 3 == 0 }.map(\.element), dim: 8,
                                 to: "\(dir)/E.h5")
        try run([
            "evaluate", "--input", "\(dir)/w/plays.tsv", "--split", "cold-items", "--texts", "\(dir)/w/texts.tsv",
            "--audio-embeddings", "\(dir)/E.h5", "--k", "10", "--json", "\(dir)/cold.json",
        ])
        let json = try #require(
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(dir)/cold.json"))) as? [String: Any])
        #expect(json["split"] as? String == "cold-items")
        let rows = try #require(json["rows"] as? [[String: Any]])
        var auc: [String: Double] = [:], ndcg: [String: Double] = [:]
        for r in rows {
            let space = try #require(r["space"] as? String)
            auc[space] = r["auc"] as? Double
            ndcg[space] = r["ndcg@10"] as? Double
        }
        #expect(Set(auc.keys) == ["random", "artist", "text", "audio", "hybrid"])
        let random = try #require(auc["random"])
        #expect(abs(random - 0.5) < 0.05)
        // A clear margin over random, not a tuned value.
        #expect(try #require(auc["text"]) > random + 0.1)
        #expect(try #require(auc["hybrid"]) > random + 0.1)
        #expect(try #require(ndcg["hybrid"]) > 2 * (try #require(ndcg["random"])))
        // Held-out tracks are 20% of the log's tracks.
        let held = try #require(json["held_out_tracks"] as? Int), trained = try #require(json["train_tracks"] as? Int)
        #expect(abs(Double(held) / Double(held + trained) - 0.2) < 0.01)
        let sources = try #require(json["sources"] as? [[String: Any]])
        #expect(sources.compactMap { $0["name"] as? String } == ["text", "audio", "artist"])
    }

    @Test("bad cold-items options and inputs give clear messages")
    func errors() throws {
        let dir = makeTemporaryDirectory("colditems")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var plays = "user\titem\n"
        for u in 0..<12 { for i in 0..<8 where (u + i) % 3 != 0 { plays += "u\(u)\tt\(i)\n" } }
        try plays.write(toFile: "\(dir)/log.tsv", atomically: true, encoding: .utf8)
        try Self.writeEmbeddings(ids: ["x1", "x2"], dim: 4, to: "\(dir)/E.h5")
        func message(_ args: [String]) -> String? {
            errorMessage { try run(args) }?.replacingOccurrences(of: dir + "/", with: "")
        }
        let base = ["evaluate", "--input", "\(dir)/log.tsv"]
        #expect(message(base + ["--split", "cold"])
            == "unknown --split 'cold'; expected random, leave-k-out, temporal, cold-items or temporal-content")
        #expect(message(base + ["--split", "cold-items", "--test-fraction", "1.2"])
            == "--test-fraction must be between 0 and 1 (exclusive), got 1.2")
        #expect(message(base + ["--split", "cold-items", "--test-fraction", "0"])
            == "--test-fraction must be between 0 and 1 (exclusive), got 0.0")
        #expect(message(base + ["--split", "cold-items", "--texts", "\(dir)/missing.tsv"])
            == "--texts missing.tsv: no such file")
        #expect(message(base + ["--split", "cold-items", "--audio-embeddings", "\(dir)/E.h5"])
            == "E.h5: none of its 2 ids ('x1', 'x2') is a track of the play log")
        try "not hdf5".write(toFile: "\(dir)/x.h5", atomically: true, encoding: .utf8)
        var other = try HDF5File.create(at: "\(dir)/T.h5", overwrite: true)
        try other.write(strings: ["t1"], at: "/ids")
        try other.close()
        #expect(message(base + ["--split", "cold-items", "--audio-embeddings", "\(dir)/T.h5"])
            == "T.h5: not an embeddings file: /tracks/ids and /embeddings missing (encore-train embed writes /tracks/ids and /embeddings)")
        #expect(message(base + ["--split", "cold-items", "--audio-embeddings", "\(dir)/x.h5"])?.hasPrefix("x.h5: cannot read the file") == true)
        #expect(message(base + ["--split", "cold-items"])
            == "invalid parameter 'content' = none: expected texts, audio embeddings or track artists to predict from")
        #expect(message(base + ["--split", "random"]) == "--bundle is required (except with --split cold-items or temporal-content)")
        #expect(message(base + ["--split", "random", "--bundle", "b.h5", "--texts", "\(dir)/log.tsv"])
            == "--texts, --audio-embeddings and --track-artists go with --split cold-items or temporal-content")
        #expect(message(base + ["--split", "cold-items", "--k", "0"]) == "--k must be positive")
    }
}

import ArgumentParser
import Foundation
import Testing
@testable import EncoreStorage
@testable import RecCore
@testable import Trainer
import EncoreTestSupport

/// `encore-train evaluate --split temporal-content` on the tiny generated world, and its refusals.
@Suite(.serialized) struct TemporalContentCommandTests {
    @Test("the tiny world's last week: one row per variant, the new-release figures consistent")
    func tinyWorld() throws {
        let dir = makeTemporaryDirectory("temporalcontent")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try run(["generate", "--preset", "tiny", "--output", "\(dir)/w", "--seed", "5"])
        let tracks = try TextCorpus.read(path: "\(dir)/w/tracks.tsv", idColumn: "item", textColumn: "artist").ids
        // Ids as `embed` keeps them after `analyze` of a folder: the file's path, which stands for the track.
        try ColdItemsCommandTests.writeEmbeddings(ids: tracks.map { "audio/\($0).flac" }, dim: 8, to: "\(dir)/E.h5")
        try run([
            "evaluate", "--input", "\(dir)/w/plays.tsv", "--split", "temporal-content", "--texts", "\(dir)/w/texts.tsv",
            "--audio-embeddings", "\(dir)/E.h5", "--json", "\(dir)/t.json",
        ])
        let json = try #require(
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(dir)/t.json"))) as? [String: Any])
        #expect(json["split"] as? String == "temporal-content")
        #expect(json["list_length"] as? Int == 30)
        let users = try #require(json["users"] as? Int)
        let newPairs = try #require(json["new_release_pairs"] as? Int)
        #expect(users > 0)
        #expect(newPairs <= (try #require(json["test_pairs"] as? Int)))
        let rows = try #require(json["rows"] as? [[String: Any]])
        // The tiny world's listening is too thin for sequence vectors (no track listened five times in sessions), so
        // that row is left out with a note, as the weekly job leaves the space out.
        let notes = try #require(json["notes"] as? [String])
        #expect(notes.contains { $0.hasPrefix("sequence: not fitted, left out") })
        // Every track of the log has an embedding (named by its file): "audio: N of N tracks have a vector".
        let audio = try #require(notes.first { $0.hasPrefix("audio: ") }).split(separator: " ")
        #expect(audio.count > 3 && audio[1] == audio[3] && Int(audio[1]) ?? 0 > 0)
        #expect(rows.compactMap { $0["variant"] as? String } == ["cf-only", "+artist", "+audio", "+text", "all"])
        for r in rows {
            let hits = try #require(r["new_release_hits"] as? Int)
            #expect(hits <= newPairs)
            #expect(abs(try #require(r["new_release_hit_rate@30"] as? Double) - Double(hits) / Double(users * 30)) < 1e-12)
            #expect(abs(try #require(r["hit_rate@30"] as? Double) - Double(try #require(r["hits"] as? Int)) / Double(users * 30)) < 1e-12)
        }
        #expect(rows[0]["new_for_you_slots"] as? Double == 0)
        // Hits and places per source: each source's hits are among its places.
        for r in rows {
            let slots = try #require(r["source_slots"] as? [String: Int]), hits = try #require(r["source_hits"] as? [String: Int])
            #expect(!slots.isEmpty && hits.allSatisfy { $0.value <= slots[$0.key] ?? 0 })
        }
        #expect(rows[0]["weights"] == nil)
        #expect((rows[4]["weights"] as? [String: Double])?.keys.contains("text") == true)
    }

    @Test("bad temporal-content options and inputs give clear messages")
    func errors() throws {
        let dir = makeTemporaryDirectory("temporalcontent")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var plays = "user\titem\n"
        for u in 0..<12 { for i in 0..<8 where (u + i) % 3 != 0 { plays += "u\(u)\tt\(i)\n" } }
        try plays.write(toFile: "\(dir)/log.tsv", atomically: true, encoding: .utf8)
        func message(_ args: [String]) -> String? {
            errorMessage { try run(args) }?.replacingOccurrences(of: dir + "/", with: "")
        }
        let base = ["evaluate", "--input", "\(dir)/log.tsv", "--split", "temporal-content"]
        #expect(message(base) == "--input log.tsv: --split temporal-content needs timestamps (a 'timestamp' column, or --timestamp-column)")
        #expect(message(base + ["--cutoff", "2024-06-03"])
            == "--cutoff goes with --split temporal; --split temporal-content tests the week --week names (default: the last whole week of the log)")
        #expect(message(base + ["--week", "2024-06-04"])
            == "--week 2024-06-04: invalid date '2024-06-04': a week is named by its Monday, this is a Tuesday")
        #expect(message(base + ["--k", "200"])
            == "--k must be at most 150 with --split temporal-content (Discover Weekly's candidate pool), got 200")
        #expect(message(base + ["--k", "0"]) == "--k must be positive")
        #expect(message(base + ["--texts", "\(dir)/missing.tsv"]) == "--texts missing.tsv: no such file")
        #expect(message(base + ["--track-artists", "\(dir)/none.tsv"]) == "--track-artists none.tsv: no such file")
        #expect(message(base + ["--cold-max-listeners=-1"]) == "--cold-max-listeners must be >= 0, got -1")
        #expect(message(base + ["--new-track-share", "1.5"]) == "--new-track-share must be in [0, 1], got 1.5")
        #expect(message(base + ["--new-release-days=-3"]) == "--new-release-days must be >= 0, got -3")
        let other = ["evaluate", "--input", "\(dir)/log.tsv", "--split"]
        #expect(message(other + ["cold-items", "--new-track-share", "0.1"])
            == "--cold-max-listeners, --new-release-days and --new-track-share go with --split temporal-content")
        #expect(message(other + ["cold-items", "--new-release-days", "7"])
            == "--cold-max-listeners, --new-release-days and --new-track-share go with --split temporal-content")
        #expect(message(other + ["cold-items", "--week", "2024-06-03"]) == "--week goes with --split temporal-content")
        #expect(message(other + ["cold-items", "--no-sequence-vectors"]) == "--no-sequence-vectors goes with --split temporal-content")
        #expect(message(other + ["random", "--als-seed", "3"]) == "--als-seed goes with --split cold-items or temporal-content")
    }
}

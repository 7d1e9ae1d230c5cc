import ArgumentParser
import Foundation
import Testing
@testable import RecCore
@testable import Trainer
@testable import EncoreWeekly
import EncoreTestSupport

@Suite struct ExportCommandTests {
    func bundleWithPlaylists() throws -> ModelBundle {
        let users = try IDMap(ids: ["u\"1", "u2"])
        let items = try IDMap(ids: ["t0", "t1", "t2"])
        let model = try ImplicitALS(
            parameters: ALSParameters(factors: 2), userFactors: Matrix.random(rows: 2, cols: 2, scale: 1, seed: 1),
            itemFactors: Matrix.random(rows: 3, cols: 2, scale: 1, seed: 2))
        var b = ModelBundle(userIDs: users, itemIDs: items, model: model, userItems: .empty(rows: 2, cols: 3))
        b.discoverWeekly = try DiscoverWeeklyTable(week: "2026-11-16", rows: [
            [(item: 2, score: 0.5, source: "cf"), (item: 0, score: 0.25, source: "similar-users")], [],
        ])
        b.dailyMixes = DailyMixTable(day: "2026-11-17", rows: [
            [], [.init(name: "Artist A, Artist B and more", cover: 1, tracks: [(1, true), (2, false)])],
        ])
        return b
    }

    @Test func exportsDiscoverWeeklyAndDailyMixAsJSONLines() throws {
        let dir = makeTemporaryDirectory("export")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try bundleWithPlaylists().write(to: "\(dir)/b.h5")

        var dw = try EncoreTrain.parseAsRoot(["export", "--bundle", "\(dir)/b.h5", "--playlists", "discover-weekly", "--output", "\(dir)/dw.jsonl"])
        try dw.run()
        let dwLines = try String(contentsOfFile: "\(dir)/dw.jsonl", encoding: .utf8).split(separator: "\n")
        #expect(dwLines.count == 2)
        let first = try #require(try JSONSerialization.jsonObject(with: Data(dwLines[0].utf8)) as? [String: Any])
        #expect(first["user"] as? String == "u\"1")
        #expect(first["week"] as? String == "2026-11-16")
        let tracks = try #require(first["tracks"] as? [[String: Any]])
        #expect(tracks.map { $0["item"] as? String } == ["t2", "t0"])
        #expect(tracks.map { $0["source"] as? String } == ["cf", "similar-users"])
        #expect((tracks[0]["score"] as? Double).map { abs($0 - 0.5) < 1e-6 } == true)

        var dm = try EncoreTrain.parseAsRoot(["export", "--bundle", "\(dir)/b.h5", "--playlists", "daily-mix", "--output", "\(dir)/dm.jsonl"])
        try dm.run()
        let dmLines = try String(contentsOfFile: "\(dir)/dm.jsonl", encoding: .utf8).split(separator: "\n")
        let second = try #require(try JSONSerialization.jsonObject(with: Data(dmLines[1].utf8)) as? [String: Any])
        #expect(second["day"] as? String == "2026-11-17")
        let mixes = try #require(second["mixes"] as? [[String: Any]])
        #expect(mixes.first?["name"] as? String == "Artist A, Artist B and more")
        let mixTracks = try #require(mixes.first?["tracks"] as? [[String: Any]])
        #expect(mixTracks.map { $0["familiar"] as? Bool } == [true, false])
    }

    @Test func exportAndRecommendReadAPublishedUnitAndRefuseADamagedOne() throws {
        let dir = makeTemporaryDirectory("export")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try PublishedModel.publish(bundle: try bundleWithPlaylists(), indexes: [:], to: "\(dir)/b.h5.d")
        // The unit folder, or the name given to the weekly job's --output, which stands for it.
        for path in ["\(dir)/b.h5.d", "\(dir)/b.h5"] {
            try? FileManager.default.removeItem(atPath: "\(dir)/dw.jsonl")
            var dw = try EncoreTrain.parseAsRoot(["export", "--bundle", path, "--playlists", "discover-weekly", "--output", "\(dir)/dw.jsonl"])
            try dw.run()
            let lines = try String(contentsOfFile: "\(dir)/dw.jsonl", encoding: .utf8).split(separator: "\n")
            #expect(lines.count == 2 && lines[0].contains("\"week\":\"2026-11-16\""), "\(lines)")
            var recommend = try EncoreTrain.parseAsRoot(["recommend", "--bundle", path, "--user", "u2", "--count", "2"])
            try recommend.run()
        }
        // A damaged bundle in the unit is refused before it is read.
        let bundle = "\(dir)/b.h5.d/v-00000001/bundle.h5"
        var bytes = try Data(contentsOf: URL(fileURLWithPath: bundle))
        bytes[bytes.count - 1] ^= 0x01
        try bytes.write(to: URL(fileURLWithPath: bundle))
        var cmd = try EncoreTrain.parseAsRoot(["export", "--bundle", "\(dir)/b.h5", "--playlists", "daily-mix", "--output", "\(dir)/dm.jsonl"])
        do {
            try cmd.run()
            Issue.record("a damaged unit was exported")
        } catch {
            #expect("\(error)".hasPrefix("\(bundle): checksum mismatch: the file hashes to XXH64 "), "\(error)")
        }
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/dm.jsonl"))
    }

    @Test func aBundleWithoutPlaylistsIsAClearError() throws {
        let dir = makeTemporaryDirectory("export")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var b = try bundleWithPlaylists()
        b.discoverWeekly = nil
        try b.write(to: "\(dir)/b.h5")
        var cmd = try EncoreTrain.parseAsRoot(["export", "--bundle", "\(dir)/b.h5", "--playlists", "discover-weekly", "--output", "\(dir)/x"])
        let empty = errorMessage { try cmd.run() }
        #expect(empty?.contains("\(dir)/b.h5 holds no Discover Weekly playlists") == true, "\(empty ?? "no error")")
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/x"))
        let kind = errorMessage { _ = try EncoreTrain.parseAsRoot(["export", "--bundle", "b", "--playlists", "weekly", "--output", "x"]) }
        #expect(kind?.contains("--playlists") == true && kind?.contains("'weekly'") == true, "\(kind ?? "no error")")
    }
}

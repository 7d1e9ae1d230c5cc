import Foundation
import Testing
import EncoreCore
import EncoreFactorization
import EncorePlaylists
import EncoreStorage
import EncoreTestSupport

/// The user shard part and the sharded bundle manifest: round trips and the errors of foreign or incomplete files.
@Suite struct ShardFilesTests {
    /// Users whose hashes put them in both shards of 2 (checked below), so each part has some.
    static let users = ["u1", "u2", "u3", "u4", "u5", "u6"]

    func bundle() throws -> ModelBundle {
        var b = try smallBundle(items: 6)
        let ids = try IDMap(ids: Self.users)
        var x = Matrix(rows: ids.count, cols: 3)
        for i in 0..<x.storage.count { x.storage[i] = Float(i) * 0.125 }
        b.userIDs = ids
        b.model = try ImplicitALS(parameters: b.model.parameters, userFactors: x, itemFactors: b.model.itemFactors)
        b.userItems = try CSRMatrix(rows: ids.count, cols: 6, rowIndices: [0, 1, 2, 3, 4, 5, 5], colIndices: [0, 1, 2, 3, 4, 5, 0],
                                    values: [1, 2, 3, 4, 5, 6, 7])
        var dwRows: [[(item: Int32, score: Float, source: String)]] = []
        var dmRows: [[DailyMixTable.Mix]] = []
        for u in 0..<ids.count {
            let a = Int32(u % 6), c = Int32((u + 1) % 6), d = Int32((u + 2) % 6)
            dwRows.append([(item: a, score: Float(u), source: "cf"), (item: c, score: 0.5, source: "popular")])
            let tracks: [(item: Int32, familiar: Bool)] = [(a, true), (d, false)]
            dmRows.append([DailyMixTable.Mix(name: "mix \(u)", cover: a, tracks: tracks)])
        }
        b.discoverWeekly = DiscoverWeeklyTable(week: "2026-12-07", rows: dwRows)
        b.dailyMixes = DailyMixTable(day: "2026-12-07", rows: dmRows)
        return b
    }

    @Test func partsRoundTripAndRebuildTheBundlesRows() throws {
        let dir = makeTemporaryDirectory("shard-files")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let b = try bundle()
        var owned = 0
        for i in 0..<2 {
            let shard = try UserShard(index: i, count: 2)
            let rows = shard.rows(of: b.userIDs)
            let dw = DiscoverWeeklyTable(week: "2026-12-07", rows: rows.map { b.discoverWeekly!.tracks(ofUser: Int($0)) })
            let dm = DailyMixTable(day: "2026-12-07", rows: rows.map { b.dailyMixes!.mixes(ofUser: Int($0)) })
            let part = try UserShardPart(shard: shard, bundle: b, itemSideChecksum: "0123456789abcdef", discoverWeekly: dw, dailyMixes: dm)
            try part.write(to: "\(dir)/part-\(i).h5")
            let back = try UserShardPart.read(from: "\(dir)/part-\(i).h5")
            #expect(back == part)
            #expect(back.userIDs == Self.users.filter { UserShard.shard(of: $0, count: 2) == i })
            owned += back.userIDs.count
            // Applied to the bundle: the shard's users keep their rows, the others have none.
            let applied = try back.applied(to: b)
            for (u, user) in Self.users.enumerated() {
                let mine = UserShard.shard(of: user, count: 2) == i
                #expect(applied.discoverWeekly!.tracks(ofUser: u).map(\.item) == (mine ? b.discoverWeekly!.tracks(ofUser: u).map(\.item) : []))
                #expect(applied.dailyMixes!.mixes(ofUser: u) == (mine ? b.dailyMixes!.mixes(ofUser: u) : []))
            }
            // Another bundle (a user's factors changed) is refused.
            var other = b
            var x = b.model.userFactors
            x[Int(rows[0]), 0] += 1
            other.model = try ImplicitALS(parameters: b.model.parameters, userFactors: x, itemFactors: b.model.itemFactors)
            #expect(throws: ShardError.self) { try back.applied(to: other) }
        }
        #expect(owned == Self.users.count)
        // A bundle file is not a part.
        try b.write(to: "\(dir)/b.h5")
        do {
            _ = try UserShardPart.read(from: "\(dir)/b.h5")
            Issue.record("a bundle was read as a part")
        } catch {
            #expect(error.description.contains("it is not a user shard part"), "\(error)")
        }
    }

    @Test func manifestsRoundTripAndForeignOnesAreRefused() throws {
        let dir = makeTemporaryDirectory("shard-manifest")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let b = try bundle()
        try b.write(to: "\(dir)/item.h5")
        let sum = try ShardedBundle.checksum(of: try PublishedModel.open(path: "\(dir)/item.h5"))
        var parts: [String] = []
        for i in 0..<2 {
            let part = try UserShardPart(shard: try UserShard(index: i, count: 2), bundle: b, itemSideChecksum: sum,
                                         discoverWeekly: nil, dailyMixes: nil)
            try part.write(to: "\(dir)/part-\(i).h5")
            parts.append("\(dir)/part-\(i).h5")
        }
        let m = try ShardedBundle.assemble(itemSide: "\(dir)/item.h5", parts: parts.reversed(), output: "\(dir)/sharded.json")
        #expect(m.shards.map(\.index) == [0, 1] && m.shards.map(\.path) == ["part-0.h5", "part-1.h5"])
        #expect(m.itemSide.path == "item.h5" && m.itemSide.xxh64 == sum && m.itemSide.users == 6 && m.itemSide.items == 6)
        #expect(try ShardedBundle.read(from: "\(dir)/sharded.json") == m)
        #expect(ShardedBundle.isManifest("\(dir)/sharded.json") && !ShardedBundle.isManifest("\(dir)/item.h5"))
        let opened = try ShardedBundle.open(shard: try UserShard(index: 1, count: 2), manifest: "\(dir)/sharded.json")
        #expect(opened.part.shard.index == 1 && opened.bundle.userIDs == b.userIDs)

        // Edited manifests: each fault is named.
        let text = try String(contentsOfFile: "\(dir)/sharded.json", encoding: .utf8)
        func refused(_ edit: (String) -> String, _ wanted: String) {
            let path = "\(dir)/edited.json"
            FileManager.default.createFile(atPath: path, contents: Data(edit(text).utf8))
            do {
                _ = try ShardedBundle.read(from: path)
                Issue.record("accepted: \(wanted)")
            } catch {
                #expect(error.description.contains(wanted), "\(error)")
            }
        }
        refused({ $0.replacingOccurrences(of: "encore-sharded-bundle", with: "something-else") }, "format is 'something-else'")
        refused({ $0.replacingOccurrences(of: "\"shard_count\" : 2", with: "\"shard_count\" : 3") }, "shards must be 0..<3")
        refused({ $0.replacingOccurrences(of: "xxh64-utf8-mod-n", with: "fnv1a") }, "user_hash 'fnv1a'")
        refused({ $0.replacingOccurrences(of: "\"users\" : 6", with: "\"users\" : 7") }, "item_side.users is 7")
        refused({ _ in "{" }, "not a sharded bundle manifest")
    }
}

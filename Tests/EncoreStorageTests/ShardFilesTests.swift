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
        b.discoverWeekly = try DiscoverWeeklyTable(week: "2026-12-07", rows: dwRows)
        b.dailyMixes = DailyMixTable(day: "2026-12-07", rows: dmRows)
        return b
    }

    @Test func partsRoundTripAndRebuildTheBundlesRows() throws {
        let dir = makeTemporaryDirectory("shard-files")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let b = try bundle()
        try b.write(to: "\(dir)/b.h5")
        var owned = 0
        for i in 0..<2 {
            let shard = try UserShard(index: i, count: 2)
            let rows = shard.rows(of: b.userIDs)
            let dw = try DiscoverWeeklyTable(week: "2026-12-07", rows: rows.map { b.discoverWeekly!.tracks(ofUser: Int($0)) })
            let dm = DailyMixTable(day: "2026-12-07", rows: rows.map { b.dailyMixes!.mixes(ofUser: Int($0)) })
            let part = try UserShardPart(shard: shard, bundle: b, itemSideChecksum: "0123456789abcdef", discoverWeekly: dw, dailyMixes: dm)
            try part.write(to: "\(dir)/part-\(i).h5")
            let back = try UserShardPart.read(from: "\(dir)/part-\(i).h5")
            #expect(back == part)
            #expect(back.userIDs == Self.users.filter { UserShard.shard(of: $0, count: 2) == i })
            owned += back.userIDs.count
            // The bundle a shard server answers with: the item side read with the part's users only.
            let served = try back.bundle(itemSide: "\(dir)/b.h5")
            #expect(served.isUserShard && served.userIDs.ids == back.userIDs)
            #expect(served.itemIDs == b.itemIDs && served.model.itemFactors == b.model.itemFactors && served.catalog == nil)
            #expect(served.itemListeners == b.itemListeners && b.itemListeners == [2, 1, 1, 1, 1, 1])
            for (k, r) in rows.enumerated() {
                #expect(served.model.userFactors.row(k) == b.model.userFactors.row(Int(r)))
                #expect(Array(served.userItems.columns(ofRow: k)) == Array(b.userItems.columns(ofRow: Int(r))))
                #expect(served.discoverWeekly!.tracks(ofUser: k).map(\.item) == b.discoverWeekly!.tracks(ofUser: Int(r)).map(\.item))
                #expect(served.dailyMixes!.mixes(ofUser: k) == b.dailyMixes!.mixes(ofUser: Int(r)))
            }
            // It is never written as a bundle.
            do {
                try served.write(to: "\(dir)/shard-\(i).h5")
                Issue.record("a shard's bundle was written")
            } catch {
                #expect(error.description.contains("holds one user shard's users"), "\(error)")
            }
            // A bundle of other counts (one item more) is refused, naming both.
            var other = try smallBundle(items: 7)
            other.userIDs = b.userIDs
            other.model = try ImplicitALS(parameters: b.model.parameters, userFactors: b.model.userFactors,
                                          itemFactors: Matrix(rows: 7, cols: 3))
            other.userItems = try CSRMatrix(rows: 6, cols: 7, rowIndices: [0], colIndices: [6], values: [1])
            try other.write(to: "\(dir)/other.h5")
            do {
                _ = try back.bundle(itemSide: "\(dir)/other.h5")
                Issue.record("a part was read with a bundle it was not made from")
            } catch {
                #expect(error.description.contains("was made from a bundle of 6 users, 6 items and 3 factors, not this one (6 users, 7 items, 3 factors)"), "\(error)")
            }
        }
        #expect(owned == Self.users.count)
        // A bundle file is not a part.
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
        #expect(opened.part.shard.index == 1 && opened.bundle.userIDs.ids == Self.users.filter { UserShard.shard(of: $0, count: 2) == 1 })

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

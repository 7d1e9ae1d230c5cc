import Foundation
import Testing
@testable import RecCore
@testable import Trainer
@testable import EncoreWeekly
import EncoreTestSupport

@Suite(.serialized) struct ShardCommandTests {
    @Test func shardAssignmentIsAStablePartition() throws {
        // XXH64 test vectors (xxhsum -H64): "abc" is 0x44bc2cf5ad770999, "a" 0xd24ec4f1a98c6e5b.
        #expect(UserShard.shard(of: "abc", count: 1000) == Int(UInt64(0x44BC_2CF5_AD77_0999) % 1000))
        #expect(UserShard.shard(of: "a", count: 7) == Int(UInt64(0xD24E_C4F1_A98C_6E5B) % 7))
        let users = (0..<2000).map { "u\($0)" } + ["café", "cafe\u{301}", "", "🎧"]
        for n in [1, 2, 3, 8] {
            var sizes = [Int](repeating: 0, count: n)
            for u in users {
                let owners = (0..<n).filter { try! UserShard(index: $0, count: n).contains(u) }
                #expect(owners.count == 1 && owners[0] == UserShard.shard(of: u, count: n), "\(u) of \(n)")
                sizes[owners[0]] += 1
            }
            // A hash, not a split by position: every shard gets a fair share.
            #expect(sizes.allSatisfy { abs($0 - users.count / n) < users.count / n / 4 + 10 }, "\(sizes)")
        }
        let ids = try IDMap(ids: users.filter { $0 != "cafe\u{301}" })  // IDMap compares ids as Swift strings
        let rows = (0..<3).map { try! UserShard(index: $0, count: 3).rows(of: ids) }
        #expect(Set(rows.flatMap { $0 }).count == ids.count && rows.map(\.count).reduce(0, +) == ids.count)
    }

    @Test func badShardOptionsAreClearErrors() throws {
        for (text, wanted) in [("0/0", "--users-shard 0/0: the shard count N must be at least 1"),
                               ("3/2", "--users-shard 3/2: the shard number I must be in 0..<2"),
                               ("-1/2", "--users-shard -1/2: the shard number I must be in 0..<2"),
                               ("x", "--users-shard 'x': expected I/N"), ("1/2/3", "--users-shard '1/2/3': expected I/N")] {
            let message = errorMessage { try run(["playlists", "--bundle", "b.h5", "--users-shard=\(text)", "--output", "p.h5"]) }
            #expect(message?.contains(wanted) == true, "\(text): \(message ?? "no error")")
        }
    }

    /// The shard parts of a weekly job's unit hold exactly the rows the weekly job made for their users; the
    /// manifest round-trips and `inspect` shows it; an item side made with `--model` and `--no-playlists` gives the
    /// same parts as the full job on that model.
    @Test func partsEqualTheWeeklyJobsTables() throws {
        let dir = makeTemporaryDirectory("shards")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try run(["generate", "--preset", "tiny", "--output", "\(dir)/world", "--seed", "11"])
        let common = ["--events", "\(dir)/world/plays.tsv", "--factors", "8", "--iterations", "3", "--eval-users", "0", "--threads", "1", "--no-sequence-vectors"]
        try run(["weekly"] + common + ["--output", "\(dir)/full.h5"])
        let full = try PublishedModel.readBundle(at: "\(dir)/full.h5")
        let dw = try #require(full.discoverWeekly), dm = try #require(full.dailyMixes)
        #expect(full.metadata["playlists/neighbor_list_size"] == "64")

        var partPaths: [String] = []
        var seen = Set<String>()
        for i in 0..<3 {
            let out = "\(dir)/part-\(i).h5"
            // No --events: the bundle's /meta@input names the play log.
            try run(["playlists", "--bundle", "\(dir)/full.h5", "--users-shard", "\(i)/3", "--output", out, "--threads", "2"])
            partPaths.append(out)
            let part = try UserShardPart.read(from: out)
            #expect(part.shard.description == "\(i)/3" && part.bundleUserCount == full.userIDs.count)
            #expect(part.userIDs == full.userIDs.ids.filter { UserShard.shard(of: $0, count: 3) == i })
            let pdw = try #require(part.discoverWeekly), pdm = try #require(part.dailyMixes)
            #expect(pdw.week == dw.week && pdm.day == dm.day)
            for (k, user) in part.userIDs.enumerated() {
                let u = Int(try #require(full.userIDs.index(of: user)))
                #expect(Int(part.bundleRows[k]) == u)
                let a = pdw.tracks(ofUser: k), b = dw.tracks(ofUser: u)
                #expect(a.map(\.item) == b.map(\.item) && a.map(\.score) == b.map(\.score) && a.map(\.source) == b.map(\.source), "\(user)")
                #expect(pdm.mixes(ofUser: k) == dm.mixes(ofUser: u), "\(user)")
                #expect(part.userFactors.row(k) == full.model.userFactors.row(u))
                #expect(Array(part.userItems.columns(ofRow: k)) == Array(full.userItems.columns(ofRow: u)))
                seen.insert(user)
            }
        }
        #expect(seen.count == full.userIDs.count)

        // The manifest: written, read back, refused when a shard is missing or repeated.
        let manifest = try ShardedBundle.assemble(itemSide: "\(dir)/full.h5", parts: partPaths, output: "\(dir)/sharded.json")
        #expect(try ShardedBundle.read(from: "\(dir)/sharded.json") == manifest)
        #expect(manifest.shards.map(\.users).reduce(0, +) == full.userIDs.count && manifest.itemSide.path == "full.h5")
        let text = try InspectCommand.describe("\(dir)/sharded.json")
        #expect(text.contains("sharded bundle \(dir)/sharded.json: 3 shards (xxh64-utf8-mod-n)"), "\(text)")
        #expect(text.contains("shard 2/3: part-2.h5, \(manifest.shards[2].users) users"), "\(text)")
        let partText = try InspectCommand.describe(partPaths[1])
        #expect(partText.contains("shard 1/3") && partText.contains("/playlists/discover_weekly/items  int32"), "\(partText)")
        let bundleText = try InspectCommand.describe("\(dir)/full.h5")
        #expect(bundleText.contains("/cf/user_factors  float32 [\(full.userIDs.count), 8]"), "\(bundleText)")
        let missing = errorMessage { try run(["assemble-shards", "--item-side", "\(dir)/full.h5", "--output", "\(dir)/m.json", partPaths[0], partPaths[2]]) }
        #expect(missing?.contains("shards 1/3 are missing") == true, "\(missing ?? "")")
        let twice = errorMessage { try run(["assemble-shards", "--item-side", "\(dir)/full.h5", "--output", "\(dir)/m.json", partPaths[0], partPaths[0]]) }
        #expect(twice?.contains("shard 0/3 is given twice") == true, "\(twice ?? "")")

        // --model: the factors of `full` replace the fit; --no-playlists publishes the item side only, and its parts
        // equal the full job's tables on the same model. The jobs run on one thread: an HNSW graph built on two
        // threads depends on their interleaving, so two separately built item sides could differ in a neighbor.
        // (--factors 12 is not used: the model's 8 factors are.)
        let itemArgs = common.map { $0 == "8" ? "12" : $0 } + ["--output", "\(dir)/item.h5", "--model", "\(dir)/full.h5", "--no-playlists"]
        try run(["weekly"] + itemArgs)
        let item = try PublishedModel.readBundle(at: "\(dir)/item.h5")
        #expect(item.discoverWeekly == nil && item.dailyMixes == nil)
        #expect(item.model.userFactors == full.model.userFactors && item.model.itemFactors == full.model.itemFactors)
        try run(["playlists", "--bundle", "\(dir)/item.h5", "--users-shard", "0/2", "--output", "\(dir)/item-0.h5",
                 "--events", "\(dir)/world/plays.tsv", "--threads", "2"])
        let p0 = try UserShardPart.read(from: "\(dir)/item-0.h5")
        let p0dw = try #require(p0.discoverWeekly)
        for (k, user) in p0.userIDs.enumerated() {
            let u = Int(try #require(full.userIDs.index(of: user)))
            #expect(p0dw.tracks(ofUser: k).map(\.item) == dw.tracks(ofUser: u).map(\.item), "\(user)")
        }
        // A part of one item side is not assembled with another.
        let foreign = errorMessage { try run(["assemble-shards", "--item-side", "\(dir)/full.h5", "--output", "\(dir)/m.json", "\(dir)/item-0.h5"]) }
        #expect(foreign?.contains("made from an item side whose bundle hashes to XXH64") == true, "\(foreign ?? "")")
    }
}

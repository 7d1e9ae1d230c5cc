import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import RecCore
import ServeKit
import Testing

/// Two live shard servers (`encore-serve --users-shard I/2`, on loopback) over a sharded bundle made from the fixture's unit: together
/// they answer every user as the single server does, and each refuses the other's users with 421 naming the owner.
@Suite struct ShardServeTests {
    @Test func twoShardServersAnswerEveryUserAndRefuseEachOthers() async throws {
        let fixture = try ServeFixture.get()
        let dir = try ServeFixture.scratch("shards")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (config, logger) = Self.partJob(fixture: fixture, dir: dir)
        var parts: [String] = []
        for i in 0..<2 {
            let part = try WeeklyJob.userShardPart(
                configuration: config, model: fixture.unitPath, shard: try UserShard(index: i, count: 2), logger: logger)
            try part.write(to: "\(dir)/part-\(i).h5")
            parts.append("\(dir)/part-\(i).h5")
        }
        let manifest = try ShardedBundle.assemble(itemSide: fixture.unitPath, parts: parts, output: "\(dir)/sharded.json")
        #expect(manifest.shards.map(\.path) == ["part-0.h5", "part-1.h5"])

        let single = try ServingModel.load(path: fixture.unitPath, logger: logger)
        let full = try #require(single.bundle.discoverWeekly)
        var servers: [ServerUnderTest] = []
        for i in 0..<2 {
            servers.append(try ServerUnderTest(
                model: try ServingModel.load(path: "\(dir)/sharded.json", shard: try UserShard(index: i, count: 2), logger: logger),
                logDir: "\(dir)/log-\(i)"))
        }
        defer { for s in servers { try? s.close() } }
        #expect(servers.map { $0.engine.model.userShard?.description } == ["0/2", "1/2"])

        var answered = [0, 0]
        for i in 0..<2 {
            let app = servers[i].app
            answered[i] = try await onServerThreads { try await app.test(.live) { client in
                var count = 0
                for (u, user) in single.bundle.userIDs.ids.enumerated() {
                    let owner = UserShard.shard(of: user, count: 2)
                    let r = try await client.get("/v1/users/\(user)/discover-weekly")
                    if i == owner {
                        let expected = full.tracks(ofUser: u).map { single.itemID($0.item) }
                        #expect(r.status == .ok && r.ids() == expected, "\(user) on shard \(i)")
                        count += 1
                    } else {
                        #expect(r.status.code == 421 && r.errorCode == "wrong_shard" && r.errorField == "user", "\(user) on shard \(i): \(r.text)")
                        let message = (r.object["error"] as? [String: Any])?["message"] as? String ?? ""
                        #expect(message == "user '\(user)' belongs to shard \(owner)/2; this server answers shard \(i)/2", "\(r.text)")
                        #expect(r.headers.first { $0.name.rawName == "Encore-User-Shard" }?.value == "\(owner)/2")
                    }
                }
                // Events follow the same rule: a batch with another shard's user is refused, naming its index.
                let mine = try #require(single.bundle.userIDs.ids.first { UserShard.shard(of: $0, count: 2) == i })
                let theirs = try #require(single.bundle.userIDs.ids.first { UserShard.shard(of: $0, count: 2) != i })
                let item = single.itemID(0)
                let ok = try await client.event("s-\(i)-1", user: mine, item: item, timestamp: ServeFixture.recent)
                #expect(ok.status == .ok, "\(ok.text)")
                let refused = try await client.post("/v1/events", body: """
                    [{"event_id":"s-\(i)-2","user":"\(mine)","item":"\(item)","type":"play","ms_played":200000,"timestamp":\(ServeFixture.recent)},
                     {"event_id":"s-\(i)-3","user":"\(theirs)","item":"\(item)","type":"play","ms_played":200000,"timestamp":\(ServeFixture.recent)}]
                    """)
                #expect(refused.status.code == 421 && refused.errorCode == "wrong_shard", "\(refused.text)")
                #expect((refused.object["error"] as? [String: Any])?["index"] as? Int == 1)
                // A user no bundle knows is answered by its own shard (popular tracks) and refused by the other.
                let stranger = "new-listener-7"
                let status = try await client.get("/v1/users/\(stranger)/recommendations?k=5").status.code
                #expect(status == (UserShard.shard(of: stranger, count: 2) == i ? 200 : 421))
                return count
            } }
        }
        #expect(answered[0] + answered[1] == single.bundle.userIDs.count && answered.allSatisfy { $0 > 0 })
    }

    /// The parts of `count` shards of the fixture's unit written under `dir`, and their manifest's path.
    static func shardedBundle(fixture: ServeFixture, dir: String, count: Int) throws -> String {
        let (config, logger) = partJob(fixture: fixture, dir: dir)
        var parts: [String] = []
        for i in 0..<count {
            let part = try WeeklyJob.userShardPart(
                configuration: config, model: fixture.unitPath, shard: try UserShard(index: i, count: count), logger: logger)
            try part.write(to: "\(dir)/part-\(i).h5")
            parts.append("\(dir)/part-\(i).h5")
        }
        try ShardedBundle.assemble(itemSide: fixture.unitPath, parts: parts, output: "\(dir)/sharded.json")
        return "\(dir)/sharded.json"
    }

    /// A shard server holds its own users' rows only, with the item side's counts, and answers each of its users
    /// exactly as the single server does: every user-facing read, and after the same event.
    @Test func aShardServerHoldsOnlyItsUsersAndAnswersThemAsTheSingleServer() async throws {
        let fixture = try ServeFixture.get()
        let dir = try ServeFixture.scratch("shards-same")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let manifest = try Self.shardedBundle(fixture: fixture, dir: dir, count: 2)
        var quiet = Logger(label: "test")
        quiet.logLevel = .warning
        let whole = try ServingModel.load(path: fixture.unitPath, logger: quiet)
        #expect(!whole.bundle.isUserShard)
        var held = 0
        for i in 0..<2 {
            let shard = try UserShard(index: i, count: 2)
            let model = try ServingModel.load(path: manifest, shard: shard, logger: quiet)
            // Only the shard's users are held: ids, factor rows, training rows, playlist rows.
            let mine = whole.bundle.userIDs.ids.filter { shard.contains($0) }
            #expect(model.bundle.isUserShard && model.bundle.userIDs.ids == mine)
            #expect(model.bundle.model.userFactors.rows == mine.count && model.bundle.userItems.rows == mine.count)
            #expect(model.bundle.discoverWeekly?.userCount == mine.count && model.bundle.dailyMixes?.userCount == mine.count)
            #expect(model.bundle.userItems.nnz < whole.bundle.userItems.nnz)
            held += mine.count
            // The item side's counts are the whole bundle's, not the shard's rows'.
            #expect(model.listenerCounts == whole.listenerCounts && model.popular == whole.popular)
            #expect(model.environment.space.hasVector == whole.environment.space.hasVector)
            #expect(model.bundle.model.itemFactors == whole.bundle.model.itemFactors)

            // A fresh single server per shard, so each sees only the events posted to its twin.
            let single = try ServerUnderTest(model: whole, logDir: "\(dir)/log-single-\(i)")
            defer { try? single.close() }
            let server = try ServerUnderTest(model: model, logDir: "\(dir)/log-\(i)")
            defer { try? server.close() }
            let partApp = server.app
            try await single.app.test(.router) { one in
                try await partApp.test(.router) { part in
                    for user in mine {
                        let recs = try await one.get("/v1/users/\(user)/recommendations?k=10")
                        let item = recs.ids().first ?? whole.itemID(0)
                        for route in ["recommendations?k=10", "discover-weekly", "daily-mixes", "because-you-played",
                                      "state", "explain/\(item)"] {
                            let a = try await one.get("/v1/users/\(user)/\(route)"), b = try await part.get("/v1/users/\(user)/\(route)")
                            #expect(a.status == .ok && a.status == b.status, "\(user) \(route): \(b.text)")
                            #expect(Self.same(a, b), "\(user) \(route): \(a.text) vs \(b.text)")
                        }
                    }
                    // After the same event the user's folded-in answers are the same too.
                    let user = try #require(mine.first)
                    let item = whole.itemID(Int32(whole.itemCount / 2))
                    for client in [one, part] {
                        let r = try await client.event("same-\(i)", user: user, item: item, timestamp: ServeFixture.recent)
                        #expect(r.status == .ok, "\(r.text)")
                    }
                    for route in ["recommendations?k=10", "because-you-played", "state"] {
                        let a = try await one.get("/v1/users/\(user)/\(route)"), b = try await part.get("/v1/users/\(user)/\(route)")
                        #expect(a.status == .ok && Self.same(a, b), "\(user) \(route) after an event: \(a.text) vs \(b.text)")
                    }
                }
            }
        }
        #expect(held == whole.bundle.userIDs.count)
    }

    /// Whether two responses have the same status and the same JSON body (key order aside).
    static func same(_ a: JSONResponse, _ b: JSONResponse) -> Bool {
        func canonical(_ r: JSONResponse) -> Data? { try? JSONSerialization.data(withJSONObject: r.object, options: [.sortedKeys]) }
        return a.status == b.status && canonical(a) != nil && canonical(a) == canonical(b)
    }

    /// The configuration of the shard jobs over the fixture's world, writing under `dir`, and a quiet logger.
    static func partJob(fixture: ServeFixture, dir: String) -> (WeeklyConfiguration, Logger) {
        var logger = Logger(label: "test")
        logger.logLevel = .warning
        var config = WeeklyConfiguration(output: "\(dir)/part.h5")
        config.events = "\(fixture.world)/plays.tsv"
        config.threads = 2
        return (config, logger)
    }

    @Test func aDamagedPartOrAnotherShardCountIsRefused() throws {
        let fixture = try ServeFixture.get()
        let dir = try ServeFixture.scratch("shards-bad")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (config, logger) = Self.partJob(fixture: fixture, dir: dir)
        let part = try WeeklyJob.userShardPart(
            configuration: config, model: fixture.unitPath, shard: try UserShard(index: 0, count: 1), logger: logger)
        try part.write(to: "\(dir)/part-0.h5")
        try ShardedBundle.assemble(itemSide: fixture.unitPath, parts: ["\(dir)/part-0.h5"], output: "\(dir)/sharded.json")
        let wrongCount = #expect(throws: ServingError.self) {
            try ServingModel.load(path: "\(dir)/sharded.json", shard: try UserShard(index: 0, count: 2))
        }
        #expect(wrongCount.map { "\($0)".contains("has 1 shards, not 2") } == true, "\(String(describing: wrongCount))")
        // One byte changed in the part: its checksum no longer matches the manifest's.
        let handle = try #require(FileHandle(forUpdatingAtPath: "\(dir)/part-0.h5"))
        let size = try handle.seekToEnd()
        try handle.seek(toOffset: size - 1)
        let last = try #require(try handle.read(upToCount: 1)).first ?? 0
        try handle.seek(toOffset: size - 1)
        try handle.write(contentsOf: Data([last ^ 0xFF]))
        try handle.close()
        do {
            _ = try ServingModel.load(path: "\(dir)/sharded.json", shard: try UserShard(index: 0, count: 1))
            Issue.record("a damaged part was served")
        } catch {
            #expect("\(error)".contains("part-0.h5: checksum mismatch"), "\(error)")
        }
    }
}

extension ServerUnderTest {
    /// A server over an already loaded model.
    init(model: ServingModel, logDir: String, options: ServeOptions = ServeOptions()) throws {
        var logger = Logger(label: "test")
        logger.logLevel = .warning
        engine = try RealtimeEngine(model: model, logDirectory: logDir, fsync: .never, logger: logger)
        metrics = ServeMetrics()
        router = EncoreServer.router(holder: EngineHolder(engine), options: options, metrics: metrics, logger: logger)
        app = Application(responder: router.buildResponder(), logger: logger)
    }
}

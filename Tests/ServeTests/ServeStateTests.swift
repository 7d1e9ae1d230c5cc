import Foundation
import Hummingbird
import HummingbirdTesting
import RecCore
import ServeKit
import Testing

/// Idempotency, restarts that replay the log, and hot reloads.
@Suite struct ServeStateTests {
    @Test func aDuplicateEventIDHasNoSecondEffectAlsoAfterARestart() async throws {
        let fixture = try ServeFixture.get()
        let logDir = try ServeFixture.scratch("dup")
        let user = "dup-user"
        let first = try ServerUnderTest(bundle: fixture.bundlePath, logDir: logDir)
        let item = first.engine.model.itemID(first.engine.model.popular[0])
        try await first.app.test(.router) { client in
            let a = try await client.event("same-id", user: user, item: item)
            #expect(a.object["accepted"] as? Int == 1 && a.object["duplicates"] as? Int == 0)
            let b = try await client.event("same-id", user: user, item: item)
            #expect(b.status == .ok && b.object["accepted"] as? Int == 0 && b.object["duplicates"] as? Int == 1)
            // Within one batch too.
            let batch = try await client.post("/v1/events", body: """
                {"events":[{"event_id":"b1","user":"\(user)","item":"\(item)","type":"like","timestamp":1700000000},
                           {"event_id":"b1","user":"\(user)","item":"\(item)","type":"like","timestamp":1700000000},
                           {"event_id":"same-id","user":"\(user)","item":"\(item)","type":"play","timestamp":1700000000}]}
                """)
            #expect(batch.object["accepted"] as? Int == 1 && batch.object["duplicates"] as? Int == 2)
            let state = try await client.get("/v1/users/\(user)/state")
            #expect(state.object["events_applied"] as? Int == 2)
        }
        #expect(first.engine.lastSequence == 2)
        try first.close()

        let second = try ServerUnderTest(bundle: fixture.bundlePath, logDir: logDir)
        defer { try? second.close() }
        try await second.app.test(.router) { client in
            let state = try await client.get("/v1/users/\(user)/state")
            #expect(state.object["events_applied"] as? Int == 2)
            let again = try await client.event("same-id", user: user, item: item)
            #expect(again.object["accepted"] as? Int == 0 && again.object["duplicates"] as? Int == 1)
            let state2 = try await client.get("/v1/users/\(user)/state")
            #expect(state2.object["events_applied"] as? Int == 2)
        }
        #expect(second.engine.lastSequence == 2)
    }

    @Test func aRestartReplaysTheLogIntoTheSameState() async throws {
        let fixture = try ServeFixture.get()
        let logDir = try ServeFixture.scratch("restart")
        let first = try ServerUnderTest(bundle: fixture.bundlePath, logDir: logDir)
        let model = first.engine.model
        let users = [model.bundle.userIDs.ids[0], model.bundle.userIDs.ids[1], "fresh-user"]
        let artist = model.catalog.artistCount > 0 ? model.catalog.artistIDs.id(at: 0) : "no-artist"
        let before = try await first.app.test(.router) { client -> [String: [String]] in
            var before: [String: [String]] = [:]
            var n = 0
            for (k, user) in users.enumerated() {
                for (j, item) in model.popular.prefix(4).enumerated() {
                    n += 1
                    _ = try await client.event("r-\(n)", user: user, item: model.itemID(item), ms: j == 3 ? 1_000 : 120_000,
                                               timestamp: ServeFixture.recent + Int64(n))
                }
                n += 1
                _ = try await client.event("r-\(n)", user: user, item: model.itemID(model.popular[10 + k]), type: "dislike", ms: nil)
                n += 1
                _ = try await client.event("r-\(n)", user: user, item: artist, type: "follow_artist", ms: nil)
            }
            for user in users {
                let s = try await client.get("/v1/users/\(user)/state")
                let r = try await client.get("/v1/users/\(user)/recommendations?k=10")
                let b = try await client.get("/v1/users/\(user)/because-you-played")
                before[user] = [s.text, r.text, b.text]
            }
            return before
        }
        try first.close()
        let second = try ServerUnderTest(bundle: fixture.bundlePath, logDir: logDir)
        defer { try? second.close() }
        #expect(second.engine.statistics.replayed == 18)
        try await second.app.test(.router) { client in
            for user in users {
                let s = try await client.get("/v1/users/\(user)/state")
                let r = try await client.get("/v1/users/\(user)/recommendations?k=10")
                let b = try await client.get("/v1/users/\(user)/because-you-played")
                // Same JSON values (key order is not part of JSON).
                let now = [s.text, r.text, b.text].map { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? NSDictionary }
                let then = (before[user] ?? []).map { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? NSDictionary }
                #expect(now.count == 3 && now.allSatisfy { $0 != nil } && now == then, "state, recommendations and rows of \(user)")
            }
        }
    }

    @Test func aNewBundleIsSwappedInAndTheStateReDerived() async throws {
        let fixture = try ServeFixture.get()
        let dir = try ServeFixture.scratch("reload")
        let bundlePath = try fixture.copyBundle(to: dir)
        let server = try ServerUnderTest(bundle: bundlePath, logDir: "\(dir)/log")
        defer { try? server.close() }
        let engine = server.engine
        let oldModel = engine.model
        let user = oldModel.bundle.userIDs.ids[5]
        let track = oldModel.itemID(oldModel.popular[0])
        let other = oldModel.itemID(oldModel.popular[1])
        try await server.app.test(.router) { client in
            _ = try await client.event("h-1", user: user, item: track)
            let v1 = try await client.get("/ready")
            let version1 = try #require(v1.object["bundle_version"] as? String)

            // A new bundle trained through sequence 1: the play is in it, so it is not replayed.
            var next = try ModelBundle.read(from: bundlePath)
            next.metadata["event_log_through"] = "1"
            next.metadata["created_at"] = "2030-01-01T00:00:00Z"
            try next.write(to: bundlePath)
            _ = try await client.event("h-2", user: user, item: other, timestamp: ServeFixture.recent + 500)
            let reload = try await client.post("/v1/admin/reload", body: "")
            #expect(reload.status == .ok)
            #expect(reload.object["previous_version"] as? String == version1)
            #expect(reload.object["replayed"] as? Int == 1)
            let v2 = try await client.get("/ready")
            #expect(v2.object["bundle_version"] as? String != version1)
            let state = try await client.get("/v1/users/\(user)/state")
            #expect(state.object["played"] as? [String] == [other])
            let byp = try await client.get("/v1/users/\(user)/because-you-played?rows=1")
            #expect(byp.array("rows").first?["seed"] as? String == other)
            // The old model object is untouched: a request that held it finishes on it.
            #expect(oldModel.version == version1)
            #expect(engine.model !== oldModel)

            // A broken bundle is refused and the current one stays.
            try Data("not a bundle".utf8).write(to: URL(fileURLWithPath: bundlePath))
            let broken = try await client.post("/v1/admin/reload", body: "")
            #expect(broken.status == .internalServerError && broken.errorCode == "bundle")
            let v3 = try await client.get("/ready")
            #expect(v3.object["bundle_version"] as? String == v2.object["bundle_version"] as? String)
            #expect(engine.statistics.reloadFailures == 1)
        }
    }

    @Test func theBundleCutByTimeReplaysOnlyLaterRecords() throws {
        let fixture = try ServeFixture.get()
        let dir = try ServeFixture.scratch("cut")
        let bundlePath = try fixture.copyBundle(to: dir)
        var bundle = try ModelBundle.read(from: bundlePath)
        // A bundle created in the future: every record of the log predates it.
        bundle.metadata["created_at"] = "2999-01-01T00:00:00Z"
        bundle.metadata.removeValue(forKey: "event_log_through")
        try bundle.write(to: bundlePath)
        let engine = try RealtimeEngine(model: try ServingModel.load(path: bundlePath), logDirectory: "\(dir)/log", fsync: .never)
        let item = engine.model.itemID(engine.model.popular[0])
        let r = try engine.ingest([UserEvent(eventID: "c1", user: "cut-user", item: item, type: .play, msPlayed: 60_000, timestamp: 1_800_000_000)])
        #expect(r.accepted == 1)
        #expect(engine.state(user: "cut-user").played == [item])
        try engine.close()
        let again = try RealtimeEngine(model: try ServingModel.load(path: bundlePath), logDirectory: "\(dir)/log", fsync: .never)
        defer { try? again.close() }
        #expect(again.state(user: "cut-user").played.isEmpty)
        #expect(again.hasSeen(eventID: "c1"))
        #expect(try again.ingest([UserEvent(eventID: "c1", user: "cut-user", item: item, type: .play, msPlayed: 60_000, timestamp: 1_800_000_000)]).duplicates == 1)
    }

    @Test func aReplacedFileHasANewIdentity() throws {
        let dir = try ServeFixture.scratch("identity")
        let path = "\(dir)/f"
        try Data("a".utf8).write(to: URL(fileURLWithPath: path))
        let a = try #require(FileIdentity.of(path))
        try Data("bb".utf8).write(to: URL(fileURLWithPath: "\(path).tmp"))
        _ = rename("\(path).tmp", path)
        let b = try #require(FileIdentity.of(path))
        #expect(a != b)
        #expect(FileIdentity.of("\(dir)/missing") == nil)
    }
}

import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import RecCore
import ServeKit
import Testing

/// Everything a user is answered, compared between an engine that evicts and one that keeps every user.
private struct UserAnswers: Equatable {
    var state: ServedUserState
    var recommendations: [String]
    var scores: [Float]
    var becauseYouPlayed: ServedBecauseYouPlayed
    var discoverWeekly: ServedDiscoverWeekly
    var explanation: ServedExplanation

    init(_ engine: RealtimeEngine, user: String, probe: String) throws {
        state = engine.state(user: user)
        let r = try engine.recommendations(user: user, k: 10)
        recommendations = r.items.map(\.id)
        scores = r.items.map(\.score)
        becauseYouPlayed = try engine.becauseYouPlayed(user: user)
        discoverWeekly = engine.discoverWeekly(user: user)
        explanation = try engine.explain(user: user, item: probe)
    }
}

/// Per-user real-time state and the seen-id set stay within their bounds; an evicted user's state is rebuilt from
/// the log with identical answers.
@Suite("Bounded real-time state")
struct BoundedStateTests {
    /// Seeded events of 8 users (plays, skips, likes and their withdrawals, track and artist dislikes, follows) into
    /// an engine keeping at most 2 users in memory and one keeping all: after every step, every user is answered
    /// identically by both, and the bounded one never holds more than 2 users.
    @Test func evictedUsersAreAnsweredAsIfNeverEvicted() throws {
        let fixture = try ServeFixture.get()
        let dir = try ServeFixture.scratch("bounded")
        var logger = Logger(label: "bounded")
        logger.logLevel = .warning
        let model = try ServingModel.load(path: fixture.bundlePath, logger: logger)
        let bounded = try RealtimeEngine(model: model, logDirectory: dir + "/a", fsync: .never, shards: 1, maxUsers: 2, logger: logger)
        let full = try RealtimeEngine(model: model, logDirectory: dir + "/b", fsync: .never, shards: 1, maxUsers: 0, logger: logger)
        defer {
            try? bounded.close()
            try? full.close()
        }
        let users = Array(model.bundle.userIDs.ids.prefix(5)) + ["new-1", "new-2", "new-3"]
        let items = model.popular.prefix(12).map { model.itemID($0) }
        let artists = (0..<min(3, model.catalog.artistCount)).map { model.catalog.artistIDs.id(at: Int32($0)) }
        let types: [EventType] = [.play, .play, .play, .skip, .like, .unlike, .dislike, .undislike, .followArtist, .playlistAdd]
        var rng = SplitMix(seed: 11)
        for step in 0..<160 {
            let user = users[Int(rng.next() % UInt64(users.count))]
            let type = types[Int(rng.next() % UInt64(types.count))]
            // A dislike names an artist now and then (an artist dislike).
            let artistEvent = type == .followArtist || (type == .dislike && rng.next() % 3 == 0)
            let item = artistEvent && !artists.isEmpty ? artists[Int(rng.next() % UInt64(artists.count))]
                : items[Int(rng.next() % UInt64(items.count))]
            let ms: Int64? = type == .play ? (rng.next() % 4 == 0 ? 5_000 : 120_000) : nil
            let event = UserEvent(eventID: "b\(step)", user: user, item: item, type: type, msPlayed: ms,
                                  timestamp: ServeFixture.recent + Int64(step))
            let a = try bounded.ingest([event]), b = try full.ingest([event])
            #expect(a == b)
            #expect(bounded.activeUsers <= 2)
            if step % 20 == 19 {
                for u in users {
                    #expect(try UserAnswers(bounded, user: u, probe: items[0]) == UserAnswers(full, user: u, probe: items[0]),
                            "user \(u) after step \(step)")
                    #expect(bounded.activeUsers <= 2)
                }
            }
        }
        let s = bounded.statistics
        #expect(s.userEvictions > 0 && s.userRebuilds > 0)
        #expect(full.statistics.userEvictions == 0 && full.activeUsers == users.count)
        // A restart replays into the bound too.
        try bounded.close()
        let again = try RealtimeEngine(model: model, logDirectory: dir + "/a", fsync: .never, shards: 1, maxUsers: 2, logger: logger)
        defer { try? again.close() }
        #expect(again.activeUsers <= 2)
        for u in users {
            #expect(try UserAnswers(again, user: u, probe: items[0]) == UserAnswers(full, user: u, probe: items[0]), "user \(u) after a restart")
        }
    }

    /// The duplicate check remembers the last N event ids; the counts are in /metrics as counters.
    @Test func theSeenIDSetIsBoundedAndCountedInMetrics() async throws {
        let fixture = try ServeFixture.get()
        let dir = try ServeFixture.scratch("seen")
        var logger = Logger(label: "seen")
        logger.logLevel = .warning
        let model = try ServingModel.load(path: fixture.bundlePath, logger: logger)
        let engine = try RealtimeEngine(model: model, logDirectory: dir, fsync: .never, shards: 1, maxUsers: 1,
                                        maxSeenEventIDs: 3, logger: logger)
        let item = model.itemID(model.popular[0])
        for k in 1...5 {
            _ = try engine.ingest([UserEvent(eventID: "s\(k)", user: "su\(k % 2)", item: item, type: .play, msPlayed: 60_000,
                                             timestamp: ServeFixture.recent)])
        }
        #expect(engine.seenEventIDs == 3)
        #expect(!engine.hasSeen(eventID: "s1") && !engine.hasSeen(eventID: "s2") && engine.hasSeen(eventID: "s3"))
        #expect(engine.statistics.seenEventIDsForgotten == 2)
        #expect(try engine.ingest([UserEvent(eventID: "s4", user: "su0", item: item, type: .play, msPlayed: 60_000,
                                             timestamp: ServeFixture.recent)]).duplicates == 1)
        _ = engine.state(user: "su1")  // rebuilt: su0 was the last one used
        let metrics = ServeMetrics()
        let router = EncoreServer.router(holder: EngineHolder(engine), options: ServeOptions(), metrics: metrics, logger: logger)
        let app = Application(responder: router.buildResponder(), logger: logger)
        let text = try await app.test(.router) { client in
            try await client.execute(uri: "/metrics", method: .get) { String(buffer: $0.body) }
        }
        #expect(text.contains("# TYPE encore_realtime_user_evictions_total counter"))
        #expect(text.contains("encore_realtime_user_evictions_total \(engine.statistics.userEvictions)"))
        #expect(engine.statistics.userEvictions >= 4)
        #expect(text.contains("encore_realtime_user_rebuilds_total \(engine.statistics.userRebuilds)"))
        #expect(text.contains("encore_seen_event_ids 3"))
        #expect(text.contains("encore_seen_event_ids_forgotten_total 2"))
        #expect(text.contains("encore_realtime_users_max 1"))
        #expect(text.contains("encore_active_users 1"))
        #expect(text.contains("# TYPE encore_event_log_fsyncs_total counter"))
        try engine.close()
        // After a restart the window holds the log's last 3 ids.
        let again = try RealtimeEngine(model: model, logDirectory: dir, fsync: .never, maxSeenEventIDs: 3, logger: logger)
        defer { try? again.close() }
        #expect(again.seenEventIDs == 3 && again.hasSeen(eventID: "s5") && !again.hasSeen(eventID: "s2"))
    }
}

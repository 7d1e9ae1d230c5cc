import Foundation
import Testing
@testable import EncoreServing
@testable import RecCore
@testable import Trainer
@testable import EncoreWeekly

/// The server (`UserRealtimeState`) and the weekly job (`EventLogInput`) apply feedback through the same
/// `EventRules`: random sequences of likes, dislikes, follows and their withdrawals must leave both with the same
/// sets.
@Suite struct FeedbackRulesAgreementTests {
    @Test("server and weekly job agree on every seeded feedback sequence", arguments: [1, 2, 3, 4, 5] as [UInt64])
    func agree(seed: UInt64) throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("encore-rules-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // Tracks t0..t3 by artists a0, a1; the id "x" is neither, "a0" and "a1" are artists only.
        let tracks = ["t0", "t1", "t2", "t3"], artists = ["a0", "a1"]
        let types: [EventType] = [.like, .unlike, .dislike, .undislike, .followArtist, .unfollowArtist, .playlistAdd]
        var rng = SplitMix64(seed: seed)
        var events: [UserEvent] = []
        for k in 0..<300 {
            let type = types[rng.below(types.count)]
            let pool = tracks + artists + ["x"]
            events.append(UserEvent(eventID: "e\(k)", user: "u", item: pool[rng.below(pool.count)], type: type, timestamp: Int64(k)))
        }
        let log = try EventLog(directory: dir, fsync: .never)
        _ = try log.append(events)
        try log.close()

        // The weekly job's reading.
        let input = try EventLogInput(directory: dir)
        var report = EventLogInput.Report()
        let itemIDs = try IDMap(ids: tracks), artistIDs = try IDMap(ids: artists), userIDs = try IDMap(ids: ["u"])
        let feedback = input.applyFeedback(to: FeedbackLog(), userIDs: userIDs, itemIDs: itemIDs, artistIDs: artistIDs, report: &report)

        // The server's.
        var state = UserRealtimeState()
        let rules = EventRules.standard
        for (k, e) in events.enumerated() {
            let (item, artist) = rules.lookUp(e.type, id: e.item, track: itemIDs.index(of:), artist: artistIDs.index(of:))
            state.apply(type: e.type, item: item, artist: artist, listened: false, timestamp: e.timestamp, sequence: UInt64(k + 1))
        }
        #expect(Set(feedback.likes.map(\.target)) == state.likes)
        #expect(Set(feedback.dislikedTracks.map(\.target)) == state.dislikedTracks)
        #expect(Set(feedback.dislikedArtists.map(\.target)) == state.dislikedArtists)
        #expect(Set(feedback.follows.map(\.target)) == state.followedArtists)
        // The sequence exercised the rules: something was liked, disliked or followed at some point.
        #expect(report.likes + report.dislikes + report.follows > 0)
    }
}

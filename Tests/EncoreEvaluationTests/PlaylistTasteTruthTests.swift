import Foundation
import Testing
@testable import EncoreCore
@testable import EncorePlaylists
@testable import EncoreEvaluation

/// The generator's truth files read back against a play log's ids, and the taste dominance of stored mixes worked out
/// by hand.
@Suite("Taste truth")
struct PlaylistTasteTruthTests {
    static let tracks = """
        item\tgenre\tpopularity\tnew_release
        t1\trock\t0.1\t0
        t2\trock\t0.1\t0
        t3\tjazz\t0.1\t0
        t4\tjazz\t0.1\t1
        tX\tpop\t0.1\t0

        """
    static let users = """
        user\ttastes\tfavourite_artists\ttarget_tracks\tdistinct_tracks
        u1\tjazz:0.3000;rock:0.7000\ta1\t10\t10
        u2\tjazz:1.0000\t\t5\t5
        u3\trock:1.0000\t\t5\t5

        """

    static func truth() throws -> TasteTruth {
        try TasteTruth.load(
            tracksBytes: Array(tracks.utf8), usersBytes: Array(users.utf8),
            userIDs: try IDMap(ids: ["u1", "u2", "u9"]), itemIDs: try IDMap(ids: ["t1", "t2", "t3", "t4", "t5"]))
    }

    @Test func truthFilesAlignToTheLogIds() throws {
        let t = try Self.truth()
        #expect(t.labelNames == ["rock", "jazz"])          // pop only labels an item the log does not have
        #expect(t.itemLabel == [0, 0, 1, 1, -1])           // t5 has no truth
        #expect(t.userTastes == [[0, 1], [1], []])          // heaviest first; u9 has no truth, u3 is not in the log
    }

    @Test func aTasteThatIsNotGenreAndWeightIsAnError() {
        let bad = "user\ttastes\nu1\trock0.5\n"
        #expect(throws: PlaylistError.malformedRow(file: TasteTruth.userFile, line: 2, field: "tastes",
                                                   reason: "'rock0.5' is not genre:weight")) {
            try TasteTruth.load(tracksBytes: Array(Self.tracks.utf8), usersBytes: Array(bad.utf8),
                                userIDs: try IDMap(ids: ["u1"]), itemIDs: try IDMap(ids: ["t1"]))
        }
    }

    @Test func dominanceOfStoredMixes() throws {
        let t = try Self.truth()
        typealias Mix = DailyMixTable.Mix
        let table = DailyMixTable(day: "2026-01-05", rows: [
            [Mix(name: "A", cover: 0, tracks: [(0, true), (1, true), (2, true), (3, false), (4, false)]),
             Mix(name: "B", cover: 2, tracks: [(2, true), (3, true), (0, false)])],
            [Mix(name: "C", cover: 0, tracks: [(0, true), (2, true)])],
            [Mix(name: "D", cover: 4, tracks: [(4, true)])],
        ])
        let d = PlaylistEvaluation.tasteDominance(table: table, truth: t)
        // Mixes with a labeled familiar track: A (rock 2 of 3), B (jazz 2 of 2), C (rock and jazz tie: rock).
        #expect(d.mixes == 3 && d.users == 3)
        #expect(abs(d.meanPurity - (2.0 / 3 + 1 + 0.5) / 3) < 1e-12)
        // A and B are dominated by a taste of u1; C's label (rock) is not a taste of u2.
        #expect(abs(d.dominatedShare - 2.0 / 3) < 1e-12)
        // All tracks of the mix's label: A 2 of 5, B 2 of 3, C 1 of 2; the new tracks of A and B are all off-label.
        #expect(abs(d.meanTrackShare - (0.4 + 2.0 / 3 + 0.5) / 3) < 1e-12)
        #expect(d.meanNewTrackShare == 0)
        // Daily Mix 1 against the heaviest taste: u1's A is 2 of 5 rock, u2's C 1 of 2 jazz; u9 has no truth.
        #expect(abs(d.firstMixTopTasteShare - 0.45) < 1e-12)
        #expect(d.mixesByTasteCount == [
            .init(tastes: 0, users: 1, meanMixes: 1), .init(tastes: 1, users: 1, meanMixes: 1),
            .init(tastes: 2, users: 1, meanMixes: 2),
        ])
    }
}

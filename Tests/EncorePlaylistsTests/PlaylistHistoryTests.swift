import Foundation
import Testing
@testable import EncoreCore
@testable import EncorePlaylists

/// Histories, catalog and feedback: bulk against per-user brute force, files against memory.
@Suite("Playlist inputs")
struct PlaylistHistoryTests {
    @Test func bulkHistoriesMatchABruteForceReading() throws {
        let f = try PlaylistFixture.get()
        let w = f.world
        let asOf = f.week.adding(days: -10).timestamp
        let histories = try ListeningHistories(world: w, asOf: asOf, halfLifeDays: 5)
        #expect(histories.asOf == asOf)
        for u in stride(from: Int32(0), to: Int32(w.users.count), by: 7) {
            let h = try histories.history(of: u)
            var plays: [Int32: Double] = [:], skips: [Int32: Int32] = [:], first: [Int32: Int64] = [:], last: [Int32: Int64] = [:]
            var recency: [Int32: Double] = [:]
            for i in 0..<w.plays.count where w.plays.users[i] == u && w.plays.timestamps[i] < asOf {
                let t = w.plays.tracks[i], ts = w.plays.timestamps[i]
                if w.plays.isSkip(i) {
                    skips[t, default: 0] += 1
                } else {
                    plays[t, default: 0] += 1
                    recency[t, default: 0] += Foundation.pow(2, -Double(asOf - ts) / (5 * 86_400))
                }
                plays[t, default: 0] += 0
                first[t] = min(first[t] ?? .max, ts)
                last[t] = max(last[t] ?? .min, ts)
            }
            #expect(h.items == plays.keys.sorted())
            for (p, i) in h.items.enumerated() {
                #expect(Double(h.plays[p]) == plays[i])
                #expect(h.skips[p] == skips[i, default: 0])
                #expect(h.firstPlayed[p] == first[i])
                #expect(h.lastPlayed[p] == last[i])
                #expect(abs(Double(h.recency[p]) - recency[i, default: 0]) <= 1e-4 * max(1, recency[i, default: 0]))
            }
            #expect(h.likes == Set(w.likes.filter { $0.user == u && $0.timestamp < asOf }.map(\.track)).sorted())
            #expect(h.dislikedTracks == Set(w.dislikes.filter { $0.user == u && $0.kind == .track && $0.timestamp < asOf }.map(\.target)).sorted())
            #expect(h.dislikedArtists == Set(w.dislikes.filter { $0.user == u && $0.kind == .artist && $0.timestamp < asOf }.map(\.target)).sorted())
            #expect(h.followedArtists == Set(w.follows.filter { $0.user == u && $0.timestamp < asOf }.map(\.artist)).sorted())
            // One user's history from raw events, as the server builds it, is the same.
            var events: [ListeningEvent] = []
            for i in 0..<w.plays.count where w.plays.users[i] == u {
                events.append(ListeningEvent(item: w.plays.tracks[i], timestamp: w.plays.timestamps[i], isSkip: w.plays.isSkip(i)))
            }
            let single = try UserHistory(
                userKey: h.userKey, user: u, asOf: asOf, halfLifeDays: 5, events: events.reversed(), likes: h.likes,
                dislikedTracks: h.dislikedTracks, dislikedArtists: h.dislikedArtists, followedArtists: h.followedArtists)
            #expect(single == h)
        }
        // The same with any thread count.
        let one = try ListeningHistories(world: w, asOf: asOf, halfLifeDays: 5, threads: 1)
        for u in [Int32(0), 17, 250] { #expect(try one.history(of: u) == histories.history(of: u)) }
        #expect(throws: PlaylistError.self) { try histories.history(of: Int32(w.users.count)) }
        #expect(throws: PlaylistError.self) { try ListeningHistories(world: w, halfLifeDays: 0) }
    }

    @Test func filesReadBackAsTheWorldInMemory() throws {
        let f = try PlaylistFixture.get()
        let w = f.world
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("encore-playlist-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try w.write(to: dir, threads: 2)
        func file(_ n: String) -> String { (dir as NSString).appendingPathComponent(n) }
        // The model's items in another order than the world's: the catalog is aligned to them.
        let itemIDs = try IDMap(ids: w.trackIDList.reversed())
        let loaded = try TrackCatalog.load(tracks: file("tracks.tsv"), artists: file("artists.tsv"), itemIDs: itemIDs)
        let mine = TrackCatalog(world: w)
        #expect(loaded.itemCount == mine.itemCount)
        #expect(loaded.artistIDs == mine.artistIDs)
        #expect(loaded.artistNames == mine.artistNames)
        #expect(loaded.albumCount == mine.albumCount)
        for m in 0..<Int32(loaded.itemCount) {
            let t = w.catalog.trackCount - 1 - Int(m)
            #expect(loaded.trackArtist[Int(m)] == mine.trackArtist[t])
            #expect(loaded.trackRelease[Int(m)] == mine.trackRelease[t])
            #expect(loaded.trackDurationMs[Int(m)] == mine.trackDurationMs[t])
            func name(_ c: TrackCatalog, _ i: Int) -> String? { c.trackGenre[i] < 0 ? nil : c.genreNames[Int(c.trackGenre[i])] }
            #expect(name(loaded, Int(m)) == name(mine, t))
        }
        // Same-album relation preserved.
        for t in 1..<w.catalog.trackCount {
            let a = Int32(w.catalog.trackCount - 1 - t), b = a + 1
            #expect((loaded.trackAlbum[Int(a)] == loaded.trackAlbum[Int(b)]) == (mine.trackAlbum[t] == mine.trackAlbum[t - 1]))
        }
        // Newest releases first per artist.
        for a in 0..<Int32(loaded.artistCount) {
            let r = loaded.tracks(ofArtist: a).map { loaded.trackRelease[Int($0)] }
            #expect(r == r.sorted(by: >))
        }
        let userIDs = try IDMap(ids: w.userIDList)
        let (fb, report) = try FeedbackLog.load(
            likes: file("likes.tsv"), dislikes: file("dislikes.tsv"), follows: file("follows.tsv"),
            userIDs: userIDs, itemIDs: try IDMap(ids: w.trackIDList), artistIDs: loaded.artistIDs)
        #expect(fb == FeedbackLog(world: w))
        #expect(report.rowsUnknown == 0)
        #expect(report.rowsRead == w.likes.count + w.dislikes.count + w.follows.count)
    }

    @Test func malformedFilesNameTheFileLineAndField() throws {
        let ids = try IDMap(ids: ["t1", "t2"])
        let good = Array("item\tartist\trelease_date\tduration_ms\tflagged\nt1\ta1\t2026-01-05\t200000\t1\nt2\ta2\t\t\t0\nt9\ta1\t2026-01-05\t1\t0\n".utf8)
        let c = try TrackCatalog.load(tracksBytes: good, itemIDs: ids)
        #expect(c.trackArtist == [0, 1])
        #expect(c.flagged.contains(0) && !c.flagged.contains(1))
        #expect(c.trackRelease[1] == TrackCatalog.unknownTime)
        #expect(c.trackDurationMs == [200_000, 0])
        #expect(c.release(of: 0) == Timestamp.parse("2026-01-05"))
        let badDate = Array("item\tartist\trelease_date\nt1\ta1\t2026-02-30\n".utf8)
        #expect(throws: PlaylistError.malformedRow(file: "tracks.tsv", line: 2, field: "release_date",
                                                   reason: "expected a date YYYY-MM-DD, got '2026-02-30'")) {
            try TrackCatalog.load(tracksBytes: badDate, itemIDs: ids)
        }
        let noArtist = Array("item\tgenre\nt1\tpop\n".utf8)
        #expect(throws: PlaylistError.missingColumn(file: "tracks.tsv", column: "artist")) {
            try TrackCatalog.load(tracksBytes: noArtist, itemIDs: ids)
        }
        let short = Array("item\tartist\tduration_ms\nt1\ta1\n".utf8)
        #expect(throws: PlaylistError.self) { try TrackCatalog.load(tracksBytes: short, itemIDs: ids) }
        #expect(throws: PlaylistError.self) { try TrackCatalog.load(tracks: "/nonexistent/tracks.tsv", itemIDs: ids) }
        #expect(throws: PlaylistError.self) { try TrackCatalog(itemCount: 2, trackArtist: [0]) }
        #expect(throws: PlaylistError.self) { try TrackCatalog(itemCount: 1, trackArtist: [3], artistIDs: IDMap(ids: ["a"])) }
    }
}

import Foundation
import Testing
@testable import EncoreData
@testable import EncoreFactorization
@testable import EncorePlaylists

/// Discover Weekly's rules, checked for every user of the tiny world against independent computations.
@Suite("Discover Weekly")
struct PlaylistDiscoverWeeklyTests {
    static func builder(
        _ f: PlaylistFixture, week: PlaylistDate? = nil, change: (inout DiscoverWeekly.Configuration) -> Void = { _ in }
    ) throws -> DiscoverWeekly {
        var c = try f.discoverWeeklyConfiguration()
        change(&c)
        return try DiscoverWeekly(environment: f.environment, configuration: c, week: week ?? f.week)
    }

    /// Whether `items` can be ordered with no two tracks of one known artist side by side.
    static func orderable(_ items: [Int32], _ catalog: TrackCatalog) -> Bool {
        var counts: [Int32: Int] = [:]
        for i in items where catalog.artist(of: i) >= 0 { counts[catalog.artist(of: i), default: 0] += 1 }
        return (counts.values.max() ?? 0) <= (items.count + 1) / 2
    }

    /// The rules every Discover Weekly keeps: distinct tracks, at most 30, never played or skipped, not disliked
    /// (track or artist), not flagged, long enough, released by the week, at most 2 per artist and per album.
    static func checkRules(_ p: DiscoverWeekly.Playlist, history h: UserHistory, fixture f: PlaylistFixture) {
        let cat = f.catalog
        let u = p.userKey
        let items = p.items
        #expect(Set(items).count == items.count, "user \(u): a track twice")
        #expect(items.count <= 30)
        var perArtist: [Int32: Int] = [:], perAlbum: [Int32: Int] = [:]
        for i in items {
            // Never played or skipped, ever.
            #expect(!h.items.contains(i), "user \(u): played track \(i)")
            // Not disliked, nor by a disliked artist.
            #expect(!h.dislikedTracks.contains(i), "user \(u): disliked track \(i)")
            #expect(!h.dislikedArtists.contains(cat.trackArtist[Int(i)]), "user \(u): disliked artist of \(i)")
            // Not flagged, long enough, released.
            #expect(!cat.flagged.contains(i))
            #expect(cat.trackDurationMs[Int(i)] >= 60_000)
            #expect(cat.trackRelease[Int(i)] <= f.week.timestamp)
            perArtist[cat.trackArtist[Int(i)], default: 0] += 1
            perAlbum[cat.trackAlbum[Int(i)], default: 0] += 1
        }
        #expect(perArtist.values.allSatisfy { $0 <= 2 }, "user \(u): more than 2 tracks of an artist")
        #expect(perAlbum.values.allSatisfy { $0 <= 2 }, "user \(u): more than 2 tracks of an album")
    }

    @Test func everyRuleHoldsForEveryUser() throws {
        let f = try PlaylistFixture.get()
        let b = try Self.builder(f)
        let cat = f.catalog
        var full = 0
        for u in f.histories.activeUsers {
            let h = try f.histories.history(of: u)
            let p = try b.build(for: h)
            let items = p.items
            Self.checkRules(p, history: h, fixture: f)
            // 30 tracks whenever 30 admissible candidates exist: a greedy fill of every merged candidate under the caps.
            if items.count < 30 {
                let merged = try b.candidates(for: h)
                var a: [Int32: Int] = [:], al: [Int32: Int] = [:]
                var admissible = 0
                for c in merged {
                    let x = cat.trackArtist[Int(c.item)], y = cat.trackAlbum[Int(c.item)]
                    if a[x, default: 0] < 2 && al[y, default: 0] < 2 {
                        a[x, default: 0] += 1; al[y, default: 0] += 1; admissible += 1
                    }
                }
                #expect(admissible < 30, "user \(u): \(items.count) tracks but \(admissible) admissible candidates")
            } else {
                full += 1
            }
            // Flow: no two tracks of one artist side by side when an order without exists.
            if Self.orderable(items, cat) {
                #expect(!FlowOrdering.hasAdjacentArtists(items, catalog: cat), "user \(u): same artist side by side")
            }
            // Every track is recorded with the sources that suggested it: each named source lists it.
            let ctx = try b.context(for: h)
            var lists: [String: Set<Int32>] = [:]
            for s in b.configuration.sources {
                lists[s.source.name] = Set(try s.source.candidates(for: ctx, limit: s.limit).map(\.item))
            }
            for t in p.tracks {
                let names = p.sources(of: t)
                #expect(!names.isEmpty)
                for n in names { #expect(lists[n]?.contains(t.item) == true, "user \(u): \(t.item) not from \(n)") }
                for (n, l) in lists where l.contains(t.item) { #expect(names.contains(n)) }
            }
        }
        #expect(full > f.histories.activeUsers.count * 9 / 10)
    }

    @Test func capsAreConfigurable() throws {
        let f = try PlaylistFixture.get()
        let b = try Self.builder(f) { $0.rules.maxPerArtist = 1; $0.rules.maxPerAlbum = 1 }
        for u in f.histories.activeUsers.prefix(60) {
            let items = try b.build(for: f.histories.history(of: u)).items
            #expect(Set(items.map { f.catalog.trackArtist[Int($0)] }).count == items.count)
            #expect(items.count == 30)
        }
    }

    @Test func deterministicPerWeekAndAcrossThreads() throws {
        let f = try PlaylistFixture.get()
        let b = try Self.builder(f)
        let users = Array(f.histories.activeUsers.prefix(80))
        let one = try b.buildAll(histories: f.histories, users: users, threads: 1)
        let two = try b.buildAll(histories: f.histories, users: users, threads: 2)
        #expect(one == two)
        // A fresh builder for the same week gives the same playlists.
        let again = try Self.builder(f).buildAll(histories: f.histories, users: users, threads: 2)
        #expect(again == one)
        for (u, p) in zip(users, one) {
            #expect(p.seed == StableSeed.make([f.histories.userKeys[Int(u)], f.week.description, "discover-weekly"]))
        }
    }

    @Test func changesFromWeekToWeek() throws {
        let f = try PlaylistFixture.get()
        let users = Array(f.histories.activeUsers.prefix(80))
        let thisWeek = try Self.builder(f).buildAll(histories: f.histories, users: users)
        // The same histories a week later: the seed and the release window move.
        let nextWeek = try Self.builder(f, week: f.week.adding(days: 7)).buildAll(histories: f.histories, users: users)
        var changed = 0, overlap = 0.0
        for (a, b) in zip(thisWeek, nextWeek) where a.items.count == 30 {
            if a.items != b.items { changed += 1 }
            overlap += Double(Set(a.items).intersection(b.items).count) / 30
        }
        #expect(changed >= users.count * 9 / 10)
        // Still the same user's taste: most tracks stay.
        #expect(overlap / Double(users.count) > 0.5)
        // Histories one week shorter (as of the previous Monday) give other playlists for the previous week.
        let earlier = try ListeningHistories(world: f.world, asOf: f.week.adding(days: -7).timestamp)
        let lastWeek = try Self.builder(f, week: f.week.adding(days: -7)).buildAll(histories: earlier, users: users)
        #expect(zip(lastWeek, thisWeek).filter { $0.items != $1.items }.count >= users.count * 9 / 10)
        for (p, u) in zip(lastWeek, users) {
            let h = try earlier.history(of: u)
            #expect(p.items.allSatisfy { !h.hasPlayed($0) })
        }
    }

    @Test func refusesADayThatIsNotAMonday() throws {
        let f = try PlaylistFixture.get()
        #expect(throws: PlaylistError.self) { try Self.builder(f, week: f.week.adding(days: 1)) }
        #expect(throws: PlaylistError.self) { try Self.builder(f) { $0.size = 0 } }
        #expect(throws: PlaylistError.self) { try Self.builder(f) { $0.diversity.lambda = 2 } }
    }

    @Test func worksForANewUserFoldedIn() throws {
        let f = try PlaylistFixture.get()
        let b = try Self.builder(f)
        let known = try f.histories.history(of: f.histories.activeUsers[5])
        let events = zip(known.items, known.plays).map { ListeningEvent(item: $0, timestamp: f.week.timestamp - 86_400, plays: max(1, $1)) }
        let fresh = try UserHistory(userKey: "new-user", user: nil, asOf: f.week.timestamp, events: events)
        let p = try b.build(for: fresh)
        #expect(p.items.count == 30)
        #expect(p.items.allSatisfy { !fresh.hasPlayed($0) })
        #expect(p.user == nil)
    }

    @Test func worksFromABarePlayLog() throws {
        let f = try PlaylistFixture.get()
        // user, item, count, timestamp only: no catalog, no feedback.
        let log = try f.world.pairInteractions()
        let histories = try ListeningHistories.build(plays: log, weighting: .counts)
        #expect(histories.asOf == PlaylistDate.mondayAfter(log.timestamps.max()!).timestamp)
        let train = ConfidenceWeighting.bm25Default.apply(toUserItems: log.matrix())
        var model = ImplicitALS(parameters: ALSParameters(factors: 16, regularization: 0.1, iterations: 8, seed: 5, threads: 2))
        try model.fit(train)
        let catalog = TrackCatalog.bare(itemCount: log.itemIDs.count)
        #expect(!catalog.hasArtists)
        let env = try PlaylistEnvironment(catalog: catalog, space: ItemSpace.collaborative(model, userItems: train), model: model)
        let c = try DiscoverWeekly.Configuration.standard(histories: histories, model: model, catalog: catalog)
        let b = try DiscoverWeekly(environment: env, configuration: c, week: PlaylistDate(dayNumber: histories.asOf / 86_400))
        for u in histories.activeUsers.prefix(50) {
            let h = try histories.history(of: u)
            let p = try b.build(for: h)
            #expect(p.items.count == 30)
            #expect(p.items.allSatisfy { !h.hasPlayed($0) })
            // The artist and genre sources have nothing to say without a catalog.
            for t in p.tracks {
                #expect(!p.sources(of: t).contains { ["new-releases", "artist-affinity", "genre-affinity"].contains($0) })
            }
        }
    }
}

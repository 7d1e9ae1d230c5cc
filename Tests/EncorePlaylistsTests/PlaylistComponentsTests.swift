import Foundation
import Testing
@testable import EncoreCore
@testable import EncoreIndex
@testable import EncorePlaylists

/// The playlist building blocks on small hand-made inputs: merge, priors, rules, diversity, flow.
@Suite("Playlist components")
struct PlaylistComponentsTests {
    /// The angle of item `i` on the circle (no two gaps equal, so no ties).
    static func angle(_ i: Int) -> Double { 0.25 * Double(i) + 0.01 * Double(i * i) }

    /// 12 items in 4 artists (3 each), 2D vectors on a circle, release times one day apart.
    static func environment() throws -> PlaylistEnvironment {
        var v = Matrix(rows: 12, cols: 2)
        for i in 0..<12 {
            v[i, 0] = Float(Foundation.cos(angle(i)))
            v[i, 1] = Float(Foundation.sin(angle(i)))
        }
        let catalog = try TrackCatalog(
            itemCount: 12, trackArtist: (0..<12).map { Int32($0 / 3) }, trackAlbum: (0..<12).map { Int32($0 / 2) },
            trackRelease: (0..<12).map { Int64($0) * 86_400 }, trackDurationMs: (0..<12).map { $0 == 11 ? 30_000 : 200_000 },
            flagged: IDBitset([10]), artistIDs: IDMap(ids: ["a", "b", "c", "d"]), albumCount: 6)
        return try PlaylistEnvironment(catalog: catalog, space: ItemSpace(name: "circle", vectors: v))
    }

    static func context(_ env: PlaylistEnvironment, played: [Int32] = [], at time: Int64 = 20 * 86_400) throws -> PlaylistContext {
        let h = try UserHistory(userKey: "u", user: nil, asOf: time, events: played.map { ListeningEvent(item: $0, timestamp: 0) },
                                dislikedTracks: [5], dislikedArtists: [3])
        let rules = PlaylistRules()
        return PlaylistContext(
            environment: env, history: h, userVector: nil, referenceTime: time, seed: 1,
            excluded: rules.excludedItems(for: h, catalog: env.catalog, unavailable: rules.unavailableItems(in: env.catalog, at: time)))
    }

    @Test func rulesExcludeWhatTheyShould() throws {
        let env = try Self.environment()
        let ctx = try Self.context(env, played: [0], at: 8 * 86_400)
        // 0 played, 5 disliked, 9-11 by the disliked artist 3, 10 flagged, 11 too short; released after day 8: none of 0-8.
        #expect((0..<12).filter { ctx.allows(Int32($0)) } == [1, 2, 3, 4, 6, 7, 8])
        let unavailable = PlaylistRules().unavailableItems(in: env.catalog, at: 8 * 86_400)
        #expect((0..<12).filter { unavailable.contains(Int32($0)) } == [9, 10, 11])
        var caps = CapCounter(rules: PlaylistRules(maxPerArtist: 2, maxPerAlbum: 1))
        caps.add(0, catalog: env.catalog)
        #expect(!caps.admits(1, catalog: env.catalog))  // same album
        #expect(caps.admits(2, catalog: env.catalog))
        caps.add(2, catalog: env.catalog)
        #expect(!caps.admits(2, catalog: env.catalog))  // artist full
        #expect(throws: PlaylistError.self) { try PlaylistRules(maxPerArtist: -1).validate() }
    }

    @Test func mergeKeepsEverySourceAndSumsWeightedShares() throws {
        let env = try Self.environment()
        let ctx = try Self.context(env, played: [0])
        let a = [Candidate(item: 1, score: 4, source: "a"), Candidate(item: 2, score: 2, source: "a"),
                 Candidate(item: 0, score: 9, source: "a")]
        let b = [Candidate(item: 2, score: 10, source: "b"), Candidate(item: 3, score: 5, source: "b")]
        let merged = CandidateMerge.merge([(1, a), (0.5, b)], context: ctx, userScoreWeight: 1)
        // Item 0 is played: gone. Shares are over each list's best score (9 for a, 10 for b).
        let expected: [Int32: Float] = [1: 4.0 / 9, 2: 2.0 / 9 + 0.5, 3: 0.25]
        #expect(merged.map(\.item) == [2, 1, 3])
        for m in merged { #expect(abs(m.relevance - expected[m.item]!) < 1e-6) }
        #expect(merged[0].sources == [SourceScore(source: "a", score: 2, rank: 1), SourceScore(source: "b", score: 10, rank: 0)])
        // A prior multiplies.
        struct Double3: RelevancePrior {
            let name = "x3"
            func factor(for item: Int32, context: PlaylistContext) -> Float { item == 3 ? 3 : 1 }
        }
        let boosted = CandidateMerge.merge([(1, a), (0.5, b)], context: ctx, userScoreWeight: 1, priors: [Double3()])
        #expect(boosted.map(\.item) == [3, 2, 1])
    }

    @Test func releaseExposureFavoursFreshTracks() throws {
        let env = try Self.environment()
        let ctx = try Self.context(env, at: 11 * 86_400)
        let p = try ReleaseExposure(spanDays: 84, gamma: 1)
        // Item 4 is 7 days old, item 11 released today, item 0 eleven days old.
        #expect(abs(p.factor(for: 4, context: ctx) - 91.0 / 14) < 1e-5)
        #expect(abs(p.factor(for: 11, context: ctx) - 13) < 1e-5)
        #expect(p.factor(for: 0, context: ctx) < p.factor(for: 4, context: ctx))
        #expect(try ReleaseExposure(gamma: 0).factor(for: 4, context: ctx) == 1)
        #expect(throws: PlaylistError.self) { try ReleaseExposure(gamma: -1) }
    }

    @Test func mmrTradesRelevanceForNoveltyUnderCaps() throws {
        let env = try Self.environment()
        let items: [Int32] = [0, 1, 2, 3, 6, 9]
        let relevance: [Float] = [1, 0.99, 0.98, 0.97, 0.5, 0.4]
        let caps = CapCounter(rules: PlaylistRules(maxPerArtist: 0, maxPerAlbum: 0))
        // λ = 1: by relevance.
        let plain = Diversifier(lambda: 1).select(items, relevance: relevance, count: 4, space: env.space, catalog: env.catalog, caps: caps)
        #expect(plain == [0, 1, 2, 3])
        // λ = 0.5, against an independent greedy MMR in Double on the angles.
        let diverse = Diversifier(lambda: 0.5).select(items, relevance: relevance, count: 4, space: env.space, catalog: env.catalog, caps: caps)
        var picked: [Int] = []
        while picked.count < 4 {
            var best = -1, bestValue = -Double.infinity
            for i in items.indices where !picked.contains(i) {
                let redundancy = picked.map { max(0, Foundation.cos(Self.angle(Int(items[i])) - Self.angle(Int(items[$0])))) }.max() ?? 0
                let value = 0.5 * Double(relevance[i]) - 0.5 * redundancy
                if value > bestValue { bestValue = value; best = i }
            }
            picked.append(best)
        }
        #expect(diverse == picked)
        #expect(diverse != plain)
        // Caps are enforced while picking: one per artist.
        let capped = Diversifier(lambda: 1).select(
            items, relevance: relevance, count: 6, space: env.space, catalog: env.catalog,
            caps: CapCounter(rules: PlaylistRules(maxPerArtist: 1, maxPerAlbum: 0)))
        #expect(capped.map { env.catalog.trackArtist[Int(items[$0])] } == [0, 1, 2, 3])
    }

    @Test func flowAvoidsSameArtistNeighborsWheneverPossible() throws {
        var rng = SplitMix64(seed: 9)
        for trial in 0..<300 {
            let n = 2 + rng.below(30)
            let artists = 1 + rng.below(6)
            var trackArtist: [Int32] = []
            for _ in 0..<n { trackArtist.append(rng.nextDouble() < 0.1 ? -1 : Int32(rng.below(artists))) }
            var v = Matrix(rows: n, cols: 3)
            for i in 0..<n { for c in 0..<3 { v[i, c] = Float(rng.nextDouble()) } }
            let catalog = try TrackCatalog(itemCount: n, trackArtist: trackArtist,
                                           artistIDs: IDMap(ids: (0..<artists).map { "a\($0)" }))
            let space = try ItemSpace(name: "r", vectors: v)
            let items = (0..<Int32(n)).map { $0 }
            let relevance = (0..<n).map { _ in Float(rng.nextDouble()) }
            let order = FlowOrdering().order(items, relevance: relevance, space: space, catalog: catalog)
            #expect(order.sorted() == Array(0..<n), "trial \(trial): not a permutation")
            let ordered = order.map { items[$0] }
            var counts: [Int32: Int] = [:]
            for a in trackArtist where a >= 0 { counts[a, default: 0] += 1 }
            let possible = (counts.values.max() ?? 0) <= (n + 1) / 2
            if possible {
                #expect(!FlowOrdering.hasAdjacentArtists(ordered, catalog: catalog), "trial \(trial): \(ordered.map { trackArtist[Int($0)] })")
            }
            // It opens with the most relevant track when any first track can be followed without a clash.
            if (counts.values.max() ?? 0) <= n / 2 {
                #expect(order[0] == relevance.indices.max { relevance[$0] < relevance[$1] || (relevance[$0] == relevance[$1] && $0 > $1) })
            }
        }
    }

    @Test func itemSpaceNeighborsWithAndWithoutIndex() throws {
        let env = try Self.environment()
        var v = Matrix(rows: 12, cols: 2)
        for i in 0..<12 { v[i, 0] = env.space.vectors[i, 0] * Float(i + 1); v[i, 1] = env.space.vectors[i, 1] * Float(i + 1) }
        let exact = try ItemSpace(name: "x", vectors: v)
        let indexed = try ItemSpace(name: "x", vectors: v, index: BruteForceIndex(vectors: v, metric: .cosine))
        let filter = SearchFilter.excluded(IDBitset([4]))
        let a = try exact.neighbors(ofItem: 3, k: 4, filter: filter)
        let b = try indexed.neighbors(ofItem: 3, k: 4, filter: filter)
        #expect(a.map(\.item) == [2, 1, 5, 0])
        #expect(b.map(\.item) == a.map(\.item))
        for (x, y) in zip(a, b) { #expect(abs(x.similarity - y.similarity) < 1e-6) }
        #expect(abs(a[0].similarity - Float(Foundation.cos(Self.angle(3) - Self.angle(2)))) < 1e-5)
        // Items outside validItems have no vector and are never neighbors.
        let partial = try ItemSpace(name: "p", vectors: v, validItems: IDBitset([0, 1, 2, 3]))
        #expect(try partial.neighbors(ofItem: 3, k: 10).map(\.item) == [2, 1, 0])
        #expect(try partial.neighbors(ofItem: 7, k: 10).isEmpty)
        #expect(throws: PlaylistError.self) { try exact.neighbors(of: [1, 2, 3], k: 1) }
        #expect(throws: PlaylistError.self) {
            try ItemSpace(name: "bad", vectors: v, index: BruteForceIndex(vectors: Matrix(rows: 2, cols: 3), metric: .cosine))
        }
    }

    @Test("indexed() builds an HNSW index over the items with a vector: exact cosines, high recall, none without a vector")
    func indexedSpaceAnswersLikeTheExactScan() throws {
        var rng = SplitMix64(seed: 33)
        let n = 2000
        var v = Matrix(rows: n, cols: 8)
        for i in 0..<n { for c in 0..<8 { v[i, c] = Float(rng.nextDouble() - 0.5) } }
        let valid = IDBitset((0..<Int32(n)).filter { $0 % 7 != 0 })
        let exact = try ItemSpace(name: "r", vectors: v, validItems: valid)
        let indexed = try exact.indexed(threads: 2)
        #expect(exact.index == nil)
        let index = try #require(indexed.index)
        #expect(index.count == n - (n + 6) / 7)
        var found = 0, asked = 0
        for item in stride(from: Int32(1), to: Int32(n), by: 7) {
            let want = try exact.neighbors(ofItem: item, k: 10)
            let got = try indexed.neighbors(ofItem: item, k: 10, filter: .predicate { $0 % 2 == 0 })
            #expect(!got.contains { $0.item == item || !valid.contains($0.item) || $0.item % 2 != 0 })
            for g in got { #expect(abs(g.similarity - exact.cosine(item, g.item)) < 1e-5) }
            let wantEven = try exact.neighbors(ofItem: item, k: 10, filter: .predicate { $0 % 2 == 0 })
            asked += wantEven.count
            found += Set(got.map(\.item)).intersection(wantEven.map(\.item)).count
            #expect(want.count == 10)
        }
        // HNSW is approximate: recall@10 against the exact scan, well above what a random answer gives.
        #expect(Double(found) / Double(asked) > 0.95, "recall \(Double(found) / Double(asked))")
    }

    @Test func neighborListsAndBitsetFiltersAnswerLikeTheLiveQueries() throws {
        var rng = SplitMix64(seed: 21)
        let n = 200
        var v = Matrix(rows: n, cols: 6)
        for i in 0..<n { for c in 0..<6 { v[i, c] = Float(rng.nextDouble() - 0.5) } }
        // Every fifth item has no vector: never a neighbor, never listed.
        let valid = IDBitset((0..<Int32(n)).filter { $0 % 5 != 0 })
        let exact = try ItemSpace(name: "r", vectors: v, validItems: valid)
        let indexed = try ItemSpace(name: "r", vectors: v, index: BruteForceIndex(vectors: v, metric: .cosine), validItems: valid)
        let listed = try exact.withNeighborLists(count: 16, threads: 2)
        let listedIndexed = try indexed.withNeighborLists(count: 16, threads: 2)
        #expect(listed.neighborLists?.start.count == n + 1)
        #expect(listed.neighborLists?.items.count == (n - n / 5) * 16)
        let some = IDBitset((0..<Int32(n)).filter { _ in rng.nextDouble() < 0.2 })
        let most = IDBitset((0..<Int32(n)).filter { _ in rng.nextDouble() < 0.8 })   // lists run short: a query answers
        let filters: [SearchFilter?] = [nil, .excluded(some), .excluded(most), .allowed(most), .predicate { $0 % 3 != 0 }]
        var fromLists = 0
        for item in 0..<Int32(n) {
            for (f, filter) in filters.enumerated() {
                let want = try exact.neighbors(ofItem: item, k: 10, filter: filter)
                #expect(!want.contains { $0.item == item || !valid.contains($0.item) || !(filter?.allows($0.item) ?? true) })
                for (name, space) in [("indexed", indexed), ("listed", listed), ("listed+indexed", listedIndexed)] {
                    let got = try space.neighbors(ofItem: item, k: 10, filter: filter)
                    #expect(got.map(\.item) == want.map(\.item), "\(name), item \(item), filter \(f)")
                    for (a, b) in zip(got, want) { #expect(abs(a.similarity - b.similarity) < 1e-5) }
                }
                if let l = listed.neighborLists, want.count == 10 {
                    let range = l.start[Int(item)]..<l.start[Int(item) + 1]
                    if range.filter({ filter?.allows(l.items[$0]) ?? true }).count >= 10 { fromLists += 1 }
                }
            }
        }
        // Both ways were taken: answers from the lists and queries when a filter leaves fewer than k of a list.
        #expect(fromLists > n && fromLists < n * filters.count * 4 / 5, "\(fromLists)")
        // Without a filter, an item of the space answers from its list alone.
        let lists = try #require(listed.neighborLists)
        #expect(try listed.neighbors(ofItem: 1, k: 16).map(\.item) == Array(lists.items[lists.start[1]..<lists.start[2]]))
        #expect(lists.start[1] == 0)   // item 0 has no vector, so no list
        #expect(throws: PlaylistError.self) { try exact.withNeighborLists(count: 0) }
    }

    @Test func bitsetUnionAndIntersection() {
        var a = IDBitset([1, 5, 70])
        a.formUnion(IDBitset([2, 200]))
        #expect((0..<Int32(256)).filter { a.contains($0) } == [1, 2, 5, 70, 200])
        a.formIntersection(IDBitset([5, 70, 300]))
        #expect((0..<Int32(400)).filter { a.contains($0) } == [5, 70])
        a.formIntersection(IDBitset([5]))
        #expect(a.count == 1 && a.contains(5))
    }

    @Test func recentReleasesAndTrendingSources() throws {
        let f = try PlaylistFixture.get()
        let b = try DiscoverWeekly(environment: f.environment, configuration: f.discoverWeeklyConfiguration(), week: f.week)
        let recent = try RecentReleases(catalog: f.catalog, windowDays: 28)
        let trending = TrendingTracks(histories: f.histories, windowDays: 7)
        var fromRecent = 0, fromTrending = 0
        for u in f.histories.activeUsers.prefix(40) {
            let ctx = try b.context(for: f.histories.history(of: u))
            let v = try #require(ctx.userVector)
            let r = try recent.candidates(for: ctx, limit: 20)
            for c in r {
                let release = f.catalog.trackRelease[Int(c.item)]
                #expect(release <= f.week.timestamp && release >= f.week.timestamp - 28 * 86_400)
                #expect(ctx.allows(c.item))
                let age = Double(f.week.timestamp - release) / 86_400
                #expect(abs(Double(c.score) - Double(f.environment.score(c.item, vector: v)) * 7 / (age + 7)) < 1e-4)
            }
            #expect(r.map(\.score) == r.map(\.score).sorted(by: >))
            fromRecent += r.count
            let t = try trending.candidates(for: ctx, limit: 20)
            for c in t {
                #expect(ctx.allows(c.item))
                // Scored above the model's score: only items with a lift of at least 1.5 are candidates.
                #expect(c.score >= 1.5 * f.environment.score(c.item, vector: v) - 1e-5)
            }
            fromTrending += t.count
        }
        #expect(fromRecent > 0)
        #expect(fromTrending > 0)
        #expect(throws: PlaylistError.self) { try RecentReleases(catalog: f.catalog, windowDays: 0) }
    }
}

import Foundation
import Testing
@testable import EncoreCore
@testable import EncorePlaylists
@testable import EncoreEvaluation

/// Daily Mix's rules on every user of the tiny world, the clustering on planted data, and the ground truth.
@Suite("Daily Mix")
struct PlaylistDailyMixTests {
    static func builder(_ f: PlaylistFixture, day: PlaylistDate? = nil) throws -> DailyMix {
        try DailyMix(environment: f.environment, day: day ?? f.week)
    }

    @Test func everyRuleHoldsForEveryUser() throws {
        let f = try PlaylistFixture.get()
        let b = try Self.builder(f)
        let cat = f.catalog
        let all = try b.buildAll(histories: f.histories)
        var mixCount = 0, fullMixes = 0
        for (u, m) in zip(f.histories.activeUsers, all) {
            let h = try f.histories.history(of: u)
            #expect(m.user == u)
            #expect(m.mixes.count <= 6)
            var seen = Set<Int32>()
            for (k, mix) in m.mixes.enumerated() {
                mixCount += 1
                #expect(mix.number == k + 1)
                #expect(mix.title == "Daily Mix \(k + 1)")
                #expect(mix.items.count == mix.isFamiliar.count)
                #expect(mix.items.count <= 50)
                // Mixes do not repeat tracks, within or between them.
                for i in mix.items { #expect(seen.insert(i).inserted, "user \(u): \(i) twice") }
                // Dislikes are excluded everywhere.
                for i in mix.items {
                    #expect(!h.dislikedTracks.contains(i))
                    #expect(!h.dislikedArtists.contains(cat.trackArtist[Int(i)]))
                    #expect(!cat.flagged.contains(i))
                }
                // Familiar tracks are the user's listened tracks; new ones were never played or skipped.
                let familiar = mix.familiarItems, fresh = mix.newItems
                #expect(familiar.count >= 3)
                for i in familiar {
                    let p = try #require(h.position(of: i))
                    #expect(h.isFamiliar(at: p))
                }
                for i in fresh {
                    #expect(!h.hasPlayed(i))
                    #expect(cat.trackRelease[Int(i)] <= f.week.timestamp)
                }
                // The ratio: round(50 · 3/4) familiar at most, and a third as many new (a quarter of the mix).
                #expect(familiar.count <= 38)
                let expectedNew = min(50 - familiar.count, Int((Double(familiar.count) / 3).rounded()))
                #expect(fresh.count == expectedNew, "user \(u) mix \(k): \(familiar.count) familiar, \(fresh.count) new")
                if familiar.count == 38 {
                    fullMixes += 1
                    #expect(mix.items.count == 50)
                }
                // Interleaved: the new tracks are spread evenly, never more than one run apart.
                if !fresh.isEmpty {
                    var run = 0, longest = 0
                    for isF in mix.isFamiliar { run = isF ? run + 1 : 0; longest = max(longest, run) }
                    #expect(longest <= familiar.count / fresh.count + 2)
                }
                // The cover is one of the mix's familiar tracks; the name comes from the top artists.
                #expect(familiar.contains(mix.cover))
                #expect(!mix.topArtists.isEmpty && mix.topArtists.count <= 3)
                let names = mix.topArtists.map { cat.name(ofArtist: $0) }
                #expect(mix.name.hasPrefix(names[0]))
                for n in names { #expect(mix.name.contains(n)) }
                // The top artists are the heaviest of the mix's familiar tracks' cluster: the first is an artist of
                // the mix's familiar tracks.
                #expect(familiar.contains { cat.trackArtist[Int($0)] == mix.topArtists[0] })
            }
            // The shares are of the listening, largest first.
            let shares = m.mixes.map(\.share)
            #expect(shares == shares.sorted(by: >))
        }
        #expect(mixCount > f.histories.activeUsers.count)
        #expect(fullMixes > 0)
    }

    @Test func deterministicPerDayAndChangingDaily() throws {
        let f = try PlaylistFixture.get()
        let users = try f.users(withFamiliar: 30)
        #expect(users.count >= 20)
        let today = try Self.builder(f).buildAll(histories: f.histories, users: users, threads: 1)
        let again = try Self.builder(f).buildAll(histories: f.histories, users: users, threads: 2)
        #expect(today == again)
        let tomorrow = try Self.builder(f, day: f.week.adding(days: 1)).buildAll(histories: f.histories, users: users)
        var changed = 0
        for (a, b) in zip(today, tomorrow) {
            if a.mixes.map(\.items) != b.mixes.map(\.items) { changed += 1 }
            // The clusters (and so the names) are the user's, not the day's.
            #expect(a.mixes.map(\.name) == b.mixes.map(\.name))
        }
        #expect(changed >= users.count * 9 / 10)
    }

    @Test func clustersFollowTheTruthTastes() throws {
        let f = try PlaylistFixture.get()
        let all = try Self.builder(f).buildAll(histories: f.histories)
        let d = PlaylistEvaluation.tasteDominance(
            mixes: all, itemLabel: f.world.catalog.trackGenre,
            userTastes: { u in f.world.users.tastes(ofUser: u).map(\.genre) })
        // Each mix's familiar tracks are mostly of one genre, and that genre is one of the user's tastes.
        #expect(d.dominatedShare >= 0.85, "\(d)")
        #expect(d.meanPurity >= 0.8, "\(d)")
        // The number of mixes follows the breadth of the taste.
        let byTastes = Dictionary(uniqueKeysWithValues: d.mixesByTasteCount.map { ($0.tastes, $0.meanMixes) })
        #expect((byTastes[1] ?? 0) < (byTastes[3] ?? 0), "\(d.mixesByTasteCount)")
    }

    @Test func kMeansFindsPlantedClustersAndSilhouetteMatchesItsDefinition() {
        // Three tight groups around orthogonal axes in 8 dimensions.
        var rng = SplitMix64(seed: 11)
        var points = Matrix(rows: 60, cols: 8)
        for r in 0..<60 {
            for c in 0..<8 { points[r, c] = Float(rng.nextDouble() - 0.5) * 0.2 }
            points[r, r % 3] += 1
        }
        points = points.rowNormalized()
        let weights = (0..<60).map { Float(1 + $0 % 4) }
        let km = SphericalKMeans()
        let r = km.fit(points, weights: weights, k: 3, seed: 1)
        #expect(r.k == 3)
        for a in 0..<60 { for b in 0..<60 where a % 3 == b % 3 { #expect(r.assignment[a] == r.assignment[b]) } }
        #expect(Set(r.assignment).count == 3)
        #expect(r.clusterSizes.sorted() == [20, 20, 20])
        // The silhouette, from its definition, point by point.
        var cos = [Float](repeating: 0, count: 3600)
        for a in 0..<60 { for b in 0..<60 { cos[a * 60 + b] = (0..<8).reduce(0) { $0 + points[a, $1] * points[b, $1] } } }
        var num: Double = 0, den: Double = 0
        for i in 0..<60 {
            func mean(_ c: Int) -> Double {
                var s = 0.0, w = 0.0
                for j in 0..<60 where j != i && r.assignment[j] == c { s += Double(weights[j]) * Double(max(0, 1 - cos[i * 60 + j])); w += Double(weights[j]) }
                return s / w
            }
            let a = mean(r.assignment[i])
            let b = (0..<3).filter { $0 != r.assignment[i] }.map(mean).min()!
            num += Double(weights[i]) * (b - a) / max(a, b)
            den += Double(weights[i])
        }
        let s = SphericalKMeans.silhouette(cosines: cos, assignment: r.assignment, weights: weights, k: 3)
        #expect(abs(Double(s) - num / den) < 1e-4)
        #expect(s > 0.7)
        // Deterministic for a seed.
        #expect(km.fit(points, weights: weights, k: 3, seed: 1) == r)
    }

    @Test func oneTasteOneMixThreeTastesThreeMixes() throws {
        // An item space of three orthogonal groups; a user listening to one group, another to all three.
        var rng = SplitMix64(seed: 3)
        var vectors = Matrix(rows: 300, cols: 6)
        for r in 0..<300 {
            for c in 0..<6 { vectors[r, c] = Float(rng.nextGaussian() * 0.1) }
            vectors[r, r / 100] += 1
        }
        let env = try PlaylistEnvironment(
            catalog: .bare(itemCount: 300), space: ItemSpace(name: "planted", vectors: vectors))
        let day = try PlaylistDate("2026-11-16")
        let b = try DailyMix(environment: env, day: day)
        func history(_ items: [Int32]) throws -> UserHistory {
            try UserHistory(userKey: "u", user: nil, asOf: day.timestamp,
                            events: items.map { ListeningEvent(item: $0, timestamp: day.timestamp - Int64($0) * 600) })
        }
        let narrow = try b.build(for: history((Int32(0)..<40).map { $0 }))
        #expect(narrow.mixes.count == 1)
        var all: [Int32] = []
        for i in Int32(0)..<40 { all += [i, 100 + i, 200 + i] }
        let broad = try b.build(for: history(all))
        #expect(broad.mixes.count == 3)
        for mix in broad.mixes {
            // Each mix holds one group, familiar and new alike.
            #expect(Set(mix.items.map { $0 / 100 }).count == 1)
            // No artists: the name is the title.
            #expect(mix.name == mix.title)
        }
    }

    @Test func namesFromTopArtists() {
        #expect(DailyMix.name(artists: ["A"], more: false) == "A")
        #expect(DailyMix.name(artists: ["A", "B"], more: false) == "A and B")
        #expect(DailyMix.name(artists: ["A", "B", "C"], more: false) == "A, B and C")
        #expect(DailyMix.name(artists: ["A", "B", "C"], more: true) == "A, B, C and more")
        #expect(DailyMix.name(artists: [], more: false) == nil)
    }
}

import Foundation
import Testing
@testable import EncoreCore
@testable import EncoreFactorization
@testable import EncorePlaylists

/// The content sources of Discover Weekly ("similar-audio", "new-for-you"), the cap on new tracks' places, and
/// "Because you played" for a seed without a CF vector, against brute-force answers on the tiny world.
@Suite("Playlists from content spaces")
struct PlaylistContentTests {
    /// A made-up audio space over the fixture's items: the CF factors seen through a fixed random projection plus
    /// noise (related to taste, not equal to it), with every 10th item left without audio.
    static func audioVectors(_ f: PlaylistFixture, dims: Int = 12, seed: UInt64 = 7, skip: (Int) -> Bool = { $0 % 10 == 3 }) -> Matrix {
        var rng = SplitMix64(seed: seed)
        let y = f.model.itemFactors
        var proj = Matrix(rows: y.cols, cols: dims)
        for r in 0..<y.cols { for c in 0..<dims { proj[r, c] = Float(rng.nextGaussian()) } }
        var out = Matrix(rows: y.rows, cols: dims)
        for i in 0..<y.rows where !skip(i) {
            for c in 0..<dims {
                var s: Float = 0
                for k in 0..<y.cols { s += y[i, k] * proj[k, c] }
                out[i, c] = s + Float(rng.nextGaussian()) * 0.3
            }
        }
        return out
    }

    /// `items` with their scores, best first, ties by the lower item.
    static func ranked(_ items: [Int32], _ score: (Int32) -> Double) -> [(item: Int32, score: Double)] {
        var out: [(item: Int32, score: Double)] = items.map { (item: $0, score: score($0)) }
        out.sort { a, b in a.score != b.score ? a.score > b.score : a.item < b.item }
        return out
    }

    static func cosine(_ m: Matrix, _ a: Int, _ b: Int) -> Double {
        var d = 0.0, na = 0.0, nb = 0.0
        for c in 0..<m.cols {
            let x = Double(m[a, c]), y = Double(m[b, c])
            d += x * y; na += x * x; nb += y * y
        }
        return na > 0 && nb > 0 ? d / (na * nb).squareRoot() : 0
    }

    /// Every 8th track is "cold"; its predicted vector is its CF vector with noise.
    static func cold(_ f: PlaylistFixture) -> (IDBitset, Matrix) {
        var rng = SplitMix64(seed: 19)
        var bits = IDBitset(capacity: f.catalog.itemCount)
        for i in stride(from: 5, to: f.catalog.itemCount, by: 8) { bits.insert(Int32(i)) }
        var predicted = f.model.itemFactors
        for i in 0..<predicted.rows { for c in 0..<predicted.cols { predicted[i, c] += Float(rng.nextGaussian()) * 0.05 } }
        return (bits, predicted)
    }

    @Test func similarAudioIsTheHeavyRotationsAudioNeighborsByBruteForce() throws {
        let f = try PlaylistFixture.get()
        let vectors = Self.audioVectors(f)
        let audio = try ItemSpace(name: "audio", vectors: vectors)
        let c = try DiscoverWeekly.Configuration.standard(
            histories: f.histories, model: f.model, catalog: f.catalog, content: .init(audio: audio))
        let names = c.sources.map(\.source.name)
        #expect(names.contains("similar-audio"))
        #expect(names.last == "popular")
        let b = try DiscoverWeekly(environment: f.environment, configuration: c, week: f.week)
        let source = try #require(c.sources.first { $0.source.name == "similar-audio" })
        var checked = 0, fromAudio = 0
        for u in f.histories.activeUsers.prefix(60) {
            let h = try f.histories.history(of: u)
            let ctx = try b.context(for: h)
            let got = try source.source.candidates(for: ctx, limit: 100)
            // Brute force: the 10 heaviest familiar tracks with audio (recency, ties by position order of the
            // history's own ranking), each proposing its 30 nearest allowed tracks by audio cosine, weighted by its
            // recency relative to the heaviest.
            let seeds = h.positionsByRecency(limit: 10) { p in
                h.isFamiliar(at: p) && audio.hasVector.contains(h.items[p]) && !h.dislikes(h.items[p], catalog: f.catalog)
            }
            guard let first = seeds.first else { #expect(got.isEmpty); continue }
            let useRecency = h.recency[first] > 0
            let top = useRecency ? h.recency[first] : h.plays[first]
            var expected: [Int32: Double] = [:]
            for p in seeds {
                let s = Int(h.items[p])
                let w = Double((useRecency ? h.recency[p] : h.plays[p]) / top)
                let allowed: [Int32] = (0..<Int32(f.catalog.itemCount)).filter { (i: Int32) -> Bool in
                    Int(i) != s && ctx.allows(i) && audio.hasVector.contains(i)
                }
                let near = Self.ranked(allowed) { Self.cosine(vectors, s, Int($0)) }.prefix(30)
                for (i, cs) in near where cs > 0 { expected[i, default: 0] += w * cs }
            }
            let best = expected.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.prefix(100)
            #expect(got.count == best.count)
            for (g, e) in zip(got, best) {
                #expect(g.source == "similar-audio")
                #expect(abs(Double(g.score) - e.value) < 1e-3, "user \(u): \(g) against \(e)")
            }
            // Same set up to float ties at the cut.
            let common = Set(got.map(\.item)).intersection(best.map(\.key)).count
            #expect(common >= best.count - 2, "user \(u)")
            checked += 1
            // The playlist names the source on the tracks it suggested, with its explanation.
            let playlist = try b.build(for: h)
            for t in playlist.tracks where playlist.sources(of: t).contains("similar-audio") {
                fromAudio += 1
                #expect(playlist.explanation(of: t).contains("songs with similar audio"))
            }
        }
        #expect(checked >= 50)
        #expect(fromAudio > 0)
    }

    @Test func newForYouScoresColdTracksByPredictedVectors() throws {
        let f = try PlaylistFixture.get()
        let (cold, predicted) = Self.cold(f)
        let source = try PredictedVectorCandidates(cold: cold, predicted: predicted)
        #expect(source.name == "new-for-you")
        let b = try PlaylistDiscoverWeeklyTests.builder(f)
        var nonEmpty = 0
        for u in f.histories.activeUsers.prefix(60) {
            let h = try f.histories.history(of: u)
            let ctx = try b.context(for: h)
            let x = try #require(ctx.userVector)
            let got = try source.candidates(for: ctx, limit: 25)
            // Brute force: every allowed cold track, scored x · ŷ in double precision, positive, best first.
            let allowed: [Int32] = (0..<Int32(f.catalog.itemCount)).filter { (i: Int32) -> Bool in cold.contains(i) && ctx.allows(i) }
            let expected = Self.ranked(allowed) { (i: Int32) -> Double in
                var dot = 0.0
                for c in 0..<x.count { dot += Double(x[c]) * Double(predicted[Int(i), c]) }
                return dot
            }.filter { $0.score > 0 }.prefix(25)
            #expect(got.map { $0.item } == expected.map { $0.item }, "user \(u)")
            for (g, e) in zip(got, expected) { #expect(abs(Double(g.score) - e.score) < 1e-4) }
            #expect(got.allSatisfy { cold.contains($0.item) && !h.hasPlayed($0.item) && $0.source == "new-for-you" })
            if !got.isEmpty { nonEmpty += 1 }
        }
        #expect(nonEmpty >= 50)
        // The item list and full-matrix initializers agree.
        let items = (0..<Int32(f.catalog.itemCount)).filter { cold.contains($0) }.reversed()
        var rows = Matrix(rows: items.count, cols: predicted.cols)
        for (r, i) in items.enumerated() { rows.setRow(r, predicted.row(Int(i))) }
        let listed = try PredictedVectorCandidates(items: Array(items), vectors: rows)
        let ctx = try b.context(for: f.histories.history(of: f.histories.activeUsers[0]))
        #expect(try listed.candidates(for: ctx, limit: 10) == source.candidates(for: ctx, limit: 10))
    }

    @Test func newForYouLeavesOutColdTracksWithALearnedVector() throws {
        let f = try PlaylistFixture.get()
        let (cold, predicted) = Self.cold(f)
        let coldItems = (0..<Int32(f.catalog.itemCount)).filter { cold.contains($0) }
        // Every other cold track has a learned row; the rest are all zeros, as for a track no one played.
        var learned = Matrix(rows: f.catalog.itemCount, cols: predicted.cols)
        let warmed = Set(coldItems.enumerated().filter { $0.offset % 2 == 0 }.map(\.element))
        for i in warmed { learned[Int(i), 1] = -0.25 }
        let all = try PredictedVectorCandidates(cold: cold, predicted: predicted)
        let some = try PredictedVectorCandidates(cold: cold, predicted: predicted, learned: learned)
        #expect(warmed.count >= 10)
        #expect(some.items == coldItems.filter { !warmed.contains($0) })
        let b = try PlaylistDiscoverWeeklyTests.builder(f)
        for u in f.histories.activeUsers.prefix(30) {
            let ctx = try b.context(for: f.histories.history(of: u))
            // The full source's ranking with the warmed tracks struck out, cut at the limit.
            let expected = try all.candidates(for: ctx, limit: coldItems.count).filter { !warmed.contains($0.item) }.prefix(12)
            let got = try some.candidates(for: ctx, limit: 12)
            // Same tracks in the same order; the scores agree to rounding (one gemv over fewer rows).
            #expect(got.map(\.item) == expected.map(\.item), "user \(u)")
            for (g, e) in zip(got, expected) { #expect(abs(g.score - e.score) <= 1e-5 * max(1, abs(e.score))) }
        }
    }

    /// The fixture with the cold tracks' CF vectors zeroed and left out of the CF space (as the weekly job gives
    /// tracks no one has played), and their predictions.
    static func withoutColdVectors(_ f: PlaylistFixture) throws -> (env: PlaylistEnvironment, model: ImplicitALS, cold: IDBitset, predicted: Matrix) {
        let (cold, predicted) = Self.cold(f)
        var model = f.model
        var y = model.itemFactors
        var valid = IDBitset(capacity: f.catalog.itemCount)
        for i in 0..<y.rows {
            if cold.contains(Int32(i)) { for c in 0..<y.cols { y[i, c] = 0 } } else { valid.insert(Int32(i)) }
        }
        model.itemFactors = y
        let env = try PlaylistEnvironment(
            catalog: f.catalog, space: try ItemSpace(name: "cf", vectors: y, validItems: valid), model: model)
        return (env, model, cold, predicted)
    }

    @Test func newTrackShareIsACapOnPlacesTakenFromTheLeastRelevantTracks() throws {
        let f = try PlaylistFixture.get()
        let (env, model, cold, predicted) = try Self.withoutColdVectors(f)
        func builder(share: Float) throws -> DiscoverWeekly {
            let content = DiscoverWeekly.Content(
                audio: try ItemSpace(name: "audio", vectors: Self.audioVectors(f)), coldItems: cold,
                predictedVectors: predicted, newTrackShare: share)
            var c = try DiscoverWeekly.Configuration.standard(
                histories: f.histories, model: model, catalog: f.catalog, content: content)
            #expect(c.newTrackShare == share)
            c.exploration = 0  // the list's order is then its relevance, which the test can see
            return try DiscoverWeekly(environment: env, configuration: c, week: f.week)
        }
        let capped = try builder(share: 0.2), plain = try builder(share: 0)
        #expect(capped.configuration.reservedNewTracks == 6)
        var placed = 0, users = 0
        for u in f.histories.activeUsers.prefix(120) {
            let h = try f.histories.history(of: u)
            let p = try capped.build(for: h)
            PlaylistDiscoverWeeklyTests.checkRules(p, history: h, fixture: f)
            let q = try plain.build(for: h)
            PlaylistDiscoverWeeklyTests.checkRules(q, history: h, fixture: f)
            let x = try #require(try capped.context(for: h).userVector)
            func dot(_ m: Matrix, _ i: Int32) -> Float { zip(x, m.row(Int(i))).reduce(0) { $0 + $1.0 * $1.1 } }
            // Without a calibration a new track's score is its predicted score, a listed track's its learned one.
            let newcomers = Set(p.items).subtracting(q.items)
            let displaced = Set(q.items).subtracting(p.items)
            #expect(newcomers.count == displaced.count)
            #expect(newcomers.count <= 6, "user \(u): \(newcomers.count) places taken")
            for t in p.tracks where newcomers.contains(t.item) {
                #expect(cold.contains(t.item) && p.sources(of: t) == ["new-for-you"])
                #expect(p.explanation(of: t).contains("new releases that sound like your taste"))
            }
            // The displaced tracks are the list's least relevant, and the j-th best newcomer beats the j-th least
            // relevant track.
            let relevance = Dictionary(uniqueKeysWithValues: q.tracks.map { ($0.item, $0.relevance) })
            let kept = Set(q.items).intersection(p.items)
            if let leastKept = kept.compactMap({ relevance[$0] }).min(), let mostGone = displaced.compactMap({ relevance[$0] }).max() {
                #expect(mostGone <= leastKept, "user \(u)")
            }
            let gone = displaced.sorted { relevance[$0]! < relevance[$1]! }
            let came = newcomers.sorted { dot(predicted, $0) > dot(predicted, $1) }
            for (c, d) in zip(came, gone) {
                #expect(dot(predicted, c) > dot(model.itemFactors, d), "user \(u): \(c) took the place of \(d)")
            }
            placed += newcomers.count
            users += 1
        }
        // The predictions are the cold tracks' old CF vectors with noise, so they win some places, never more than
        // the cap.
        #expect(placed > 0)
        #expect(placed <= 6 * users)
    }

    @Test func coldTracksWithoutCFVectorsReachPlaylistsThroughTheirPredictedVectors() throws {
        // The weekly job gives tracks without plays zero CF rows: zero the cold tracks' factors, leave them out of
        // the CF space, and give the hybrid model's prediction (their old factors with noise) to new-for-you.
        let f = try PlaylistFixture.get()
        let (env, model, cold, predicted) = try Self.withoutColdVectors(f)
        func playlists(_ content: DiscoverWeekly.Content?) throws -> [DiscoverWeekly.Playlist] {
            let c = try DiscoverWeekly.Configuration.standard(
                histories: f.histories, model: model, catalog: f.catalog, content: content)
            let b = try DiscoverWeekly(environment: env, configuration: c, week: f.week)
            return try b.buildAll(histories: f.histories, users: Array(f.histories.activeUsers.prefix(80)))
        }
        let with = try playlists(.init(coldItems: cold, predictedVectors: predicted, newTrackShare: 0.2))
        let without = try playlists(nil)
        func coldCount(_ ps: [DiscoverWeekly.Playlist]) -> Int { ps.reduce(0) { $0 + $1.items.filter { cold.contains($0) }.count } }
        // The share is a cap: the content adds only the new-track source, so the lists are the ones without content
        // but for at most 6 places, taken by cold tracks (other sources, catalog ones, may list cold tracks too).
        for (p, q) in zip(with, without) {
            let added = Set(p.items).subtracting(q.items)
            #expect(added.count <= 6 && added.allSatisfy { cold.contains($0) }, "\(p.userKey): \(added.sorted())")
        }
        #expect(coldCount(with) > 2 * coldCount(without), "\(coldCount(with)) cold tracks with content, \(coldCount(without)) without")
        for (p, u) in zip(with, f.histories.activeUsers.prefix(80)) {
            PlaylistDiscoverWeeklyTests.checkRules(p, history: try f.histories.history(of: u), fixture: f)
        }
    }

    @Test func contentConfigurationErrorsNameTheField() throws {
        let f = try PlaylistFixture.get()
        let (cold, predicted) = Self.cold(f)
        func message(_ body: () throws -> Void) -> String {
            do { try body(); return "no error" } catch { return "\(error)" }
        }
        let standard = { (content: DiscoverWeekly.Content) throws -> Void in
            _ = try DiscoverWeekly.Configuration.standard(histories: f.histories, model: f.model, content: content)
        }
        #expect(message { try standard(.init(coldItems: cold, predictedVectors: predicted, newTrackShare: 1.5)) }
                == "invalid parameter 'newTrackShare' = 1.5: expected a share in [0, 1]")
        #expect(message { try standard(.init(coldItems: cold)) }
                == "invalid parameter 'content.predictedVectors' = nil: expected a predicted CF vector per item for the cold tracks")
        #expect(message { try standard(.init(predictedVectors: predicted)) }
                == "invalid parameter 'content.coldItems' = nil: expected the cold tracks whose predicted vectors are given")
        #expect(message { try standard(.init(coldItems: cold, predictedVectors: Matrix(rows: 10, cols: predicted.cols))) }
                == "shape mismatch: 10 predicted vectors for 800 items")
        #expect(message { try standard(.init(coldItems: cold, predictedVectors: Matrix(rows: 800, cols: 3))) }
                == "shape mismatch: predicted vectors of 3 values, the model has 24 factors")
        #expect(message { try standard(.init(audio: try ItemSpace(name: "audio", vectors: Matrix(rows: 5, cols: 3)))) }
                == "shape mismatch: the content space 'audio' has 5 items, the catalog 800")
        #expect(message { try standard(.init(spaceWeight: .nan)) }
                == "invalid parameter 'content.spaceWeight' = nan: expected a finite weight >= 0")
        #expect(message { try standard(.init(newLimit: 0)) }
                == "invalid parameter 'content.newLimit' = 0: expected >= 1")
        // A share reserved for sources that are not configured.
        #expect(message {
            var c = try f.discoverWeeklyConfiguration()
            c.newTrackShare = 0.2
            _ = try DiscoverWeekly(environment: f.environment, configuration: c, week: f.week)
        }.hasPrefix("invalid parameter 'newTrackSources' = new-for-you: expected the name of a configured source (user-vector, "))
        #expect(message { _ = try PredictedVectorCandidates(items: [1, 2], vectors: Matrix(rows: 3, cols: 2)) }
                == "shape mismatch: 2 cold items but 3 predicted vectors")
        #expect(message { _ = try PredictedVectorCandidates(items: [4, 4], vectors: Matrix(rows: 2, cols: 2)) }
                == "invalid parameter 'items[1]' = 4: expected distinct cold items")
        #expect(message {
            _ = try PredictedVectorCandidates(items: [1], vectors: try Matrix(rows: 1, cols: 2, storage: [1, .infinity]))
        } == "invalid parameter 'predicted vector of item 1' = inf: expected finite values")
        #expect(message {
            _ = try ColdTracks.select(histories: f.histories, catalog: f.catalog, maxListeners: -1, referenceTime: 0)
        } == "invalid parameter 'maxListeners' = -1: expected >= 0")
    }

    @Test func coldTracksAreTheFewListenedAndTheRecent() throws {
        let f = try PlaylistFixture.get()
        let at = f.week.timestamp
        let cold = try ColdTracks.select(
            histories: f.histories, catalog: f.catalog, maxListeners: 1, releasedWithinDays: 14, referenceTime: at)
        var listeners = [Int](repeating: 0, count: f.catalog.itemCount)
        for u in 0..<Int32(f.histories.userCount) {
            for (i, p) in zip(f.histories.items(of: u), f.histories.plays(of: u)) where p > 0 { listeners[Int(i)] += 1 }
        }
        var count = 0
        for i in 0..<f.catalog.itemCount {
            let r = f.catalog.trackRelease[i]
            let expected = r <= at && (listeners[i] <= 1 || r >= at - 14 * 86_400)
            #expect(cold.contains(Int32(i)) == expected, "item \(i)")
            if expected { count += 1 }
        }
        #expect(count > 0 && count < f.catalog.itemCount)
    }

    /// The fixture's model with the CF space missing every 7th track (no CF history), and audio and text spaces.
    static func coldSeedEnvironment(_ f: PlaylistFixture) throws -> (PlaylistEnvironment, ItemSpace, ItemSpace, Matrix, Matrix) {
        var valid = IDBitset(capacity: f.catalog.itemCount)
        for i in 0..<f.catalog.itemCount where i % 7 != 0 { valid.insert(Int32(i)) }
        let cf = try ItemSpace(name: "cf", vectors: f.model.itemFactors, validItems: valid)
        let env = try PlaylistEnvironment(catalog: f.catalog, space: cf, model: f.model)
        let audioVectors = Self.audioVectors(f)
        let textVectors = Self.audioVectors(f, dims: 6, seed: 99, skip: { _ in false })
        return (env, try ItemSpace(name: "audio", vectors: audioVectors), try ItemSpace(name: "text", vectors: textVectors),
                audioVectors, textVectors)
    }

    @Test func becauseYouPlayedATrackWithoutCFHistoryUsesAudioNeighbors() throws {
        let f = try PlaylistFixture.get()
        let (env, audio, text, audioVectors, textVectors) = try Self.coldSeedEnvironment(f)
        let byp = try BecauseYouPlayed(environment: env, referenceTime: f.week.timestamp, contentSpaces: [audio, text])
        let unavailable = PlaylistRules().unavailableItems(in: f.catalog, at: f.week.timestamp)
        func expected(_ h: UserHistory, _ seed: Int32, _ m: Matrix, _ space: ItemSpace) -> [Int32] {
            // The 50 nearest allowed tracks by cosine, then the first 10 under the artist and album caps.
            let allowed: [Int32] = (0..<Int32(f.catalog.itemCount)).filter { (i: Int32) -> Bool in
                i != seed && space.hasVector.contains(i) && !h.hasPlayed(i) && !h.dislikes(i, catalog: f.catalog)
                    && !unavailable.contains(i)
            }
            let pool = Self.ranked(allowed) { Self.cosine(m, Int(seed), Int($0)) }.prefix(50)
            var caps = CapCounter(rules: PlaylistRules())
            var out: [Int32] = []
            for (i, _) in pool where out.count < 10 && caps.admits(i, catalog: f.catalog) {
                caps.add(i, catalog: f.catalog); out.append(i)
            }
            return out
        }
        var audioRows = 0, textRows = 0, cfRows = 0
        for u in f.histories.activeUsers.prefix(80) {
            let h = try f.histories.history(of: u)
            for seed in h.items.prefix(6) {
                let row = try byp.row(for: h, seed: seed)
                if env.space.hasVector.contains(seed) {
                    #expect(row.space == "cf")
                    #expect(row.items.allSatisfy { $0.space == "cf" })
                    cfRows += 1
                } else if audio.hasVector.contains(seed) {
                    #expect(row.space == "audio")
                    #expect(row.items.allSatisfy { $0.space == "audio" && $0.seedContribution == nil })
                    let want = expected(h, seed, audioVectors, audio)
                    #expect(row.items.map(\.item) == want, "user \(u) seed \(seed)")
                    for it in row.items {
                        #expect(abs(Double(it.similarity) - Self.cosine(audioVectors, Int(seed), Int(it.item))) < 1e-4)
                    }
                    audioRows += 1
                } else {
                    // No CF vector and no audio: the text space.
                    #expect(row.space == "text")
                    #expect(row.items.map(\.item) == expected(h, seed, textVectors, text), "user \(u) seed \(seed)")
                    textRows += 1
                }
            }
        }
        #expect(audioRows >= 10 && cfRows >= 100)
        // Without content spaces such a seed has an empty row.
        let plain = try BecauseYouPlayed(environment: env, referenceTime: f.week.timestamp)
        let u = f.histories.activeUsers[0]
        let h = try f.histories.history(of: u)
        let coldSeed = Int32(7)
        #expect(try plain.row(for: h, seed: coldSeed).items.isEmpty)
        #expect(try byp.row(for: h, seed: coldSeed).items.count == 10)
        // A seed with neither a CF nor an audio vector (63): its text neighbors.
        let textRow = try byp.row(for: h, seed: 63)
        #expect(textRow.space == "text")
        #expect(textRow.items.map(\.item) == expected(h, 63, textVectors, text))
        #expect(textRow.items.allSatisfy { $0.space == "text" })
        _ = textRows
        do {
            _ = try BecauseYouPlayed(environment: env, referenceTime: 0,
                                     contentSpaces: [try ItemSpace(name: "text", vectors: Matrix(rows: 3, cols: 2))])
            Issue.record("no error")
        } catch {
            #expect("\(error)" == "shape mismatch: the content space 'text' has 3 items, the catalog 800")
        }
    }
}

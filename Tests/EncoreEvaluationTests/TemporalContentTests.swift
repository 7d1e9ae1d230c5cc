import Foundation
import Testing
@testable import EncoreCore
@testable import EncoreData
@testable import EncoreFactorization
@testable import EncorePlaylists
@testable import EncoreEvaluation
@testable import EncoreText

/// The temporal evaluation with content on a constructed log: two tastes, warm tracks played in four training weeks,
/// and new releases (by new artists, released before the test week, never played before it) whose text and audio
/// match one taste. Without content no source can suggest a new release (no CF vector, an artist nobody plays, no
/// genres in the catalog, no listeners for popularity), so cf-only's new-release hits are 0 by construction.
@Suite("Temporal evaluation with content")
struct TemporalContentTests {
    static let week = PlaylistDate(dayNumber: 19_877)  // 2024-06-03, a Monday
    // Enough warm tracks of each taste (175 unplayed per user) that every user has more candidates with a positive
    // score than Discover Weekly's pool holds (150): a track without a vector (score 0) never enters it.
    static let warmPerArtist = 5, artistsPerTaste = 40, newPerTaste = 4, usersPerTaste = 80, playedPerUser = 25

    struct World {
        var plays: Interactions
        var catalog: TrackCatalog
        var texts: TextCorpus
        var audio: ColdItemsContent
        /// The new releases the users first played in the test week (hand-counted pairs).
        var newPairs: Int
        var testPairs: Int
    }

    /// The log: each user plays 25 of their taste's 200 warm tracks in the four weeks before the test week, then two
    /// more warm tracks and two of the taste's four new releases (each by its own new artist) in the test week.
    static func world() throws -> World {
        var users = IDMap(), items = IDMap()
        var u: [Int32] = [], it: [Int32] = [], w: [Float] = [], ts: [Int64] = []
        let tastes = ["rock", "dance"]
        let words = ["rock": "guitar riff loud drums amplifier distortion", "dance": "synth beat club bass groove tempo"]
        var artistIDs = IDMap()
        var trackArtist: [Int32] = [], trackRelease: [Int64] = []
        var warm: [[Int32]] = [[], []], fresh: [[Int32]] = [[], []]
        var docIDs: [String] = [], docs: [String] = []
        var audioIDs: [String] = [], audioRows: [Float] = []
        var rng = SplitMix64(seed: 11)
        let filler = ["night", "summer", "road", "heart", "light", "city", "rain", "fire"]
        func addTrack(_ id: String, taste: Int, artist: String, release: Int64) -> Int32 {
            let i = items.intern(id)
            trackArtist.append(artistIDs.intern(artist))
            trackRelease.append(release)
            let extra = (0..<3).map { _ in filler[Int(rng.next() % UInt64(filler.count))] }.joined(separator: " ")
            docIDs.append(id); docs.append("\(words[tastes[taste]]!) \(extra)")
            audioIDs.append(id)
            audioRows += [taste == 0 ? 1 : 0, taste == 1 ? 1 : 0, 0.3 * rng.nextFloat(), 0.3 * rng.nextFloat()]
            return i
        }
        let old = week.timestamp - 400 * Timestamp.secondsPerDay
        for t in 0..<2 {
            for a in 0..<artistsPerTaste {
                for k in 0..<warmPerArtist {
                    warm[t].append(addTrack("w\(t)-\(a)-\(k)", taste: t, artist: "a\(t)-\(a)", release: old))
                }
            }
        }
        // New releases: released three days before the test week, each by an artist with no other track.
        for t in 0..<2 {
            for k in 0..<newPerTaste {
                fresh[t].append(addTrack("n\(t)-\(k)", taste: t, artist: "new\(t)-\(k)", release: week.timestamp - 3 * Timestamp.secondsPerDay))
            }
        }
        var newPairs = 0, testPairs = 0
        for t in 0..<2 {
            for k in 0..<usersPerTaste {
                let user = users.intern("u\(t)-\(k)")
                var pool = warm[t]
                for j in 0..<pool.count { pool.swapAt(j, j + Int(rng.next() % UInt64(pool.count - j))) }
                for (j, i) in pool.prefix(playedPerUser).enumerated() {
                    for p in 0..<(1 + j % 3) {
                        u.append(user); it.append(i); w.append(1)
                        ts.append(week.timestamp - Int64(28 - j) * Timestamp.secondsPerDay + Int64(p * 200 + k))
                    }
                }
                var test = Array(pool[playedPerUser..<(playedPerUser + 2)])
                let a = Int(rng.next() % UInt64(newPerTaste))
                test += [fresh[t][a], fresh[t][(a + 1) % newPerTaste]]
                for (j, i) in test.enumerated() {
                    u.append(user); it.append(i); w.append(1)
                    ts.append(week.timestamp + Int64(j + 1) * Timestamp.secondsPerDay + Int64(k))
                }
                newPairs += 2
                testPairs += test.count
            }
        }
        let plays = try Interactions(userIDs: users, itemIDs: items, users: u, items: it, weights: w, timestamps: ts)
        let catalog = try TrackCatalog(
            itemCount: items.count, trackArtist: trackArtist, trackRelease: trackRelease, artistIDs: artistIDs)
        let audio = ColdItemsContent(
            name: "audio", source: "constructed embeddings", ids: audioIDs,
            vectors: try Matrix(rows: audioIDs.count, cols: 4, storage: audioRows))
        return World(
            plays: plays, catalog: catalog, texts: TextCorpus(ids: docIDs, texts: docs, kinds: []), audio: audio,
            newPairs: newPairs, testPairs: testPairs)
    }

    static func options() -> TemporalContentOptions {
        var o = TemporalContentOptions(
            als: ALSParameters(factors: 8, regularization: 0.1, iterations: 10, seed: 3, threads: 1), threads: 2)
        o.text.dimensions = 6
        o.sequence.minCount = 1
        return o
    }

    @Test("content puts new releases in Discover Weekly; without it none can get there")
    func contentFindsNewReleases() throws {
        let w = try Self.world()
        let report = try PlaylistEvaluation.temporalContent(
            plays: w.plays, catalog: w.catalog,
            content: TemporalContentInputs(texts: w.texts, spaces: [w.audio], sequenceVectors: true), options: Self.options())
        print(report.table())
        for r in report.rows { print(r.variant, r.newTrackSources) }
        #expect(report.week == "2024-06-03")
        #expect(report.users == 2 * Self.usersPerTaste)
        #expect(report.testPairs == w.testPairs)
        #expect(report.newReleasePairs == w.newPairs)
        #expect(report.newReleasePairsReleased == w.newPairs)
        #expect(report.newReleaseTracks == 2 * Self.newPerTaste)
        #expect(report.rows.map(\.variant) == ["cf-only", "+artist", "+audio", "+text", "+sequence", "all"])
        let cf = try #require(report.row("cf-only"))
        #expect(cf.newReleaseHits == 0)
        #expect(cf.newTrackSlots == 0)
        #expect(cf.newForYouSlots == 0)
        #expect(cf.weights == nil)
        #expect(cf.overall.meanLength == 30)
        // New releases have no sequence vector (no training session) and an artist with no warm track: those
        // sources alone cannot place them.
        #expect(try #require(report.row("+sequence")).newReleaseHits == 0)
        #expect(try #require(report.row("+artist")).newReleaseHits == 0)
        for name in ["+text", "+audio", "all"] {
            let r = try #require(report.row(name))
            #expect(r.newReleasesWithVector == 2 * Self.newPerTaste, "\(name)")
            // Each user played two of their taste's four new releases; the taste's direction puts them first among
            // the new tracks. Under the cap a new release takes a place only from a listed track it beats, so
            // content finds some (none without it), the places they take are hits far more often than the average
            // collaborative place, and the overall rate rises.
            #expect(r.newReleaseHits > 0, "\(name)")
            let newPlaces = r.newTrackSlots * Double(report.users * 30)
            #expect(Double(r.newReleaseHits) / newPlaces > 2 * cf.overall.share, "\(name): \(r.newReleaseHits) hits in \(newPlaces) places")
            #expect(r.overall.hits > cf.overall.hits, "\(name)")
            #expect(r.newTrackSlots <= 0.2, "\(name)")
            #expect(r.newReleaseHitRate == Double(r.newReleaseHits) / Double(report.users * 30))
            #expect(r.newForYouSlots > 0)
            #expect(r.newTrackSlots >= Double(r.newReleaseHits) / Double(report.users * 30))
            // Per source: only new-for-you can list a new release here, so its hits hold every new-release hit; its
            // places are the new-for-you share; every hit of the row is some source's.
            #expect((r.sourceHits["new-for-you"] ?? 0) >= r.newReleaseHits, "\(name)")
            #expect(Double(r.sourceSlots["new-for-you"] ?? 0) == r.newForYouSlots * Double(report.users * 30), "\(name)")
            #expect(r.sourceHits.values.reduce(0, +) >= r.overall.hits, "\(name)")
            #expect(r.sourceHits.allSatisfy { $0.value <= r.sourceSlots[$0.key] ?? 0 }, "\(name)")
        }
        // Without content the sources' places fill the lists (each place has at least one source).
        #expect(cf.sourceSlots["new-for-you"] == nil)
        #expect(cf.sourceSlots.values.reduce(0, +) >= report.users * 30)
        let all = try #require(report.row("all"))
        let weights = try #require(all.weights)
        #expect(Set(weights.keys).isSuperset(of: ["artist", "audio", "text"]))
        let dict = report.asDictionary()
        #expect((dict["rows"] as? [[String: Any]])?.count == 6)
        #expect(dict["new_release_pairs"] as? Int == w.newPairs)
    }

    @Test("without audio embeddings there is no audio row; the weekly job's two variants")
    func variants() throws {
        let w = try Self.world()
        let report = try PlaylistEvaluation.temporalContent(
            plays: w.plays, catalog: w.catalog, content: TemporalContentInputs(texts: w.texts, sequenceVectors: false),
            options: Self.options())
        #expect(report.rows.map(\.variant) == ["cf-only", "+artist", "+text", "all"])
        var o = Self.options()
        o.variants = [.cfOnly, TemporalContentVariant(name: "job", spaces: ["audio"], artistPrior: false, coldStart: false)]
        let audioOnly = try PlaylistEvaluation.temporalContent(
            plays: w.plays, catalog: w.catalog, content: TemporalContentInputs(spaces: [w.audio], sequenceVectors: false),
            options: o)
        // Without the cold-start model only `similar-audio` is added: it draws from the audio space's neighbours of
        // played tracks, never the new-for-you source.
        let job = try #require(audioOnly.row("job"))
        #expect(job.newForYouSlots == 0)
        #expect(job.note == "no cold-start model")
    }

    @Test("bad inputs give clear errors")
    func errors() throws {
        let w = try Self.world()
        var o = Self.options()
        o.variants = [TemporalContentVariant(name: "+audio", spaces: ["audio"], artistPrior: false)]
        #expect(throws: EvaluationError.invalidParameter(name: "variant +audio", value: "audio", expected: "a content space given (text)")) {
            try PlaylistEvaluation.temporalContent(
                plays: w.plays, catalog: w.catalog, content: TemporalContentInputs(texts: w.texts, sequenceVectors: false),
                options: o)
        }
        o = Self.options()
        o.listLength = 0
        #expect(throws: EvaluationError.invalidParameter(name: "k", value: "0", expected: "a Discover Weekly length in 1...150")) {
            try PlaylistEvaluation.temporalContent(plays: w.plays, catalog: w.catalog, content: TemporalContentInputs(), options: o)
        }
        #expect(throws: EvaluationError.shapeMismatch("the catalog has 3 tracks, the play log \(w.plays.itemIDs.count)")) {
            try PlaylistEvaluation.temporalContent(
                plays: w.plays, catalog: .bare(itemCount: 3), content: TemporalContentInputs(), options: Self.options())
        }
        let foreign = ColdItemsContent(name: "audio", source: "E.h5", ids: ["x"], vectors: Matrix(rows: 1, cols: 2))
        #expect(throws: EvaluationError.contentMismatch(source: "E.h5", reason: "none of its 1 ids ('x') is a track of the play log")) {
            try PlaylistEvaluation.temporalContent(
                plays: w.plays, catalog: w.catalog, content: TemporalContentInputs(spaces: [foreign]), options: Self.options())
        }
    }
}

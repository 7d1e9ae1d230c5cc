import Foundation
import Testing
@testable import EncoreCore
@testable import EncoreFactorization
@testable import EncorePlaylists

/// The new-track share as a cap: new tracks take places only from listed tracks whose score they beat on the learned
/// scale, on hand-built catalogs where every score and expected score is known.
@Suite("Discover Weekly: new tracks under a calibrated cap")
struct NewTrackCapTests {
    static let week = PlaylistDate(dayNumber: 19_877)  // a Monday
    /// 20 warm tracks (learned score `20 - i` for the user) and 10 new ones (no learned vector).
    static let warm = 20, items = 30

    /// The warm tracks' learned vectors `(20 - i, 0)`; the new ones are zero.
    static func learned() -> Matrix {
        var m = Matrix(rows: items, cols: 2)
        for i in 0..<warm { m[i, 0] = Float(warm - i) }
        return m
    }

    /// References: the warm tracks, their predicted vectors half their learned ones (a prediction shrinks toward the
    /// mean). Learned reference scores are 1...20, predicted ones 0.5...10: the line is `2 · x·ŷ`.
    static func calibration() throws -> NewTrackCalibration {
        var p = learned()
        for i in 0..<warm { p[i, 0] *= 0.5 }
        return try NewTrackCalibration.reference(learned: learned(), predicted: p, items: (0..<Int32(warm)).map { $0 })
    }

    /// A builder of 5-track lists from the user-vector source (exact scan) and `new-for-you` over items 20...29 with
    /// the predicted scores `predicted` (item 20 first), pure relevance, no perturbation, no prior.
    static func builder(
        predicted: [Float], share: Float, calibrated: Bool = true, artists: [Int32]? = nil, maxPerArtist: Int = 2
    ) throws -> DiscoverWeekly {
        let y = learned()
        let model = try ImplicitALS(parameters: ALSParameters(factors: 2), userFactors: Matrix(rows: 1, cols: 2), itemFactors: y)
        var ids = IDMap()
        for a in 0..<items { _ = ids.intern("a\(a)") }
        let catalog = try TrackCatalog(itemCount: items, trackArtist: artists ?? (0..<Int32(items)).map { $0 }, artistIDs: ids)
        let env = try PlaylistEnvironment(catalog: catalog, space: try ItemSpace(name: "cf", vectors: y), model: model)
        var vectors = Matrix(rows: predicted.count, cols: 2)
        for (r, s) in predicted.enumerated() { vectors[r, 0] = s }
        let fresh = try PredictedVectorCandidates(items: (0..<Int32(predicted.count)).map { Int32(warm) + $0 }, vectors: vectors)
        let config = DiscoverWeekly.Configuration(
            sources: [.init(UserVectorCandidates(), weight: 1, limit: 50), .init(fresh, weight: 0.5, limit: 50)], size: 5,
            rules: PlaylistRules(maxPerArtist: maxPerArtist), diversity: Diversifier(lambda: 1), exploration: 0, poolSize: 10,
            newTrackShare: share, newTrackCalibration: calibrated ? try calibration() : nil)
        return try DiscoverWeekly(environment: env, configuration: config, week: week)
    }

    /// The user played track 0; their vector is `(1, 0)`, so the list without new tracks is 1...5 (scores 19...15).
    static func list(_ b: DiscoverWeekly) throws -> DiscoverWeekly.Playlist {
        let h = try UserHistory(
            userKey: "u", user: nil, asOf: week.timestamp,
            events: [ListeningEvent(item: 0, timestamp: week.timestamp - 86_400)])
        return try b.build(for: h, userVector: [1, 0])
    }

    @Test("the line is the least-squares fit of learned on predicted scores")
    func line() {
        // Pairs (predicted, learned): (1, 1), (1, 2), (2, 3), (2, 4): means 1.5 and 2.5, covariance 0.5, variance 0.25.
        let s = NewTrackCalibration.Scale(predicted: [1, 1, 2, 2], learned: [1, 2, 3, 4])
        #expect(s.slope == 2)
        #expect(s.intercept == -0.5)
        #expect(s.expectedLearned(3) == 5.5)
        // Predictions that do not vary say nothing: every new track is expected at the mean learned score.
        let flat = NewTrackCalibration.Scale(predicted: [2, 2, 2], learned: [1, 2, 6])
        #expect(flat.slope == 0 && flat.expectedLearned(100) == 3)
    }

    @Test("a user's line over the references: predictions half the learned vectors double back")
    func scale() throws {
        let s = try Self.calibration().scale(for: [1, 0])
        #expect(abs(s.slope - 2) < 1e-5 && abs(s.intercept) < 1e-4)
        // A new track scored 9 by its prediction is expected at 18, above the weakest listed track (15).
        #expect(abs(s.expectedLearned(9) - 18) < 1e-4)
        // Another user sees the same references through another vector.
        let t = try Self.calibration().scale(for: [-1, 0])
        #expect(abs(t.slope - 2) < 1e-5 && abs(t.expectedLearned(-9) + 18) < 1e-4)
    }

    @Test("new tracks that score below every listed track get no place")
    func weakNewTracksGetNoPlace() throws {
        // Predicted 7, 5, 3: expected learned scores 14, 10, 6, all below the weakest listed track's 15.
        let p = try Self.list(try Self.builder(predicted: [7, 5, 3], share: 0.4))
        #expect(Set(p.items) == [1, 2, 3, 4, 5])
        #expect(p.items.sorted() == (try Self.list(try Self.builder(predicted: [7, 5, 3], share: 0))).items.sorted())
        #expect(p.tracks.allSatisfy { !p.sources(of: $0).contains("new-for-you") })
    }

    @Test("a new track that beats the weakest listed track takes its place; raw scores would have kept it out")
    func strongNewTrackTakesTheWeakestPlace() throws {
        // Predicted 9 (expected 18) against the weakest listed track (15): track 20 replaces track 5.
        let p = try Self.list(try Self.builder(predicted: [9, 3], share: 0.4))
        #expect(Set(p.items) == [1, 2, 3, 4, 20])
        let t = try #require(p.tracks.first { $0.item == 20 })
        #expect(p.sources(of: t) == ["new-for-you"])
        #expect(p.explanation(of: t) == "new releases that sound like your taste")
        // On raw scores 9 < 15: the shrunken prediction never wins.
        let raw = try Self.list(try Self.builder(predicted: [9, 3], share: 0.4, calibrated: false))
        #expect(Set(raw.items) == [1, 2, 3, 4, 5])
        // No share, no new track however strong.
        #expect(Set(try Self.list(try Self.builder(predicted: [9.9], share: 0)).items) == [1, 2, 3, 4, 5])
    }

    @Test("the share caps the places, taken from the weakest listed tracks, best new tracks first")
    func shareCapsThePlaces() throws {
        // Expected learned scores: 9.7 -> 19.4, 10.5 -> 21, 10 -> 20, 3 -> 6; the listed tracks score 19, 18, ..., 15.
        let strong: [Float] = [9.7, 10.5, 10, 3]
        // Share 0.4 of 5: two places; the best new tracks (21, then 22) take the places of 5 and 4.
        let two = try Self.list(try Self.builder(predicted: strong, share: 0.4))
        #expect(Set(two.items) == [1, 2, 3, 21, 22])
        // Share 1: 21 > 15, 20 > 16, 19.4 > 17 displace 5, 4, 3; then 6 < 18 ends it.
        let all = try Self.list(try Self.builder(predicted: strong, share: 1))
        #expect(Set(all.items) == [1, 2, 20, 21, 22])
    }

    @Test("a new track the artist cap refuses is skipped for the next one")
    func artistCapHolds() throws {
        // Track 20 is by the artist of track 1, at the cap of one track per artist: it cannot displace track 5.
        var artists = (0..<Int32(Self.items)).map { $0 }
        artists[20] = 1
        let p = try Self.list(try Self.builder(predicted: [9.9, 9.5], share: 0.4, artists: artists, maxPerArtist: 1))
        #expect(Set(p.items) == [1, 2, 3, 21, 4])
        // Without the cap both go in (two per artist allowed).
        let q = try Self.list(try Self.builder(predicted: [9.9, 9.5], share: 0.4, artists: artists, maxPerArtist: 2))
        #expect(Set(q.items) == [1, 2, 3, 20, 21])
    }

    @Test("the reference sample is a seeded subset of the given tracks, row for row")
    func referenceSample() throws {
        var l = Matrix(rows: 100, cols: 3), p = Matrix(rows: 100, cols: 3)
        for i in 0..<100 { for c in 0..<3 { l[i, c] = Float(i * 3 + c); p[i, c] = -Float(i * 3 + c) } }
        let items = (0..<Int32(100)).filter { $0 % 2 == 0 }
        let a = try NewTrackCalibration.reference(learned: l, predicted: p, items: items, count: 10, seed: 5)
        let b = try NewTrackCalibration.reference(learned: l, predicted: p, items: items, count: 10, seed: 5)
        #expect(a.count == 10)
        #expect(a.learned == b.learned)
        var seen = Set<Int>()
        for r in 0..<a.count {
            let i = Int(a.learned[r, 0]) / 3
            #expect(i % 2 == 0)
            #expect(a.predicted.row(r) == p.row(i))
            seen.insert(i)
        }
        #expect(seen.count == 10)
        // Fewer tracks than the count: all of them.
        #expect(try NewTrackCalibration.reference(learned: l, predicted: p, items: [3, 1], count: 10).learned.row(1) == l.row(3))
    }

    @Test("bad calibration inputs are named")
    func errors() throws {
        func message(_ body: () throws -> Void) -> String {
            do { try body(); return "no error" } catch { return "\(error)" }
        }
        #expect(message { _ = try NewTrackCalibration(learned: Matrix(rows: 2, cols: 2), predicted: Matrix(rows: 3, cols: 2)) }
                == "shape mismatch: reference tracks: 2 x 2 learned vectors, 3 x 2 predicted")
        #expect(message { _ = try NewTrackCalibration(learned: Matrix(rows: 0, cols: 2), predicted: Matrix(rows: 0, cols: 2)) }
                == "invalid parameter 'calibration' = 0 reference tracks: expected at least one")
        #expect(message {
            _ = try NewTrackCalibration(learned: Matrix(rows: 1, cols: 2), predicted: try Matrix(rows: 1, cols: 2, storage: [0, .nan]))
        } == "invalid parameter 'predicted vector of reference track 0' = nan: expected finite values")
        #expect(message { _ = try Self.calibration().scale(for: [1, 0, 0]) }
                == "shape mismatch: user vector of 3 values, calibration vectors of 2")
        #expect(message {
            _ = try NewTrackCalibration.reference(learned: Self.learned(), predicted: Self.learned(), items: [40])
        } == "unknown index: reference track 40: 30 learned and 30 predicted vectors")
    }
}

import Foundation
import Testing
@testable import EncoreCore
@testable import EncoreData

@Suite("Event rules")
struct EventRulesTests {
    let rules = EventRules.standard

    func event(_ type: EventType, ms: Int64? = nil) -> UserEvent {
        UserEvent(eventID: "e", user: "u", item: "t", type: type, msPlayed: ms, timestamp: 0)
    }

    @Test("a play of 30 s or of unknown length is a listen; shorter plays and skips are skips")
    func listensAndSkips() {
        #expect(rules.isListen(event(.play, ms: 30_000)))
        #expect(rules.isListen(event(.play)))
        #expect(!rules.isListen(event(.play, ms: 29_999)))
        #expect(rules.isSkip(event(.play, ms: 29_999)))
        #expect(rules.isSkip(event(.skip)))
        #expect(!rules.isListen(event(.like)) && !rules.isSkip(event(.like)))
        let strict = EventRules(minimumListenMs: 60_000)
        #expect(!strict.isListen(event(.play, ms: 59_999)) && strict.isListen(event(.play, ms: 60_000)))
        // The event's own properties and the loader's threshold follow the same rule.
        #expect(event(.play, ms: 29_999).countsAsSkip && event(.play, ms: 30_000).countsAsPlay)
        #expect(DelimitedFormat.encorePlays.minimum?.value == 30_000)
    }

    @Test("play-log weights of events and the listens a row stands for")
    func rowWeights() {
        #expect(rules.rowWeight(of: event(.play, ms: 45_000), weighting: .encorePlays) == 45_000)
        #expect(rules.rowWeight(of: event(.play), weighting: .encorePlays) == 30_000)
        #expect(rules.rowWeight(of: event(.skip), weighting: .encorePlays) == 0)
        #expect(rules.rowWeight(of: event(.play, ms: 10_000), weighting: .counts) == 0)
        #expect(rules.rowWeight(of: event(.play, ms: 40_000), weighting: .counts) == 1)
        #expect(rules.rowWeight(of: event(.like), weighting: .counts) == nil)
        #expect(PlayWeighting.encorePlays.listens(rowWeight: 29_999) == 0)
        #expect(PlayWeighting.encorePlays.listens(rowWeight: 30_000) == 1)
        #expect(PlayWeighting.counts.listens(rowWeight: 3) == 3 && PlayWeighting.counts.listens(rowWeight: -1) == 0)
        #expect(PlayWeighting.counts.isSkip(rowWeight: 0) && !PlayWeighting.counts.isSkip(rowWeight: 2))
    }

    @Test("feedback targets: dislikes fall back to artists, follows are always artists")
    func feedbackTargets() {
        #expect(rules.feedbackTarget(of: .like, isKnownTrack: true, isKnownArtist: true) == .track)
        #expect(rules.feedbackTarget(of: .like, isKnownTrack: false, isKnownArtist: true) == nil)
        #expect(rules.feedbackTarget(of: .dislike, isKnownTrack: false, isKnownArtist: true) == .artist)
        #expect(rules.feedbackTarget(of: .undislike, isKnownTrack: true, isKnownArtist: true) == .track)
        #expect(rules.feedbackTarget(of: .followArtist, isKnownTrack: true, isKnownArtist: false) == nil)
        #expect(rules.feedbackTarget(of: .play, isKnownTrack: true, isKnownArtist: true) == nil)
        #expect(rules.looksUpArtist(.dislike, isKnownTrack: false) && !rules.looksUpArtist(.dislike, isKnownTrack: true))
        #expect(rules.looksUpArtist(.unfollowArtist, isKnownTrack: true))
        // lookUp asks the artist map only where the rules say so.
        let tracks: [String: Int32] = ["t": 1, "both": 2], artists: [String: Int32] = ["a": 7, "both": 8]
        func look(_ type: EventType, _ id: String) -> (Int32?, Int32?) {
            let r = rules.lookUp(type, id: id, track: { tracks[$0] }, artist: { artists[$0] })
            return (r.track, r.artist)
        }
        #expect(look(.like, "both") == (2, nil))
        #expect(look(.dislike, "both") == (2, nil))
        #expect(look(.dislike, "a") == (nil, 7))
        #expect(look(.followArtist, "both") == (nil, 8))
        #expect(look(.like, "a") == (nil, nil))
    }

    @Test("each feedback event's effect, written out by hand")
    func feedbackEffects() {
        typealias E = EventRules.FeedbackEffect
        #expect(rules.feedbackEffect(of: .like, on: .track) == E(adds: .likedTracks, removes: [.dislikedTracks]))
        #expect(rules.feedbackEffect(of: .unlike, on: .track) == E(adds: nil, removes: [.likedTracks]))
        #expect(rules.feedbackEffect(of: .dislike, on: .track) == E(adds: .dislikedTracks, removes: [.likedTracks]))
        #expect(rules.feedbackEffect(of: .undislike, on: .track) == E(adds: nil, removes: [.dislikedTracks]))
        #expect(rules.feedbackEffect(of: .dislike, on: .artist) == E(adds: .dislikedArtists, removes: [.followedArtists]))
        #expect(rules.feedbackEffect(of: .undislike, on: .artist) == E(adds: nil, removes: [.dislikedArtists]))
        #expect(rules.feedbackEffect(of: .followArtist, on: .artist) == E(adds: .followedArtists, removes: [.dislikedArtists]))
        #expect(rules.feedbackEffect(of: .unfollowArtist, on: .artist) == E(adds: nil, removes: [.followedArtists]))
        #expect(rules.feedbackEffect(of: .playlistAdd, on: .track) == E(adds: nil, removes: []))
    }
}

@Suite("Confidence of listens that arrive after training")
struct ConfidenceContextTests {
    /// A raw users x items matrix of listen counts with a few empty rows and columns.
    func rawMatrix(seed: UInt64) throws -> CSRMatrix {
        var rng = SplitMix64(seed: seed)
        var r: [Int32] = [], c: [Int32] = [], v: [Float] = []
        for u in 0..<30 {
            for i in 0..<40 where rng.nextDouble() < 0.2 {
                r.append(Int32(u)); c.append(Int32(i)); v.append(Float(1 + rng.next() % 20))
            }
        }
        return try CSRMatrix(rows: 32, cols: 45, rowIndices: r, colIndices: c, values: v)
    }

    static let schemes: [ConfidenceWeighting] = [
        .none, .linear(alpha: 40), .logarithmic(alpha: 2, epsilon: 0.5), .bm25(k1: 100, b: 0.8), .bm25(k1: 1.2, b: 0.75),
    ]

    @Test("adding nothing gives back the trained confidences", arguments: schemes)
    func roundTrip(_ weighting: ConfidenceWeighting) throws {
        let raw = try rawMatrix(seed: 3)
        let weighted = weighting.apply(toUserItems: raw)
        let context = ConfidenceContext(weighting: weighting, rawUserItems: raw)
        for u in 0..<weighted.rows {
            let items = Array(weighted.indices[weighted.indptr[u]..<weighted.indptr[u + 1]])
            let values = Array(weighted.values[weighted.indptr[u]..<weighted.indptr[u + 1]])
            let row = context.row(items: items, confidences: values, adding: [:])
            #expect(row.items == items)
            for (a, b) in zip(row.values, values) { #expect(abs(a - b) <= 1e-4 * max(1, abs(b)), "user \(u)") }
        }
    }

    @Test("new listens are weighted as training weights the summed counts", arguments: schemes)
    func addedListens(_ weighting: ConfidenceWeighting) throws {
        let raw = try rawMatrix(seed: 5)
        let weighted = weighting.apply(toUserItems: raw)
        let context = ConfidenceContext(weighting: weighting, rawUserItems: raw)
        let u = 2
        let items = Array(weighted.indices[weighted.indptr[u]..<weighted.indptr[u + 1]])
        let values = Array(weighted.values[weighted.indptr[u]..<weighted.indptr[u + 1]])
        let rawRow = Dictionary(uniqueKeysWithValues: zip(items, raw.values[raw.indptr[u]..<raw.indptr[u + 1]]))
        // One more listen of a played item and two of an item the user never played.
        let fresh: Int32 = (0..<45).first { !items.contains($0) }!
        let added: [Int32: Float] = [items[0]: 1, fresh: 2]
        let row = context.row(items: items, confidences: values, adding: added)
        #expect(row.items == (items + [fresh]).sorted())
        // The expected values, from the formulas with the training-time item norms and the user's new item count.
        for (i, got) in zip(row.items, row.values) {
            let count = Double((rawRow[i] ?? 0) + (added[i] ?? 0))
            let expected: Double
            switch weighting {
            case .none: expected = count
            case .linear(let a): expected = 1 + Double(a) * count
            case .logarithmic(let a, let e): expected = 1 + Double(a) * log1p(count / Double(e))
            case .bm25(let k1, let b):
                var sums = [Double](repeating: 0, count: raw.cols)
                for p in 0..<raw.nnz { sums[Int(raw.indices[p])] += Double(raw.values[p]) }
                let mean = sums.reduce(0, +) / Double(raw.cols)
                let norm = (1 - Double(b)) + Double(b) * sums[Int(i)] / mean
                let idf = log(Double(raw.cols)) - log1p(Double(row.items.count))
                expected = count * (Double(k1) + 1) / (Double(k1) * norm + count) * idf
            }
            #expect(abs(Double(got) - expected) <= 1e-4 * max(1, abs(expected)), "item \(i) under \(weighting)")
        }
    }
}

import Foundation
import Testing
@testable import EncoreCore
@testable import EncoreFactorization
@testable import EncorePlaylists

/// "Because you played X" against brute-force cosines, direct dot products and ``ImplicitALS/explain(item:items:values:)``.
@Suite("Because you played")
struct PlaylistBecauseYouPlayedTests {
    static func cosine(_ m: Matrix, _ a: Int32, _ b: Int32) -> Double {
        var d = 0.0, na = 0.0, nb = 0.0
        for c in 0..<m.cols {
            let x = Double(m[Int(a), c]), y = Double(m[Int(b), c])
            d += x * y; na += x * x; nb += y * y
        }
        return na > 0 && nb > 0 ? d / (na * nb).squareRoot() : 0
    }

    @Test func rowsAreUnplayedNeighborsRerankedAndExplained() throws {
        let f = try PlaylistFixture.get()
        let byp = try BecauseYouPlayed(environment: f.environment, referenceTime: f.week.timestamp)
        let y = f.model.itemFactors
        var explained = 0
        for u in f.histories.activeUsers.prefix(40) {
            let h = try f.histories.history(of: u)
            guard let top = h.positionsByRecency(limit: 1, where: { h.isFamiliar(at: $0) && f.environment.space.hasVector.contains(h.items[$0]) }).first
            else { continue }
            let seed = h.items[top]
            let confidence = ImplicitALS.history(of: u, in: f.weighted)
            let row = try byp.row(for: h, seed: seed, confidence: confidence)
            #expect(row.seed == seed)
            #expect(row.items.count == 10)
            // The pool: the 50 unplayed, allowed tracks nearest X by cosine, by brute force.
            let pool = (0..<Int32(f.catalog.itemCount))
                .filter { $0 != seed && !h.hasPlayed($0) && !h.dislikes($0, catalog: f.catalog)
                    && !f.catalog.flagged.contains($0) && f.environment.space.hasVector.contains($0) }
                .map { ($0, Self.cosine(y, seed, $0)) }
                .sorted { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0 < $1.0 }
                .prefix(50)
            let poolSet = Set(pool.map(\.0))
            let xu = f.model.userFactors.row(Int(u))
            var previous = Float.infinity
            var artists: [Int32: Int] = [:]
            for it in row.items {
                #expect(poolSet.contains(it.item), "user \(u): \(it.item) is not among X's 50 nearest")
                #expect(!h.hasPlayed(it.item))
                #expect(abs(Double(it.similarity) - Self.cosine(y, seed, it.item)) < 1e-4)
                // Re-ranked by the user's vector.
                let dot = (0..<y.cols).reduce(0.0) { $0 + Double(xu[$1]) * Double(y[Int(it.item), $1]) }
                #expect(abs(Double(it.score) - dot) < 1e-4)
                #expect(it.score <= previous)
                previous = it.score
                artists[f.catalog.trackArtist[Int(it.item)], default: 0] += 1
                // X's contribution is the one ImplicitALS.explain reports.
                let e = try f.model.explain(item: it.item, items: confidence.items, values: confidence.values)
                let mine = try #require(e.contributions.first { $0.item == seed })
                let c = try #require(it.seedContribution)
                #expect(abs(c - mine.score) <= 1e-3 * max(1, abs(mine.score)), "user \(u) item \(it.item)")
                #expect(abs(try #require(it.seedShare) - mine.score / e.score) < 2e-3)
                explained += 1
            }
            #expect(artists.values.allSatisfy { $0 <= 2 })
        }
        #expect(explained > 200)
    }

    @Test func severalSeedsAndErrors() throws {
        let f = try PlaylistFixture.get()
        let byp = try BecauseYouPlayed(
            environment: f.environment, configuration: .init(count: 5, poolSize: 20), referenceTime: f.week.timestamp)
        let u = f.histories.activeUsers[3]
        let h = try f.histories.history(of: u)
        let seeds = Array(h.items.prefix(3))
        let rows = try byp.rows(for: h, seeds: seeds)
        #expect(rows.map(\.seed) == seeds)
        for (r, s) in zip(rows, seeds) { #expect(r == (try byp.row(for: h, seed: s))) }
        #expect(throws: PlaylistError.self) { try byp.row(for: h, seed: -1) }
        #expect(throws: PlaylistError.self) { try byp.row(for: h, seed: Int32(f.catalog.itemCount)) }
        #expect(throws: PlaylistError.self) {
            try BecauseYouPlayed(environment: f.environment, configuration: .init(count: 10, poolSize: 5), referenceTime: 0)
        }
        // A track the user never played still gets a row, without contributions.
        let other = (0..<Int32(f.catalog.itemCount)).first { !h.hasPlayed($0) && f.environment.space.hasVector.contains($0) }!
        let row = try byp.row(for: h, seed: other)
        #expect(row.items.allSatisfy { $0.seedContribution == nil })
    }
}

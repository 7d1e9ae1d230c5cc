import Foundation
import Testing
@testable import EncoreCore
@testable import EncoreData
@testable import EncoreEvaluation
import EncoreHybrid
import EncoreFactorization

@Suite("Evaluation: cold items")
struct ColdItemsTests {
    @Test("the full AUC equals the share of (relevant, other) pairs in order, ties one half")
    func aucBruteForce() throws {
        var rng = SplitMix64(seed: 9)
        for trial in 0..<50 {
            let m = 2 + Int(rng.next() % 30)
            // Few distinct values, so ties are common.
            let scores = (0..<m).map { _ in Float(rng.next() % 5) }
            var relevant = (0..<m).filter { _ in rng.next() % 3 == 0 }.map { Int32($0) }
            if relevant.isEmpty { relevant = [Int32(trial % m)] }
            let auc = ColdItemsEvaluation.fullAUC(scores, relevant: relevant[...])
            if relevant.count == m { #expect(auc == nil); continue }
            var pairs = 0.0, right = 0.0
            for p in relevant {
                for q in 0..<m where !relevant.contains(Int32(q)) {
                    pairs += 1
                    if scores[Int(p)] > scores[q] { right += 1 } else if scores[Int(p)] == scores[q] { right += 0.5 }
                }
            }
            #expect(abs(try #require(auc) - right / pairs) < 1e-12)
        }
        #expect(ColdItemsEvaluation.fullAUC([1, 2, 3], relevant: [2][...]) == 1)
        #expect(ColdItemsEvaluation.fullAUC([1, 2, 3], relevant: [0][...]) == 0)
        #expect(ColdItemsEvaluation.fullAUC([1, 1, 1], relevant: [0][...]) == 0.5)
    }

    static func log() throws -> Interactions {
        var log = Interactions()
        for u in 0..<20 { for i in 0..<10 where (u + i) % 3 != 0 { log.append(user: "u\(u)", item: "t\(i)") } }
        return log
    }

    @Test("bad options and content are clear errors")
    func errors() throws {
        let log = try Self.log()
        func message(_ options: ColdItemsOptions, content: [ColdItemsContent] = [],
                     artists: [(track: String, artist: String)]? = [("t1", "a1")]) -> String? {
            do {
                _ = try ColdItemsEvaluation.run(log: log, texts: nil, trackArtists: artists, content: content, options: options)
                return nil
            } catch { return "\(error)" }
        }
        #expect(message(ColdItemsOptions(testFraction: 1.5))
            == "invalid parameter 'test-fraction' = 1.5: expected a value in (0, 1)")
        #expect(message(ColdItemsOptions(k: 0)) == "invalid parameter 'k' = 0: expected an integer >= 1")
        let audio = ColdItemsContent(name: "audio", source: "E.h5", ids: ["x1", "x2", "x3", "x4"], vectors: Matrix(rows: 4, cols: 2))
        #expect(message(ColdItemsOptions(als: ALSParameters(factors: 2, iterations: 2)), content: [audio])
            == "E.h5: none of its 4 ids ('x1', 'x2', 'x3', ...) is a track of the play log")
        #expect(message(ColdItemsOptions(als: ALSParameters(factors: 2, iterations: 2)), artists: [("zz", "a1")])
            == "track artists: none of its 1 tracks is in the play log")
        #expect(message(ColdItemsOptions(als: ALSParameters(factors: 2, iterations: 2)), artists: nil)
            == "invalid parameter 'content' = none: expected texts, audio embeddings or track artists to predict from")
    }
}

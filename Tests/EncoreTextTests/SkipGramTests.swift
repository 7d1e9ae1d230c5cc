import EncoreCore
import EncoreData
import Foundation
import Testing

@testable import EncoreText

/// Sequences of noise tokens (0..<noise) and planted groups of `size` tokens (names `g<group>_<k>`): each sequence
/// plays two groups, their tokens mixed with noise, so a group's tokens share their contexts.
func plantedCorpus(groups: Int, size: Int, noise: Int, sequences: Int, seed: UInt64) -> (names: [String], sequences: [[Int32]]) {
    var rng = SplitMix64(seed: seed)
    let names = (0..<noise).map { "n\($0)" } + (0..<groups).flatMap { g in (0..<size).map { "g\(g)_\($0)" } }
    var out: [[Int32]] = []
    for _ in 0..<sequences {
        let chosen = [Int(rng.next() % UInt64(groups)), Int(rng.next() % UInt64(groups))]
        var s: [Int32] = []
        for _ in 0..<20 {
            if rng.nextFloat() < 0.5 {
                let g = chosen[Int(rng.next() % 2)]
                s.append(Int32(noise + g * size + Int(rng.next() % UInt64(size))))
            } else {
                s.append(Int32(rng.next() % UInt64(noise)))
            }
        }
        out.append(s)
    }
    return (names, out)
}

/// The share of a planted token's `size - 1` nearest neighbours (cosine) from its own group.
func plantedRecall(_ m: SkipGramModel, groups: Int, size: Int) -> Double {
    let v = m.vectors.rowNormalized()
    var hits = 0, total = 0
    for g in 0..<groups {
        for k in 0..<size {
            guard let i = m.index(of: "g\(g)_\(k)") else { continue }
            let scores = (0..<v.rows).filter { $0 != i }.map { j in
                (j, zip(v.row(i), v.row(j)).reduce(0) { $0 + $1.0 * $1.1 })
            }.sorted { $0.1 > $1.1 }
            for (j, _) in scores.prefix(size - 1) {
                total += 1
                if m.tokens[j].hasPrefix("g\(g)_") { hits += 1 }
            }
        }
    }
    return total == 0 ? 0 : Double(hits) / Double(total)
}

@Suite("Text: skip-gram")
struct SkipGramTests {
    @Test("a planted corpus puts the planted pairs together (one thread, deterministic; two threads)")
    func planted() throws {
        let (names, seqs) = plantedCorpus(groups: 30, size: 5, noise: 200, sequences: 1000, seed: 9)
        let options = SkipGramOptions(dimensions: 32, window: 5, negative: 5, minCount: 2, epochs: 5, seed: 3, threads: 1)
        let a = try SkipGramModel.train(sequences: seqs, names: names, options: options)
        let b = try SkipGramModel.train(sequences: seqs, names: names, options: options)
        #expect(a.vectors == b.vectors, "one thread is deterministic")
        #expect(a.tokens.count == names.count)
        let recall = plantedRecall(a, groups: 30, size: 5)
        #expect(recall >= 0.9, "recall \(recall)")
        var two = options
        two.threads = 2
        let c = try SkipGramModel.train(sequences: seqs, names: names, options: two)
        #expect(plantedRecall(c, groups: 30, size: 5) >= 0.9)
        // Planted tokens replaced by random planted tokens: the groups are no longer neighbours (chance is about 4/149).
        var rng = SplitMix64(seed: 1)
        let shuffled = seqs.map { s in s.map { t -> Int32 in t >= 200 ? Int32(200 + Int(rng.next() % 150)) : t } }
        let d = try SkipGramModel.train(sequences: shuffled, names: names, options: options)
        #expect(plantedRecall(d, groups: 30, size: 5) < 0.2)
    }

    @Test("min_count drops rare tokens; frequent tokens come first")
    func vocabulary() throws {
        let names = ["a", "b", "c"]
        let seqs: [[Int32]] = [[0, 1, 0, 1, 0], [0, 2, 0]]
        let m = try SkipGramModel.train(sequences: seqs, names: names,
                                        options: SkipGramOptions(dimensions: 4, minCount: 2, epochs: 1))
        #expect(m.tokens == ["a", "b"] && m.counts == [5, 2])
        #expect(m.vectors.rows == 2 && m.vectors.cols == 4)
    }

    @Test("an empty corpus, a vocabulary emptied by min_count and bad parameters are clear errors")
    func errors() {
        #expect(throws: TextError.emptyCorpus("no tokens in 0 sequences")) {
            _ = try SkipGramModel.train(sequences: [], names: [])
        }
        #expect(throws: TextError.emptyVocabulary("no token occurs at least min_count = 5 times (most frequent: 2)")) {
            _ = try SkipGramModel.train(sequences: [[0, 1, 0]], names: ["a", "b"])
        }
        // Token 0 is frequent enough but never shares a sequence with another kept token: nothing to train on
        // (this used to crash on a NaN keep probability).
        #expect(throws: TextError.emptyCorpus("no sequence holds two tokens that occur at least min_count = 2 times (3 sequences, 1 tokens kept)")) {
            _ = try SkipGramModel.train(sequences: [[0, 1], [0, 2], [0]], names: ["a", "b", "c"], options: SkipGramOptions(minCount: 2))
        }
        #expect(throws: TextError.invalidParameter("window must be positive, got 0")) {
            _ = try SkipGramModel.train(sequences: [[0]], names: ["a"], options: SkipGramOptions(window: 0))
        }
        #expect(throws: TextError.invalidParameter("token 5 outside the 2 names")) {
            _ = try SkipGramModel.train(sequences: [[0, 5]], names: ["a", "b"])
        }
    }

    @Test("playlists add sequences; their unplayed tracks get vectors; one-track playlists are left out")
    func playlistSequences() throws {
        var log = Interactions()
        log.append(user: "u", item: "x", timestamp: 0)
        log.append(user: "u", item: "y", timestamp: 60)
        let r = try SequenceVectorsResult.fit(
            log: log, sessionGapSeconds: 1800, playlists: [["y", "new"], ["solo"]],
            options: SkipGramOptions(dimensions: 4, minCount: 1, epochs: 1, threads: 1))
        #expect(r.sequences == 2)
        // y twice; x (a log item) before new (a playlist item) among the ties.
        #expect(r.model.tokens == ["y", "x", "new"] && r.model.counts == [2, 1, 1])
        #expect(r.vectors.ids == ["y", "x", "new"])
    }

    @Test("sessions split a user's plays where the gap exceeds the limit")
    func sessions() throws {
        var log = Interactions()
        // u1: three plays within 30 min, then one 2 hours later, then one more after 10 min; u2: one play.
        for (u, i, t) in [("u1", "x", 0), ("u1", "y", 600), ("u2", "z", 50), ("u1", "z", 1200), ("u1", "x", 8400),
                          ("u1", "w", 9000)] as [(String, String, Int64)] {
            log.append(user: u, item: i, timestamp: t)
        }
        let s = try SequenceCorpus.sessions(log, gapSeconds: 1800)
        let names = log.itemIDs.ids
        #expect(s.map { $0.map { names[Int($0)] } } == [["x", "y", "z"], ["x", "w"]])
        #expect(try SequenceCorpus.sessions(log, gapSeconds: 100_000).count == 1 + 0)
        var bare = Interactions()
        bare.append(user: "u", item: "i")
        #expect(throws: TextError.invalidParameter("sessions need timestamps, and the play log has none (give --timestamp-column)")) {
            _ = try SequenceCorpus.sessions(bare, gapSeconds: 1800)
        }
        let (terms, seqs) = SequenceCorpus.texts(["Jazz and jazz", "rock"])
        #expect(terms == ["jazz", "and", "rock"] && seqs == [[0, 1, 0], [2]])
    }

    @Test("a session holds memory for its own plays, not for the longest session before it")
    func sessionsAreExactSize() throws {
        var log = Interactions()
        // One user's 20 000-play session (a play a minute), then 500 users with a session of two plays each.
        for k in 0..<20_000 { log.append(user: "heavy", item: "t\(k % 300)", timestamp: Int64(60 * k)) }
        for u in 0..<500 {
            log.append(user: "u\(u)", item: "t\(u % 300)", timestamp: 0)
            log.append(user: "u\(u)", item: "t\((u + 1) % 300)", timestamp: 60)
        }
        let s = try SequenceCorpus.sessions(log, gapSeconds: 1800)
        #expect(s.count == 501 && s[0].count == 20_000 && s.dropFirst().allSatisfy { $0.count == 2 })
        // Exact-size copies: a two-play session with the heavy session's capacity would be 80 kB.
        let capacities = s.dropFirst().map(\.capacity)
        #expect(capacities.allSatisfy { $0 < 64 }, "capacities up to \(capacities.max() ?? 0)")
    }

    @Test("the play order is the comparison sort's by user, time and position, ties and unsorted users included")
    func playOrderMatchesComparisonSort() throws {
        var rng = SplitMix64(seed: 41)
        var log = Interactions()
        for _ in 0..<3000 {
            // Few distinct times so that ties within a user are common; users interleaved and out of order.
            log.append(user: "u\(rng.next() % 97)", item: "i\(rng.next() % 50)", timestamp: Int64(rng.next() % 40))
        }
        let u = log.users, t = log.timestamps
        let reference = (0..<log.count).sorted { (a: Int, b: Int) -> Bool in
            if u[a] != u[b] { return u[a] < u[b] }
            if t[a] != t[b] { return t[a] < t[b] }
            return a < b
        }
        #expect(SequenceCorpus.playOrder(log) == reference)
        #expect(SequenceCorpus.playOrder(Interactions()).isEmpty)
    }
}

import Foundation
import Testing
@testable import EncoreCore
@testable import EncorePlaylists

/// Mix flow from descriptors: the key and tempo distances by hand, the cost by hand, the order against brute force,
/// Daily Mix ordered by it, and new tracks drawn from a hybrid space.
@Suite("Mix flow")
struct PlaylistFlowTests {
    /// Every permutation of `0..<n` (Heap's algorithm).
    static func permutations(_ n: Int) -> [[Int]] {
        var a = Array(0..<n)
        var out: [[Int]] = [a]
        var c = [Int](repeating: 0, count: n)
        var i = 0
        while i < n {
            if c[i] < i {
                if i % 2 == 0 { a.swapAt(0, i) } else { a.swapAt(c[i], i) }
                out.append(a)
                c[i] += 1
                i = 0
            } else {
                c[i] = 0
                i += 1
            }
        }
        return out
    }

    /// Random descriptors for `n` items (a share unknown), artists 0..<artists.
    static func world(n: Int, artists: Int, unknown: Double, seed: UInt64) throws -> (TrackDescriptors, TrackCatalog) {
        var rng = SplitMix64(seed: seed)
        var tracks: [Int32: TrackDescriptors.Track] = [:]
        for i in 0..<n {
            var t = TrackDescriptors.Track()
            if rng.nextDouble() >= unknown { t.tempoBPM = Float(70 + 110 * rng.nextDouble()) }
            if rng.nextDouble() >= unknown { t.key = Int(rng.next() % 12); t.mode = Int(rng.next() % 2) }
            if rng.nextDouble() >= unknown { t.energy = Float(0.02 + 0.3 * rng.nextDouble()) }
            tracks[Int32(i)] = t
        }
        let catalog = try TrackCatalog(
            itemCount: n, trackArtist: (0..<n).map { _ in Int32(rng.next() % UInt64(artists)) },
            artistIDs: IDMap(ids: (0..<artists).map { "a\($0)" }))
        return (try TrackDescriptors(itemCount: n, tracks: tracks), catalog)
    }

    @Test func keyDistanceOnTheCamelotWheelByHand() {
        // Pitch classes: C 0, C# 1, D 2, E 4, F 5, F# 6, G 7, A 9, B 11. Mode 1 major, 0 minor.
        #expect(TrackDescriptors.keyDistance(key: 0, mode: 1, key: 9, mode: 0) == 0)   // C major, A minor: relative
        #expect(TrackDescriptors.keyDistance(key: 0, mode: 1, key: 7, mode: 1) == 1)   // C, G: a fifth
        #expect(TrackDescriptors.keyDistance(key: 0, mode: 1, key: 5, mode: 1) == 1)   // C, F: a fourth
        #expect(TrackDescriptors.keyDistance(key: 0, mode: 1, key: 6, mode: 1) == 6)   // C, F#: a tritone
        #expect(TrackDescriptors.keyDistance(key: 0, mode: 1, key: 2, mode: 1) == 2)   // C, D
        #expect(TrackDescriptors.keyDistance(key: 0, mode: 1, key: 1, mode: 1) == 5)   // C, C#
        #expect(TrackDescriptors.keyDistance(key: 0, mode: 1, key: 0, mode: 0) == 3)   // C major, C minor (8B, 5A)
        #expect(TrackDescriptors.keyDistance(key: 9, mode: 0, key: 4, mode: 0) == 1)   // A minor, E minor
        #expect(TrackDescriptors.keyDistance(key: 7, mode: 1, key: 4, mode: 0) == 0)   // G major, E minor
        #expect(TrackDescriptors.camelot(key: 0, mode: 1) == "8B")
        #expect(TrackDescriptors.camelot(key: 9, mode: 0) == "8A")
        #expect(TrackDescriptors.camelot(key: 7, mode: 1) == "9B")
        #expect(TrackDescriptors.camelot(key: 4, mode: 0) == "9A")
        #expect(TrackDescriptors.camelot(key: 6, mode: 1) == "2B")
        #expect(TrackDescriptors.camelot(key: 5, mode: 1) == "7B")
        #expect(TrackDescriptors.camelot(key: 2, mode: 0) == "7A")   // D minor
        // Symmetric, at most 6, and 0 exactly for the same key or its relative.
        for a in 0..<24 { for b in 0..<24 {
            let d = TrackDescriptors.keyDistance(key: a % 12, mode: a / 12, key: b % 12, mode: b / 12)
            #expect(d == TrackDescriptors.keyDistance(key: b % 12, mode: b / 12, key: a % 12, mode: a / 12))
            #expect((0...6).contains(d))
            let relative = a / 12 != b / 12 && (a / 12 == 1 ? (a % 12 + 9) % 12 == b % 12 : (a % 12 + 3) % 12 == b % 12)
            #expect((d == 0) == (a == b || relative), "\(a) \(b)")
        } }
    }

    @Test func tempoDistanceForgivesOctaveErrors() {
        #expect(TrackDescriptors.tempoDistance(120, 120) == 0)
        #expect(abs(TrackDescriptors.tempoDistance(120, 60)) < 1e-6)
        #expect(abs(TrackDescriptors.tempoDistance(120, 240)) < 1e-6)
        #expect(abs(TrackDescriptors.tempoDistance(100, 110) - Float(Foundation.log2(1.1))) < 1e-6)
        // 90 against 170: 170/90 = 1.889, half of it 0.944: the distance is log2(90/85).
        #expect(abs(TrackDescriptors.tempoDistance(90, 170) - Float(Foundation.log2(90.0 / 85))) < 1e-5)
        #expect(abs(TrackDescriptors.tempoDistance(170, 90) - TrackDescriptors.tempoDistance(90, 170)) < 1e-6)
    }

    @Test func costByHand() throws {
        let d = try TrackDescriptors(itemCount: 4, tracks: [
            0: .init(tempoBPM: 120, key: 0, mode: 1, energy: 0.2),
            1: .init(tempoBPM: 132, key: 7, mode: 1, energy: 0.1),
            2: .init(tempoBPM: 66, key: 9, mode: 0),
        ])
        let catalog = try TrackCatalog(itemCount: 4, trackArtist: [0, 0, 1, -1], artistIDs: IDMap(ids: ["a", "b"]))
        let flow = DescriptorFlow()
        // 0 -> 1: 8 · log2(1.1) + 1 · 1 step + 2 · (0.1 / 0.2) + 4 (same artist).
        let c01 = 8 * Foundation.log2(1.1) + 1 + 2 * 0.5 + 4
        #expect(abs(Double(flow.cost(0, 1, descriptors: d, catalog: catalog)) - c01) < 1e-5)
        #expect(flow.cost(1, 0, descriptors: d, catalog: catalog) == flow.cost(0, 1, descriptors: d, catalog: catalog))
        // 0 -> 2: 66 is 132 halved: 8 · log2(132/120); A minor is C major's relative: 0; energy unknown: 1.
        let c02 = 8 * Foundation.log2(132.0 / 120) + 0 + 1
        #expect(abs(Double(flow.cost(0, 2, descriptors: d, catalog: catalog)) - c02) < 1e-5)
        // 3 knows nothing: 1 for each of the three terms, no artist.
        #expect(flow.cost(0, 3, descriptors: d, catalog: catalog) == 3)
        // A weight of 0 leaves its term out, unknown or not.
        let noEnergy = DescriptorFlow(energyWeight: 0, artistWeight: 0)
        #expect(noEnergy.cost(0, 3, descriptors: d, catalog: catalog) == 2)
        #expect(abs(Double(noEnergy.pathCost([0, 1, 2], descriptors: d, catalog: catalog))
                    - (8 * Foundation.log2(1.1) + 1 + 1 + Double(noEnergy.cost(1, 2, descriptors: d, catalog: catalog)) - 1)) < 1e-5)
    }

    @Test func exactOrderIsTheBruteForceOptimum() throws {
        let flow = DescriptorFlow()
        for trial in 0..<40 {
            let n = 3 + trial % 6   // 3...8 tracks
            let (d, catalog) = try Self.world(n: n, artists: 3, unknown: 0.15, seed: UInt64(100 + trial))
            let items = (0..<Int32(n)).map { $0 }
            let best = Self.permutations(n).map { p in flow.pathCost(p.map { items[$0] }, descriptors: d, catalog: catalog) }.min()!
            let order = try flow.order(items, descriptors: d, catalog: catalog)
            #expect(order.sorted() == Array(0..<n))
            let got = flow.pathCost(order.map { items[$0] }, descriptors: d, catalog: catalog)
            #expect(abs(got - best) < 1e-4, "trial \(trial): \(got) against the optimum \(best)")
            #expect(got <= flow.pathCost(items, descriptors: d, catalog: catalog) + 1e-5)
            // With a pattern of kinds: the optimum among the orders that keep it.
            let kinds = (0..<n).map { $0 % 3 == 0 ? 0 : 1 }
            let pattern = DailyMix.spread(familiar: kinds.filter { $0 == 1 }.count, fresh: kinds.filter { $0 == 0 }.count).map { $0 ? 1 : 0 }
            let keeping = Self.permutations(n).filter { p in p.enumerated().allSatisfy { kinds[$0.element] == pattern[$0.offset] } }
            let bestKept = keeping.map { p in flow.pathCost(p.map { items[$0] }, descriptors: d, catalog: catalog) }.min()!
            let kept = try flow.order(items, kinds: kinds, pattern: pattern, descriptors: d, catalog: catalog)
            #expect(kept.enumerated().allSatisfy { kinds[$0.element] == pattern[$0.offset] })
            #expect(abs(flow.pathCost(kept.map { items[$0] }, descriptors: d, catalog: catalog) - bestKept) < 1e-4, "trial \(trial)")
        }
    }

    @Test func heuristicOrderAgainstBruteForceAndTheInputOrder() throws {
        // The path used beyond exactLimit: greedy from every start, 2-opt, swaps, moves.
        let flow = DescriptorFlow(exactLimit: 0)
        var optimal = 0, ratio = 0.0
        let trials = 40
        for trial in 0..<trials {
            let (d, catalog) = try Self.world(n: 8, artists: 3, unknown: 0.15, seed: UInt64(500 + trial))
            let items = (0..<Int32(8)).map { $0 }
            let best = Self.permutations(8).map { p in flow.pathCost(p.map { items[$0] }, descriptors: d, catalog: catalog) }.min()!
            let got = flow.pathCost(try flow.order(items, descriptors: d, catalog: catalog).map { items[$0] }, descriptors: d, catalog: catalog)
            #expect(got >= best - 1e-4)
            #expect(got <= flow.pathCost(items, descriptors: d, catalog: catalog) + 1e-5)
            if got <= best + 1e-4 { optimal += 1 }
            ratio += Double(got / max(best, 1e-6))
        }
        #expect(optimal >= trials * 3 / 4, "optimal in \(optimal) of \(trials)")
        #expect(ratio / Double(trials) < 1.03)
        // A 50-track mix: far below the input order (random here) and never above it.
        for trial in 0..<5 {
            let (d, catalog) = try Self.world(n: 50, artists: 12, unknown: 0.1, seed: UInt64(900 + trial))
            let items = (0..<Int32(50)).map { $0 }
            let input = flow.pathCost(items, descriptors: d, catalog: catalog)
            let got = flow.pathCost(try DescriptorFlow().order(items, descriptors: d, catalog: catalog).map { items[$0] },
                                    descriptors: d, catalog: catalog)
            #expect(got < 0.5 * input, "trial \(trial): \(got) against \(input) in input order")
        }
    }

    @Test func dailyMixFlowsByDescriptorsWithTheSameTracks() throws {
        let f = try PlaylistFixture.get()
        let n = f.catalog.itemCount
        var rng = SplitMix64(seed: 4)
        let tempo = (0..<n).map { i in i % 9 == 0 ? Float.nan : Float(70 + 110 * rng.nextDouble()) }
        let key = (0..<n).map { i in i % 11 == 0 ? -1 : Int(rng.next() % 12) }
        let mode = key.map { $0 < 0 ? -1 : Int(rng.next() % 2) }
        let energy = (0..<n).map { _ in Float(0.02 + 0.3 * rng.nextDouble()) }
        let d = try TrackDescriptors(itemCount: n, tempoBPM: tempo, key: key, mode: mode, energy: energy)
        let plain = try DailyMix(environment: f.environment, day: f.week)
        let flowing = try DailyMix(environment: f.environment, day: f.week, descriptors: d)
        let flow = flowing.configuration.descriptorFlow
        var mixes = 0, lower = 0
        var before = 0.0, after = 0.0
        for u in try f.users(withFamiliar: 20).prefix(40) {
            let h = try f.histories.history(of: u)
            let a = try plain.build(for: h), b = try flowing.build(for: h)
            #expect(a.mixes.count == b.mixes.count)
            for (x, y) in zip(a.mixes, b.mixes) {
                // The same tracks, the same places for familiar and new, a cost no higher than the similarity order.
                #expect(Set(x.items) == Set(y.items))
                #expect(x.isFamiliar == y.isFamiliar)
                for (i, fam) in zip(y.items, y.isFamiliar) { #expect(fam == h.hasPlayed(i)) }
                let cx = flow.pathCost(x.items, descriptors: d, catalog: f.catalog)
                let cy = flow.pathCost(y.items, descriptors: d, catalog: f.catalog)
                #expect(cy <= cx + 1e-4, "user \(u): \(cy) against \(cx)")
                if cy < cx - 1e-4 { lower += 1 }
                before += Double(cx); after += Double(cy)
                mixes += 1
            }
        }
        #expect(mixes >= 30)
        #expect(lower >= mixes * 9 / 10)
        #expect(after < 0.6 * before, "\(after) against \(before)")
    }

    @Test func dailyMixDrawsNewTracksFromTheHybridSpace() throws {
        // Three orthogonal groups of 100 tracks in the CF space; 30 more tracks (300..<330) have no CF vector but a
        // hybrid vector near group 0.
        var rng = SplitMix64(seed: 8)
        var cf = Matrix(rows: 330, cols: 6), hybrid = Matrix(rows: 330, cols: 6)
        for r in 0..<330 {
            for c in 0..<6 {
                let noise = Float(rng.nextGaussian() * 0.1)
                if r < 300 { cf[r, c] = noise }
                hybrid[r, c] = noise
            }
            if r < 300 { cf[r, r / 100] += 1; hybrid[r, r / 100] += 1 } else { hybrid[r, 0] += 1.2 }
        }
        let env = try PlaylistEnvironment(catalog: .bare(itemCount: 330), space: ItemSpace(name: "cf", vectors: cf))
        let space = try ItemSpace(name: "hybrid", vectors: hybrid)
        let day = try PlaylistDate("2026-11-16")
        var config = DailyMix.Configuration()
        config.newVariety = 0
        let b = try DailyMix(environment: env, configuration: config, day: day, newTrackSpace: space)
        let events = (Int32(0)..<40).map { ListeningEvent(item: $0, timestamp: day.timestamp - Int64($0 + 1) * 600, plays: Float(1 + $0 % 3)) }
        let h = try UserHistory(userKey: "u", user: nil, asOf: day.timestamp, events: events)
        let mixes = try b.build(for: h)
        #expect(mixes.mixes.count == 1)
        let mix = mixes.mixes[0]
        // Brute force: the weighted mean of the listened tracks' hybrid vectors, its nearest unplayed tracks.
        let w = b.weights(h)
        var centroid = [Double](repeating: 0, count: 6)
        let unit = hybrid.rowNormalized()
        for p in 0..<h.count { for c in 0..<6 { centroid[c] += Double(w[p]) * Double(unit[Int(h.items[p]), c]) } }
        let norm = centroid.reduce(0) { $0 + $1 * $1 }.squareRoot()
        let unplayed: [Int32] = (0..<Int32(330)).filter { (i: Int32) -> Bool in !h.hasPlayed(i) }
        let ranked = PlaylistContentTests.ranked(unplayed) { (i: Int32) -> Double in
            var dot = 0.0
            for c in 0..<6 { dot += Double(unit[Int(i), c]) * centroid[c] }
            return dot / norm
        }
        let fresh = mix.newItems
        #expect(fresh.count == config.newTarget(familiar: mix.familiarItems.count))
        #expect(Set(fresh) == Set(ranked.prefix(fresh.count).map { $0.item }))
        // The cold tracks, which the CF space cannot return, are among them.
        #expect(fresh.contains { $0 >= 300 })
        let cfOnly = try DailyMix(environment: env, configuration: config, day: day).build(for: h)
        #expect(cfOnly.mixes[0].newItems.allSatisfy { $0 < 300 })
    }

    @Test func badDescriptorsAndFlowSettingsAreClearErrors() throws {
        func message(_ body: () throws -> Void) -> String {
            do { try body(); return "no error" } catch { return "\(error)" }
        }
        #expect(message { _ = try TrackDescriptors(itemCount: 2, tempoBPM: [120, -5]) }
                == "invalid parameter 'tempoBPM[1]' = -5.0: expected a tempo > 0 (NaN or 0: unknown)")
        #expect(message { _ = try TrackDescriptors(itemCount: 2, key: [0, 12], mode: [1, 1]) }
                == "invalid parameter 'key[1]' = 12: expected a pitch class 0-11 (-1: unknown)")
        #expect(message { _ = try TrackDescriptors(itemCount: 1, key: [3]) }
                == "invalid parameter 'mode[0]' = -1: expected the mode of key 3 (0 or 1)")
        #expect(message { _ = try TrackDescriptors(itemCount: 1, key: [3], mode: [2]) }
                == "invalid parameter 'mode[0]' = 2: expected 1 (major), 0 (minor) or -1 (unknown)")
        #expect(message { _ = try TrackDescriptors(itemCount: 2, energy: [0.1, .infinity]) }
                == "invalid parameter 'energy[1]' = inf: expected an energy >= 0 (NaN: unknown)")
        #expect(message { _ = try TrackDescriptors(itemCount: 3, tempoBPM: [120]) }
                == "shape mismatch: descriptor column tempoBPM has 1 values for 3 items")
        #expect(message { _ = try TrackDescriptors(itemCount: 3, tracks: [5: .init(tempoBPM: 100)]) }
                == "unknown index: descriptors for item 5 of 3")
        #expect(message { try DescriptorFlow(tempoWeight: -1).validate() }
                == "invalid parameter 'flow.tempoWeight' = -1.0: expected a finite value >= 0")
        #expect(message { try DescriptorFlow(unknownCost: .nan).validate() }
                == "invalid parameter 'flow.unknownCost' = nan: expected a finite value >= 0")
        #expect(message { try DescriptorFlow(exactLimit: 20).validate() }
                == "invalid parameter 'flow.exactLimit' = 20: expected 0...16 tracks")
        let f = try PlaylistFixture.get()
        #expect(message {
            var c = DailyMix.Configuration()
            c.descriptorFlow.keyWeight = .infinity
            _ = try DailyMix(environment: f.environment, configuration: c, day: f.week)
        } == "invalid parameter 'flow.keyWeight' = inf: expected a finite value >= 0")
        #expect(message {
            _ = try DailyMix(environment: f.environment, day: f.week, descriptors: try TrackDescriptors(itemCount: 5))
        } == "shape mismatch: descriptors for 5 items, the catalog has 800")
        #expect(message {
            _ = try DailyMix(environment: f.environment, day: f.week,
                             newTrackSpace: try ItemSpace(name: "hybrid", vectors: Matrix(rows: 4, cols: 2)))
        } == "shape mismatch: the new-track space 'hybrid' has 4 items, the catalog 800")
        let d = try TrackDescriptors(itemCount: 3)
        #expect(message {
            _ = try DescriptorFlow().order([0, 1, 2], kinds: [0, 1, 1], pattern: [0, 0, 1], descriptors: d, catalog: .bare(itemCount: 3))
        } == "shape mismatch: the pattern's kinds do not match the tracks' kinds")
    }
}

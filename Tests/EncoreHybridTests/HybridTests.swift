import Foundation
import Testing
@testable import EncoreCore
@testable import EncoreHybrid

/// Gaussian draws for constructed data.
private func gaussianMatrix(rows: Int, cols: Int, seed: UInt64, scale: Double = 1) -> Matrix {
    var rng = SplitMix64(seed: seed)
    var m = Matrix(rows: rows, cols: cols)
    for i in 0..<m.storage.count { m.storage[i] = Float(rng.nextGaussian() * scale) }
    return m
}

/// `(A + λI)⁻¹ B` in Double by Gauss-Jordan elimination with partial pivoting (`A` is `d x d`, `B` is `d x f`).
private func solveDouble(_ a: [[Double]], _ b: [[Double]]) -> [[Double]] {
    let d = a.count
    var m = a, r = b
    for c in 0..<d {
        let p = (c..<d).max { abs(m[$0][c]) < abs(m[$1][c]) }!
        m.swapAt(c, p); r.swapAt(c, p)
        let inv = 1 / m[c][c]
        m[c] = m[c].map { $0 * inv }; r[c] = r[c].map { $0 * inv }
        for i in 0..<d where i != c {
            let factor = m[i][c]
            guard factor != 0 else { continue }
            for j in 0..<d { m[i][j] -= factor * m[c][j] }
            for j in 0..<r[i].count { r[i][j] -= factor * r[c][j] }
        }
    }
    return r
}

@Suite("Hybrid: ridge regression")
struct RidgeTests {
    @Test("a one-input ridge matches the hand-computed slope and intercept")
    func handComputed() throws {
        // x = 0 1 2 3, y = 1 3 2 6: x̄ = 1.5, ȳ = 3, Σxc² = 5, Σxc·yc = 7, so B = 7 / (5 + λ).
        let x = try Matrix(rows: 4, cols: 1, storage: [0, 1, 2, 3])
        let y = try Matrix(rows: 4, cols: 1, storage: [1, 3, 2, 6])
        let r2 = try RidgeRegression.fit(x: x, y: y, lambda: 2)
        #expect(abs(r2.coefficients[0, 0] - 1) < 1e-6)
        #expect(r2.inputMean == [1.5] && r2.outputMean == [3])
        let p = try r2.predict(try Matrix(rows: 2, cols: 1, storage: [0, 3]))
        #expect(abs(p[0, 0] - 1.5) < 1e-6 && abs(p[1, 0] - 4.5) < 1e-6)
        let r0 = try RidgeRegression.fit(x: x, y: y, lambda: 0)
        #expect(abs(r0.coefficients[0, 0] - 1.4) < 1e-6)
        // Only rows 0, 1 and 3: x̄ = 4/3, ȳ = 10/3, Σxc² = 14/3, Σxc·yc = 23/3, B = 23 / 14 at λ = 0.
        let sub = try RidgeRegression.fit(x: x, y: y, rows: [0, 1, 3], lambda: 0)
        #expect(abs(sub.coefficients[0, 0] - 23.0 / 14) < 1e-5)
        #expect(abs(sub.outputMean[0] - 10.0 / 3) < 1e-6)
    }

    @Test("a multi-output ridge equals the normal equations solved in double precision")
    func bruteForce() throws {
        let m = 30, d = 5, f = 3
        let x = gaussianMatrix(rows: m, cols: d, seed: 1)
        let y = gaussianMatrix(rows: m, cols: f, seed: 2)
        let lambda: Float = 0.7
        let ridge = try RidgeRegression.fit(x: x, y: y, lambda: lambda)
        // Centre in double, form XᵀX + λI and XᵀY by loops, solve by Gauss-Jordan.
        let xm = (0..<d).map { c in (0..<m).reduce(0.0) { $0 + Double(x[$1, c]) } / Double(m) }
        let ym = (0..<f).map { c in (0..<m).reduce(0.0) { $0 + Double(y[$1, c]) } / Double(m) }
        var a = [[Double]](repeating: [Double](repeating: 0, count: d), count: d)
        var b = [[Double]](repeating: [Double](repeating: 0, count: f), count: d)
        for r in 0..<m {
            for i in 0..<d {
                let xi = Double(x[r, i]) - xm[i]
                for j in 0..<d { a[i][j] += xi * (Double(x[r, j]) - xm[j]) }
                for j in 0..<f { b[i][j] += xi * (Double(y[r, j]) - ym[j]) }
            }
        }
        for i in 0..<d { a[i][i] += Double(lambda) }
        let expected = solveDouble(a, b)
        for i in 0..<d { for j in 0..<f { #expect(abs(Double(ridge.coefficients[i, j]) - expected[i][j]) < 1e-4) } }
        // The prediction at the input mean is the output mean (the intercept is not penalised).
        let atMean = try ridge.predict(vector: xm.map(Float.init))
        for j in 0..<f { #expect(abs(Double(atMean[j]) - ym[j]) < 1e-5) }
    }

    @Test("exact linear data is recovered with a tiny penalty")
    func exactLinear() throws {
        let x = gaussianMatrix(rows: 50, cols: 2, seed: 3)
        var y = Matrix(rows: 50, cols: 1)
        for r in 0..<50 { y[r, 0] = 2 + 3 * x[r, 0] - x[r, 1] }
        let ridge = try RidgeRegression.fit(x: x, y: y, lambda: 1e-6)
        #expect(abs(ridge.coefficients[0, 0] - 3) < 1e-4 && abs(ridge.coefficients[1, 0] + 1) < 1e-4)
        #expect(abs(try ridge.predict(vector: [0, 0])[0] - 2) < 1e-4)
    }

    @Test("bad ridge inputs are clear errors")
    func errors() throws {
        let x = try Matrix(rows: 2, cols: 1, storage: [0, 1])
        let y = try Matrix(rows: 3, cols: 1, storage: [0, 1, 2])
        #expect(throws: HybridError.shapeMismatch("ridge inputs have 2 rows, targets 3")) {
            try RidgeRegression.fit(x: x, y: y, lambda: 1)
        }
        let y2 = try Matrix(rows: 2, cols: 1, storage: [0, 1])
        #expect((try? RidgeRegression.fit(x: x, y: y2, lambda: -1)) == nil)
        do {
            _ = try RidgeRegression.fit(x: x, y: y2, lambda: -1)
        } catch {
            #expect(error.description == "invalid parameter 'lambda' = -1.0: expected a finite value >= 0")
        }
        let ridge = try RidgeRegression.fit(x: x, y: y2, lambda: 1)
        #expect(throws: HybridError.shapeMismatch("ridge inputs have 1 columns, the matrix 2")) {
            try ridge.predict(try Matrix(rows: 1, cols: 2, storage: [1, 2]))
        }
    }
}

@Suite("Hybrid: cold-start model")
struct ColdStartModelTests {
    @Test("the combination solver recovers a known non-negative mixture of stacked predictions")
    func mixture() throws {
        let len = 300
        let p = gaussianMatrix(rows: 3, cols: len, seed: 7)
        let target = (0..<len).map { 0.7 * Double(p[0, $0]) + 0.3 * Double(p[1, $0]) }
        func normal(_ y: [Double]) -> ([Double], [Double]) {
            var g = [Double](repeating: 0, count: 9), h = [Double](repeating: 0, count: 3)
            for a in 0..<3 {
                for t in 0..<len { h[a] += Double(p[a, t]) * y[t] }
                for b in 0..<3 { for t in 0..<len { g[a * 3 + b] += Double(p[a, t]) * Double(p[b, t]) } }
            }
            return (g, h)
        }
        let (g, h) = normal(target)
        let w = nonNegativeLeastSquares(gram: g, rhs: h, size: 3)
        #expect(abs(w[0] - 0.7) < 1e-9 && abs(w[1] - 0.3) < 1e-9 && abs(w[2]) < 1e-9)

        // A negative true coefficient: the constrained optimum, checked against a brute-force grid.
        let signed = (0..<len).map { 0.8 * Double(p[0, $0]) - 0.5 * Double(p[1, $0]) + 0.2 * Double(p[2, $0]) }
        let (g2, h2) = normal(signed)
        let w2 = nonNegativeLeastSquares(gram: g2, rhs: h2, size: 3)
        func objective(_ w: [Double]) -> Double {
            (0..<len).reduce(0.0) { s, t in
                let e = (0..<3).reduce(0.0) { $0 + w[$1] * Double(p[$1, t]) } - signed[t]
                return s + e * e
            }
        }
        #expect(w2.allSatisfy { $0 >= 0 })
        #expect(w2[1] == 0)
        var gridBest = Double.infinity
        for a in stride(from: 0.0, through: 1.2, by: 0.02) {
            for c in stride(from: 0.0, through: 0.6, by: 0.02) { gridBest = min(gridBest, objective([a, 0, c])) }
        }
        for b in stride(from: 0.0, through: 0.4, by: 0.05) { gridBest = min(gridBest, objective([w2[0], b, w2[2]])) }
        #expect(objective(w2) <= gridBest + 1e-9)
    }

    @Test("an informative space gets the weight and a noise space none")
    func signalAndNoise() throws {
        let n = 400, f = 4
        let y = gaussianMatrix(rows: n, cols: f, seed: 11)
        // The "good" space is a linear image of the CF vector; the noise space is independent of it.
        let map = gaussianMatrix(rows: f, cols: 6, seed: 12)
        var good = Matrix(rows: n, cols: 6)
        for t in 0..<n { for c in 0..<6 { for k in 0..<f { good[t, c] += y[t, k] * map[k, c] } } }
        let noise = gaussianMatrix(rows: n, cols: 5, seed: 13)
        let listeners = (0..<n).map { $0 < 350 ? 20 : 0 }
        let spaces = [try ContentSpace(name: "good", vectors: good), try ContentSpace(name: "noise", vectors: noise)]
        let model = try ColdStartModel.fit(
            itemFactors: y, listeners: listeners, artists: nil, spaces: spaces, options: ColdStartOptions(seed: 3))
        #expect(model.sourceNames == ["good", "noise"])
        #expect(model.warmTracks == 350 && model.validationTracks == 70 && model.fitTracks == 280)
        #expect(abs(model.weights[0] - 1) < 0.02)
        #expect(model.weights[1] < 0.05)
        #expect(model.validationErrorCombined < 0.01 * model.validationErrorOfMean)
        // Cold tracks (no listeners) are predicted from their content.
        let prediction = try model.predict(artists: nil, spaces: spaces)
        for t in 350..<n {
            #expect(prediction.sourceNames(of: t).first == "good")
            for c in 0..<f { #expect(abs(prediction.vectors[t, c] - y[t, c]) < 0.05) }
        }
        // One new track through the single-track path gives the same vector.
        let one = try #require(try model.predict(content: ["good": good.row(399), "noise": noise.row(399)], artist: nil))
        for c in 0..<f { #expect(abs(one.vector[c] - prediction.vectors[399, c]) < 1e-4) }
    }

    @Test("the artist prior is the mean of the artist's other warm tracks")
    func artistPrior() throws {
        // Artist 0: tracks 0, 1, 2 (warm) and 6 (cold); artist 1: tracks 3, 4, 5 (warm) and 7 (cold); track 8 has
        // no artist. Every track of an artist has the same vector, so the prior is exact and its weight 1.
        let f = 2
        var y = Matrix(rows: 9, cols: f)
        for t in [0, 1, 2] { y.setRow(t, [1, 0]) }
        for t in [3, 4, 5] { y.setRow(t, [0, 1]) }
        let artists: [Int32] = [0, 0, 0, 1, 1, 1, 0, 1, -1]
        let listeners = [10, 10, 10, 10, 10, 10, 0, 0, 0]
        let model = try ColdStartModel.fit(
            itemFactors: y, listeners: listeners, artists: artists, spaces: [],
            options: ColdStartOptions(validationShare: 0.34))
        #expect(model.sourceNames == ["artist"])
        #expect(abs(model.weights[0] - 1) < 1e-5)
        #expect(model.mean == [0.5, 0.5])
        let p = try model.predict(artists: artists, spaces: [])
        for (t, v) in [(6, [Float(1), 0]), (7, [0, 1]), (0, [1, 0]), (4, [0, 1])] {
            #expect(abs(p.vectors[t, 0] - v[0]) < 1e-5 && abs(p.vectors[t, 1] - v[1]) < 1e-5)
            #expect(p.sourceNames(of: t) == ["artist"])
        }
        #expect(!p.hasPrediction(8) && p.vectors.row(8) == [0, 0])

        // Different vectors: a warm track's prior leaves the track out, a cold track's takes every warm track.
        var z = y
        z.setRow(0, [1.5, 0.25]); z.setRow(1, [0.75, -0.25]); z.setRow(2, [1, 0.5])
        let m2 = try ColdStartModel.fit(
            itemFactors: z, listeners: listeners, artists: artists, spaces: [],
            options: ColdStartOptions(validationShare: 0.34))
        let w = m2.weights[0], mu = m2.mean
        try #require(w > 0)
        let p2 = try m2.predict(artists: artists, spaces: [])
        let leaveOut: [Float] = [(0.75 + 1) / 2, (-0.25 + 0.5) / 2]  // track 0: the mean of tracks 1 and 2
        let all: [Float] = [(1.5 + 0.75 + 1) / 3, (0.25 - 0.25 + 0.5) / 3]  // track 6: the mean of tracks 0, 1, 2
        for c in 0..<f {
            #expect(abs(p2.vectors[0, c] - (mu[c] + w * (leaveOut[c] - mu[c]))) < 1e-5)
            #expect(abs(p2.vectors[6, c] - (mu[c] + w * (all[c] - mu[c]))) < 1e-5)
        }
        let single = try #require(try m2.predict(content: [:], artist: 0))
        for c in 0..<f { #expect(abs(single.vector[c] - p2.vectors[6, c]) < 1e-5) }
        #expect(try m2.predict(content: [:], artist: nil) == nil)
    }

    @Test("a model restored from its parameters predicts exactly as the fitted one")
    func restoredFromParameters() throws {
        // Each vector is its artist's centre plus a deviation that only the audio (noisily) sees, so both the
        // artist prior and the audio ridge carry weight.
        let n = 300, f = 3
        let centres = gaussianMatrix(rows: 7, cols: f, seed: 20, scale: 2)
        let deviation = gaussianMatrix(rows: n, cols: f, seed: 21)
        let artists = (0..<n).map { Int32($0 % 7) }
        var y = deviation
        for t in 0..<n { for c in 0..<f { y[t, c] += centres[Int(artists[t]), c] } }
        let map = gaussianMatrix(rows: f, cols: 5, seed: 22)
        var audio = Matrix(rows: n, cols: 5)
        for t in 0..<n { for c in 0..<5 { for k in 0..<f { audio[t, c] += deviation[t, k] * map[k, c] } } }
        let noise = gaussianMatrix(rows: n, cols: 4, seed: 23)
        for t in 0..<n { for c in 0..<5 { audio[t, c] += 0.3 * noise[t, c % 4] } }
        let listeners = (0..<n).map { $0 < 250 ? 3 + $0 % 9 : 0 }
        var present = [Bool](repeating: true, count: n)
        for t in stride(from: 0, to: n, by: 5) { present[t] = false }
        let spaces = [try ContentSpace(name: "audio", vectors: audio, present: present)]
        let fitted = try ColdStartModel.fit(
            itemFactors: y, listeners: listeners, artists: artists, spaces: spaces, options: ColdStartOptions(minListeners: 4, seed: 5))
        try #require(fitted.weights.allSatisfy { $0 > 0 }, "both sources must be used: \(fitted.weights)")
        let p = try fitted.parameters
        #expect(p.sourceNames == ["audio", "artist"] && p.minListeners == 4 && p.priorListeners == 10)
        #expect(p.inputDimensions == ["audio": 5] && p.factors == f)
        let restored = try ColdStartModel(parameters: p, itemFactors: y, listeners: listeners, artists: artists)
        // Every track, warm ones included (their own vector left out of their artist's prior), and the one-track path.
        let a = try fitted.predict(artists: artists, spaces: spaces), b = try restored.predict(artists: artists, spaces: spaces)
        #expect(a.sources == b.sources)
        #expect(zip(a.vectors.storage, b.vectors.storage).allSatisfy { abs($0 - $1) <= 1e-6 * max(1, abs($0)) })
        let one = try #require(try restored.predict(content: ["audio": audio.row(290)], artist: 3))
        let same = try #require(try fitted.predict(content: ["audio": audio.row(290)], artist: 3))
        #expect(one.sources == ["audio", "artist"] && one.vector == same.vector)
        // Parts that disagree are clear errors.
        func message(_ body: () throws -> Void) -> String? {
            do { try body(); return nil } catch { return "\(error)" }
        }
        #expect(message { _ = try ColdStartModel(parameters: p, itemFactors: Matrix(rows: n, cols: 2), listeners: listeners, artists: artists) }
            == "shape mismatch: the model predicts 3 factors, the item factors have 2")
        #expect(message { _ = try ColdStartParameters(sourceNames: ["audio"], weights: [1], mean: [0, 0, 0], ridges: [:], minListeners: 1, priorListeners: 1) }
            == "shape mismatch: the content source 'audio' has weight 1.0 but no ridge")
        #expect(message { _ = try ColdStartParameters(sourceNames: ["artist"], weights: [-1], mean: [0], ridges: [:], minListeners: 1, priorListeners: 1) }
            == "invalid parameter 'weight of 'artist'' = -1.0: expected a finite value >= 0")
    }

    @Test("bad options and inputs are clear errors")
    func errors() throws {
        let y = gaussianMatrix(rows: 4, cols: 2, seed: 1)
        func message(_ body: () throws -> Void) -> String? {
            do { try body(); return nil } catch { return "\(error)" }
        }
        #expect(message { _ = try ColdStartModel.fit(itemFactors: y, listeners: [5, 5, 1, 0], artists: nil, spaces: []) }
            == "only 2 tracks have at least 5 listeners; the cold-start model needs 3 (lower minListeners or give more plays)")
        #expect(message { _ = try ColdStartModel.fit(itemFactors: y, listeners: [5, 5, 5], artists: nil, spaces: []) }
            == "shape mismatch: 3 listener counts for 4 tracks")
        #expect(message {
            _ = try ColdStartModel.fit(itemFactors: y, listeners: [5, 5, 5, 5], artists: nil, spaces: [],
                                       options: ColdStartOptions(validationShare: 1))
        } == "invalid parameter 'validationShare' = 1.0: expected a value in (0, 1)")
        #expect(message {
            _ = try ColdStartModel.fit(itemFactors: y, listeners: [5, 5, 5, 5], artists: nil, spaces: [],
                                       options: ColdStartOptions(ridgeGrid: []))
        } == "invalid parameter 'ridgeGrid' = []: expected one or more finite penalties > 0")
        let wrong = try ContentSpace(name: "text", vectors: Matrix(rows: 3, cols: 2))
        #expect(message { _ = try ColdStartModel.fit(itemFactors: y, listeners: [5, 5, 5, 5], artists: nil, spaces: [wrong]) }
            == "shape mismatch: space 'text' has 3 rows for 4 tracks")
        #expect(message { _ = try ContentSpace(name: "audio", vectors: Matrix(rows: 3, cols: 2), present: [true]) }
            == "shape mismatch: space 'audio': 1 presence flags for 3 rows")
        var bad = Matrix(rows: 1, cols: 2)
        bad[0, 1] = .nan
        #expect(message { _ = try ContentSpace(name: "audio", vectors: bad) }
            == "invalid parameter 'audio[0][1]' = nan: expected a finite vector component")
        #expect(message {
            _ = try ContentSpace.aligning(name: "text", ids: ["a"], vectors: Matrix(rows: 2, cols: 1), to: IDMap())
        } == "shape mismatch: space 'text': 1 ids for 2 vector rows")
    }

    @Test("aligning vectors by id keeps known tracks and marks the rest absent")
    func aligning() throws {
        let items = try IDMap(ids: ["t1", "t2", "t3"])
        let v = try Matrix(rows: 3, cols: 2, storage: [1, 2, 3, 4, 5, 6])
        let s = try ContentSpace.aligning(name: "audio", ids: ["t3", "zz", "t1"], vectors: v, to: items)
        #expect(s.present == [true, false, true])
        #expect(s.vectors.row(0) == [5, 6] && s.vectors.row(1) == [0, 0] && s.vectors.row(2) == [1, 2])
        #expect(s.presentCount == 2)
    }
}

@Suite("Hybrid: evidence blend and item spaces")
struct EvidenceBlendTests {
    static func prediction(_ vectors: Matrix, sources: [UInt32]) -> ColdStartPrediction {
        ColdStartPrediction(vectors: vectors, sources: sources, sourceNames: ["text", "audio", "artist"])
    }

    @Test("the blend moves from the predicted vector to the learned one as listeners arrive")
    func movesWithEvidence() throws {
        let learned: [Float] = [2, 0, 1], predicted: [Float] = [0, 1, -1]
        let counts = [0, 1, 2, 5, 10, 20, 100, 1000, 100_000]
        let k = 10.0
        let l = try Matrix(rows: counts.count, cols: 3, storage: Array(repeating: learned, count: counts.count).flatMap { $0 })
        let p = Self.prediction(
            try Matrix(rows: counts.count, cols: 3, storage: Array(repeating: predicted, count: counts.count).flatMap { $0 }),
            sources: Array(repeating: 0b101, count: counts.count))
        let h = try EvidenceBlend.blend(learned: l, listeners: counts, predicted: p, priorListeners: k)
        func distance(_ a: [Float], _ b: [Float]) -> Float { zip(a, b).map { ($0 - $1) * ($0 - $1) }.reduce(0, +).squareRoot() }
        var previous = Float.infinity
        for (t, n) in counts.enumerated() {
            let v = h.vectors.row(t)
            let d = distance(v, learned)
            #expect(d < previous)  // strictly closer to the learned vector with every new listener
            previous = d
            // Exact value: n / (n + k) learned + k / (n + k) predicted.
            let w = Float(Double(n) / (Double(n) + k))
            for c in 0..<3 { #expect(abs(v[c] - (w * learned[c] + (1 - w) * predicted[c])) < 1e-6) }
        }
        #expect(h.vectors.row(0) == predicted)  // no listener: purely predicted
        #expect(h.provenance[0].kind == .predicted && h.provenance[0].learnedWeight == 0)
        #expect(abs(h.provenance[4].learnedWeight - 0.5) < 1e-7)  // n = k: the midpoint
        #expect(h.vectors.row(4) == [1, 0.5, 0])
        #expect(distance(h.vectors.row(counts.count - 1), learned) < 1e-3)  // heavily played: essentially learned
        #expect(h.describe(2) == "blended(0.17 learned; text+artist)")
        #expect(h.describe(0) == "predicted(text+artist)")
        #expect(EvidenceBlend.learnedWeight(listeners: 3, priorListeners: 10) == Float(3.0 / 13))
        #expect(EvidenceBlend.learnedWeight(listeners: 3, priorListeners: 0) == 1)
    }

    @Test("each track records its provenance, and the item spaces follow it")
    func provenance() throws {
        // Track 0: played, predicted. 1: played, no prediction. 2: unplayed, predicted. 3: neither.
        let l = try Matrix(rows: 4, cols: 2, storage: [1, 1, 2, 2, 0, 0, 0, 0])
        let p = Self.prediction(try Matrix(rows: 4, cols: 2, storage: [3, 3, 0, 0, 4, 4, 0, 0]), sources: [0b010, 0, 0b011, 0])
        let h = try EvidenceBlend.blend(learned: l, listeners: [10, 3, 0, 0], predicted: p, priorListeners: 10)
        #expect(h.provenance.map(\.kind) == [.blended, .learned, .predicted, .none])
        #expect(h.sourceNames(of: 0) == ["audio"] && h.sourceNames(of: 2) == ["text", "audio"] && h.sourceNames(of: 1) == [])
        #expect(h.vectors.row(0) == [2, 2] && h.vectors.row(1) == [2, 2] && h.vectors.row(2) == [4, 4] && h.vectors.row(3) == [0, 0])
        #expect(h.describe(1) == "learned" && h.describe(3) == "none")
        #expect(h.counts() == [.blended: 1, .learned: 1, .predicted: 1, .none: 1])
        // k = 0: a played track keeps its learned vector and is "learned".
        let h0 = try EvidenceBlend.blend(learned: l, listeners: [10, 3, 0, 0], predicted: p, priorListeners: 0)
        #expect(h0.provenance[0].kind == .learned && h0.vectors.row(0) == [1, 1])

        let text = try ContentSpace(name: "text", vectors: Matrix(rows: 4, cols: 3), present: [true, false, true, false])
        let spaces = try ItemSpaces(learned: l, listeners: [10, 3, 0, 0], content: [text], hybrid: h)
        #expect(spaces.names == ["cf", "text", "hybrid"])
        #expect(spaces["cf"]?.metric == .innerProduct && spaces["text"]?.metric == .cosine && spaces["hybrid"]?.metric == .innerProduct)
        #expect(spaces["cf"]?.presentItems == [0, 1])
        #expect(spaces["text"]?.presentItems == [0, 2])
        #expect(spaces["hybrid"]?.presentItems == [0, 1, 2])
        #expect(throws: HybridError.self) {
            try ItemSpaces(learned: l, listeners: [1], content: [], hybrid: h)
        }
        #expect(throws: HybridError.invalidParameter(name: "priorListeners", value: "-1.0", expected: "a finite value >= 0")) {
            try EvidenceBlend.blend(learned: l, listeners: [10, 3, 0, 0], predicted: p, priorListeners: -1)
        }
    }

    @Test("listeners are the distinct users per item column")
    func listeners() throws {
        let m = try CSRMatrix(rows: 3, cols: 3, rowIndices: [0, 0, 1, 2, 2], colIndices: [0, 2, 2, 2, 0], values: [1, 5, 1, 1, 1])
        #expect(ColdStartModel.listeners(userItems: m) == [2, 0, 3])
    }
}

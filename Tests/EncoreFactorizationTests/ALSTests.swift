import Foundation
import Testing
@testable import EncoreCore
@testable import EncoreFactorization

/// Independent reference: the normal equations of one user, built densely in Double over every item and solved by
/// Gaussian elimination with partial pivoting.
private func denseSolve(
    row: Int, c: CSRMatrix, y: Matrix, lambda: Double, alpha: Double, floor: Double = 0
) -> [Double] {
    let f = y.cols
    var a = [[Double]](repeating: [Double](repeating: 0, count: f), count: f)
    var b = [Double](repeating: 0, count: f)
    for i in 0..<y.rows {
        let stored = Double(c.value(row: row, col: Int32(i))) * alpha
        let conf = stored == 0 ? 1.0 : max(abs(stored), floor)
        let pref = stored > 0 ? 1.0 : 0.0
        for j in 0..<f {
            b[j] += conf * pref * Double(y[i, j])
            for k in 0..<f { a[j][k] += conf * Double(y[i, j]) * Double(y[i, k]) }
        }
    }
    for j in 0..<f { a[j][j] += lambda }
    // Gaussian elimination.
    for col in 0..<f {
        let pivot = (col..<f).max { abs(a[$0][col]) < abs(a[$1][col]) }!
        a.swapAt(col, pivot); b.swapAt(col, pivot)
        for r in (col + 1)..<f {
            let m = a[r][col] / a[col][col]
            for k in col..<f { a[r][k] -= m * a[col][k] }
            b[r] -= m * b[col]
        }
    }
    var x = [Double](repeating: 0, count: f)
    for r in stride(from: f - 1, through: 0, by: -1) {
        var s = b[r]
        for k in (r + 1)..<f { s -= a[r][k] * x[k] }
        x[r] = s / a[r][r]
    }
    return x
}

/// A random sparse users x items matrix with play-count-like values.
private func randomMatrix(users: Int, items: Int, density: Double, seed: UInt64) -> CSRMatrix {
    var rng = SplitMix64(seed: seed)
    var r: [Int32] = [], c: [Int32] = [], v: [Float] = []
    for u in 0..<users {
        for i in 0..<items where rng.nextDouble() < density {
            r.append(Int32(u)); c.append(Int32(i)); v.append(Float(1 + rng.next() % 20))
        }
        // Every user plays at least one item.
        r.append(Int32(u)); c.append(Int32(u % items)); v.append(1)
    }
    return try! CSRMatrix(rows: users, cols: items, rowIndices: r, colIndices: c, values: v)
}

/// Two planted taste groups: users 0..<n/2 play items 0..<m/2, the others the rest.
private func plantedMatrix(users: Int, items: Int, perUser: Int, seed: UInt64) -> CSRMatrix {
    var rng = SplitMix64(seed: seed)
    var r: [Int32] = [], c: [Int32] = [], v: [Float] = []
    for u in 0..<users {
        let half = items / 2
        let base = u < users / 2 ? 0 : half
        for _ in 0..<perUser {
            r.append(Int32(u)); c.append(Int32(base + Int(rng.next() % UInt64(half)))); v.append(Float(1 + rng.next() % 5))
        }
    }
    return try! CSRMatrix(rows: users, cols: items, rowIndices: r, colIndices: c, values: v)
}

@Suite struct ALSSolverTests {
    @Test func choleskyAndCGMatchDenseNormalEquations() throws {
        let c = randomMatrix(users: 12, items: 30, density: 0.2, seed: 7)
        let y = Matrix.random(rows: 30, cols: 6, scale: 1, seed: 3)
        for alpha: Float in [1, 2.5] {
            var p = ALSParameters(factors: 6, regularization: 0.1, alpha: alpha, threads: 2)
            let scaled = c.mapValues { $0 * alpha }
            p.solver = .cholesky
            var xChol = Matrix(rows: 12, cols: 6)
            try ImplicitALS.solveSide(scaled, solving: &xChol, given: y, parameters: p)
            p.solver = .cg
            p.cgSteps = 60
            var xCG = Matrix(rows: 12, cols: 6)
            try ImplicitALS.solveSide(scaled, solving: &xCG, given: y, parameters: p)
            for u in 0..<12 {
                let ref = denseSolve(row: u, c: c, y: y, lambda: 0.1, alpha: Double(alpha))
                let scaleRef = ref.map(abs).max()! + 1
                for j in 0..<6 {
                    #expect(abs(Double(xChol[u, j]) - ref[j]) / scaleRef < 1e-3, "cholesky u=\(u) j=\(j)")
                    #expect(abs(Double(xCG[u, j]) - ref[j]) / scaleRef < 1e-3, "cg u=\(u) j=\(j)")
                }
            }
        }
    }

    /// Every kernel version's CG update (portable, AVX2 loops, AVX2 with register accumulators: the last only for f a
    /// multiple of 8) converges to the dense solution, negative examples included, and a few steps agree across
    /// versions up to rounding.
    @Test(arguments: [8, 16, 24, 40, 64, 96, 128, 12])
    func cgKernelVersionsAgreeWithDenseSolve(f: Int) throws {
        var rows: [Int32] = [], cols: [Int32] = [], vals: [Float] = []
        var rng = SplitMix64(seed: UInt64(f))
        let users = 6, items = 3 * f + 20
        for u in 0..<users {
            for i in 0..<items where rng.next() % 3 == 0 {
                rows.append(Int32(u)); cols.append(Int32(i))
                let v = Float(1 + rng.next() % 9) * (rng.next() % 7 == 0 ? -1 : 1)
                vals.append(v)
            }
        }
        let c = try CSRMatrix(rows: users, cols: items, rowIndices: rows, colIndices: cols, values: vals)
        let y = Matrix.random(rows: items, cols: f, scale: 0.3, seed: 5)
        let gram = ImplicitALS.regularizedGram(y, regularization: 0.1, threads: 1)
        func solve(level: Int, steps: Int) -> [[Float]] {
            let scratch = ALSSolvers.Scratch(factors: f)
            return (0..<users).map { u in
                var x = [Float](repeating: 0, count: f)
                for j in 0..<f { x[j] = Float(j % 5) * 0.01 }
                let lo = c.indptr[u], n = c.indptr[u + 1] - lo
                x.withUnsafeMutableBufferPointer { xp in
                    y.storage.withUnsafeBufferPointer { yp in
                        gram.storage.withUnsafeBufferPointer { gp in
                            c.indices.withUnsafeBufferPointer { ip in
                                c.values.withUnsafeBufferPointer { vp in
                                    ALSSolvers.conjugateGradient(
                                        level: level, x: xp.baseAddress!, f: f, gram: gp.baseAddress!,
                                        y: yp.baseAddress!, cols: ip.baseAddress! + lo, vals: vp.baseAddress! + lo,
                                        count: n, steps: steps, r: scratch.r, p: scratch.p, ap: scratch.ap)
                                }
                            }
                        }
                    }
                }
                return x
            }
        }
        let levels = Array(0...Kernels.bestLevel)
        for level in levels {
            let x = solve(level: level, steps: 4 * f)
            for u in 0..<users {
                let ref = denseSolve(row: u, c: c, y: y, lambda: 0.1, alpha: 1)
                let scale = ref.map(abs).max()! + 1
                for j in 0..<f {
                    #expect(abs(Double(x[u][j]) - ref[j]) / scale < 2e-3, "level \(level) f=\(f) u=\(u) j=\(j)")
                }
            }
        }
        let few = levels.map { solve(level: $0, steps: 3) }
        for level in levels.dropFirst() {
            for u in 0..<users {
                let scale = few[0][u].map(abs).max()! + 1e-3
                for j in 0..<f {
                    #expect(abs(few[level][u][j] - few[0][u][j]) / scale < 1e-3, "3 steps, level \(level) f=\(f) u=\(u)")
                }
            }
        }
    }

    @Test func negativeValuesAreNegativeExamples() throws {
        // A stored negative value means p = 0 with confidence |value|.
        var r: [Int32] = [0, 0, 1], cIdx: [Int32] = [1, 3, 2], v: [Float] = [4, -6, 2]
        let c = try CSRMatrix(rows: 2, cols: 8, rowIndices: r, colIndices: cIdx, values: v)
        r = []; cIdx = []; v = []
        let y = Matrix.random(rows: 8, cols: 4, scale: 1, seed: 11)
        let p = ALSParameters(factors: 4, regularization: 0.05, solver: .cholesky, threads: 1)
        var x = Matrix(rows: 2, cols: 4)
        try ImplicitALS.solveSide(c, solving: &x, given: y, parameters: p)
        let ref = denseSolve(row: 0, c: c, y: y, lambda: 0.05, alpha: 1)
        for j in 0..<4 { #expect(abs(Double(x[0, j]) - ref[j]) < 1e-3) }
    }

    @Test func lossMatchesBruteForceObjective() throws {
        let c = randomMatrix(users: 10, items: 14, density: 0.3, seed: 5)
        var model = ImplicitALS(parameters: ALSParameters(factors: 4, regularization: 0.2, alpha: 3, iterations: 2, seed: 9, threads: 1))
        try model.fit(c)
        var total = 0.0, positiveConfidence = 0.0
        for u in 0..<10 {
            for i in 0..<14 {
                let r = Double(c.value(row: u, col: Int32(i)))
                let conf = r > 0 ? 3 * r : 1
                if r > 0 { positiveConfidence += conf }
                let pref = r > 0 ? 1.0 : 0.0
                var s = 0.0
                for j in 0..<4 { s += Double(model.userFactors[u, j]) * Double(model.itemFactors[i, j]) }
                total += conf * (pref - s) * (pref - s)
            }
        }
        var norms = 0.0
        for v in model.userFactors.storage + model.itemFactors.storage { norms += Double(v * v) }
        total += 0.2 * norms
        let expected = total / (positiveConfidence + 140 - Double(c.nnz))
        #expect(abs(model.loss(c) - expected) / expected < 1e-4)
    }

    @Test(arguments: [ALSSolver.cg, .cholesky])
    func lossDecreases(solver: ALSSolver) throws {
        let c = plantedMatrix(users: 80, items: 60, perUser: 10, seed: 2)
        var model = ImplicitALS(parameters: ALSParameters(
            factors: 8, regularization: 0.05, iterations: 8, solver: solver, seed: 1, threads: 2, calculateLoss: true))
        let reports = try model.fit(c)
        let losses = reports.compactMap(\.loss)
        #expect(losses.count == 8)
        #expect(losses.last! < losses.first!)
        if solver == .cholesky {
            // Exact ALS never increases the objective.
            for (a, b) in zip(losses, losses.dropFirst()) { #expect(b <= a * (1 + 1e-4)) }
        }
    }

    @Test func fitIsDeterministicForSeedAndThreads() throws {
        let c = randomMatrix(users: 40, items: 30, density: 0.2, seed: 8)
        let p = ALSParameters(factors: 5, iterations: 3, seed: 77, threads: 2)
        var a = ImplicitALS(parameters: p), b = ImplicitALS(parameters: p)
        try a.fit(c); try b.fit(c)
        #expect(a.userFactors == b.userFactors)
        #expect(a.itemFactors == b.itemFactors)
        var other = p; other.seed = 78
        var d = ImplicitALS(parameters: other)
        try d.fit(c)
        #expect(d.userFactors != a.userFactors)
    }

    @Test func invalidParametersAreRejected() {
        var m = ImplicitALS(parameters: ALSParameters(factors: 0))
        #expect(throws: FactorizationError.self) { try m.fit(randomMatrix(users: 3, items: 3, density: 0.5, seed: 1)) }
        m = ImplicitALS(parameters: ALSParameters(factors: 2, regularization: -1))
        #expect(throws: FactorizationError.self) { try m.fit(randomMatrix(users: 3, items: 3, density: 0.5, seed: 1)) }
        for floor: Float in [-1, .nan, .infinity] {
            #expect(throws: FactorizationError.invalidParameter("confidence floor must be >= 0, got \(floor)")) {
                try ALSParameters(confidenceFloor: floor).validate()
            }
        }
    }
}

/// Values of play-count-like weights below and above 1, as BM25 gives: `(0.05, 2)`.
private func smallWeights(users: Int, items: Int, seed: UInt64) -> CSRMatrix {
    var rng = SplitMix64(seed: seed)
    var r: [Int32] = [], c: [Int32] = [], v: [Float] = []
    for u in 0..<users {
        for i in 0..<items where rng.nextDouble() < 0.3 || i == u % items {
            r.append(Int32(u)); c.append(Int32(i)); v.append(Float(0.05 + 1.95 * rng.nextDouble()))
        }
    }
    return try! CSRMatrix(rows: users, cols: items, rowIndices: r, colIndices: c, values: v)
}

@Suite struct ConfidenceFloorTests {
    @Test func confidenceRaisesSmallMagnitudesAndKeepsTheSign() {
        let p = ALSParameters(alpha: 2, confidenceFloor: 1)
        // alpha * value, its magnitude raised to 1; zero counts as a negative example.
        let cases: [(Float, Float)] = [(0.3, 1), (0.5, 1), (0.7, 1.4), (3, 6), (-0.2, -1), (-3, -6), (0, -1)]
        for (value, expected) in cases { #expect(p.confidence(value) == expected, "value \(value)") }
        let implicitRule = ALSParameters(alpha: 2, confidenceFloor: 0)
        for value: Float in [0.3, 0.7, 3, -0.2, -3] { #expect(implicitRule.confidence(value) == 2 * value) }
        #expect(ALSParameters().confidenceFloor == 0)
    }

    @Test func fitWithTheFloorIsTheFitOfRaisedValues() throws {
        // The floor acts on confidences only: fitting raw weights with floor 1 is fitting max(w, 1) with floor 0.
        let raw = smallWeights(users: 30, items: 24, seed: 6)
        #expect(raw.values.contains { $0 < 1 } && raw.values.contains { $0 > 1 })
        let raised = raw.mapValues { max($0, 1) }
        func fit(_ m: CSRMatrix, floor: Float, solver: ALSSolver) throws -> ImplicitALS {
            var model = ImplicitALS(parameters: ALSParameters(
                factors: 4, regularization: 0.1, iterations: 4, solver: solver, seed: 5, threads: 2,
                confidenceFloor: floor))
            try model.fit(m)
            return model
        }
        for solver in ALSSolver.allCases {
            let floored = try fit(raw, floor: 1, solver: solver)
            let reference = try fit(raised, floor: 0, solver: solver)
            #expect(floored.userFactors == reference.userFactors, "\(solver)")
            #expect(floored.itemFactors == reference.itemFactors, "\(solver)")
            let implicitRule = try fit(raw, floor: 0, solver: solver)
            #expect(implicitRule.userFactors != floored.userFactors, "\(solver)")
        }
    }

    @Test func foldInAndRefitUseTheFloor() throws {
        let data = smallWeights(users: 20, items: 16, seed: 9)
        var model = ImplicitALS(parameters: ALSParameters(
            factors: 4, regularization: 0.1, alpha: 1, iterations: 5, solver: .cholesky, seed: 2, threads: 1,
            confidenceFloor: 1))
        try model.fit(data)
        let h = ImplicitALS.history(of: 3, in: data)
        #expect(h.values.contains { $0 < 1 })
        let x = try model.foldIn(items: h.items, values: h.values)
        let ref = denseSolve(row: 3, c: data, y: model.itemFactors, lambda: 0.1, alpha: 1, floor: 1)
        let implicitRef = denseSolve(row: 3, c: data, y: model.itemFactors, lambda: 0.1, alpha: 1, floor: 0)
        for j in 0..<4 { #expect(abs(Double(x[j]) - ref[j]) < 1e-3 * (abs(ref[j]) + 1)) }
        // The two rules give different vectors here, so the comparison above can fail.
        #expect(zip(ref, implicitRef).contains { abs($0 - $1) > 1e-2 * (abs($0) + 1) })
        // An exact refit of the user is the same solve.
        var refit = model
        try refit.refitUsers([3], userItems: data)
        for j in 0..<4 { #expect(abs(Double(refit.userFactors[3, j]) - ref[j]) < 1e-3 * (abs(ref[j]) + 1)) }
    }

    @Test func parametersDecodedWithoutTheFloorUseImplicitsRule() throws {
        let p = ALSParameters(factors: 7, alpha: 3, confidenceFloor: 0.5)
        let data = try JSONEncoder().encode(p)
        #expect(try JSONDecoder().decode(ALSParameters.self, from: data) == p)
        var object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        object["confidenceFloor"] = nil
        let old = try JSONDecoder().decode(ALSParameters.self, from: JSONSerialization.data(withJSONObject: object))
        #expect(old.confidenceFloor == 0 && old.factors == 7 && old.alpha == 3)
    }
}

@Suite struct ALSQueryTests {
    let data = plantedMatrix(users: 100, items: 80, perUser: 12, seed: 4)

    func fitted(_ solver: ALSSolver = .cholesky, iterations: Int = 15) throws -> ImplicitALS {
        var model = ImplicitALS(parameters: ALSParameters(
            factors: 8, regularization: 0.1, alpha: 2, iterations: iterations, solver: solver, seed: 3, threads: 2))
        try model.fit(data)
        return model
    }

    @Test func foldInReproducesConvergedTrainingVector() throws {
        let model = try fitted(.cholesky, iterations: 60)
        for u: Int32 in [0, 17, 63, 99] {
            let h = ImplicitALS.history(of: u, in: data)
            let x = try model.foldIn(items: h.items, values: h.values)
            let trained = model.userFactors.row(Int(u))
            let norm = trained.map { $0 * $0 }.reduce(0, +).squareRoot()
            let diff = zip(x, trained).map { ($0 - $1) * ($0 - $1) }.reduce(0, +).squareRoot()
            #expect(diff / norm < 1e-2, "user \(u): relative difference \(diff / norm)")
        }
    }

    @Test func foldInMatchesDenseSolve() throws {
        let model = try fitted()
        let h = ImplicitALS.history(of: 5, in: data)
        let x = try model.foldIn(items: h.items, values: h.values)
        let ref = denseSolve(row: 5, c: data, y: model.itemFactors, lambda: 0.1, alpha: 2)
        for j in 0..<8 { #expect(abs(Double(x[j]) - ref[j]) < 1e-3 * (abs(ref[j]) + 1)) }
        // Repeated items are summed.
        let doubled = try model.foldIn(items: h.items + h.items, values: h.values.map { $0 / 2 } + h.values.map { $0 / 2 })
        for j in 0..<8 { #expect(abs(doubled[j] - x[j]) < 1e-4) }
        #expect(throws: FactorizationError.self) { try model.foldIn(items: [999], values: [1]) }
        #expect(throws: FactorizationError.self) { try model.foldIn(items: [1], values: [.nan]) }
    }

    @Test func explanationSharesSumToTheScore() throws {
        let model = try fitted()
        let h = ImplicitALS.history(of: 12, in: data)
        let x = try model.foldIn(items: h.items, values: h.values)
        for item: Int32 in [0, 3, 41, 79] {
            let e = try model.explain(item: item, items: h.items, values: h.values)
            let sum = e.contributions.map(\.score).reduce(0, +)
            #expect(abs(sum - e.score) < 1e-4 * (abs(e.score) + 1))
            let direct = zip(x, model.itemFactors.row(Int(item))).map(*).reduce(0, +)
            #expect(abs(direct - e.score) < 1e-3 * (abs(direct) + 0.1))
            let shares = e.contributions.map(\.share).reduce(0, +)
            #expect(abs(shares - 1) < 1e-3)
            #expect(e.contributions.count == h.items.count)
            for (a, b) in zip(e.contributions, e.contributions.dropFirst()) { #expect(a.score >= b.score) }
        }
    }

    @Test func recommendMatchesBruteForceAndFilters() throws {
        let model = try fitted(.cg)
        for u: Int32 in [0, 50, 99] {
            let rec = try model.recommend(user: u, k: 10, userItems: data)
            let played = Set(data.columns(ofRow: Int(u)))
            var brute: [(Int32, Float)] = []
            for i in 0..<80 where !played.contains(Int32(i)) {
                brute.append((Int32(i), zip(model.userFactors.row(Int(u)), model.itemFactors.row(i)).map(*).reduce(0, +)))
            }
            brute.sort { $0.1 > $1.1 }
            #expect(rec.items.count == 10)
            #expect(Set(rec.items).isDisjoint(with: played))
            for (got, want) in zip(rec.scores, brute.prefix(10).map(\.1)) { #expect(abs(got - want) < 1e-4) }
            // The planted structure: recommendations come from the user's own half.
            let own = rec.items.filter { (u < 50) == ($0 < 40) }.count
            #expect(own >= 9)
        }
        let deny = Set(try model.recommend(user: 3, k: 3, userItems: data).items)
        let denied = try model.recommend(user: 3, k: 10, userItems: data, deny: deny)
        #expect(Set(denied.items).isDisjoint(with: deny))
        let allowed = try model.recommend(user: 3, k: 10, userItems: data, allow: [1, 2, 70, 71])
        #expect(Set(allowed.items).isSubset(of: [1, 2, 70, 71]))
        let unfiltered = try model.recommend(user: 3, k: 80, userItems: nil, filterAlreadyLiked: false)
        #expect(unfiltered.items.count == 80)
        #expect(throws: FactorizationError.self) { try model.recommend(user: 100, k: 3, userItems: data) }
    }

    @Test func batchRecommendEqualsSingle() throws {
        let model = try fitted(.cg)
        var rng = SplitMix64(seed: 99)
        let users: [Int32] = Array(0..<100).map(Int32.init).shuffled(using: &rng)
        let batch = try model.recommend(users: users, k: 7, userItems: data)
        for (u, ranked) in zip(users, batch) {
            let single = try model.recommend(user: u, k: 7, userItems: data)
            #expect(ranked.items == single.items)
        }
    }

    @Test func similarItemsMatchBruteForceCosine() throws {
        let model = try fitted()
        let sim = try model.similarItems(to: 10, k: 5)
        #expect(!sim.items.contains(10))
        func cos(_ a: [Float], _ b: [Float]) -> Float {
            zip(a, b).map(*).reduce(0, +) / (a.map { $0 * $0 }.reduce(0, +).squareRoot() * b.map { $0 * $0 }.reduce(0, +).squareRoot())
        }
        let ref = (0..<80).filter { $0 != 10 }.map { (Int32($0), cos(model.itemFactors.row(10), model.itemFactors.row($0))) }
            .sorted { $0.1 > $1.1 }
        #expect(sim.items == ref.prefix(5).map(\.0))
        let withSelf = try model.similarItems(to: 10, k: 1, includeSelf: true)
        #expect(withSelf.items == [10])
        #expect(abs(withSelf.scores[0] - 1) < 1e-5)
        let users = try model.similarUsers(to: 0, k: 10)
        #expect(users.items.allSatisfy { $0 < 50 })
    }

    @Test func refitUsersSolvesChangedAndNewUsers() throws {
        var model = try fitted()
        // A new user (row 100) who plays item 2 a lot, and user 0 with a new history.
        var r = Array(0..<data.rows).flatMap { u in Array(repeating: Int32(u), count: data.count(ofRow: u)) }
        var c = data.indices, v = data.values
        r.append(100); c.append(2); v.append(10)
        let grown = try CSRMatrix(rows: 101, cols: 80, rowIndices: r, colIndices: c, values: v)
        try model.refitUsers([100], userItems: grown)
        #expect(model.userCount == 101)
        let folded = try model.foldIn(items: [2], values: [10])
        for j in 0..<8 { #expect(abs(model.userFactors[100, j] - folded[j]) < 1e-5) }
        r = []; c = []; v = []
        // Refitting items gives the exact solve for those items.
        let before = model.itemFactors.row(4)
        try model.refitItems([4], itemUsers: grown.transposed())
        #expect(model.itemFactors.row(4) != before)
    }
}


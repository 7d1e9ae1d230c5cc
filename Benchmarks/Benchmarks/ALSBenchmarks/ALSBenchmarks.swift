import Benchmark
import RecCore

/// A random users x items matrix with a power-law item popularity, like play counts.
func syntheticPlays(users: Int, items: Int, perUser: Int, seed: UInt64) -> CSRMatrix {
    var rng = SplitMix64(seed: seed)
    var r: [Int32] = [], c: [Int32] = [], v: [Float] = []
    r.reserveCapacity(users * perUser); c.reserveCapacity(users * perUser); v.reserveCapacity(users * perUser)
    for u in 0..<users {
        for _ in 0..<perUser {
            // Zipf-like: the square of a uniform variate concentrates on low indices.
            let x = rng.nextDouble()
            r.append(Int32(u)); c.append(Int32(Double(items - 1) * x * x)); v.append(Float(1 + rng.next() % 8))
        }
    }
    return (try? CSRMatrix(rows: users, cols: items, rowIndices: r, colIndices: c, values: v))
        ?? (try! CSRMatrix(rows: 0, cols: 0, indptr: [0], indices: [], values: []))
}

let benchmarks: @Sendable () -> Void = {
    let plays = syntheticPlays(users: 20_000, items: 10_000, perUser: 40, seed: 1)
    Benchmark.defaultConfiguration = .init(metrics: [.wallClock, .mallocCountTotal, .peakMemoryResident], maxDuration: .seconds(20), maxIterations: 10)

    for solver in ALSSolver.allCases {
        Benchmark("ALS iteration, 20k users x 10k items, 64 factors, \(solver.rawValue)") { benchmark in
            var model = ImplicitALS(parameters: ALSParameters(factors: 64, iterations: 1, solver: solver, seed: 1))
            benchmark.startMeasurement()
            _ = try model.fit(plays)
            benchmark.stopMeasurement()
        }
    }

    var trained = ImplicitALS(parameters: ALSParameters(factors: 64, iterations: 3, seed: 1))
    _ = try? trained.fit(plays)
    let model = trained
    let history = ImplicitALS.history(of: 7, in: plays)

    Benchmark("fold-in of a 40-item history, 64 factors", configuration: .init(maxIterations: 10_000)) { benchmark in
        for _ in benchmark.scaledIterations { blackHole(try model.foldIn(items: history.items, values: history.values)) }
    }
    Benchmark("recommend top-10 for 1 000 users (batch)") { benchmark in
        let users = (0..<1000).map(Int32.init)
        blackHole(try model.recommend(users: users, k: 10, userItems: plays))
    }
    Benchmark("explain one (user, item)", configuration: .init(maxIterations: 10_000)) { benchmark in
        for _ in benchmark.scaledIterations { blackHole(try model.explain(item: 3, items: history.items, values: history.values)) }
    }
}

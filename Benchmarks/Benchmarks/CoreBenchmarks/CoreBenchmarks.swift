import Benchmark
import Foundation
import RecCore

// The play-log loader and the HNSW index, timed by package-benchmark (formerly environment-gated tests).
//
// - Loader: loads `ENCORE_LOADER_BENCH` (a play log, e.g. Last.fm 360K's usersha1-artmbid-artname-plays.tsv) when
//   set, else a generated 2M-row `user\titem\tweight` file in the temporary directory.
// - HNSW: builds an index over clustered vectors (`ENCORE_HNSW_BENCH=ROWSxDIM`, default 100000x64, metric from
//   `ENCORE_HNSW_BENCH_METRIC`: l2, cosine or ip) and times 1 000 single-thread queries at ef 64; the recall at
//   that ef is printed once. For recall/QPS sweeps on real factor sets use `encore-train ann-bench` and
//   `Benchmarks/compare_ann.py`.

/// A generated play log of `rows` rows (users and items drawn with a skew), written once per process.
func generatedPlayLog(rows: Int) throws -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("encore-bench-plays-\(rows).tsv").path
    if FileManager.default.fileExists(atPath: path) { return path }
    var rng = SplitMix64(seed: 7)
    var text = "user\titem\tweight\n"
    text.reserveCapacity(rows * 24)
    for _ in 0..<rows {
        let x = rng.nextDouble()
        text += "u\(rng.next() % 50_000)\tt\(Int(200_000 * x * x))\t\(1 + rng.next() % 30)\n"
    }
    try text.write(toFile: path, atomically: true, encoding: .utf8)
    return path
}

/// `n` vectors of dimension `dim` around 100 random centers.
func clusteredVectors(_ n: Int, _ dim: Int, seed: UInt64) -> [Float] {
    var rng = SplitMix64(seed: seed)
    let centers = (0..<(100 * dim)).map { _ in Float(rng.nextDouble() * 2 - 1) }
    var out = [Float](repeating: 0, count: n * dim)
    for i in 0..<n {
        let c = Int(rng.next() % 100)
        for d in 0..<dim { out[i * dim + d] = centers[c * dim + d] + Float(rng.nextDouble() - 0.5) * 0.3 }
    }
    return out
}

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(metrics: [.wallClock, .peakMemoryResident], maxDuration: .seconds(60), maxIterations: 5)
    let env = ProcessInfo.processInfo.environment

    Benchmark("Play-log load (ENCORE_LOADER_BENCH or a generated 2M-row log)") { benchmark in
        let path = try env["ENCORE_LOADER_BENCH"] ?? generatedPlayLog(rows: 2_000_000)
        let format = try DelimitedFormat.guess(path: path)
        benchmark.startMeasurement()
        let (log, _) = try DelimitedLoader.load(path: path, format: format)
        benchmark.stopMeasurement()
        blackHole(log.count)
    }

    let shape = (env["ENCORE_HNSW_BENCH"] ?? "100000x64").split(separator: "x").compactMap { Int($0) }
    let n = shape.first ?? 100_000, dim = shape.count > 1 ? shape[1] : 64, nq = 1_000
    let metric = VectorMetric(rawValue: env["ENCORE_HNSW_BENCH_METRIC"] ?? "l2") ?? .l2
    let all = clusteredVectors(n + nq, dim, seed: 1)

    Benchmark("HNSW build \(n)x\(dim) \(metric.rawValue), M 16, efConstruction 200, all cores") { benchmark in
        let data = try Matrix(rows: n, cols: dim, storage: Array(all[0..<(n * dim)]))
        let index = try HNSWIndex(dimension: dim, metric: metric, m: 16, efConstruction: 200, seed: 1, capacity: n)
        benchmark.startMeasurement()
        try index.add(ids: (0..<Int32(n)).map { $0 }, vectors: data)
        benchmark.stopMeasurement()
        blackHole(index.count)
    }

    Benchmark("HNSW 1000 queries \(n)x\(dim) \(metric.rawValue), k 10, ef 64, one thread",
              configuration: .init(metrics: [.wallClock], maxDuration: .seconds(30), maxIterations: 10)) { benchmark in
        let data = try Matrix(rows: n, cols: dim, storage: Array(all[0..<(n * dim)]))
        let index = try HNSWIndex(dimension: dim, metric: metric, m: 16, efConstruction: 200, seed: 1, capacity: n)
        try index.add(ids: (0..<Int32(n)).map { $0 }, vectors: data)
        let exact = try ExactIndex(vectors: data, metric: metric)
        let queries = (0..<nq).map { q in Array(all[((n + q) * dim)..<((n + q + 1) * dim)]) }
        var found: [[Neighbor]] = []
        benchmark.startMeasurement()
        for q in queries { found.append(try index.search(q, k: 10, ef: 64)) }
        benchmark.stopMeasurement()
        var hits = 0
        for (q, got) in zip(queries, found) {
            let want = Set(try exact.search(q, k: 10).map(\.id))
            hits += got.filter { want.contains($0.id) }.count
        }
        print("HNSW recall@10 at ef 64: \(Double(hits) / Double(nq * 10))")
    }
}

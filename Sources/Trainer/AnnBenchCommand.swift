import ArgumentParser
import Foundation
import Logging
import RecCore

/// `encore-train ann-bench`: recall and speed of the HNSW index against exact search, on NumPy vectors.
struct AnnBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ann-bench",
        abstract: "Benchmark the HNSW index: build time, memory, and recall@k and single-thread QPS per ef.",
        discussion: """
            Reads float32 (or float64) NumPy .npy files, computes the exact k nearest neighbors of every query with \
            ExactIndex (batched sgemm on all threads), builds an HNSWIndex over the base vectors, then for each ef \
            searches the queries one at a time on one thread. Recall counts ties: a result whose distance is within \
            1e-6 (relative) of the k-th true distance is a hit. QPS is the median of --runs timed passes (in rounds over \
            the whole ef list), after an untimed pass that measures recall.
            """)

    @Option(help: "Base vectors: an .npy file, rows x dimension, <f4 or <f8.")
    var base: String

    @Option(help: "Query vectors: an .npy file with the base's dimension.")
    var queries: String

    @Option(help: "Distance: cosine, l2 (squared Euclidean) or ip (inner product).")
    var metric: VectorMetric = .cosine

    @Option(help: "Neighbors per query.")
    var k: Int = 10

    @Option(help: "How an ip index builds its graph: mobius (the default), norm-augmented, or plain (hnswlib's ip space). Ignored for cosine and l2.")
    var ipGraph: InnerProductGraph = .mobius

    @Option(help: "none (the default), or int8: the graph walk ranks by 8-bit codes of the vectors (a per-vector scale), then the ef candidates are re-ranked by exact float distances.")
    var quantization: VectorQuantization = .none

    @Option(help: "HNSW links per node (2M on level 0).")
    var m: Int = 16

    @Option(help: "HNSW candidate-list size while building.")
    var efConstruction: Int = 200

    @Option(help: "Comma-separated candidate-list sizes to search with.")
    var ef: String = "10,20,40,80,160"

    @Option(help: "Threads for the ground truth and the build (0 = every core). Queries are always timed on one thread.")
    var threads: Int = 0

    @Option(help: "Use only the first N queries (0 = all).")
    var limitQueries: Int = 0

    @Option(help: "Timed passes over the queries per ef; the median QPS is reported.")
    var runs: Int = 3

    @Option(help: "Seed of the HNSW level generator.")
    var seed: UInt64 = 42

    @Option(help: "Write the results as JSON to this file.")
    var json: String?

    @Flag(help: "Also time saving the exact index as an IndexFile and opening it with every checksum verified (a temporary file).")
    var measureIo = false

    @Flag(help: "Stop after the exact search (and --measure-io): time ExactIndex alone, without building HNSW.")
    var exactOnly = false

    @Option(help: "Write the HNSW result ids of each ef to <prefix>-ef<ef>.npy (queries x k, float32, -1 where fewer than k), for recounting recall elsewhere.")
    var saveResults: String?

    /// The parsed `--ef` list.
    var efValues: [Int] {
        get throws {
            let parts = ef.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            var out: [Int] = []
            for p in parts {
                guard let v = Int(p), v >= 1 else { throw ValidationError("--ef: '\(p)' is not a positive integer (expected e.g. 10,20,40)") }
                out.append(v)
            }
            return out
        }
    }

    func validate() throws {
        guard k >= 1 else { throw ValidationError("--k must be at least 1, got \(k)") }
        guard m >= 2 else { throw ValidationError("--m must be at least 2, got \(m)") }
        guard efConstruction >= m else { throw ValidationError("--ef-construction (\(efConstruction)) must be at least --m (\(m))") }
        guard threads >= 0 else { throw ValidationError("--threads must be >= 0, got \(threads)") }
        guard limitQueries >= 0 else { throw ValidationError("--limit-queries must be >= 0, got \(limitQueries)") }
        guard runs >= 1 else { throw ValidationError("--runs must be at least 1, got \(runs)") }
        _ = try efValues
    }

    func run() throws {
        let logger = TrainerLogging.logger()
        let efs = try efValues
        let threadCount = threads > 0 ? threads : Parallel.coreCount
        if threadCount == 1 { BLAS.setThreads(1) }

        let baseVectors = try NumPyArray.read(path: base)
        var queryVectors = try NumPyArray.read(path: queries)
        guard baseVectors.rows > 0, baseVectors.cols > 0 else { throw TrainerError("\(base): no base vectors (shape \(baseVectors.rows) x \(baseVectors.cols))") }
        guard queryVectors.cols == baseVectors.cols else {
            throw TrainerError("dimension mismatch: the base vectors (\(base)) have \(baseVectors.cols) values each, the queries (\(queries)) \(queryVectors.cols)")
        }
        if limitQueries > 0 && queryVectors.rows > limitQueries {
            queryVectors = try Matrix(rows: limitQueries, cols: queryVectors.cols,
                                      storage: Array(queryVectors.storage.prefix(limitQueries * queryVectors.cols)))
        }
        let n = baseVectors.rows, d = baseVectors.cols, nq = queryVectors.rows
        guard nq > 0 else { throw TrainerError("\(queries): no query vectors") }
        guard n <= Int(Int32.max) else { throw TrainerError("\(base): too many vectors (\(n))") }
        logger.info("ann-bench", metadata: [
            "base": .string(base), "n": "\(n)", "dimension": "\(d)", "queries": "\(nq)", "metric": .string(metric.rawValue),
            "k": "\(k)", "threads": "\(threadCount)",
        ])

        // Ground truth, in chunks of queries for progress.
        let clock = ContinuousClock()
        let exact = try ExactIndex(vectors: baseVectors, metric: metric)
        var truth: [[Neighbor]] = []
        truth.reserveCapacity(nq)
        let gtStart = clock.now
        let chunk = max(256, nq / 50)
        let gtProgress = ProgressReporter(stage: "ground truth", total: nq, logger: logger)
        var q0 = 0
        while q0 < nq {
            let q1 = min(nq, q0 + chunk)
            let block = try Matrix(rows: q1 - q0, cols: d, storage: Array(queryVectors.storage[(q0 * d)..<(q1 * d)]))
            truth += try exact.search(queries: block, k: k, threads: threadCount)
            q0 = q1
            gtProgress.update(q0)
        }
        let gtSeconds = seconds(clock.now - gtStart)
        logger.info("ground truth", metadata: ["seconds": .string(String(format: "%.2f", gtSeconds))])

        var io: [String: Double] = [:]
        if measureIo { io = try Self.measureIndexFile(exact, logger: logger) }
        if exactOnly {
            let flops = 2.0 * Double(n) * Double(nq) * Double(d)
            print("""
                ann-bench --exact-only: base \(n) x \(d) (\(base)), \(nq) queries, metric \(metric.rawValue), k \(k)
                ExactIndex, \(threadCount) threads: \(String(format: "%.3f", gtSeconds)) s, \(String(format: "%.0f", Double(nq) / gtSeconds)) queries/s, \(String(format: "%.1f", flops / gtSeconds / 1e9)) GFLOP/s (dot products)
                """)
            if let w = io["write_seconds"], let o = io["open_seconds"], let bytes = io["bytes"] {
                print(String(format: "index file (exact, %.0f MiB): write %.3f s (%.2f GB/s incl. fsync), open with checksums %.3f s (%.2f GB/s)",
                             bytes / 1_048_576, w, bytes / w / 1e9, o, bytes / o / 1e9))
            }
            if let json {
                let object: [String: Any] = [
                    "library": "encore", "base": base, "queries": queries, "n": n, "dimension": d, "query_count": nq,
                    "metric": metric.rawValue, "k": k, "threads": threadCount, "ground_truth_seconds": gtSeconds,
                    "index_file_io": io,
                ]
                let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
                try data.write(to: URL(fileURLWithPath: json))
            }
            return
        }

        // Build, in batches for progress (each batch inserts on all threads).
        let index = try HNSWIndex(
            dimension: d, metric: metric, m: m, efConstruction: efConstruction, seed: seed, capacity: n,
            innerProductGraph: ipGraph, quantization: quantization)
        let batch = max(5_000, (n + 19) / 20)
        let buildProgress = ProgressReporter(stage: "build", total: n, logger: logger)
        let buildStart = clock.now
        var b0 = 0
        while b0 < n {
            let b1 = min(n, b0 + batch)
            let rows = try Matrix(rows: b1 - b0, cols: d, storage: Array(baseVectors.storage[(b0 * d)..<(b1 * d)]))
            try index.add(ids: (Int32(b0)..<Int32(b1)).map { $0 }, vectors: rows, threads: threadCount)
            b0 = b1
            buildProgress.update(b0)
        }
        let buildSeconds = seconds(clock.now - buildStart)
        let memory = index.memoryUsage
        logger.info("built", metadata: [
            "seconds": .string(String(format: "%.2f", buildSeconds)), "memory_bytes": "\(memory)",
            "bytes_per_vector": .string(String(format: "%.1f", Double(memory) / Double(n))),
        ])

        // Searches, queries one at a time on this thread: for each ef one untimed pass that measures recall, then
        // `runs` rounds of one timed pass per ef (rounds outside, so a burst of load from elsewhere spreads over the efs).
        let queryRows = (0..<nq).map { queryVectors.row($0) }
        let searchProgress = ProgressReporter(stage: "search", total: efs.count * (runs + 1), logger: logger)
        var recalls: [Double] = []
        for (e, efValue) in efs.enumerated() {
            var found: [[Neighbor]] = []
            found.reserveCapacity(nq)
            for q in queryRows { found.append(try index.search(q, k: k, ef: efValue, filter: nil)) }
            recalls.append(Self.recall(found: found, truth: truth, k: k))
            if let saveResults {
                var ids = [Float](repeating: -1, count: nq * k)
                for (i, row) in found.enumerated() { for (j, nb) in row.prefix(k).enumerated() { ids[i * k + j] = Float(nb.id) } }
                try NumPyArray.write(try Matrix(rows: nq, cols: k, storage: ids), to: "\(saveResults)-ef\(efValue).npy")
            }
            searchProgress.update(e + 1, fields: [("ef", "\(efValue)")])
        }
        var qpsRuns = [[Double]](repeating: [], count: efs.count)
        for r in 0..<runs {
            for (e, efValue) in efs.enumerated() {
                let start = clock.now
                for q in queryRows { _ = try index.search(q, k: k, ef: efValue, filter: nil) }
                qpsRuns[e].append(Double(nq) / seconds(clock.now - start))
                searchProgress.update(efs.count * (r + 1) + e + 1, fields: [("ef", "\(efValue)")])
            }
        }
        let results = efs.indices.map { EfResult(ef: efs[$0], recall: recalls[$0], qps: median(qpsRuns[$0]), qpsRuns: qpsRuns[$0]) }

        // Report.
        var out = """
            ann-bench: base \(n) x \(d) (\(base)), \(nq) queries (\(queries)), metric \(metric.rawValue)\(metric == .innerProduct ? " (\(index.innerProductGraph.rawValue) graph)" : "")\(quantization == .none ? "" : ", \(quantization.rawValue) walk"), k \(k)
            ground truth (ExactIndex, \(threadCount) threads): \(String(format: "%.2f", gtSeconds)) s, \(String(format: "%.0f", Double(nq) / gtSeconds)) queries/s
            HNSW build (M \(m), efConstruction \(efConstruction), \(threadCount) threads): \(String(format: "%.2f", buildSeconds)) s, \(String(format: "%.0f", Double(n) / buildSeconds)) vectors/s
            memory: \(String(format: "%.1f", Double(memory) / 1_048_576)) MiB, \(String(format: "%.1f", Double(memory) / Double(n))) bytes/vector (vectors alone \(4 * d))

            """
        if let w = io["write_seconds"], let o = io["open_seconds"], let bytes = io["bytes"] {
            out += String(format: "index file (exact, %.0f MiB): write %.3f s (%.2f GB/s incl. fsync), open with checksums %.3f s (%.2f GB/s)\n",
                          bytes / 1_048_576, w, bytes / w / 1e9, o, bytes / o / 1e9)
        }
        func pad(_ s: String, _ w: Int) -> String { String(repeating: " ", count: max(0, w - s.count)) + s }
        out += [pad("ef", 6), pad("recall@\(k)", 10), pad("QPS", 10), pad("ms/query", 10)].joined(separator: "  ") + "\n"
        for r in results {
            out += String(format: "%6d  %10.4f  %10.0f  %10.4f\n", r.ef, r.recall, r.qps, 1000 / r.qps)
        }
        print(out, terminator: "")

        if let json {
            let object: [String: Any] = [
                "library": "encore", "encore_version": Encore.version, "base": base, "queries": queries, "n": n, "dimension": d,
                "query_count": nq, "metric": metric.rawValue, "ip_graph": index.innerProductGraph.rawValue,
                "quantization": index.quantization.rawValue, "k": k, "m": m, "ef_construction": efConstruction,
                "threads": threadCount, "seed": seed, "runs": runs, "ground_truth_seconds": gtSeconds,
                "build_seconds": buildSeconds, "memory_bytes": memory, "bytes_per_vector": Double(memory) / Double(n),
                "peak_rss_mib": peakResidentMiB(), "avx2_kernels": Kernels.usesAVX2,
                "index_file_io": io,
                "results": results.map { ["ef": $0.ef, "recall": $0.recall, "qps": $0.qps, "qps_runs": $0.qpsRuns] },
            ]
            let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
            do { try data.write(to: URL(fileURLWithPath: json)) } catch {
                throw TrainerError("\(json): cannot write the JSON results: \(error.localizedDescription)")
            }
        }
    }

    /// Saves `exact` to a temporary index file, then opens it (mapping it and verifying every checksum), timing both.
    static func measureIndexFile(_ exact: ExactIndex, logger: Logger) throws -> [String: Double] {
        let path = NSTemporaryDirectory() + "/encore-ann-bench-\(getpid()).encoreix"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let clock = ContinuousClock()
        let w0 = clock.now
        try exact.save(to: path)
        let write = seconds(clock.now - w0)
        // Best of 3 opens (the file is in the page cache after the write: this measures the checksum, not the disk).
        var open = Double.infinity
        var size = 0
        for _ in 0..<3 {
            let o0 = clock.now
            let file = try IndexFile.open(path: path, expectedKind: ExactIndex.fileKind)
            open = min(open, seconds(clock.now - o0))
            size = file.fileSize
        }
        logger.info("index file", metadata: [
            "bytes": "\(size)", "write_s": .string(String(format: "%.3f", write)), "open_s": .string(String(format: "%.3f", open)),
        ])
        return ["bytes": Double(size), "write_seconds": write, "open_seconds": open]
    }

    /// One row of the sweep.
    struct EfResult {
        var ef: Int
        var recall: Double
        var qps: Double
        var qpsRuns: [Double]
    }

    /// Mean recall@k over queries, counting ties: a result is a hit when its id is among the true `k`, or its distance
    /// is at most the `k`-th true distance plus 1e-6 of its magnitude. Each query counts `min(k, true count)` slots.
    static func recall(found: [[Neighbor]], truth: [[Neighbor]], k: Int) -> Double {
        var total = 0.0
        var counted = 0
        for (got, want) in zip(found, truth) {
            let slots = min(k, want.count)
            guard slots > 0 else { continue }
            let kth = want[slots - 1].distance
            let limit = kth + 1e-6 * max(abs(kth), Float.leastNormalMagnitude)
            let ids = Set(want.prefix(slots).map(\.id))
            var hits = 0
            var seen = Set<Int32>()
            for nb in got.prefix(slots) where seen.insert(nb.id).inserted {
                if ids.contains(nb.id) || nb.distance <= limit { hits += 1 }
            }
            total += Double(hits) / Double(slots)
            counted += 1
        }
        return counted == 0 ? 0 : total / Double(counted)
    }
}

private func seconds(_ d: Duration) -> Double {
    Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
}

private func median(_ xs: [Double]) -> Double {
    let s = xs.sorted()
    guard !s.isEmpty else { return 0 }
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}

extension VectorMetric: ExpressibleByArgument {}
extension InnerProductGraph: ExpressibleByArgument {}
extension VectorQuantization: ExpressibleByArgument {}

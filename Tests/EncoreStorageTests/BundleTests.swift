import Foundation
import Testing


#if canImport(Glibc)
import Glibc
@testable import EncoreCore
import EncoreData
import EncoreTestSupport
@testable import EncoreFactorization
@testable import EncorePlaylists
@testable import EncoreStorage
#endif

// MARK: - Fixtures

/// A fresh directory under the system temporary folder, removed after `body`.
private func withBundleTempDirectory<R>(_ body: (String) throws -> R) throws -> R {
    let dir = FileManager.default.temporaryDirectory
        .appendingPathComponent("encore-bundle-tests-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer {
        _ = chmod(dir, 0o755)
        try? FileManager.default.removeItem(atPath: dir)
    }
    return try body(dir)
}

/// A matrix of standard-normal values from a seeded generator.
private func gaussianMatrix(rows: Int, cols: Int, seed: UInt64) -> Matrix {
    var m = Matrix(rows: rows, cols: cols)
    var rng = SplitMix64(seed: seed)
    for i in 0..<m.storage.count { m.storage[i] = Float(rng.nextGaussian()) }
    return m
}

/// A small bundle with unicode ids, an empty id, empty CSR rows and signed random factors.
private func sampleBundle(users: Int = 9, items: Int = 23, factors: Int = 5, seed: UInt64 = 7) throws -> ModelBundle {
    let special = ["Zoë", "ユーザー", "🎧 listener", "user with spaces", "Ünïcødé/slash"]
    let userIDs = try IDMap(ids: (0..<users).map { $0 < special.count ? special[$0] : "user-\($0)" })
    let itemSpecial = ["Björk — Jóga", "", "曲 #2", String(repeating: "long", count: 100), "tab\there"]
    let itemIDs = try IDMap(ids: (0..<items).map { $0 < itemSpecial.count ? itemSpecial[$0] : "track:\($0)" })
    var rng = SplitMix64(seed: seed)
    var rowIdx: [Int32] = [], colIdx: [Int32] = [], vals: [Float] = []
    for u in 0..<users where u % 3 != 1 {  // rows 1, 4, 7, ... stay empty
        for i in 0..<items where rng.nextDouble() < 0.3 {
            rowIdx.append(Int32(u))
            colIdx.append(Int32(i))
            vals.append(Float(1 + Int(rng.next() % 20)))
        }
    }
    let csr = try CSRMatrix(rows: users, cols: items, rowIndices: rowIdx, colIndices: colIdx, values: vals)
    let parameters = ALSParameters(
        factors: factors, regularization: 0.05, alpha: 40, iterations: 12, solver: .cholesky, cgSteps: 4,
        seed: UInt64.max - 3, threads: 2, calculateLoss: true, confidenceFloor: 0.75)
    let model = try ImplicitALS(
        parameters: parameters, userFactors: gaussianMatrix(rows: users, cols: factors, seed: seed + 1),
        itemFactors: gaussianMatrix(rows: items, cols: factors, seed: seed + 2))
    return ModelBundle(
        userIDs: userIDs, itemIDs: itemIDs, model: model, userItems: csr,
        metrics: ["precision@10": 0.125, "ndcg@10": 0.3141592653589793, "map@10": 0, "coverage": 0.87],
        metadata: ["input": "plays — été.csv", "weighting": "bm25", "created_at": "2024-05-06T07:08:09Z",
                   "note": "multi\nline"])
}

/// The error `read(from:)` throws for `path`, or `nil` when it succeeds.
private func readError(_ path: String) -> BundleError? {
    do {
        _ = try ModelBundle.read(from: path)
        return nil
    } catch {
        return error
    }
}

/// The error `inspect(path:)` throws for `path`, or `nil` when it succeeds.
private func inspectError(_ path: String) -> BundleError? {
    do {
        _ = try ModelBundle.inspect(path: path)
        return nil
    } catch {
        return error
    }
}

/// The error writing `bundle` throws, or `nil` when it succeeds.
private func writeError(_ bundle: ModelBundle, _ path: String, _ options: BundleWriteOptions = .init()) -> BundleError? {
    do {
        try bundle.write(to: path, options: options)
        return nil
    } catch {
        return error
    }
}

/// Names of leftover temporary files in `dir`.
private func temporaryFiles(in dir: String) -> [String] {
    ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.contains(".tmp-") }
}

/// Top-`n` unplayed items for user `u`: scores in Double, ties by lower index (the Python script's rule).
private func recommend(_ bundle: ModelBundle, user u: Int, n: Int) -> [Int] {
    let uf = bundle.model.userFactors, itf = bundle.model.itemFactors
    let played = Set(bundle.userItems.columns(ofRow: u).map(Int.init))
    var scored: [(Int, Double)] = []
    for i in 0..<itf.rows where !played.contains(i) {
        var s = 0.0
        for k in 0..<uf.cols { s += Double(uf[u, k]) * Double(itf[i, k]) }
        scored.append((i, s))
    }
    scored.sort { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0 < $1.0 }
    return scored.prefix(n).map(\.0)
}

// MARK: - Python / h5py environment

private enum PythonForBundles {
    /// Tests/python/check_bundle.py, found from this file's location.
    static var script: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("python/check_bundle.py").path
    }
}

// MARK: - Tests

@Suite("Model bundle (HDF5)")
struct BundleTests {
    // MARK: Round trip

    @Test("every field survives a write and a read")
    func roundTrip() throws {
        try withBundleTempDirectory { dir in
            let path = dir + "/model.h5"
            let bundle = try sampleBundle()
            try bundle.write(to: path)
            let back = try ModelBundle.read(from: path)
            #expect(back.userIDs == bundle.userIDs)
            #expect(back.itemIDs == bundle.itemIDs)
            #expect(back.model.parameters == bundle.model.parameters)
            #expect(back.model.userFactors == bundle.model.userFactors)
            #expect(back.model.itemFactors == bundle.model.itemFactors)
            #expect(back.userItems == bundle.userItems)
            #expect(back.userItems.count(ofRow: 1) == 0)
            #expect(back.metrics == bundle.metrics)
            #expect(back.metadata == bundle.metadata)
            #expect(back.libraryVersion == Encore.version)
            #expect(back.formatVersion == Encore.bundleFormatVersion)
            #expect(back.createdAt == "2024-05-06T07:08:09Z")
            #expect(back == bundle)
            #expect(back.userIDs.index(of: "ユーザー") == 1)
            #expect(back.itemIDs.index(of: "") == 1)
        }
    }

    @Test("a bundle written before the confidence floor existed reads as floor 0, implicit's rule it was fitted with")
    func bundleWithoutConfidenceFloor() throws {
        try withBundleTempDirectory { dir in
            let path = dir + "/model.h5"
            try sampleBundle().write(to: path)
            #expect(try ModelBundle.read(from: path).model.parameters.confidenceFloor == 0.75)
            var file = try HDF5File.open(at: path, writable: true)
            let stored = file.hasAttribute("confidence_floor", on: BundleLayout.cf)
            #expect(stored)
            try file.removeAttribute("confidence_floor", on: BundleLayout.cf)
            try file.close()
            let back = try ModelBundle.read(from: path)
            #expect(back.model.parameters.confidenceFloor == 0)
            #expect(back.model.parameters.alpha == 40)
        }
    }

    @Test("the confidence context round-trips; BM25 item norms that do not fit the items are refused")
    func confidenceContext() throws {
        try withBundleTempDirectory { dir in
            var bundle = try sampleBundle()
            try bundle.write(to: dir + "/none.h5")
            #expect(try ModelBundle.read(from: dir + "/none.h5").confidence == nil)
            bundle.confidence = ConfidenceContext(weighting: .bm25(k1: 100, b: 0.8), rawUserItems: bundle.userItems)
            #expect(bundle.confidence?.itemLengthNorms.count == bundle.itemIDs.count)
            try bundle.write(to: dir + "/bm25.h5")
            let back = try ModelBundle.read(from: dir + "/bm25.h5")
            #expect(back.confidence == bundle.confidence)
            #expect(back == bundle)
            bundle.confidence = ConfidenceContext(weighting: .bm25(k1: 100, b: 0.8))
            let error = writeError(bundle, dir + "/broken.h5")
            #expect(error?.description.contains("/cf/weighting/item_length_norm") == true, "\(String(describing: error))")
            #expect(error?.description.contains("0 item norms for 23 items") == true, "\(String(describing: error))")
        }
    }

    @Test("compressed CSR arrays, empty matrices and no metrics round-trip")
    func roundTripEdgeCases() throws {
        try withBundleTempDirectory { dir in
            // Compressed layout (threshold 1), a stamped created_at.
            var bundle = try sampleBundle(users: 40, items: 60, factors: 3)
            bundle.metadata["created_at"] = nil
            let path = dir + "/compressed.h5"
            try bundle.write(to: path, options: BundleWriteOptions(compressionThreshold: 1, compressionLevel: 4))
            let back = try ModelBundle.read(from: path)
            #expect(back == bundle)
            #expect(back.createdAt?.hasPrefix("20") == true)
            #expect(back.metadata["created_at"] == nil)

            // No interactions and no metrics or metadata.
            let users = try IDMap(ids: ["a", "b"])
            let items = try IDMap(ids: ["x"])
            let empty = try CSRMatrix(rows: 2, cols: 1, indptr: [0, 0, 0], indices: [], values: [])
            let model = try ImplicitALS(
                parameters: ALSParameters(factors: 2), userFactors: Matrix(rows: 2, cols: 2),
                itemFactors: Matrix(rows: 1, cols: 2))
            let small = ModelBundle(userIDs: users, itemIDs: items, model: model, userItems: empty)
            let smallPath = dir + "/small.h5"
            try small.write(to: smallPath)
            #expect(try ModelBundle.read(from: smallPath) == small)
        }
    }

    @Test("inspect reports versions, counts, parameters and metrics")
    func inspectSummary() throws {
        try withBundleTempDirectory { dir in
            let path = dir + "/model.h5"
            let bundle = try sampleBundle()
            try bundle.write(to: path)
            let summary = try ModelBundle.inspect(path: path)
            #expect(summary.formatVersion == Encore.bundleFormatVersion)
            #expect(summary.libraryVersion == Encore.version)
            #expect(summary.createdAt == "2024-05-06T07:08:09Z")
            #expect(summary.userCount == bundle.userIDs.count)
            #expect(summary.itemCount == bundle.itemIDs.count)
            #expect(summary.interactionCount == bundle.userItems.nnz)
            #expect(summary.parameters == bundle.model.parameters)
            #expect(summary.metrics == bundle.metrics)
            #expect(summary.metadata == bundle.metadata)
            #expect(summary.fileSize > 0)
            #expect(summary.description.contains("precision@10"))
        }
    }

    // MARK: Atomic writes

    @Test("a write leaves no temporary file and replaces the previous bundle whole")
    func atomicReplace() throws {
        try withBundleTempDirectory { dir in
            let path = dir + "/model.h5"
            let first = try sampleBundle(seed: 1)
            try first.write(to: path)
            let second = try sampleBundle(users: 12, seed: 2)
            try second.write(to: path)
            #expect(try ModelBundle.read(from: path) == second)
            #expect(temporaryFiles(in: dir).isEmpty)
            #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["model.h5"])
        }
    }

    @Test("a failed write keeps the previous bundle and removes its temporary file",
          arguments: ["/", BundleLayout.items, BundleLayout.itemFactors, BundleLayout.data, BundleLayout.meta, "close"])
    func failedWriteKeepsPrevious(failBefore: String) throws {
        try withBundleTempDirectory { dir in
            let path = dir + "/model.h5"
            let previous = try sampleBundle(seed: 1)
            try previous.write(to: path)
            let error = writeError(try sampleBundle(seed: 2), path, BundleWriteOptions(failBefore: failBefore))
            #expect(error?.path == path)
            #expect(try ModelBundle.read(from: path) == previous)
            #expect(temporaryFiles(in: dir).isEmpty)
        }
    }

    @Test("writing into a missing directory fails cleanly")
    func writeIntoMissingDirectory() throws {
        try withBundleTempDirectory { dir in
            let path = dir + "/no/such/dir/model.h5"
            let error = writeError(try sampleBundle(), path)
            guard case .io(let p, _, let reason)? = error else {
                Issue.record("expected an io error, got \(String(describing: error))")
                return
            }
            #expect(p == path)
            #expect(reason.contains("does not exist"))
        }
    }

    @Test("writing into a read-only directory fails and keeps the previous bundle",
          .enabled(if: geteuid() != 0, "root ignores directory permissions"))
    func writeIntoReadOnlyDirectory() throws {
        try withBundleTempDirectory { dir in
            let path = dir + "/model.h5"
            let previous = try sampleBundle(seed: 1)
            try previous.write(to: path)
            #expect(chmod(dir, 0o555) == 0)
            defer { _ = chmod(dir, 0o755) }
            let error = writeError(try sampleBundle(seed: 2), path)
            #expect(error != nil)
            #expect(error?.description.contains(path) == true)
            #expect(try ModelBundle.read(from: path) == previous)
            #expect(temporaryFiles(in: dir).isEmpty)
        }
    }

    @Test("a rename that fails (the destination is a directory) removes the temporary file")
    func renameFailureCleansUp() throws {
        try withBundleTempDirectory { dir in
            let path = dir + "/model.h5"
            try FileManager.default.createDirectory(atPath: path + "/occupied", withIntermediateDirectories: true)
            let error = writeError(try sampleBundle(), path)
            guard case .io(let p, let operation, _)? = error else {
                Issue.record("expected an io error, got \(String(describing: error))")
                return
            }
            #expect(p == path)
            #expect(operation.contains("rename"))
            #expect(temporaryFiles(in: dir).isEmpty)
        }
    }

    @Test("an inconsistent bundle is rejected before any file is written")
    func inconsistentBundleNotWritten() throws {
        try withBundleTempDirectory { dir in
            let path = dir + "/model.h5"
            var bundle = try sampleBundle()
            bundle.userIDs.intern("one-too-many")
            let error = writeError(bundle, path)
            guard case .shapeMismatch(_, let object, _)? = error else {
                Issue.record("expected a shape mismatch, got \(String(describing: error))")
                return
            }
            #expect(object == BundleLayout.userFactors)
            #expect(try FileManager.default.contentsOfDirectory(atPath: dir).isEmpty)

            var nul = try sampleBundle()
            nul.metadata["bad"] = "a\u{0}b"
            guard case .invalidData(_, let nulObject, _)? = writeError(nul, path) else {
                Issue.record("expected invalid data for a NUL character")
                return
            }
            #expect(nulObject == "/meta@bad")
        }
    }

    // MARK: Damaged and foreign files

    @Test("a truncated bundle fails with a BundleError at every cut")
    func truncatedBundle() throws {
        try withBundleTempDirectory { dir in
            let path = dir + "/model.h5"
            try sampleBundle(users: 30, items: 50).write(to: path)
            let data = try Data(contentsOf: URL(fileURLWithPath: path))
            let n = data.count
            let cuts = Set([0, 1, 7, 8, 64, 96, 200, 512, 800, 1024, 2048, n / 4, n / 3, n / 2, 2 * n / 3, n - 512,
                            n - 64, n - 8, n - 1]).filter { $0 >= 0 && $0 < n }.sorted()
            for cut in cuts {
                let cutPath = dir + "/cut-\(cut).h5"
                try data.prefix(cut).write(to: URL(fileURLWithPath: cutPath))
                let error = readError(cutPath)
                #expect(error != nil, "a bundle cut at \(cut) of \(n) bytes was read")
                #expect(error?.path == cutPath)
                #expect(inspectError(cutPath) != nil)
                if cut >= 2048, let error {
                    guard case .unreadable(_, let reason) = error else {
                        Issue.record("cut at \(cut): expected unreadable, got \(error)")
                        continue
                    }
                    #expect(reason.contains("truncated"), "\(reason)")
                }
            }
        }
    }

    @Test("foreign files fail with a message saying they are not HDF5")
    func foreignFiles() throws {
        try withBundleTempDirectory { dir in
            var rng = SplitMix64(seed: 42)
            let random = Data((0..<4096).map { _ in UInt8(truncatingIfNeeded: rng.next()) })
            let files: [(String, Data)] = [
                ("random.bin", random),
                ("notes.txt", Data("user,item,plays\nu1,i1,3\n".utf8)),
                ("empty.h5", Data()),
            ]
            for (name, contents) in files {
                let path = dir + "/" + name
                try contents.write(to: URL(fileURLWithPath: path))
                let error = readError(path)
                #expect(error == .notHDF5(path: path), "\(name): \(String(describing: error))")
                #expect(error?.description.contains("not an HDF5 file") == true)
                #expect(error?.description.contains(path) == true)
            }
            #expect(readError(dir + "/missing.h5") == .fileNotFound(path: dir + "/missing.h5"))
            guard case .unreadable(let p, _)? = readError(dir) else {
                Issue.record("a directory should be unreadable")
                return
            }
            #expect(p == dir)
        }
    }

    @Test("an HDF5 file without Encore's root attributes is not a bundle")
    func hdf5WithoutEncoreAttributes() throws {
        try withBundleTempDirectory { dir in
            let path = dir + "/other.h5"
            var file = try HDF5File.create(at: path)
            try file.write([Float](repeating: 1, count: 6), shape: [2, 3], at: "/data/x")
            try file.setAttribute("creator", string: "someone else", on: "/")
            try file.close()
            let error = readError(path)
            guard case .notABundle(let p, let reason)? = error else {
                Issue.record("expected notABundle, got \(String(describing: error))")
                return
            }
            #expect(p == path)
            #expect(reason.contains("encore_format_version"))
            #expect(reason.contains("creator"))
            #expect(error?.description.contains("not an Encore model bundle") == true)
        }
    }

    @Test("another format version fails with a message naming both versions", arguments: [Int64(0), 2, 99])
    func wrongFormatVersion(version: Int64) throws {
        try withBundleTempDirectory { dir in
            let path = dir + "/model.h5"
            try sampleBundle().write(to: path)
            var file = try HDF5File.open(at: path, writable: true)
            try file.setAttribute("encore_format_version", scalar: version, on: "/")
            try file.setAttribute("encore_version", string: "9.9.9", on: "/")
            try file.close()
            for error in [readError(path), inspectError(path)] {
                #expect(
                    error == .unsupportedFormatVersion(path: path, found: version,
                                                       supported: Encore.bundleFormatVersion, writtenBy: "9.9.9"))
                let text = error?.description ?? ""
                #expect(text.contains("format version \(version)"))
                #expect(text.contains("format version \(Encore.bundleFormatVersion) only"))
                #expect(text.contains(version > 1 ? "upgrade Encore" : "retrain"))
            }
        }
    }

    /// Rewrites one part of a valid bundle with the HDF5 layer and returns the read error.
    private func tamperedReadError(_ tamper: (borrowing HDF5File) throws(BundleError) -> Void) throws -> BundleError? {
        try withBundleTempDirectory { dir in
            let path = dir + "/model.h5"
            try sampleBundle().write(to: path)
            var file = try HDF5File.open(at: path, writable: true)
            try tamper(file)
            try file.close()
            return readError(path)
        }
    }

    @Test("the stored listener counts (/cf/item_listeners) must be the training matrix's")
    func itemListenersAreChecked() throws {
        let b = try sampleBundle()
        let counted = b.itemListeners.map { Int32($0) }
        #expect(!b.isUserShard && counted.count == b.itemIDs.count && counted.reduce(0, +) == Int32(b.userItems.nnz))
        var changed = counted
        changed[0] += 1
        let wrong = try tamperedReadError { file throws(BundleError) in
            try file.write(changed, shape: [changed.count], at: BundleLayout.itemListeners)
        }
        #expect(wrong?.description.contains("/cf/item_listeners: invalid: item 0 has \(changed[0]) listeners recorded, \(counted[0]) in /cf/user_items") == true,
                "\(String(describing: wrong))")
        let short = try tamperedReadError { file throws(BundleError) in
            try file.write(Array(counted.dropLast()), shape: [counted.count - 1], at: BundleLayout.itemListeners)
        }
        #expect({ if case .shapeMismatch(_, BundleLayout.itemListeners, _)? = short { true } else { false } }(), "\(String(describing: short))")
    }

    @Test("inconsistent shapes, missing datasets, wrong types and invalid values are rejected")
    func tamperedBundles() throws {
        let b = try sampleBundle()
        let users = b.userIDs.count, items = b.itemIDs.count, k = b.model.parameters.factors

        let rows = try tamperedReadError { file throws(BundleError) in
            try file.write([Float](repeating: 0, count: (users + 1) * k), shape: [users + 1, k], at: BundleLayout.userFactors)
        }
        guard case .shapeMismatch(_, let object, let reason)? = rows else {
            Issue.record("extra user-factor row: \(String(describing: rows))")
            return
        }
        #expect(object == BundleLayout.userFactors)
        #expect(reason.contains("expected [\(users), \(k)]"))
        #expect(rows?.description.contains("model.h5: /cf/user_factors") == true)

        let cols = try tamperedReadError { file throws(BundleError) in
            try file.write([Float](repeating: 0, count: items * (k + 1)), shape: [items, k + 1], at: BundleLayout.itemFactors)
        }
        #expect({ if case .shapeMismatch(_, BundleLayout.itemFactors, _)? = cols { true } else { false } }())

        let factorsAttribute = try tamperedReadError { file throws(BundleError) in
            try file.setAttribute("factors", scalar: Int64(k + 2), on: BundleLayout.cf)
        }
        #expect({ if case .shapeMismatch(_, BundleLayout.userFactors, _)? = factorsAttribute { true } else { false } }())

        let indptr = try tamperedReadError { file throws(BundleError) in
            try file.write([Int64](repeating: 0, count: users), shape: [users], at: BundleLayout.indptr)
        }
        #expect({ if case .shapeMismatch(_, BundleLayout.indptr, _)? = indptr { true } else { false } }())

        let data = try tamperedReadError { file throws(BundleError) in
            try file.write([Float](repeating: 1, count: 3), shape: [3], at: BundleLayout.data)
        }
        #expect({ if case .shapeMismatch(_, BundleLayout.data, _)? = data { true } else { false } }())

        let csrShape = try tamperedReadError { file throws(BundleError) in
            try file.setAttribute("shape", array: [Int64(users), Int64(items + 1)], on: BundleLayout.userItems)
        }
        #expect({ if case .shapeMismatch(_, "/cf/user_items@shape", _)? = csrShape { true } else { false } }())

        let missing = try tamperedReadError { file throws(BundleError) in try file.delete(BundleLayout.itemFactors) }
        #expect(missing == .missingObject(path: missing?.path ?? "", object: BundleLayout.itemFactors))

        let missingAttribute = try tamperedReadError { file throws(BundleError) in
            try file.delete(BundleLayout.cf + "/user_items")
        }
        #expect({ if case .missingObject? = missingAttribute { true } else { false } }())

        let wrongType = try tamperedReadError { file throws(BundleError) in
            try file.write(b.userItems.indices.map(Float.init), shape: [b.userItems.nnz], at: BundleLayout.indices)
        }
        guard case .wrongType(_, let typeObject, _, let found)? = wrongType else {
            Issue.record("float indices: \(String(describing: wrongType))")
            return
        }
        #expect(typeObject == BundleLayout.indices)
        #expect(found.contains("float32"))

        let duplicate = try tamperedReadError { file throws(BundleError) in
            var ids = b.itemIDs.ids
            ids[3] = ids[2]
            try file.write(strings: ids, at: BundleLayout.items)
        }
        #expect({ if case .invalidData(_, BundleLayout.items, _)? = duplicate { true } else { false } }())

        let outOfRange = try tamperedReadError { file throws(BundleError) in
            var indices = b.userItems.indices
            indices[indices.count - 1] = Int32(items + 5)
            try file.write(indices, shape: [indices.count], at: BundleLayout.indices)
        }
        #expect({ if case .invalidData(_, BundleLayout.userItems, _)? = outOfRange { true } else { false } }())

        let solver = try tamperedReadError { file throws(BundleError) in
            try file.setAttribute("solver", string: "sgd", on: BundleLayout.cf)
        }
        #expect({ if case .invalidData(_, "/cf@solver", _)? = solver { true } else { false } }())

        let metric = try tamperedReadError { file throws(BundleError) in
            try file.setAttribute("recall@10", string: "high", on: BundleLayout.eval)
        }
        #expect({ if case .wrongType(_, "/eval@recall@10", _, _)? = metric { true } else { false } }())
    }

    // MARK: The HDF5 layer

    @Test("the HDF5 layer writes and reads every element type, shape and attribute kind")
    func hdf5LayerRoundTrip() throws {
        try withBundleTempDirectory { dir in
            let path = dir + "/layer.h5"
            var file = try HDF5File.create(at: path)
            try file.write([Float](arrayLiteral: 1.5, -2, 3e-8), shape: [3], at: "/a/b/c/floats")
            try file.write((0..<12).map { Int32($0) - 6 }, shape: [3, 4], at: "/a/ints32",
                           compression: .deflate(level: 3, shuffle: true))
            try file.write([Int64.min, 0, Int64.max], shape: [3], at: "/a/ints64")
            try file.write([UInt8](0...255), shape: [16, 16], at: "/bytes", compression: .deflate(level: 1, shuffle: false))
            try file.write([Double](), shape: [0, 4], at: "/empty")
            try file.write(strings: ["α", "", "c"], shape: [3, 1], at: "/strings")
            try file.createGroup("/g/h")
            try file.setAttribute("name", string: "ünï", on: "/g/h")
            try file.setAttribute("count", scalar: Int64(-3), on: "/a/ints32")
            try file.setAttribute("ratio", scalar: 0.25, on: "/")
            try file.setAttribute("floats", array: [Float](arrayLiteral: 1, 2, 3), on: "/g")
            try file.setAttribute("ratio", scalar: 0.5, on: "/")  // replaces
            try file.close()

            let r = try HDF5File.open(at: path)
            #expect(try r.read(Float.self, at: "/a/b/c/floats").values == [1.5, -2, 3e-8])
            let ints = try r.read(Int32.self, at: "/a/ints32")
            #expect(ints.shape == [3, 4])
            #expect(ints.values == (0..<12).map { Int32($0) - 6 })
            #expect(try r.read(Int64.self, at: "/a/ints32").values.last == 5)  // int32 widens to Int64
            #expect(try r.read(Int64.self, at: "/a/ints64").values == [Int64.min, 0, Int64.max])
            #expect(try r.read(UInt8.self, at: "/bytes").values == [UInt8](0...255))
            let empty = try r.read(Double.self, at: "/empty")
            #expect(empty.shape == [0, 4] && empty.values.isEmpty)
            let strings = try r.readStrings(at: "/strings")
            #expect(strings.values == ["α", "", "c"] && strings.shape == [3, 1])
            #expect(try r.stringAttribute("name", on: "/g/h") == "ünï")
            #expect(try r.scalarAttribute(Int64.self, "count", on: "/a/ints32") == -3)
            #expect(try r.scalarAttribute(Double.self, "ratio", on: "/") == 0.5)
            #expect(try r.arrayAttribute(Float.self, "floats", on: "/g") == [1, 2, 3])
            #expect(try r.attributeNames(on: "/") == ["ratio"])
            #expect(try r.children(of: "/") == ["a", "bytes", "empty", "g", "strings"])
            #expect(r.kind(of: "/g/h") == .group)
            #expect(r.kind(of: "/bytes") == .dataset)
            #expect(r.kind(of: "/nope/deeper") == nil)
            #expect(try r.typeDescription(of: "/a/ints64") == "int64")

            func error(_ body: () throws(BundleError) -> Void) -> BundleError? {
                do {
                    try body()
                    return nil
                } catch {
                    return error
                }
            }
            #expect(error { () throws(BundleError) in _ = try r.read(Float.self, at: "/missing") } == .missingObject(path: path, object: "/missing"))
            #expect(error { () throws(BundleError) in _ = try r.read(Float.self, at: "/a/ints32") }
                == .wrongType(path: path, object: "/a/ints32", expected: "a dataset of float32", found: "a dataset of int32"))
            #expect(error { () throws(BundleError) in _ = try r.read(Float.self, at: "/g") }
                == .wrongType(path: path, object: "/g", expected: "a dataset", found: "a group"))
            #expect(error { () throws(BundleError) in _ = try r.stringAttribute("nope", on: "/g") } == .missingObject(path: path, object: "/g@nope"))
            #expect(error { () throws(BundleError) in _ = try r.stringAttribute("ratio", on: "/") }
                == .wrongType(path: path, object: "/@ratio", expected: "a string attribute", found: "an attribute of float64"))
        }
    }

    // MARK: h5py

    @Test("h5py and numpy read the bundle: ids, shapes, factors, CSR, metrics, recommendations",
          .enabled(if: TestPython.shouldRun,
                   "h5py is not importable (pip install h5py numpy, or set ENCORE_PYTHON); CI sets ENCORE_REQUIRE_H5PY=1"))
    func h5pyReadsBundle() throws {
        if let missing = TestPython.h5pyMissing {
            Issue.record(Comment(rawValue: missing))
            return
        }
        try withBundleTempDirectory { dir in
            let bundle = try sampleBundle(users: 11, items: 31, factors: 6)
            let user = 0
            let userID = bundle.userIDs.id(at: Int32(user))
            let expected: [String: Any] = [
                "encore_version": Encore.version,
                "format_version": Int(Encore.bundleFormatVersion),
                "created_at": bundle.metadata["created_at"]!,
                "users": bundle.userIDs.ids,
                "items": bundle.itemIDs.ids,
                "factors": bundle.model.parameters.factors,
                "parameters": [
                    "factors": bundle.model.parameters.factors,
                    "regularization": Double(bundle.model.parameters.regularization),
                    "alpha": Double(bundle.model.parameters.alpha),
                    "iterations": bundle.model.parameters.iterations,
                    "solver": bundle.model.parameters.solver.rawValue,
                    "cg_steps": bundle.model.parameters.cgSteps,
                    "seed": bundle.model.parameters.seed,
                ] as [String: Any],
                "user_factors": (0..<bundle.model.userFactors.rows).map { bundle.model.userFactors.row($0).map(Double.init) },
                "item_factors": (0..<bundle.model.itemFactors.rows).map { bundle.model.itemFactors.row($0).map(Double.init) },
                "csr": [
                    "shape": [bundle.userItems.rows, bundle.userItems.cols],
                    "indptr": bundle.userItems.indptr,
                    "indices": bundle.userItems.indices.map(Int.init),
                    "data": bundle.userItems.values.map(Double.init),
                ] as [String: Any],
                "metrics": bundle.metrics,
                "metadata": bundle.metadata,
                "recommendations": [userID: recommend(bundle, user: user, n: 10).map { bundle.itemIDs.id(at: Int32($0)) }],
            ]
            let json = dir + "/expected.json"
            try JSONSerialization.data(withJSONObject: expected, options: [.sortedKeys])
                .write(to: URL(fileURLWithPath: json))
            for (name, threshold) in [("contiguous.h5", 1 << 16), ("compressed.h5", 1)] {
                let path = dir + "/" + name
                try bundle.write(to: path, options: BundleWriteOptions(compressionThreshold: threshold))
                let result = try TestPython.run([PythonForBundles.script, path, json, "--recommend", userID])
                #expect(result.status == 0, "check_bundle.py failed on \(name):\n\(result.output)")
                #expect(result.output.contains("OK"), "\(result.output)")
            }
        }
    }
}

@Suite struct BundlePlaylistTests {
    @Test func playlistTablesRoundTripAndAreValidated() throws {
        let users = try IDMap(ids: ["u1", "u2", "u3"])
        let items = try IDMap(ids: (0..<6).map { "t\($0)" })
        let model = try ImplicitALS(
            parameters: ALSParameters(factors: 2), userFactors: Matrix.random(rows: 3, cols: 2, scale: 1, seed: 1),
            itemFactors: Matrix.random(rows: 6, cols: 2, scale: 1, seed: 2))
        var bundle = ModelBundle(userIDs: users, itemIDs: items, model: model, userItems: .empty(rows: 3, cols: 6))
        bundle.discoverWeekly = try DiscoverWeeklyTable(week: "2026-11-16", rows: [
            [(item: 3, score: 0.9, source: "cf"), (item: 1, score: 0.5, source: "releases")],
            [],
            [(item: 5, score: 0.7, source: "releases")],
        ])
        bundle.dailyMixes = DailyMixTable(day: "2026-11-17", rows: [
            [.init(name: "A, B and more", cover: 2, tracks: [(2, true), (4, false)]), .init(name: "C", cover: 0, tracks: [(0, true)])],
            [],
            [.init(name: "D", cover: 5, tracks: [(5, false)])],
        ])
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("encore-playlists-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try bundle.write(to: "\(dir)/b.h5")
        let back = try ModelBundle.read(from: "\(dir)/b.h5")
        #expect(back == bundle)
        #expect(back.discoverWeekly?.tracks(ofUser: 0).map(\.source) == ["cf", "releases"])
        #expect(back.discoverWeekly?.tracks(ofUser: 2).map(\.item) == [5])
        #expect(back.dailyMixes?.mixes(ofUser: 0).map(\.name) == ["A, B and more", "C"])
        #expect(back.dailyMixes?.mixes(ofUser: 0)[0].tracks.map(\.familiar) == [true, false])
        // An item outside the catalog is rejected before anything is written.
        bundle.discoverWeekly?.items[0] = 6
        #expect(throws: BundleError.self) { try bundle.write(to: "\(dir)/bad.h5") }
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/bad.h5"))
    }

    @Test func sourceLabelsFillTheirOneByteCodesAndNoMore() throws {
        // 256 labels: every code is used once and each track keeps its label.
        let rows = (0..<256).map { k in [(item: Int32(k % 6), score: Float(1), source: "s\(k)")] }
        let table = try DiscoverWeeklyTable(week: "2026-11-16", rows: rows)
        #expect(table.sourceNames.count == 256 && table.sources.map(Int.init) == Array(0..<256))
        #expect((0..<256).allSatisfy { table.tracks(ofUser: $0).map(\.source) == ["s\($0)"] })
        // One more is an error naming the label, not a code that wraps to the first one's.
        #expect(throws: PlaylistError.invalidParameter(
            name: "Discover Weekly source labels", value: "more than 256 (the next: 's256')",
            expected: "at most 256 distinct labels (combinations of sources) in one table")) {
            _ = try DiscoverWeeklyTable(week: "2026-11-16", rows: rows + [[(item: 0, score: 1, source: "s256")]])
        }
    }
}

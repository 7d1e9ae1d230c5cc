import Foundation
import Testing
import EncoreCore
import EncoreFactorization
import EncoreIndex
import EncoreStorage

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Publishing a bundle and its index files as one unit, and opening it with every checksum verified first.
@Suite struct PublishedModelTests {
    /// A fresh folder, removed after `body`.
    func withDirectory<R>(_ body: (String) throws -> R) throws -> R {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("encore-unit-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        return try body(dir)
    }

    /// A small bundle with seeded factors; `seed` makes bundles that differ.
    func bundle(seed: UInt64, users: Int = 12, items: Int = 40, factors: Int = 6) throws -> ModelBundle {
        var rng = SplitMix64(seed: seed)
        func matrix(_ rows: Int) -> Matrix {
            var m = Matrix(rows: rows, cols: factors)
            for i in 0..<m.storage.count { m.storage[i] = Float(rng.nextGaussian()) }
            return m
        }
        var r: [Int32] = [], c: [Int32] = [], v: [Float] = []
        for u in 0..<users {
            for i in 0..<items where (u * 7 + i * 3) % 5 == 0 {
                r.append(Int32(u)); c.append(Int32(i)); v.append(1 + Float(i % 3))
            }
        }
        let model = try ImplicitALS(
            parameters: ALSParameters(factors: factors, regularization: 0.05, alpha: 1, iterations: 3, solver: .cg, seed: seed),
            userFactors: matrix(users), itemFactors: matrix(items))
        return ModelBundle(
            userIDs: try IDMap(ids: (0..<users).map { "u\($0)" }), itemIDs: try IDMap(ids: (0..<items).map { "t\($0)" }),
            model: model, userItems: try CSRMatrix(rows: users, cols: items, rowIndices: r, colIndices: c, values: v),
            metrics: ["weekly/users": Double(users)], metadata: ["week": "2024-06-03", "seed": "\(seed)"])
    }

    /// HNSW index files over the bundle's item factors (`items-ip`, `items-cosine`), written into `dir`.
    func indexFiles(of b: ModelBundle, in dir: String, tag: String) throws -> [String: String] {
        var out: [String: String] = [:]
        for (role, metric) in [("items-ip", VectorMetric.innerProduct), ("items-cosine", .cosine)] {
            let f = b.model.itemFactors
            let index = try HNSWIndex(dimension: f.cols, metric: metric, m: 8, efConstruction: 40, ef: 40, seed: 1, capacity: f.rows)
            try index.add(ids: (0..<Int32(f.rows)).map { $0 }, vectors: f, threads: 1)
            let path = "\(dir)/\(tag)-\(role).hnsw"
            try index.save(to: path)
            out[role] = path
        }
        return out
    }

    /// Flips one bit of the byte at `offset` (from the end when negative).
    func flipByte(_ path: String, at offset: Int) throws {
        var data = try Data(contentsOf: URL(fileURLWithPath: path))
        let i = offset >= 0 ? offset : data.count + offset
        data[i] ^= 0x10
        try data.write(to: URL(fileURLWithPath: path))
    }

    /// The error `body` throws, which must be a `BundleError`.
    func bundleError(_ body: () throws -> Void) -> BundleError? {
        do {
            try body()
            return nil
        } catch let e as BundleError {
            return e
        } catch {
            Issue.record("expected a BundleError, got \(error)")
            return nil
        }
    }

    func names(in dir: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: dir).sorted()
    }

    // MARK: Round trip

    @Test func publishThenOpenGivesTheSameBundleAndIndexAnswers() throws {
        try withDirectory { dir in
            let b = try bundle(seed: 1)
            let sources = try indexFiles(of: b, in: dir, tag: "src")
            let unit = "\(dir)/model.h5.d"
            let published = try PublishedModel.publish(bundle: b, indexes: sources, to: unit)
            #expect(published.version == "v-00000001")

            let opened = try PublishedModel.open(path: unit)
            #expect(opened.isUnit && opened.version == "v-00000001")
            #expect(opened.bundlePath == "\(unit)/v-00000001/bundle.h5")
            #expect(opened.watchPath == "\(unit)/current.json")
            #expect(opened.indexes.map(\.role) == ["items-cosine", "items-ip"] && opened.indexes.allSatisfy(\.present))

            // The bundle reads back equal, with the index names and checksums recorded in its metadata.
            let back = try opened.readBundle()
            #expect(back.userIDs == b.userIDs && back.itemIDs == b.itemIDs && back.userItems == b.userItems)
            #expect(back.model.userFactors == b.model.userFactors && back.model.itemFactors == b.model.itemFactors)
            #expect(back.metrics == b.metrics && back.metadata["week"] == "2024-06-03")
            #expect(back.metadata["index/items-ip.hnsw"] == "items-ip.hnsw")
            let ipEntry = try #require(opened.manifest?.files.first { $0.role == "items-ip" })
            #expect(back.metadata["index_xxh64/items-ip.hnsw"] == ipEntry.xxh64)

            // The published index answers as the source index does.
            for index in opened.indexes {
                let original = try HNSWIndex.load(from: try #require(sources[index.role]))
                let copy = try HNSWIndex.load(from: index.path)
                for row in [0, 7, 39] {
                    let q = b.model.itemFactors.row(row)
                    #expect(try copy.search(q, k: 5) == original.search(q, k: 5))
                }
            }

            // The manifest is JSON with snake_case keys; each entry's size and checksum are the file's.
            let json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(unit)/current.json"))) as? [String: Any])
            #expect(json["format"] as? String == "encore-model-unit" && json["format_version"] as? Int == 1)
            #expect(json["checksum_algorithm"] as? String == "xxh64" && json["version"] as? String == "v-00000001")
            let files = try #require(json["files"] as? [[String: Any]])
            #expect(files.map { $0["path"] as? String } == ["v-00000001/bundle.h5", "v-00000001/items-cosine.hnsw", "v-00000001/items-ip.hnsw"])
            for f in try #require(opened.manifest?.files) {
                let digest = try #require(try PublishedModel.digest(ofFile: "\(unit)/\(f.path)"))
                #expect(digest.size == f.size && PublishedModel.hex(digest.checksum) == f.xxh64)
                let attributes = try FileManager.default.attributesOfItem(atPath: "\(unit)/\(f.path)")
                #expect((attributes[.size] as? NSNumber)?.int64Value == f.size)
            }
        }
    }

    @Test func theOutputNameStandsForItsUnit() throws {
        try withDirectory { dir in
            let b = try bundle(seed: 2)
            #expect(PublishedModel.unitDirectory(forOutput: "\(dir)/m.h5") == "\(dir)/m.h5.d")
            #expect(PublishedModel.unitDirectory(forOutput: "\(dir)/m.h5.d") == "\(dir)/m.h5.d")
            try PublishedModel.publish(bundle: b, indexes: [:], to: "\(dir)/m.h5.d")
            let opened = try PublishedModel.open(path: "\(dir)/m.h5")
            #expect(opened.unitDirectory == "\(dir)/m.h5.d" && opened.path == "\(dir)/m.h5")
            #expect(try PublishedModel.readBundle(at: "\(dir)/m.h5").model.itemFactors == b.model.itemFactors)
        }
    }

    @Test func aPlainBundleFileStillLoads() throws {
        try withDirectory { dir in
            let b = try bundle(seed: 3)
            try b.write(to: "\(dir)/plain.h5")
            let opened = try PublishedModel.open(path: "\(dir)/plain.h5")
            #expect(!opened.isUnit && opened.manifest == nil && opened.indexes.isEmpty)
            #expect(opened.bundlePath == "\(dir)/plain.h5" && opened.watchPath == "\(dir)/plain.h5")
            #expect(try opened.readBundle() == b)
            // A missing path is the bundle reader's error, as before units existed.
            let e = bundleError { _ = try PublishedModel.readBundle(at: "\(dir)/absent.h5") }
            #expect(e == .fileNotFound(path: "\(dir)/absent.h5"))
            #expect(e?.description == "\(dir)/absent.h5: no such file")
        }
    }

    // MARK: Integrity

    @Test func aFlippedByteInTheBundleIsRefusedBeforeHDF5ReadsIt() throws {
        try withDirectory { dir in
            let b = try bundle(seed: 4)
            let unit = "\(dir)/u"
            try PublishedModel.publish(bundle: b, indexes: try indexFiles(of: b, in: dir, tag: "s"), to: unit)
            let file = "\(unit)/v-00000001/bundle.h5"
            try flipByte(file, at: 100)  // inside the HDF5 superblock and root object header
            let e = bundleError { _ = try PublishedModel.open(path: unit) }
            guard case .checksumMismatch(let path, let manifest, let recorded, let computed) = e else {
                Issue.record("expected a checksum mismatch, got \(String(describing: e))")
                return
            }
            #expect(path == file && manifest == "\(unit)/current.json" && recorded != computed)
            let message = e?.description ?? ""
            #expect(message.hasPrefix("\(file): checksum mismatch: the file hashes to XXH64 \(computed) but \(unit)/current.json records \(recorded)"), "\(message)")
        }
    }

    @Test func aFlippedByteInAnIndexFileIsRefused() throws {
        try withDirectory { dir in
            let b = try bundle(seed: 5)
            let unit = "\(dir)/u"
            try PublishedModel.publish(bundle: b, indexes: try indexFiles(of: b, in: dir, tag: "s"), to: unit)
            let file = "\(unit)/v-00000001/items-ip.hnsw"
            try flipByte(file, at: -10)
            let e = bundleError { _ = try PublishedModel.open(path: unit) }
            #expect(e?.path == file)
            let message = e?.description ?? ""
            #expect(message.hasPrefix("\(file): checksum mismatch: the file hashes to XXH64 "), "\(message)")
            #expect(message.contains("the unit is refused"), "\(message)")
        }
    }

    @Test func aTruncatedFileIsRefused() throws {
        try withDirectory { dir in
            let b = try bundle(seed: 6)
            let unit = "\(dir)/u"
            let published = try PublishedModel.publish(bundle: b, indexes: try indexFiles(of: b, in: dir, tag: "s"), to: unit)
            let file = "\(unit)/v-00000001/bundle.h5"
            let size = try #require(published.manifest?.files.first?.size)
            #expect(truncate(file, off_t(size / 2)) == 0)
            let e = bundleError { _ = try PublishedModel.open(path: unit) }
            #expect(e == .sizeMismatch(path: file, manifest: "\(unit)/current.json", recorded: size, found: size / 2))
            #expect(e?.description == "\(file): size mismatch, so its checksum cannot match: the file has \(size / 2) bytes "
                + "but \(unit)/current.json records \(size) (truncated or replaced after publishing; the unit is refused)")

            // A truncated index file of the next version likewise.
            try PublishedModel.publish(bundle: b, indexes: try indexFiles(of: b, in: dir, tag: "t"), to: unit)
            let newIndex = "\(unit)/v-00000002/items-cosine.hnsw"
            #expect(truncate(newIndex, 64) == 0)
            let f = bundleError { _ = try PublishedModel.open(path: unit) }
            #expect(f?.path == newIndex && f?.description.contains("size mismatch, so its checksum cannot match") == true,
                    "\(String(describing: f))")
        }
    }

    @Test func aDamagedOrForeignManifestIsAClearError() throws {
        try withDirectory { dir in
            let unit = "\(dir)/u"
            try FileManager.default.createDirectory(atPath: unit, withIntermediateDirectories: true)
            let empty = bundleError { _ = try PublishedModel.open(path: unit) }
            #expect(empty?.description == "\(unit)/current.json: not a usable published-unit manifest: missing: \(unit) "
                + "holds no published model (a unit is published by `encore-train weekly`)")

            try Data("{\"format\": 3".utf8).write(to: URL(fileURLWithPath: "\(unit)/current.json"))
            let garbage = bundleError { _ = try PublishedModel.open(path: unit) }
            #expect(garbage?.description.hasPrefix("\(unit)/current.json: not a usable published-unit manifest: not a manifest: ") == true,
                    "\(String(describing: garbage))")

            try PublishedModel.publish(bundle: try bundle(seed: 7), indexes: [:], to: unit)
            var manifest = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(unit)/current.json"))) as? [String: Any])
            var files = try #require(manifest["files"] as? [[String: Any]])
            files[0]["path"] = "../outside.h5"
            manifest["files"] = files
            try JSONSerialization.data(withJSONObject: manifest).write(to: URL(fileURLWithPath: "\(unit)/current.json"))
            let escape = bundleError { _ = try PublishedModel.open(path: unit) }
            #expect(escape?.description == "\(unit)/current.json: not a usable published-unit manifest: the path '../outside.h5' "
                + "is not a plain path inside the unit")

            manifest["format_version"] = 2
            try JSONSerialization.data(withJSONObject: manifest).write(to: URL(fileURLWithPath: "\(unit)/current.json"))
            let newer = bundleError { _ = try PublishedModel.open(path: unit) }
            #expect(newer?.description.contains("format version 2 is not supported") == true, "\(String(describing: newer))")
        }
    }

    @Test func aMissingIndexFileIsReportedNotRefused() throws {
        try withDirectory { dir in
            let b = try bundle(seed: 8)
            let unit = "\(dir)/u"
            try PublishedModel.publish(bundle: b, indexes: try indexFiles(of: b, in: dir, tag: "s"), to: unit)
            try FileManager.default.removeItem(atPath: "\(unit)/v-00000001/items-ip.hnsw")
            let opened = try PublishedModel.open(path: unit)
            #expect(opened.indexes.map { "\($0.role):\($0.present)" } == ["items-cosine:true", "items-ip:false"])
            #expect(opened.presentIndexPaths == ["items-cosine": "\(unit)/v-00000001/items-cosine.hnsw"])
            // The bundle itself missing is an error naming it.
            try FileManager.default.removeItem(atPath: "\(unit)/v-00000001/bundle.h5")
            let e = bundleError { _ = try PublishedModel.open(path: unit) }
            #expect(e?.description == "\(unit)/v-00000001/bundle.h5: no such file")
        }
    }

    // MARK: Switching and pruning

    @Test func aReaderHoldingTheOldVersionKeepsReadingItAcrossAPublish() throws {
        try withDirectory { dir in
            let unit = "\(dir)/u"
            let v1 = try bundle(seed: 10)
            let v2 = try bundle(seed: 11)
            try PublishedModel.publish(bundle: v1, indexes: try indexFiles(of: v1, in: dir, tag: "a"), to: unit)
            let held = try PublishedModel.open(path: unit)
            let manifestBefore = try #require(FileManager.default.attributesOfItem(atPath: "\(unit)/current.json")[.systemFileNumber] as? NSNumber)

            try PublishedModel.publish(bundle: v2, indexes: try indexFiles(of: v2, in: dir, tag: "b"), to: unit)
            // The switch replaced the manifest (another inode: one rename), and nothing else moved.
            let manifestAfter = try #require(FileManager.default.attributesOfItem(atPath: "\(unit)/current.json")[.systemFileNumber] as? NSNumber)
            #expect(manifestBefore != manifestAfter)
            #expect(try names(in: unit) == [".publish.lock", "current.json", "v-00000001", "v-00000002"])

            // The reader that opened v1 reads v1's bundle and indexes, all from v1's folder.
            #expect(held.version == "v-00000001")
            #expect(([held.bundlePath] + held.indexes.map(\.path)).allSatisfy { $0.hasPrefix("\(unit)/v-00000001/") })
            #expect(try held.readBundle().model.itemFactors == v1.model.itemFactors)
            for index in held.indexes { #expect(try HNSWIndex.load(from: index.path).count == v1.itemIDs.count) }

            // A new reader sees only v2.
            let fresh = try PublishedModel.open(path: unit)
            #expect(fresh.version == "v-00000002")
            #expect(([fresh.bundlePath] + fresh.indexes.map(\.path)).allSatisfy { $0.hasPrefix("\(unit)/v-00000002/") })
            #expect(try fresh.readBundle().model.itemFactors == v2.model.itemFactors)
            #expect(try fresh.readBundle().model.itemFactors != v1.model.itemFactors)
        }
    }

    @Test func publishingKeepsTheNewestVersionsOnly() throws {
        try withDirectory { dir in
            let unit = "\(dir)/u"
            let b = try bundle(seed: 12)
            // A staging folder left by a publish that crashed is cleaned up too.
            try FileManager.default.createDirectory(atPath: "\(unit)/.staging-v-00000009-1-ab", withIntermediateDirectories: true)
            for _ in 0..<4 { try PublishedModel.publish(bundle: b, indexes: [:], to: unit) }
            #expect(try names(in: unit) == [".publish.lock", "current.json", "v-00000003", "v-00000004"])
            #expect(try PublishedModel.open(path: unit).version == "v-00000004")
            try PublishedModel.publish(bundle: b, indexes: [:], to: unit, keep: 3)
            try PublishedModel.publish(bundle: b, indexes: [:], to: unit, keep: 3)
            #expect(try names(in: unit) == [".publish.lock", "current.json", "v-00000004", "v-00000005", "v-00000006"])
            try PublishedModel.publish(bundle: b, indexes: [:], to: unit, keep: 1)
            #expect(try names(in: unit) == [".publish.lock", "current.json", "v-00000007"])
            let e = bundleError { try PublishedModel.publish(bundle: b, indexes: [:], to: unit, keep: 0) }
            #expect(e?.description == "\(unit): cannot publish: keep must be at least 1, got 0")
        }
    }

    @Test func oneLockedPublisherAtATime() throws {
        try withDirectory { dir in
            let unit = "\(dir)/u"
            let b = try bundle(seed: 13)
            try PublishedModel.publish(bundle: b, indexes: [:], to: unit)
            let fd = open("\(unit)/.publish.lock", O_RDWR)
            #expect(fd >= 0)
            defer { close(fd) }
            #expect(flock(fd, LOCK_EX | LOCK_NB) == 0)
            let e = bundleError { try PublishedModel.publish(bundle: b, indexes: [:], to: unit) }
            #expect(e?.description == "\(unit)/.publish.lock: cannot take the publish lock: another publisher holds it")
            #expect(try PublishedModel.open(path: unit).version == "v-00000001")
            #expect(try names(in: unit) == [".publish.lock", "current.json", "v-00000001"])
        }
    }

    @Test func badRolesAndMissingIndexSourcesAreRefused() throws {
        try withDirectory { dir in
            let b = try bundle(seed: 14)
            let badRole = bundleError { try PublishedModel.publish(bundle: b, indexes: ["Items IP": "\(dir)/x"], to: "\(dir)/u") }
            #expect(badRole?.description == "\(dir)/u: cannot publish: 'Items IP' is not an index role (lowercase letters, digits and '-', not 'bundle')")
            let missing = bundleError { try PublishedModel.publish(bundle: b, indexes: ["items-ip": "\(dir)/absent.hnsw"], to: "\(dir)/u") }
            #expect(missing?.description == "\(dir)/absent.hnsw: no such file")
            #expect(!FileManager.default.fileExists(atPath: "\(dir)/u"))
        }
    }
}

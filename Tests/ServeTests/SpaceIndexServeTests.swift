import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import RecCore
import ServeKit
import Testing

/// `similar?space=` through the published indexes of the content and hybrid spaces (`hybrid-cosine`,
/// `text-cosine`, ...): the index answers as the exact scan does (the graph is approximate, so by recall), a missing
/// or foreign index file falls back to the scan as the collaborative ones do, and a posted track that replaced a
/// bundle vector is never answered from the stale bundle index.
@Suite struct SpaceIndexServeTests {
    /// The fixture's spaces with a published index (the weekly job publishes one per space it has vectors for; the
    /// tiny world has no audio or text).
    static let indexedSpaces = ["sequence", "hybrid"]

    static func quietLogger() -> Logger {
        var logger = Logger(label: "test")
        logger.logLevel = .error
        return logger
    }

    @Test func theSpaceIndexesAnswerAsTheExactScan() throws {
        let fixture = try ServeFixture.get()
        let indexed = try ServingModel.load(path: fixture.unitPath, logger: Self.quietLogger())
        // The same bundle without the space indexes: every space by exact scan.
        let exact = try ServingModel(bundle: indexed.bundle)
        for space in Self.indexedSpaces {
            let role = space + "-cosine"
            #expect(indexed.indexStatus.first { $0.role == role }?.state == .loaded, "\(indexed.indexStatus)")
            #expect(indexed.indexFiles[role] == "\(fixture.unitPath)/v-00000001/\(role).hnsw")
            let a = try #require(try indexed.contentSpace(space)), e = try #require(try exact.contentSpace(space))
            #expect(a.index != nil && e.index == nil)
            var found = 0, wanted = 0, queries = 0
            for i in 0..<Int32(a.itemCount) where a.hasVector.contains(i) {
                let got = try a.neighbors(ofItem: i, k: 10), truth = try e.neighbors(ofItem: i, k: 10)
                let truthItems = Set(truth.map(\.item))
                found += got.filter { truthItems.contains($0.item) }.count
                wanted += truth.count
                queries += 1
                // Whatever the graph returns carries the exact cosine, best first.
                for x in got { #expect(abs(x.similarity - e.cosine(i, x.item)) < 1e-5) }
                #expect(zip(got, got.dropFirst()).allSatisfy { $0.similarity >= $1.similarity })
            }
            let recall = Double(found) / Double(max(1, wanted))
            print("space index \(role): recall@10 \(String(format: "%.4f", recall)) against the exact scan over \(queries) tracks")
            #expect(queries >= 5 && recall >= 0.95, "\(role): recall \(recall) over \(queries) tracks")
        }
        // The index is what the endpoint searches: the engine's answers are the indexed space's.
        let dir = try ServeFixture.scratch("space-index-engine")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let engine = try RealtimeEngine(model: indexed, logDirectory: "\(dir)/log", fsync: .never, logger: Self.quietLogger())
        defer { try? engine.close() }
        let hybrid = try #require(try indexed.contentSpace("hybrid"))
        let item = try #require((0..<Int32(hybrid.itemCount)).first { hybrid.hasVector.contains($0) })
        let served = try engine.similar(item: indexed.itemID(item), k: 10, space: "hybrid")
        #expect(served.map(\.index) == (try hybrid.neighbors(ofItem: item, k: 10)).map(\.item))
    }

    @Test func aMissingSpaceIndexFallsBackToTheScanAndADamagedOneRefusesTheUnit() async throws {
        let fixture = try ServeFixture.get()
        let dir = try ServeFixture.scratch("space-index-missing")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let unit = try fixture.copyUnit(to: dir)
        let file = "\(unit)/v-00000001/hybrid-cosine.hnsw"
        let bytes = try Data(contentsOf: URL(fileURLWithPath: file))
        try FileManager.default.removeItem(atPath: file)
        let logs = CapturedLogs()
        let model = try ServingModel.load(path: unit, logger: logs.logger())
        #expect(model.spaceIndexes["hybrid"] == nil && model.spaceIndexes["sequence"] != nil)
        #expect(try model.contentSpace("hybrid")?.index == nil)
        let status = try #require(model.indexStatus.first { $0.role == "hybrid-cosine" })
        #expect(status.state == .missing && status.file == file && status.detail == "the index file is absent")
        let warnings = logs.all.filter { $0.level == .warning }
        #expect(warnings.map(\.message) == ["index file missing: exact search"] && warnings.first?.metadata["role"] == "hybrid-cosine")
        // Served by the scan: the exact answers.
        let exact = try #require(try ServingModel(bundle: model.bundle).contentSpace("hybrid"))
        let engine = try RealtimeEngine(model: model, logDirectory: "\(dir)/log", fsync: .never, logger: Self.quietLogger())
        let router = EncoreServer.router(holder: EngineHolder(engine), options: ServeOptions(), metrics: ServeMetrics(), logger: Self.quietLogger())
        let app = Application(responder: router.buildResponder(), logger: Self.quietLogger())
        let item = try #require((0..<Int32(exact.itemCount)).first { exact.hasVector.contains($0) })
        try await app.test(.router) { client in
            let r = try await client.get("/v1/items/\(model.itemID(item))/similar?space=hybrid&k=10")
            #expect(r.ids() == (try exact.neighbors(ofItem: item, k: 10)).map { model.itemID($0.item) }, "\(r.text)")
            let ready = try await client.get("/ready")
            let roles = ready.array("indexes").map { "\($0["role"] as? String ?? "?"):\($0["status"] as? String ?? "?")" }
            #expect(roles.contains("hybrid-cosine:missing") && roles.contains("sequence-cosine:loaded"), "\(roles)")
            #expect(ready.object["warnings"] as? [String] == ["index hybrid-cosine missing: the index file is absent (exact search)"])
            let metrics = try await client.get("/metrics")
            #expect(metrics.text.contains("encore_bundle_index_loaded{role=\"hybrid-cosine\"} 0"), "\(metrics.text)")
        }
        try engine.close()

        // The file back with one byte changed: the manifest's checksum refuses the unit, naming the file.
        var damaged = bytes
        damaged[damaged.count / 2] ^= 0x10
        try damaged.write(to: URL(fileURLWithPath: file))
        do {
            _ = try ServingModel.load(path: unit)
            Issue.record("a unit with a damaged hybrid index was served")
        } catch {
            #expect("\(error)".contains("\(file): checksum mismatch: the file hashes to XXH64 "), "\(error)")
        }
    }

    @Test func aSpaceIndexNotPublishedWithAPlainBundleIsAMismatch() throws {
        let fixture = try ServeFixture.get()
        let dir = try ServeFixture.scratch("space-index-plain")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let bundle = try fixture.copyBundle(to: dir)
        // A valid index of another space where the hybrid one should be: not the file the bundle records.
        try FileManager.default.removeItem(atPath: "\(dir)/hybrid-cosine.hnsw")
        try FileManager.default.copyItem(atPath: "\(dir)/sequence-cosine.hnsw", toPath: "\(dir)/hybrid-cosine.hnsw")
        let model = try ServingModel.load(path: bundle, logger: Self.quietLogger())
        let status = try #require(model.indexStatus.first { $0.role == "hybrid-cosine" })
        #expect(status.state == .mismatch && status.detail.hasSuffix("it was not published with this bundle"), "\(status)")
        #expect(model.spaceIndexes["hybrid"] == nil && model.spaceIndexes["sequence"] != nil)
    }

    /// Over ``ContentBundle`` (2-d audio embeddings: `t0`...`t3` along the first axis, `t4`...`t7` along the
    /// second) with an HNSW index over its audio space: `t1`, `t0`'s nearest track, posted again with the embedding
    /// `(0, 1)` is no longer answered from the bundle index with its old vector.
    @Test func aPostedTrackThatReplacedABundleVectorIsNotAnsweredFromTheBundleIndex() async throws {
        let dir = try ServeFixture.scratch("space-index-stale")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let bundle = try ModelBundle.read(from: try ContentBundle.write(to: dir))
        let audio = try #require(try ServingModel(bundle: bundle).contentSpace("audio"))
        let index = try #require(try audio.indexed(threads: 1).index as? HNSWIndex)
        let model = try ServingModel(bundle: bundle, spaceIndexes: ["audio": index])
        #expect(try model.contentSpace("audio")?.index != nil)
        let server = try ServerUnderTest(model: model, logDir: "\(dir)/log")
        defer { try? server.close() }
        try await server.app.test(.router) { client in
            let before = try await client.get("/v1/items/t0/similar?space=audio&k=3")
            #expect(before.ids() == ["t1", "t2", "t3"], "\(before.text)")
            let posted = try await client.post("/v1/tracks", body: #"{"id":"t1","content":{"embedding":[0,1]}}"#)
            #expect(posted.status == .ok && posted.object["new_tracks"] as? Int == 0, "\(posted.text)")
            // t0 = (1, 0): t2 = (1, 0.2) and t3 = (1, 0.3) normalized, then t7 = (0.3, 1) at cosine 0.287; t1 now at
            // cosine 0 (its bundle entry, cosine 0.995, is stale and left out).
            let after = try await client.get("/v1/items/t0/similar?space=audio&k=3")
            #expect(after.ids() == ["t2", "t3", "t7"], "\(after.text)")
            let similarities = after.array("items").compactMap { $0["similarity"] as? Double }
            let expected = [1 / (1.04 as Double).squareRoot(), 1 / (1.09 as Double).squareRoot(), 0.3 / (1.09 as Double).squareRoot()]
            #expect(zip(similarities, expected).allSatisfy { abs($0 - $1) < 1e-5 } && similarities.count == 3, "\(after.text)")
            // t1 is answered by its posted vector: t4 = (0, 1) first, then t5 = (0.1, 1).
            let fromT1 = try await client.get("/v1/items/t1/similar?space=audio&k=2")
            #expect(fromT1.ids() == ["t4", "t5"], "\(fromT1.text)")
        }
    }
}

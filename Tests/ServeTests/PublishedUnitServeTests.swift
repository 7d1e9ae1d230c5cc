import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import RecCore
import ServeKit
import Testing

/// Log lines kept in memory, to check what the server warned about.
final class CapturedLogs: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [(level: Logger.Level, message: String, metadata: Logger.Metadata)] = []

    func append(_ level: Logger.Level, _ message: String, _ metadata: Logger.Metadata) {
        lock.lock()
        defer { lock.unlock() }
        lines.append((level, message, metadata))
    }

    var all: [(level: Logger.Level, message: String, metadata: Logger.Metadata)] {
        lock.lock()
        defer { lock.unlock() }
        return lines
    }

    /// A logger writing here.
    func logger() -> Logger {
        Logger(label: "test") { _ in Handler(sink: self) }
    }

    struct Handler: LogHandler {
        let sink: CapturedLogs
        var logLevel: Logger.Level = .trace
        var metadata: Logger.Metadata = [:]

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            sink.append(event.level, "\(event.message)", metadata.merging(event.metadata ?? [:]) { $1 })
        }
    }
}

/// The server over a published unit: indexes from the unit, warnings for missing or mismatched ones in the log,
/// `/ready` and `/metrics`, and a new version seen by the poller as one reload.
@Suite struct PublishedUnitServeTests {
    struct Served {
        let engine: RealtimeEngine
        let app: Application<RouterResponder<BasicRequestContext>>
        let logs: CapturedLogs
    }

    func serve(_ path: String, logDir: String) throws -> Served {
        let logs = CapturedLogs()
        let logger = logs.logger()
        let engine = try RealtimeEngine(model: try ServingModel.load(path: path, logger: logger), logDirectory: logDir,
                                        fsync: .never, logger: logger)
        let router = EncoreServer.router(holder: EngineHolder(engine), options: ServeOptions(), metrics: ServeMetrics(), logger: logger)
        return Served(engine: engine, app: Application(responder: router.buildResponder(), logger: logger), logs: logs)
    }

    /// The `/ready` index entries as `role:status`.
    func indexStates(_ ready: JSONResponse) -> [String] {
        ready.array("indexes").map { "\($0["role"] as? String ?? "?"):\($0["status"] as? String ?? "?")" }
    }

    @Test func aUnitServesItsOwnIndexes() async throws {
        let fixture = try ServeFixture.get()
        let dir = try ServeFixture.scratch("unit")
        let unit = try fixture.copyUnit(to: dir)
        let served = try serve(unit, logDir: "\(dir)/log")
        defer { try? served.engine.close() }
        let model = served.engine.model
        #expect(model.publishedVersion == "v-00000001" && model.watchPath == "\(unit)/current.json")
        #expect(model.recommendationIndex != nil)
        // The collaborative indexes and those of the spaces the fixture has (sequence and hybrid; no audio or text).
        #expect(model.indexFiles == Dictionary(uniqueKeysWithValues: ["items-ip", "items-cosine", "sequence-cosine", "hybrid-cosine"].map {
            ($0, "\(unit)/v-00000001/\($0).hnsw")
        }))
        #expect(served.logs.all.filter { $0.level >= .warning }.isEmpty)
        try await served.app.test(.router) { client in
            let ready = try await client.get("/ready")
            #expect(ready.status == .ok)
            #expect(ready.object["published_version"] as? String == "v-00000001")
            #expect((ready.object["bundle_version"] as? String)?.hasSuffix("/v-00000001") == true)
            #expect(indexStates(ready) == ["items-ip:loaded", "items-cosine:loaded", "sequence-cosine:loaded", "hybrid-cosine:loaded"])
            #expect(ready.object["warnings"] as? [String] == [])
            let metrics = try await client.get("/metrics")
            #expect(metrics.text.contains("encore_bundle_index_loaded{role=\"items-ip\"} 1"), "\(metrics.text)")
            #expect(metrics.text.contains("encore_bundle_index_warnings 0"), "\(metrics.text)")
        }
    }

    @Test func aUnitWhoseIndexIsMissingIsServedByExactSearchWithAWarning() async throws {
        let fixture = try ServeFixture.get()
        let dir = try ServeFixture.scratch("unit-missing")
        let unit = try fixture.copyUnit(to: dir)
        let missing = "\(unit)/v-00000001/items-ip.hnsw"
        try FileManager.default.removeItem(atPath: missing)
        let served = try serve(unit, logDir: "\(dir)/log")
        defer { try? served.engine.close() }
        #expect(served.engine.model.recommendationIndex == nil)
        let warnings = served.logs.all.filter { $0.level == .warning }
        #expect(warnings.map(\.message) == ["index file missing: exact search"])
        #expect(warnings.first?.metadata["role"] == "items-ip" && warnings.first?.metadata["file"] == .string(missing))
        try await served.app.test(.router) { client in
            let ready = try await client.get("/ready")
            #expect(ready.status == .ok)
            #expect(indexStates(ready) == ["items-ip:missing", "items-cosine:loaded", "sequence-cosine:loaded", "hybrid-cosine:loaded"])
            #expect(ready.array("indexes").first?["file"] as? String == missing)
            #expect(ready.object["warnings"] as? [String] == ["index items-ip missing: the index file is absent (exact search)"])
            let metrics = try await client.get("/metrics")
            #expect(metrics.text.contains("encore_bundle_index_loaded{role=\"items-ip\"} 0"), "\(metrics.text)")
            #expect(metrics.text.contains("encore_bundle_index_loaded{role=\"items-cosine\"} 1"), "\(metrics.text)")
            #expect(metrics.text.contains("encore_bundle_index_warnings 1"), "\(metrics.text)")
            // Still served, by exact search.
            let user = served.engine.model.bundle.userIDs.ids[3]
            let recs = try await client.get("/v1/users/\(user)/recommendations?k=5")
            #expect(recs.status == .ok && recs.ids().count == 5)
        }
    }

    @Test func anIndexFileNotPublishedWithTheBundleIsAMismatch() async throws {
        let fixture = try ServeFixture.get()
        let dir = try ServeFixture.scratch("plain-mismatch")
        let bundle = try fixture.copyBundle(to: dir)
        // Another valid index of the same shape (the cosine one) where the inner-product one should be.
        try FileManager.default.removeItem(atPath: "\(dir)/items-ip.hnsw")
        try FileManager.default.copyItem(atPath: "\(dir)/items-cosine.hnsw", toPath: "\(dir)/items-ip.hnsw")
        let served = try serve(bundle, logDir: "\(dir)/log")
        defer { try? served.engine.close() }
        #expect(served.engine.model.recommendationIndex == nil && served.engine.model.publishedVersion == nil)
        #expect(served.logs.all.filter { $0.level == .warning }.map(\.message) == ["index file mismatch: exact search"])
        try await served.app.test(.router) { client in
            let ready = try await client.get("/ready")
            #expect(indexStates(ready) == ["items-ip:mismatch", "items-cosine:loaded", "sequence-cosine:loaded", "hybrid-cosine:loaded"])
            #expect(ready.object.keys.contains("published_version") && ready.object["published_version"] is NSNull)
            let detail = ready.array("indexes").first?["detail"] as? String ?? ""
            #expect(detail.hasSuffix("it was not published with this bundle"), "\(detail)")
            let metrics = try await client.get("/metrics")
            #expect(metrics.text.contains("encore_bundle_index_warnings 1"), "\(metrics.text)")
        }
    }

    @Test func thePollerSeesANewVersionAsOneReloadAndRefusesADamagedOne() async throws {
        let fixture = try ServeFixture.get()
        let dir = try ServeFixture.scratch("unit-poll")
        let unit = try fixture.copyUnit(to: dir)
        let served = try serve(unit, logDir: "\(dir)/log")
        defer { try? served.engine.close() }
        let engine = served.engine
        let holder = EngineHolder(engine)
        let watcher = BundleWatcher(holder: holder, interval: .milliseconds(20), logger: served.logs.logger())
        let polling = Task { try await watcher.run() }
        defer { polling.cancel() }

        func waitFor(_ what: String, _ condition: () -> Bool) async throws {
            for _ in 0..<500 where !condition() { try await Task.sleep(for: .milliseconds(20)) }
            #expect(condition(), "timed out waiting for \(what)")
        }

        // A new version with the same index files: one reload, to v2's bundle and v2's indexes.
        let v1 = try PublishedModel.open(path: unit)
        var next = try v1.readBundle()
        next.metadata["created_at"] = "2030-01-01T00:00:00Z"
        try PublishedModel.publish(bundle: next, indexes: v1.presentIndexPaths, to: unit)
        try await waitFor("v2") { engine.model.publishedVersion == "v-00000002" }
        #expect(engine.statistics.reloads == 1 && engine.statistics.reloadFailures == 0)
        #expect(engine.model.indexFiles["items-ip"] == "\(unit)/v-00000002/items-ip.hnsw")
        #expect(engine.model.version == "2030-01-01T00:00:00Z/v-00000002")

        // A damaged version is refused with the file and the checksum named, and v2 keeps serving: v3 is v2's files
        // with one byte of the bundle flipped, under a manifest that records v2's checksums.
        let v2 = try PublishedModel.open(path: unit)
        try FileManager.default.copyItem(atPath: "\(unit)/v-00000002", toPath: "\(unit)/v-00000003")
        let damaged = "\(unit)/v-00000003/bundle.h5"
        var bytes = try Data(contentsOf: URL(fileURLWithPath: damaged))
        bytes[bytes.count / 2] ^= 0x01
        try bytes.write(to: URL(fileURLWithPath: damaged))
        var manifest = try #require(v2.manifest)
        manifest.version = "v-00000003"
        manifest.sequence = 3
        for i in manifest.files.indices {
            manifest.files[i].path = manifest.files[i].path.replacingOccurrences(of: "v-00000002", with: "v-00000003")
        }
        try JSONEncoder().encode(manifest).write(to: URL(fileURLWithPath: "\(unit)/current.json.new"))
        #expect(rename("\(unit)/current.json.new", "\(unit)/current.json") == 0)
        try await waitFor("the refused reload") { engine.statistics.reloadFailures == 1 }
        #expect(engine.model.publishedVersion == "v-00000002" && engine.statistics.reloads == 1)
        try await served.app.test(.router) { client in
            let ready = try await client.get("/ready")
            #expect(ready.object["published_version"] as? String == "v-00000002")
            let reload = try await client.post("/v1/admin/reload", body: "")
            #expect(reload.status == .internalServerError && reload.errorCode == "bundle")
            let message = (reload.object["error"] as? [String: Any])?["message"] as? String ?? ""
            #expect(message.hasPrefix("\(damaged): checksum mismatch: the file hashes to XXH64 "), "\(message)")
        }
        #expect(served.logs.all.contains { $0.level == .error && $0.message == "reload failed; the current model stays" })
    }
}

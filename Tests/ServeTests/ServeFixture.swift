import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import RecCore
import ServeKit
import Testing

/// A tiny bundle made once per test process by the weekly job (tiny synthetic world, 16 factors, 5 iterations):
/// ids, model, playlists, catalog and the HNSW index files beside it.
struct ServeFixture: Sendable {
    let directory: String
    let bundlePath: String
    let world: String

    static let shared: Result<ServeFixture, any Error> = Result { try make() }

    /// A time after every play of the fixture's world and inside the server's plausibility window (at most a day
    /// ahead of its clock): events the tests post at it are the user's newest.
    static let recent = Int64(Date().timeIntervalSince1970) - 3_600

    static func get() throws -> ServeFixture { try shared.get() }

    private static func make() throws -> ServeFixture {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("encore-serve-fixture-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var world = SyntheticWorldConfig.preset(.tiny)
        world.seed = 7
        _ = try SyntheticWorld.generate(world, threads: 2).write(to: "\(dir)/world", threads: 2)
        try FileManager.default.createDirectory(atPath: "\(dir)/bundle", withIntermediateDirectories: true)
        var weekly = WeeklyConfiguration(output: "\(dir)/bundle/b.h5")
        weekly.events = "\(dir)/world/plays.tsv"
        weekly.parameters = ALSParameters(factors: 16, regularization: 0.05, iterations: 5, solver: .cg, seed: 42, threads: 2)
        weekly.evaluationUsers = 0
        weekly.threads = 2
        try WeeklyJob(configuration: weekly, logger: Logger(label: "serve-fixture")).run()
        return ServeFixture(directory: dir, bundlePath: "\(dir)/bundle/b.h5", world: "\(dir)/world")
    }

    /// A fresh folder for one test (an event log, a copy of the bundle).
    static func scratch(_ name: String) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("encore-serve-\(name)-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    /// The unit the weekly job published for `--output b.h5`.
    var unitPath: String { bundlePath + ".d" }

    /// Copies the published bundle and its index files into `dir` as a plain bundle (`b.h5`, with the index files
    /// beside it under the names its metadata records); returns the copy's path.
    func copyBundle(to dir: String) throws -> String {
        let opened = try PublishedModel.open(path: unitPath)
        let target = (dir as NSString).appendingPathComponent("b.h5")
        try FileManager.default.copyItem(atPath: opened.bundlePath, toPath: target)
        for index in opened.indexes {
            try FileManager.default.copyItem(
                atPath: index.path, toPath: (dir as NSString).appendingPathComponent((index.path as NSString).lastPathComponent))
        }
        return target
    }

    /// Copies the published unit into `dir` (`dir/b.h5.d`); returns the copy's path.
    func copyUnit(to dir: String) throws -> String {
        let target = (dir as NSString).appendingPathComponent("b.h5.d")
        try FileManager.default.copyItem(atPath: unitPath, toPath: target)
        return target
    }
}

/// One server under test: an engine over a bundle and a log folder, and its router.
struct ServerUnderTest {
    let engine: RealtimeEngine
    let app: Application<RouterResponder<BasicRequestContext>>
    let metrics: ServeMetrics
    let router: Router<BasicRequestContext>

    init(bundle: String, logDir: String, options: ServeOptions = ServeOptions()) throws {
        var logger = Logger(label: "test")
        logger.logLevel = .warning
        let model = try ServingModel.load(path: bundle, logger: logger)
        engine = try RealtimeEngine(model: model, logDirectory: logDir, fsync: .never, logger: logger)
        metrics = ServeMetrics()
        router = EncoreServer.router(holder: EngineHolder(engine), options: options, metrics: metrics, logger: logger)
        app = Application(responder: router.buildResponder(), logger: logger)
    }

    func close() throws { try engine.close() }
}

/// A decoded JSON response.
///
/// Reading it fails the test when the body is not a JSON object (``object``), or when the request failed or the key
/// is missing (``array(_:)``, ``ids(_:)``), so a check that something is absent cannot pass on an error response.
struct JSONResponse: Sendable {
    let status: HTTPResponse.Status
    let headers: HTTPFields
    let text: String

    /// The body as a JSON object; an empty one, and a test failure, when it is not one.
    var object: [String: Any] {
        guard let o = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] else {
            Issue.record("the response (status \(status.code)) is not a JSON object: \(text.prefix(200))")
            return [:]
        }
        return o
    }

    /// The array at `key` of a successful response; empty, and a test failure, for an error response or no such array.
    func array(_ key: String, sourceLocation: SourceLocation = #_sourceLocation) -> [[String: Any]] {
        guard (200..<300).contains(status.code) else {
            Issue.record("reading '\(key)' of an error response: status \(status.code): \(text.prefix(200))",
                         sourceLocation: sourceLocation)
            return []
        }
        guard let a = object[key] as? [[String: Any]] else {
            Issue.record("no array '\(key)' in the response: \(text.prefix(200))", sourceLocation: sourceLocation)
            return []
        }
        return a
    }

    /// The `item` of each element of `items` (or another key), as ``array(_:sourceLocation:)`` reads it.
    func ids(_ key: String = "items", sourceLocation: SourceLocation = #_sourceLocation) -> [String] {
        array(key, sourceLocation: sourceLocation).compactMap { $0["item"] as? String }
    }

    var errorCode: String? { (object["error"] as? [String: Any])?["code"] as? String }
    var errorField: String? { (object["error"] as? [String: Any])?["field"] as? String }
}

extension TestClientProtocol {
    func get(_ uri: String, token: String? = nil) async throws -> JSONResponse {
        var headers = HTTPFields()
        if let token { headers[.authorization] = "Bearer \(token)" }
        return try await execute(uri: uri, method: .get, headers: headers) { r in
            JSONResponse(status: r.status, headers: r.headers, text: String(buffer: r.body))
        }
    }

    func post(_ uri: String, body: String, token: String? = nil) async throws -> JSONResponse {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        if let token { headers[.authorization] = "Bearer \(token)" }
        return try await execute(uri: uri, method: .post, headers: headers, body: ByteBuffer(string: body)) { r in
            JSONResponse(status: r.status, headers: r.headers, text: String(buffer: r.body))
        }
    }

    /// POSTs one event.
    func event(_ id: String, user: String, item: String, type: String = "play", ms: Int? = 200_000,
               timestamp: Int64 = 1_700_000_000, token: String? = nil) async throws -> JSONResponse {
        let ms = ms.map { ",\"ms_played\":\($0)" } ?? ""
        return try await post("/v1/events", body: """
            {"event_id":"\(id)","user":"\(user)","item":"\(item)","type":"\(type)"\(ms),"timestamp":\(timestamp)}
            """, token: token)
    }
}

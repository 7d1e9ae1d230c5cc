import ArgumentParser
import Foundation
import Hummingbird
import Logging
import NIOPosix
import ServeKit
import ServiceLifecycle
import EncoreData
import EncoreEventLog
import EncoreServing
import EncoreStorage

/// `encore-serve`: the HTTP server over a bundle and the event log.
@main
struct EncoreServe: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "encore-serve",
        abstract: "Serve recommendations and playlists from a bundle, and take listening events into the event log.",
        discussion: """
            Reads go to GET /v1/users/{user}/... and /v1/items/{item}/similar; events are POSTed to /v1/events \
            (Authorization: Bearer <token> when tokens are configured). A published unit's manifest (or a plain \
            bundle file) is polled and the model reloaded when it is replaced; POST /v1/admin/reload forces it. SIGTERM or SIGINT shuts down gracefully. See docs/openapi.yaml.
            """)

    @Option(help: "The model: a unit published by `encore-train weekly` (B.h5.d, or B.h5 when only the unit exists), or a plain bundle (.h5) with its index files beside it.")
    var bundle: String

    @Option(help: "Serve one user shard I/N of a sharded bundle: --bundle is then its manifest (encore-train assemble-shards); users of other shards are answered 421 naming their shard.")
    var usersShard: String?

    @Option(help: "The event log's folder (created when missing).")
    var logDir: String

    @Option(help: "The address to listen on.") var host = "127.0.0.1"
    @Option(help: "The port to listen on (0: any free port).") var port = 8080
    @Option(help: "Event-loop threads (0: one per core).") var threads = 0

    @Option(name: .customLong("token"), help: "A bearer token accepted on writes (repeatable; also ENCORE_TOKENS, comma-separated).")
    var tokens: [String] = []

    @Flag(help: "Require a token on reads too.") var readAuth = false

    @Flag(help: "Serve without any token: every write and admin endpoint is open (for a trusted network only).")
    var insecureNoAuth = false

    @Option(help: "Event-log fsync policy: always, never, or interval:<ms>.") var fsync = "always"

    @Flag(help: "Start a new, empty event log in --log-dir (the folder must hold no segment) whose sequences follow the bundle's event_log_through. Without it a log that does not reach the bundle's event_log_through is refused.")
    var newEventLog = false

    @Option(help: "The largest request body in bytes (413 above).") var maxBodyBytes = 1 << 20

    @Option(help: "The most events in one POST.") var maxEvents = 1000

    @Option(help: "The most requests in flight before shedding with 503 (0: no limit).") var maxInFlight = 512

    @Option(help: "The queueing delay target in milliseconds: once a queue stands, requests are shed (503 + Retry-After, on the event loop, before their handler) when those already waiting would take this long to drain (0: shed by --max-in-flight only).")
    var shedQueueDelayMs = 5.0

    @Option(help: "How often, in milliseconds, the share of requests that waited more than --shed-queue-delay-ms is taken; the queue stands from an interval where it reaches --shed-long-share, and ends after an interval with neither long waits nor shedding.")
    var shedIntervalMs = 100.0

    @Option(help: "The share (0-1) of requests in an interval that waited more than --shed-queue-delay-ms from which the queue stands.")
    var shedLongShare = OverloadDetector.defaultLongShare

    @Option(help: "The most open connections; one more is answered 503 and closed (0: no limit).") var maxConnections = 4096

    @Option(help: "Seconds a kept-alive connection may stay silent between requests before it is closed.") var idleTimeout = 60.0

    @Option(help: "Seconds a client has to send a whole request head (from its first byte; from connecting, for the first request); 408 and close past it.")
    var headerTimeout = 10.0

    @Option(help: "Seconds a client has to send a whole request body, from the end of its head; 408 and close past it.")
    var bodyTimeout = 30.0

    @Option(help: "Refuse events dated more than this many seconds ahead of the server clock.") var maxEventAheadSeconds: Int64 = 86_400

    @Option(help: "Seconds between checks of the unit's manifest (or the plain bundle file) for a replacement (0: never).") var pollSeconds = 2.0

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.") var logLevel = "info"

    @Flag(help: "Logs as JSON lines instead of text.") var jsonLogs = false

    @Option(help: "The most users whose real-time state is kept in memory (0: no bound); the least recently used are dropped and rebuilt from the event log when they return.")
    var maxRealtimeUsers = RealtimeEngine.defaultMaxUsers

    @Option(help: "The most recent event ids remembered to refuse duplicate events (0: no bound).")
    var maxSeenEventIds = RealtimeEngine.defaultMaxSeenEventIDs

    @Option(help: "Seconds the child process that opens and checks a model before it is served may take (0: load in this process, unchecked).")
    var validationTimeoutSeconds = 300.0

    /// `encore-serve validate-bundle PATH` is the child a ``BundleValidator`` runs; anything else is the server.
    static func main() async {
        BundleValidator.exitIfRequested()
        do {
            var command = try parseAsRoot()
            if var async = command as? any AsyncParsableCommand {
                try await async.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }

    func validate() throws {
        guard (0...65_535).contains(port) else { throw ValidationError("--port must be in 0...65535") }
        if let usersShard {
            do { _ = try UserShard(parsing: usersShard) } catch { throw ValidationError(error.description) }
        }
        guard threads >= 0 else { throw ValidationError("--threads must be >= 0") }
        guard maxBodyBytes >= 1024 else { throw ValidationError("--max-body-bytes must be at least 1024") }
        guard maxRealtimeUsers >= 0 else { throw ValidationError("--max-realtime-users must be >= 0") }
        guard maxSeenEventIds >= 0 else { throw ValidationError("--max-seen-event-ids must be >= 0") }
        guard validationTimeoutSeconds >= 0 else { throw ValidationError("--validation-timeout-seconds must be >= 0") }
        guard shedQueueDelayMs >= 0, shedIntervalMs > 0 else {
            throw ValidationError("--shed-queue-delay-ms must be >= 0 and --shed-interval-ms > 0")
        }
        guard (0...1).contains(shedLongShare) else { throw ValidationError("--shed-long-share must be in 0...1") }
        guard maxConnections >= 0 else { throw ValidationError("--max-connections must be >= 0") }
        guard idleTimeout > 0, headerTimeout > 0, bodyTimeout > 0 else {
            throw ValidationError("--idle-timeout, --header-timeout and --body-timeout must be > 0 seconds")
        }
        guard maxEventAheadSeconds >= 0 else { throw ValidationError("--max-event-ahead-seconds must be >= 0") }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("unknown --log-level '\(logLevel)'") }
        do { _ = try FsyncPolicy(parsing: fsync) } catch { throw ValidationError("--fsync: \(error)") }
    }

    func run() async throws {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        let json = jsonLogs
        LoggingSystem.bootstrap { label in
            var h: any LogHandler = json ? JSONLogHandler(label: label) : StreamLogHandler.standardError(label: label)
            h.logLevel = level
            return h
        }
        let logger = Logger(label: "encore.serve")
        let policy = try FsyncPolicy(parsing: fsync)
        let options = ServeOptions(
            tokens: ServeOptions.tokens(flags: tokens, environment: ProcessInfo.processInfo.environment),
            readAuth: readAuth, maxBodyBytes: maxBodyBytes, maxEventsPerRequest: maxEvents, maxInFlight: maxInFlight,
            eventRules: EventRules(maximumFutureSeconds: maxEventAheadSeconds))
        let overload = shedQueueDelayMs > 0
            ? OverloadDetector(target: .microseconds(Int64(shedQueueDelayMs * 1000)), interval: .microseconds(Int64(shedIntervalMs * 1000)),
                               longShare: shedLongShare)
            : nil
        let limits = ConnectionLimits(
            idleTimeout: .milliseconds(Int64(idleTimeout * 1000)), headerTimeout: .milliseconds(Int64(headerTimeout * 1000)),
            bodyTimeout: .milliseconds(Int64(bodyTimeout * 1000)), maxConnections: maxConnections)
        try ServeOptions.checkAuthentication(tokens: options.tokens, insecureNoAuth: insecureNoAuth)
        if options.tokens.isEmpty {
            logger.warning("--insecure-no-auth: POST /v1/events, /v1/admin/reload and user state are open to anyone")
        }
        let holder = EngineHolder()
        let metrics = ServeMetrics()
        let router = EncoreServer.router(holder: holder, options: options, metrics: metrics, logger: logger)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads == 0 ? ProcessInfo.processInfo.activeProcessorCount : threads)
        let app = Application(
            router: router,
            server: .encore(limits: limits, metrics: metrics, overload: overload),
            configuration: .init(address: .hostname(host, port: port), serverName: "encore-serve"),
            onServerRunning: { channel in
                logger.info("listening", metadata: ["address": .string("\(channel.localAddress.map { "\($0)" } ?? "?")")])
            },
            eventLoopGroupProvider: .shared(group),
            logger: logger)
        let bundlePath = bundle, logDirectory = logDir, newLog = newEventLog
        let shard = try usersShard.map { try UserShard(parsing: $0) }
        let maxUsers = maxRealtimeUsers, maxSeen = maxSeenEventIds
        let validator = validationTimeoutSeconds > 0 ? BundleValidator(timeoutSeconds: validationTimeoutSeconds) : nil
        let loader = EngineLoader(holder: holder, logger: logger) {
            let model = try ServingModel.load(path: bundlePath, shard: shard, validator: validator, logger: logger)
            logger.info("bundle loaded", metadata: [
                "version": .string(model.version), "users": "\(model.bundle.userIDs.count)", "items": "\(model.itemCount)",
                "unit_version": .string(model.publishedVersion ?? "none"),
                "indexes": .string(model.indexFiles.keys.sorted().joined(separator: ",")),
                "index_warnings": "\(model.indexStatus.filter(\.isWarning).count)"])
            return try RealtimeEngine(model: model, logDirectory: logDirectory, fsync: policy, validator: validator,
                                      maxUsers: maxUsers, maxSeenEventIDs: maxSeen, newEventLog: newLog, logger: logger)
        }
        var services: [any Service] = [loader]
        if pollSeconds > 0 {
            services.append(BundleWatcher(holder: holder, interval: .milliseconds(Int64(pollSeconds * 1000)), logger: logger))
        }
        services.append(app)
        let serviceGroup = ServiceGroup(configuration: .init(
            services: services.map { .init(service: $0) }, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await serviceGroup.run()
        try await group.shutdownGracefully()
    }
}

/// One JSON object per log line on standard error: `ts`, `level`, `label`, `message` and the metadata.
struct JSONLogHandler: LogHandler {
    let label: String
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]

    init(label: String) { self.label = label }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var object: [String: String] = [
            "ts": ISO8601DateFormatter().string(from: Date()), "level": event.level.rawValue, "label": label,
            "message": "\(event.message)",
        ]
        for (k, v) in metadata.merging(event.metadata ?? [:], uniquingKeysWith: { $1 }) { object[k] = "\(v)" }
        if let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) {
            FileHandle.standardError.write(data + Data("\n".utf8))
        }
    }
}

import EncoreCore
import Foundation
import Hummingbird
import HTTPTypes
import Logging
import NIOCore
import EncoreData
import EncoreServing
import EncoreStorage

/// Holds the engine once it is loaded (`/ready` answers 503 until then).
public final class EngineHolder: Sendable {
    private let engine = Locked<RealtimeEngine?>(nil)

    /// An empty holder, or one holding `engine`.
    public init(_ engine: RealtimeEngine? = nil) { self.engine.withLock { $0 = engine } }

    /// The engine, when loaded.
    public var current: RealtimeEngine? { engine.withLock { $0 } }

    /// Sets the engine.
    public func set(_ e: RealtimeEngine) { engine.withLock { $0 = e } }
}

/// The HTTP API of `encore-serve` (see `docs/openapi.yaml`).
public enum EncoreServer {
    /// The routes, as `METHOD /path/{param}`: the router registers exactly these.
    /// Every GET route also answers HEAD: the same status and headers, no body.
    public static let routeTable: [String] = {
        let reads = [
            "/health", "/ready", "/metrics",
            "/v1/users/{user}/recommendations", "/v1/users/{user}/discover-weekly",
            "/v1/users/{user}/daily-mixes", "/v1/users/{user}/because-you-played",
            "/v1/users/{user}/explain/{item}", "/v1/users/{user}/state", "/v1/items/{item}/similar",
            "/v1/items/{item}/features",
        ]
        return reads.flatMap { ["GET \($0)", "HEAD \($0)"] } + ["POST /v1/events", "POST /v1/tracks", "POST /v1/admin/reload"]
    }()

    /// The methods of ``routeTable`` whose path pattern matches `path` (a `{param}` matches one non-empty segment).
    public static func methods(forPath path: String) -> [String] {
        let segments = path.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
        var out: [String] = []
        for route in routeTable {
            let parts = route.split(separator: " ", maxSplits: 1)
            let pattern = parts[1].split(separator: "/", omittingEmptySubsequences: false).dropFirst()
            guard pattern.count == segments.count else { continue }
            let matches = zip(pattern, segments).allSatisfy { p, s in
                p.hasPrefix("{") ? !s.isEmpty : p == s
            }
            if matches && !out.contains(String(parts[0])) { out.append(String(parts[0])) }
        }
        return out
    }

    /// The router over `holder`'s engine.
    ///
    /// - Parameters:
    ///   - reloadQueue: where reloads run (a reload reads a whole bundle: never on the request threads).
    public static func router(
        holder: EngineHolder, options: ServeOptions, metrics: ServeMetrics, logger: Logger
    ) -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        router.add(middleware: HeadMiddleware())
        router.add(middleware: MetricsMiddleware(metrics: metrics))
        router.add(middleware: JSONErrorMiddleware())
        router.add(middleware: LoadSheddingMiddleware(limit: options.maxInFlight, retryAfter: options.retryAfterSeconds, metrics: metrics))
        let auth = BearerAuthMiddleware<BasicRequestContext>(tokens: options.tokens)
        let readAuth = options.readAuth
        let blocking = BlockingExecutor()

        @Sendable func engine() throws -> RealtimeEngine {
            guard let e = holder.current else {
                var h = HTTPFields()
                h[.retryAfter] = "1"
                throw APIError(.serviceUnavailable, code: "not_ready", message: "the model is still loading", headers: h)
            }
            return e
        }
        @Sendable func read(_ request: Request) throws -> RealtimeEngine {
            if readAuth { try auth.check(request) }
            return try engine()
        }
        /// A path id, percent-decoded (`u%201` is the user `u 1`); a malformed escape is a 400 naming the field.
        @Sendable func pathID(_ context: BasicRequestContext, _ name: String) throws -> String {
            let raw = try context.parameters.require(name)
            guard let decoded = raw.removingPercentEncoding else {
                throw APIError(.badRequest, code: "invalid_parameter",
                               message: "'\(raw)' is not a valid percent-encoded id", field: name)
            }
            return decoded
        }
        @Sendable func user(_ context: BasicRequestContext) throws -> String {
            let u = try pathID(context, "user")
            guard !u.isEmpty, u.utf8.count <= UserEvent.maxIDBytes else {
                throw APIError(.badRequest, code: "invalid_parameter", message: "a user id has 1 to \(UserEvent.maxIDBytes) bytes", field: "user")
            }
            try checkShard(u, index: nil)
            return u
        }
        /// A user of another shard (`encore-serve --users-shard`) is a 421 naming the shard that owns it.
        @Sendable func checkShard(_ u: String, index: Int?) throws {
            guard let shard = holder.current?.model.userShard, !shard.contains(u) else { return }
            throw EncoreServer.misdirected(user: u, shard: shard, index: index)
        }
        @Sendable func call<T>(_ body: () throws(ServingError) -> T) throws -> T {
            do { return try body() } catch { throw APIError.from(error) }
        }

        /// A GET route and its HEAD twin (``HeadMiddleware`` drops the body).
        func readRoute<Output: ResponseGenerator>(
            _ path: RouterPath, _ handler: @escaping @Sendable (Request, BasicRequestContext) async throws -> Output
        ) {
            router.get(path, use: handler)
            router.head(path, use: handler)
        }

        readRoute("/health") { _, _ in HealthJSON(status: "ok") }
        readRoute("/ready") { _, _ -> ReadyJSON in
            let e = try engine()
            let m = e.model
            let warnings = m.indexStatus.filter(\.isWarning).map { "index \($0.role) \($0.state.rawValue): \($0.detail) (exact search)" }
            return ReadyJSON(status: "ready", bundleVersion: m.version, publishedVersion: m.publishedVersion,
                             users: m.bundle.userIDs.count, items: m.itemCount, eventLogLastSequence: e.lastSequence,
                             indexes: m.indexStatus.map {
                                 .init(role: $0.role, status: $0.state.rawValue, file: $0.file, detail: $0.detail.isEmpty ? nil : $0.detail)
                             },
                             warnings: warnings)
        }
        readRoute("/metrics") { _, _ -> Response in
            var headers = HTTPFields()
            headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
            return Response(status: .ok, headers: headers,
                            body: .init(byteBuffer: ByteBuffer(bytes: metrics.render(engine: holder.current))))
        }

        readRoute("/v1/users/{user}/recommendations") { request, context -> RecommendationsJSON in
            let e = try read(request)
            let q = request.uri.queryParameters
            let k = try QueryParser.int(q["k"], name: "k", default: 10, range: 1...1000)
            let excludePlayed = try QueryParser.bool(q["exclude_played"], name: "exclude_played", default: true)
            let allow = QueryParser.list(q[values: "allow"])
            let deny = QueryParser.list(q[values: "deny"]) ?? []
            let u = try user(context)
            let r = try call { () throws(ServingError) in
                try e.recommendations(user: u, k: k, excludePlayed: excludePlayed, allow: allow, deny: deny)
            }
            return RecommendationsJSON(user: r.user, known: r.known, source: r.source.rawValue, bundleVersion: r.version,
                                       items: r.items.map { ItemScoreJSON(item: $0.id, score: finite($0.score)) })
        }
        readRoute("/v1/users/{user}/discover-weekly") { request, context -> DiscoverWeeklyJSON in
            let e = try read(request)
            let d = e.discoverWeekly(user: try user(context))
            return DiscoverWeeklyJSON(user: d.user, week: d.week, items: d.tracks.map {
                .init(item: $0.id, score: finite($0.score), source: $0.source)
            })
        }
        readRoute("/v1/users/{user}/daily-mixes") { request, context -> DailyMixesJSON in
            let e = try read(request)
            let d = e.dailyMixes(user: try user(context))
            return DailyMixesJSON(user: d.user, day: d.day, mixes: d.mixes.map { mix in
                .init(name: mix.name, cover: mix.cover, items: mix.tracks.map { .init(item: $0.id, familiar: $0.familiar) })
            })
        }
        readRoute("/v1/users/{user}/because-you-played") { request, context -> BecauseYouPlayedJSON in
            let e = try read(request)
            let q = request.uri.queryParameters
            let rows = try QueryParser.int(q["rows"], name: "rows", default: 3, range: 1...20)
            let count = try QueryParser.int(q["k"], name: "k", default: 10, range: 1...50)
            let u = try user(context)
            let b = try call { () throws(ServingError) in try e.becauseYouPlayed(user: u, rows: rows, count: count) }
            return BecauseYouPlayedJSON(user: b.user, rows: b.rows.map { r in
                .init(seed: r.seed, playedAt: r.playedAt, items: r.tracks.map {
                    .init(item: $0.id, similarity: finite($0.similarity), score: finite($0.score), seedShare: $0.seedShare.map(finite))
                })
            })
        }
        readRoute("/v1/users/{user}/explain/{item}") { request, context -> ExplainJSON in
            let e = try read(request)
            let u = try user(context)
            let item = try pathID(context, "item")
            let x = try call { () throws(ServingError) in try e.explain(user: u, item: item) }
            return ExplainJSON(user: x.user, item: x.item, score: finite(x.score), contributions: x.contributions.map {
                .init(item: $0.id, score: finite($0.score), share: finite($0.share))
            })
        }
        readRoute("/v1/users/{user}/state") { request, context -> UserStateJSON in
            // What the server holds about a user (likes, dislikes, plays) needs a token whenever tokens are set.
            try auth.check(request)
            let e = try engine()
            let s = e.state(user: try user(context))
            return UserStateJSON(user: s.user, known: s.known, eventsApplied: s.eventsApplied, played: s.played, likes: s.likes,
                                 dislikedTracks: s.dislikedTracks, dislikedArtists: s.dislikedArtists,
                                 followedArtists: s.followedArtists)
        }
        readRoute("/v1/items/{item}/similar") { request, context -> SimilarJSON in
            let e = try read(request)
            let q = request.uri.queryParameters
            let k = try QueryParser.int(q["k"], name: "k", default: 10, range: 1...1000)
            let space = q["space"].map(String.init) ?? "cf"
            let item = try pathID(context, "item")
            let near = try call { () throws(ServingError) in try e.similar(item: item, k: k, space: space) }
            return SimilarJSON(item: item, space: space, items: near.map { .init(item: $0.id, similarity: finite($0.score)) })
        }
        readRoute("/v1/items/{item}/features") { request, context -> FeaturesJSON in
            let e = try read(request)
            let item = try pathID(context, "item")
            let f = try call { () throws(ServingError) in try e.features(item: item) }
            return FeaturesJSON(
                item: f.item, source: f.source, descriptors: f.descriptors.mapValues { Double($0) },
                posted: f.posted.map {
                    .init(artist: $0.artist, album: $0.album, releaseDate: $0.releaseDate, durationMs: $0.durationMs,
                          explicit: $0.explicit, flagged: $0.flagged, provenance: f.provenance ?? "none")
                })
        }

        router.post("/v1/events") { request, context -> EventsJSON in
            try auth.check(request)
            let e = try engine()
            let bytes = try await Body.collect(request, limit: options.maxBodyBytes)
            let events: [UserEvent]
            do throws(EventValidationError) {
                events = try UserEvent.decodeBatch(bytes, now: Int64(Date().timeIntervalSince1970),
                                                        maxEvents: options.maxEventsPerRequest, rules: options.eventRules)
            } catch {
                throw APIError(.badRequest, code: "invalid_event", message: error.message, field: error.field, index: error.index)
            }
            for (k, event) in events.enumerated() { try checkShard(event.user, index: events.count > 1 ? k : nil) }
            let result = try await blocking.ingest { () throws(ServingError) in try e.ingest(events) }
            return EventsJSON(accepted: result.accepted, duplicates: result.duplicates,
                              firstSequence: result.sequences?.lowerBound, lastSequence: result.sequences?.upperBound)
        }
        router.post("/v1/tracks") { request, context -> TracksJSON in
            try auth.check(request)
            let e = try engine()
            let bytes = try await Body.collect(request, limit: options.maxBodyBytes)
            let tracks: [PostedTrack]
            do throws(TrackValidationError) {
                tracks = try PostedTrack.decodeBatch(bytes)
            } catch {
                throw APIError(.badRequest, code: "invalid_track", message: error.description, field: error.field, index: error.index)
            }
            let results = try await blocking.ingest { () throws(ServingError) in try e.postTracks(tracks) }
            return TracksJSON(accepted: results.count, newTracks: results.filter(\.isNew).count,
                              tracks: results.map { .init(item: $0.id, new: $0.isNew, provenance: $0.provenance) })
        }
        router.post("/v1/admin/reload") { request, context -> ReloadJSON in
            try auth.check(request)
            let e = try engine()
            let r = try await blocking.reload { () throws(ServingError) in try e.reload() }
            logger.info("reload requested over HTTP", metadata: ["version": .string(r.version)])
            return ReloadJSON(previousVersion: r.previousVersion, version: r.version, replayed: r.replayed)
        }
        return router
    }
}

extension EncoreServer {
    /// The answer to a request for a user another shard owns: 421 Misdirected Request, code `wrong_shard`, the
    /// owning shard in the message and in the `Encore-User-Shard` header (`I/N`), so a router can resend it.
    static func misdirected(user: String, shard: UserShard, index: Int?) -> APIError {
        let owner = UserShard.shard(of: user, count: shard.count)
        var headers = HTTPFields()
        if let name = HTTPField.Name("Encore-User-Shard") { headers[name] = "\(owner)/\(shard.count)" }
        return APIError(HTTPResponse.Status(code: 421, reasonPhrase: "Misdirected Request"), code: "wrong_shard",
                        message: "user '\(user)' belongs to shard \(owner)/\(shard.count); this server answers shard \(shard)",
                        field: "user", index: index, headers: headers)
    }
}

/// Runs the blocking engine calls (an fsync'ed append, a bundle read) on threads of their own, so the request
/// threads never wait on a disk.
final class BlockingExecutor: Sendable {
    /// Concurrent: ingests serialize only their write, and wait for the shared fsync side by side (group commit).
    let ingestQueue = DispatchQueue(label: "encore.ingest", attributes: .concurrent)
    let reloadQueue = DispatchQueue(label: "encore.reload")

    func ingest<T: Sendable>(_ body: @escaping @Sendable () throws(ServingError) -> T) async throws -> T {
        try await run(on: ingestQueue, body)
    }

    func reload<T: Sendable>(_ body: @escaping @Sendable () throws(ServingError) -> T) async throws -> T {
        try await run(on: reloadQueue, body)
    }

    private func run<T: Sendable>(on queue: DispatchQueue, _ body: @escaping @Sendable () throws(ServingError) -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<T, any Error>) in
            queue.async {
                do throws(ServingError) { c.resume(returning: try body()) } catch { c.resume(throwing: APIError.from(error)) }
            }
        }
    }
}

/// Reads a request body within a limit.
enum Body {
    static func collect(_ request: Request, limit: Int) async throws -> [UInt8] {
        if let length = request.headers[.contentLength].flatMap({ Int($0) }), length > limit {
            throw tooLarge(limit)
        }
        do {
            let buffer = try await request.body.collect(upTo: limit)
            // A connection closed mid-body (the body timeout) ends the body early: never act on part of one.
            if let length = request.headers[.contentLength].flatMap({ Int($0) }), buffer.readableBytes != length {
                throw APIError(.badRequest, code: "invalid_event",
                               message: "the body ended after \(buffer.readableBytes) of its \(length) bytes")
            }
            return Array(buffer.readableBytesView)
        } catch is NIOTooManyBytesError {
            // A chunked body (no Content-Length) that grows past the limit.
            throw tooLarge(limit)
        }
    }

    static func tooLarge(_ limit: Int) -> APIError {
        APIError(.contentTooLarge, code: "body_too_large", message: "the body is larger than \(limit) bytes")
    }
}

/// Parses query parameters, with 400 errors naming the parameter.
enum QueryParser {
    static func int(_ s: Substring?, name: String, default d: Int, range: ClosedRange<Int>) throws -> Int {
        guard let s else { return d }
        guard let v = Int(s), range.contains(v) else {
            throw APIError(.badRequest, code: "invalid_parameter",
                           message: "\(name) must be an integer in \(range.lowerBound)...\(range.upperBound), got '\(s)'", field: name)
        }
        return v
    }

    static func bool(_ s: Substring?, name: String, default d: Bool) throws -> Bool {
        guard let s else { return d }
        switch s.lowercased() {
        case "true", "1", "yes": return true
        case "false", "0", "no": return false
        default:
            throw APIError(.badRequest, code: "invalid_parameter", message: "\(name) must be true or false, got '\(s)'", field: name)
        }
    }

    /// Comma-separated values of every occurrence of a parameter; `nil` when absent.
    static func list(_ values: [Substring]) -> [String]? {
        guard !values.isEmpty else { return nil }
        return values.flatMap { $0.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) } }.filter { !$0.isEmpty }
    }
}

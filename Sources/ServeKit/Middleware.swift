import EncoreCore
import Foundation
import Hummingbird

/// Answers HEAD like GET without a body: the route's (or the error's) status and headers, `Content-Length` the
/// length of the body GET would send.
struct HeadMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard request.method == .head else { return try await next(request, context) }
        var response: Response
        do {
            response = try await next(request, context)
        } catch let error as any HTTPResponseError {
            response = try error.response(from: request, context: context)
        }
        let length = response.body.contentLength
        response.body = ResponseBody()
        response.headers[.contentLength] = length.map { String($0) }
        return response
    }
}

/// Records every request's route, status and latency in ``ServeMetrics``.
struct MetricsMiddleware<Context: RequestContext>: RouterMiddleware {
    let metrics: ServeMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        func seconds() -> Double {
            let d = ContinuousClock.now - start
            return Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
        }
        do {
            let response = try await next(request, context)
            metrics.record(route: context.endpointPath ?? "unmatched", method: request.method.rawValue,
                           status: response.status.code, seconds: seconds())
            return response
        } catch {
            let status = (error as? any HTTPResponseError)?.status.code ?? 500
            metrics.record(route: context.endpointPath ?? "unmatched", method: request.method.rawValue, status: status,
                           seconds: seconds())
            throw error
        }
    }
}

/// Sheds load with 503 and `Retry-After`, cheaply and before any work: when `limit` requests are already in flight,
/// and when requests wait too long to be handled (``QueueDelayShedder``). Health, readiness and metrics are never
/// shed.
struct LoadSheddingMiddleware<Context: RequestContext>: RouterMiddleware {
    let limit: Int
    let retryAfter: Int
    let metrics: ServeMetrics
    let queueDelay: QueueDelayShedder?
    let inFlight = Locked(0)

    init(limit: Int, retryAfter: Int, metrics: ServeMetrics, queueDelay: QueueDelayShedder? = nil) {
        self.limit = limit
        self.retryAfter = retryAfter
        self.metrics = metrics
        self.queueDelay = queueDelay
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let path = request.uri.path
        if path == "/health" || path == "/ready" || path == "/metrics" {
            return try await next(request, context)
        }
        if let stamp = request.headers[receivedAtHeader].flatMap({ UInt64($0) }) {
            let now = monotonicNanoseconds()
            let waited = now &- stamp
            if stamp <= now { metrics.queueDelay.record(.nanoseconds(Int64(clamping: waited))) }
            if let queueDelay, stamp <= now, !queueDelay.admit(waited: waited, now: now) {
                metrics.shedQueueDelay.increment()
                throw overloaded("requests are waiting more than \(queueDelay.targetMilliseconds) ms to be handled; retry later")
            }
        }
        if limit <= 0 { return try await next(request, context) }
        let admitted = inFlight.withLock { n -> Bool in
            guard n < limit else { return false }
            n += 1
            return true
        }
        guard admitted else {
            metrics.shedInFlight.increment()
            throw overloaded("the server is at its limit of \(limit) requests in flight; retry later")
        }
        metrics.inFlight.increment()
        defer {
            inFlight.withLock { $0 -= 1 }
            metrics.inFlight.decrement()
        }
        return try await next(request, context)
    }

    private func overloaded(_ message: String) -> APIError {
        var headers = HTTPFields()
        headers[.retryAfter] = "\(retryAfter)"
        return APIError(.serviceUnavailable, code: "overloaded", message: message, headers: headers)
    }
}

/// Sheds by queueing delay, in the manner of CoDel (controlled delay): a request whose wait to be handled is below
/// `target` is always admitted and marks the queue as draining; once no request has waited less than `target` for
/// a whole `interval` (a standing queue), every request that waited `target` or more is shed, and any request that
/// waited a whole `interval` is shed at once. Shedding drains the queue, so the first request to wait less than
/// `target` ends it. After an interval with no request at all, the interval starts when the next request arrived.
public final class QueueDelayShedder: Sendable {
    /// The wait that counts as queueing.
    public let target: Duration
    /// How long the wait may stay above `target` before shedding starts.
    public let interval: Duration
    private let targetNanoseconds: UInt64
    private let intervalNanoseconds: UInt64
    /// When a request last waited less than `target`, and when any request was last handled (monotonic nanoseconds).
    private let state: Locked<(lastShort: UInt64, lastSeen: UInt64)>

    /// A shedder; `target` and `interval` must be positive.
    public init(target: Duration, interval: Duration) {
        self.target = target
        self.interval = interval
        targetNanoseconds = Self.nanoseconds(target)
        intervalNanoseconds = max(Self.nanoseconds(interval), 1)
        let now = monotonicNanoseconds()
        state = Locked((lastShort: now, lastSeen: now))
    }

    /// `target` in milliseconds, for messages.
    var targetMilliseconds: String {
        let ms = Double(targetNanoseconds) / 1e6
        return ms == ms.rounded() ? String(Int(ms)) : String(ms)
    }

    static func nanoseconds(_ d: Duration) -> UInt64 {
        let c = d.components
        return UInt64(clamping: c.seconds) &* 1_000_000_000 &+ UInt64(clamping: c.attoseconds / 1_000_000_000)
    }

    /// Whether a request that waited `waited` nanoseconds, handled at `now`, is served.
    func admit(waited: UInt64, now: UInt64) -> Bool {
        state.withLock { state in
            // After an idle stretch (no request for an interval) the queue started when this request arrived: an
            // idle server's first burst is not a standing queue.
            if now >= state.lastSeen, now - state.lastSeen >= intervalNanoseconds {
                state.lastShort = max(state.lastShort, now >= waited ? now - waited : 0)
            }
            state.lastSeen = max(state.lastSeen, now)
            if waited < targetNanoseconds {
                state.lastShort = max(state.lastShort, now)
                return true
            }
            if waited >= intervalNanoseconds { return false }
            let since = state.lastShort
            return now < since || now - since < intervalNanoseconds
        }
    }
}

/// Requires `Authorization: Bearer <token>` with one of the configured tokens.
struct BearerAuthMiddleware<Context: RequestContext>: RouterMiddleware {
    let tokens: Set<String>

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        try check(request)
        return try await next(request, context)
    }

    func check(_ request: Request) throws {
        guard !tokens.isEmpty else { return }
        var headers = HTTPFields()
        headers[.wwwAuthenticate] = "Bearer"
        guard let value = request.headers[.authorization] else {
            throw APIError(.unauthorized, code: "unauthorized", message: "this endpoint needs 'Authorization: Bearer <token>'",
                           field: "Authorization", headers: headers)
        }
        let parts = value.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer",
              Self.matches(String(parts[1]).trimmingCharacters(in: .whitespaces), tokens)
        else {
            throw APIError(.unauthorized, code: "unauthorized", message: "the bearer token is not valid",
                           field: "Authorization", headers: headers)
        }
    }

    /// Compares against every token without stopping at the first differing byte.
    static func matches(_ given: String, _ tokens: Set<String>) -> Bool {
        let g = Array(given.utf8)
        var found = false
        for t in tokens {
            let b = Array(t.utf8)
            var diff = UInt8(g.count == b.count ? 0 : 1)
            for i in 0..<min(g.count, b.count) { diff |= g[i] ^ b[i] }
            if diff == 0 { found = true }
        }
        return found
    }
}

/// Answers every error as the API's JSON error body: an ``APIError`` passes through; any other HTTP error (an unknown
/// route, a method a route does not take) keeps its status with a JSON body; anything else is a 500 whose message
/// names the error's type, never its details.
struct JSONErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            throw error
        } catch let error as any HTTPResponseError {
            if error.status.code == 404 {
                // A path the API has, asked with another method: a 405 naming the methods the path takes.
                let allowed = EncoreServer.methods(forPath: request.uri.path)
                if !allowed.isEmpty {
                    var headers = HTTPFields()
                    headers[.allow] = allowed.joined(separator: ", ")
                    throw APIError(.methodNotAllowed, code: "method_not_allowed",
                                   message: "\(request.method.rawValue) is not allowed on \(request.uri.path); allowed: "
                                       + allowed.joined(separator: ", "), headers: headers)
                }
            }
            let status = error.status
            let code: String
            let message: String
            switch status.code {
            case 404:
                code = "not_found"
                message = "no route \(request.method.rawValue) \(request.uri.path) (see docs/openapi.yaml)"
            case 405:
                code = "method_not_allowed"
                message = "\(request.method.rawValue) is not allowed on \(request.uri.path)"
            default:
                code = status.reasonPhrase.lowercased().replacingOccurrences(of: " ", with: "_")
                message = "\(status.code) \(status.reasonPhrase) for \(request.method.rawValue) \(request.uri.path)"
            }
            throw APIError(status, code: code.isEmpty ? "http_error" : code, message: message)
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            throw APIError(.internalServerError, code: "internal", message: "internal error (\(type(of: error)))")
        }
    }
}

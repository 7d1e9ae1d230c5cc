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

/// Sheds load with 503 and `Retry-After`, cheaply and before any work, when `limit` requests are already in flight.
/// Health, readiness and metrics are never shed. (Shedding by queueing delay happens earlier, in the connection
/// guard on the event loop: ``OverloadDetector``.)
struct LoadSheddingMiddleware<Context: RequestContext>: RouterMiddleware {
    let limit: Int
    let retryAfter: Int
    let metrics: ServeMetrics
    let inFlight = Locked(0)

    init(limit: Int, retryAfter: Int, metrics: ServeMetrics) {
        self.limit = limit
        self.retryAfter = retryAfter
        self.metrics = metrics
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if limit <= 0 || NeverShed.contains(request.uri.path) { return try await next(request, context) }
        let admitted = inFlight.withLock { n -> Bool in
            guard n < limit else { return false }
            n += 1
            return true
        }
        guard admitted else {
            metrics.shedInFlight.increment()
            var headers = HTTPFields()
            headers[.retryAfter] = "\(retryAfter)"
            throw APIError(.serviceUnavailable, code: "overloaded",
                           message: "the server is at its limit of \(limit) requests in flight; retry later", headers: headers)
        }
        metrics.inFlight.increment()
        defer {
            inFlight.withLock { $0 -= 1 }
            metrics.inFlight.decrement()
        }
        return try await next(request, context)
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

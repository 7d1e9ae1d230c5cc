import EncoreCore
import Foundation
import Hummingbird

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

/// Sheds load: at most `limit` requests run at once; more get 503 with `Retry-After`. Health, readiness and metrics
/// are never shed.
struct LoadSheddingMiddleware<Context: RequestContext>: RouterMiddleware {
    let limit: Int
    let retryAfter: Int
    let metrics: ServeMetrics
    let inFlight = Locked(0)

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let path = request.uri.path
        if limit <= 0 || path == "/health" || path == "/ready" || path == "/metrics" {
            return try await next(request, context)
        }
        let admitted = inFlight.withLock { n -> Bool in
            guard n < limit else { return false }
            n += 1
            return true
        }
        guard admitted else {
            metrics.shed.increment()
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

import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import Testing
@testable import ServeKit

/// The connection guard on a real socket: silent, dribbling and slow-body clients are closed after their timeout
/// (408 with a JSON body when a request was under way), connections beyond the limit get 503 at once while admitted
/// ones keep working, and the HTTP parser's own errors have JSON bodies. Bounds are generous: a test only fails when
/// a connection is never closed (read timeout of 15 s) or gets the wrong answer.
@Suite struct ConnectionGuardTests {
    /// A live server with the guard, a `/hello` route and a `/echo` route that reads the whole body.
    static func withServer(_ limits: ConnectionLimits, metrics: ServeMetrics = ServeMetrics(),
                           _ body: @escaping @Sendable (Int) async throws -> Void) async throws {
        let router = Router(context: BasicRequestContext.self)
        router.add(middleware: JSONErrorMiddleware())
        router.get("/hello") { _, _ in "hello" }
        router.post("/echo") { request, _ -> String in
            let buffer = try await request.body.collect(upTo: 1 << 20)
            return "\(buffer.readableBytes)"
        }
        var logger = Logger(label: "guard-test")
        logger.logLevel = .error
        try await withLiveServer({ running in
            Application(router: router, server: .encore(limits: limits, metrics: metrics),
                        configuration: .init(address: .hostname("127.0.0.1", port: 0)), onServerRunning: running, logger: logger)
        }, body)
    }

    static func errorCode(_ r: RawSocket.Response?) -> String? {
        guard let r, let o = (try? JSONSerialization.jsonObject(with: Data(r.body.utf8))) as? [String: Any] else { return nil }
        return (o["error"] as? [String: Any])?["code"] as? String
    }

    static func errorMessage(_ r: RawSocket.Response?) -> String? {
        guard let r, let o = (try? JSONSerialization.jsonObject(with: Data(r.body.utf8))) as? [String: Any] else { return nil }
        return (o["error"] as? [String: Any])?["message"] as? String
    }

    @Test func aSilentConnectionIsClosedAfterTheHeaderTimeout() async throws {
        let metrics = ServeMetrics()
        try await Self.withServer(ConnectionLimits(idleTimeout: .seconds(60), headerTimeout: .milliseconds(300)), metrics: metrics) { port in
            let closed = try await blocking {
                let s = try RawSocket(port: port)
                return s.readUntilClosed()
            }
            #expect(closed.closed, "a connection that sent nothing was still open after 15 s")
            #expect(closed.bytes.isEmpty, "nothing is answered to a client that asked nothing")
        }
        #expect(String(decoding: metrics.render(engine: nil), as: UTF8.self)
            .contains(#"encore_http_connections_timed_out_total{phase="header"} 1"#))
    }

    @Test func aDribbledHeadGets408AndIsClosed() async throws {
        try await Self.withServer(ConnectionLimits(idleTimeout: .seconds(60), headerTimeout: .milliseconds(500))) { port in
            let result = try await blocking { () -> (sentAll: Bool, bytes: [UInt8], closed: Bool) in
                let s = try RawSocket(port: port)
                // A kept-alive connection first serves one request normally.
                s.send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
                guard let first = s.readResponse(), first.status == 200 else { return (false, [], false) }
                // Then a head dribbled one byte every 50 ms: 2 s for the whole, well past the header timeout.
                let head = "GET /hello HTTP/1.1\r\nHost: x\r\nX-Slow: " + String(repeating: "a", count: 40) + "\r\n\r\n"
                var sentAll = true
                for ch in head {
                    if s.readable() || !s.send(String(ch)) { sentAll = false; break }
                    usleep(50_000)
                }
                let rest = s.readUntilClosed()
                return (sentAll, rest.bytes, rest.closed)
            }
            let response = RawSocket.parse(result.bytes)
            #expect(response?.status == 408)
            #expect(Self.errorCode(response) == "request_timeout")
            #expect(Self.errorMessage(response)?.contains("request head did not arrive within") == true)
            #expect(result.closed)
            #expect(!result.sentAll, "the whole head was accepted after 2 s")
        }
    }

    @Test func aSlowBodyGets408AndIsClosed() async throws {
        try await Self.withServer(ConnectionLimits(headerTimeout: .seconds(5), bodyTimeout: .milliseconds(400))) { port in
            let result = try await blocking { () -> (bytes: [UInt8], closed: Bool) in
                let s = try RawSocket(port: port)
                s.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789")
                return s.readUntilClosed()
            }
            let response = RawSocket.parse(result.bytes)
            #expect(response?.status == 408)
            #expect(Self.errorCode(response) == "request_timeout")
            #expect(Self.errorMessage(response)?.contains("request body did not arrive within") == true)
            #expect(result.closed)
        }
    }

    @Test func anIdleKeptAliveConnectionIsClosed() async throws {
        let metrics = ServeMetrics()
        try await Self.withServer(ConnectionLimits(idleTimeout: .milliseconds(300), headerTimeout: .seconds(60)), metrics: metrics) { port in
            let result = try await blocking { () -> (status: Int?, closed: Bool, extra: Int) in
                let s = try RawSocket(port: port)
                s.send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
                let first = s.readResponse()
                let rest = s.readUntilClosed()
                return (first?.status, rest.closed, rest.bytes.count)
            }
            #expect(result.status == 200)
            #expect(result.closed, "a kept-alive connection with no next request was still open after 15 s")
            #expect(result.extra == 0)
        }
        #expect(String(decoding: metrics.render(engine: nil), as: UTF8.self)
            .contains(#"encore_http_connections_timed_out_total{phase="idle"} 1"#))
    }

    @Test func connectionsBeyondTheLimitGet503AndAdmittedOnesKeepWorking() async throws {
        let metrics = ServeMetrics()
        try await Self.withServer(ConnectionLimits(maxConnections: 2, retryAfterSeconds: 2), metrics: metrics) { port in
            let result = try await blocking { () -> (refused: RawSocket.Response?, refusedClosed: Bool, admitted: [Int?], later: Int?) in
                let a = try RawSocket(port: port), b = try RawSocket(port: port)
                // Both admitted: each gets an answer.
                a.send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
                b.send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
                _ = a.readResponse()
                _ = b.readResponse()
                let c = try RawSocket(port: port)
                let refused = c.readUntilClosed()
                // The admitted connections still answer.
                a.send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
                b.send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
                let admitted = [a.readResponse()?.status, b.readResponse()?.status]
                // Once one closes, a new connection is admitted (the close is noticed asynchronously: retry a while).
                a.send("GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                _ = a.readUntilClosed()
                a.close()
                var later: Int?
                for _ in 0..<50 {
                    let d = try RawSocket(port: port)
                    d.send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
                    later = d.readResponse()?.status
                    if later == 200 { break }
                    usleep(100_000)
                }
                return (RawSocket.parse(refused.bytes), refused.closed, admitted, later)
            }
            #expect(result.refused?.status == 503)
            #expect(result.refused?.headers["retry-after"] == "2")
            #expect(Self.errorCode(result.refused) == "too_many_connections")
            #expect(Self.errorMessage(result.refused) == "the server is at its limit of 2 connections; retry later")
            #expect(result.refusedClosed)
            #expect(result.admitted == [200, 200])
            #expect(result.later == 200)
        }
        #expect(String(decoding: metrics.render(engine: nil), as: UTF8.self).contains("encore_http_connections_refused_total"))
    }

    @Test func theParsersOwnErrorsHaveJSONBodies() async throws {
        try await Self.withServer(ConnectionLimits(maxHeaderBytes: 8192)) { port in
            let responses = try await blocking { () -> [RawSocket.Response?] in
                var out: [RawSocket.Response?] = []
                for request in [
                    "GET /" + String(repeating: "a", count: 100_000) + " HTTP/1.1\r\nHost: x\r\n\r\n",
                    "GET /hello HTTP/1.1\r\nHost: x\r\nX-Big: " + String(repeating: "b", count: 100_000) + "\r\n\r\n",
                    "GET /hello HTTP/1.1\r\nHost: x\r\n" + (0..<2000).map { "X-H\($0): v\r\n" }.joined() + "\r\n",
                    "NOT A REQUEST\r\n\r\n",
                ] {
                    let s = try RawSocket(port: port)
                    s.send(request)
                    out.append(RawSocket.parse(s.readUntilClosed().bytes))
                }
                return out
            }
            #expect(responses.map { $0?.status } == [414, 431, 431, 400])
            for r in responses {
                #expect(r?.headers["content-type"] == "application/json; charset=utf-8")
                #expect(Self.errorMessage(r)?.isEmpty == false, "no JSON error body: \(r?.body.prefix(100) ?? "nil")")
            }
            #expect(Self.errorCode(responses[0]) == "uri_too_long")
            #expect(Self.errorMessage(responses[0]) == "the request line is longer than 8192 bytes")
            #expect(responses[1...2].allSatisfy { Self.errorCode($0) == "headers_too_large" })
            #expect(Self.errorMessage(responses[1]) == "the request line and headers are larger than 8192 bytes")
            #expect(Self.errorCode(responses[3]) == "bad_request")
        }
    }
}

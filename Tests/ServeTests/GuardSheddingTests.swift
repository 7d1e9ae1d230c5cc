import Foundation
import Hummingbird
import Logging
import Synchronization
import Testing
@testable import ServeKit

/// Shedding in the connection guard, on a real socket: the detector is put in a standing queue by hand (constructed
/// waits on a clock the test moves, requests made to wait by hand), so the answers do not depend on timing. A shed
/// request gets 503 `overloaded` with `Retry-After` and the JSON body before any handler runs, its body is read and
/// dropped, the connection serves the next request, and health is never shed.
@Suite struct GuardSheddingTests {
    /// How often each route's handler ran.
    final class Calls: Sendable {
        let hello = Atomic<Int>(0)
        let echo = Atomic<Int>(0)
    }

    /// A live server with the guard and `detector`: `/hello`, `/echo` (reads the whole body) and `/health`.
    static func withServer(_ detector: OverloadDetector, calls: Calls, metrics: ServeMetrics = ServeMetrics(),
                           limits: ConnectionLimits = ConnectionLimits(retryAfterSeconds: 3),
                           _ body: @escaping @Sendable (Int) async throws -> Void) async throws {
        let router = Router(context: BasicRequestContext.self)
        router.add(middleware: JSONErrorMiddleware())
        router.get("/hello") { _, _ -> String in
            calls.hello.wrappingAdd(1, ordering: .relaxed)
            return "hello"
        }
        router.post("/echo") { request, _ -> String in
            calls.echo.wrappingAdd(1, ordering: .relaxed)
            let buffer = try await request.body.collect(upTo: 1 << 20)
            return "\(buffer.readableBytes)"
        }
        router.get("/health") { _, _ in "ok" }
        var logger = Logger(label: "guard-shed-test")
        logger.logLevel = .error
        try await withLiveServer({ running in
            Application(router: router, server: .encore(limits: limits, metrics: metrics, overload: detector),
                        configuration: .init(address: .hostname("127.0.0.1", port: 0)), onServerRunning: running, logger: logger)
        }, body)
    }

    /// A detector whose queue stands with a bound of 20 (320 requests handled in 80 busy ms, all after a 20 ms wait),
    /// and 25 requests made to wait: every request the guard may shed is shed until `release` lets them go.
    static func standingDetector() -> (OverloadDetector, release: @Sendable () -> Void) {
        let clock = ManualClock()
        let d = OverloadDetectorTests.detector(clock)
        OverloadDetectorTests.handle(d, clock, long: 320, short: 0, busy: 80)
        clock.advance(milliseconds: 20)
        OverloadDetectorTests.wait(d, 25)
        return (d, { d.dropped(25) })
    }

    static func json(_ r: RawSocket.Response?) -> [String: Any]? {
        guard let r, let o = (try? JSONSerialization.jsonObject(with: Data(r.body.utf8))) as? [String: Any] else { return nil }
        return o["error"] as? [String: Any]
    }

    @Test func aStandingQueueIsAnswered503BeforeAnyHandlerAndTheConnectionServesTheNextRequest() async throws {
        let (detector, release) = Self.standingDetector()
        let calls = Calls()
        let metrics = ServeMetrics()
        try await Self.withServer(detector, calls: calls, metrics: metrics) { port in
            let (shed, health, after) = try await blocking { () -> (RawSocket.Response?, RawSocket.Response?, RawSocket.Response?) in
                let s = try RawSocket(port: port)
                s.send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
                let shed = s.readResponse()
                // Health is never shed, on the same connection.
                s.send("GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
                let health = s.readResponse()
                // The waiting requests leave: the same connection is served again.
                release()
                s.send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
                return (shed, health, s.readResponse())
            }
            #expect(shed?.status == 503)
            #expect(shed?.headers["retry-after"] == "3")
            #expect(shed?.headers["content-type"] == "application/json; charset=utf-8")
            #expect(shed?.headers["connection"] == nil, "a shed request keeps its connection")
            #expect(Self.json(shed)?["code"] as? String == "overloaded")
            #expect(Self.json(shed)?["message"] as? String == "requests are waiting more than 5 ms to be handled; retry later")
            #expect(health?.status == 200)
            #expect(health?.body == "ok")
            #expect(after?.status == 200)
            #expect(after?.body == "hello")
        }
        #expect(calls.hello.load(ordering: .relaxed) == 1, "the shed request reached its handler")
        let text = String(decoding: metrics.render(engine: nil), as: UTF8.self)
        #expect(text.contains(#"encore_http_requests_shed_total{reason="queue_delay"} 1"#))
        #expect(text.contains("encore_http_requests_waiting 0.0\n"))
        #expect(text.contains("encore_http_queue_standing 1.0\n"))
        #expect(text.contains("encore_http_shed_bound 20.0\n"))
    }

    @Test func aShedPostsBodyIsReadAndDroppedNotTakenForARequest() async throws {
        let (detector, release) = Self.standingDetector()
        let calls = Calls()
        try await Self.withServer(detector, calls: calls) { port in
            let result = try await blocking { () -> [RawSocket.Response?] in
                let s = try RawSocket(port: port)
                // The body looks like a request: if the guard parsed it as one, it would be answered too.
                let fake = "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"
                let body = fake + String(repeating: "z", count: 100 - fake.utf8.count)
                s.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
                // The answer comes before the body was sent; the body follows.
                let first = s.readResponse()
                s.send(body)
                // A chunked body, sent with its head.
                s.send("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"
                       + String(fake.utf8.count, radix: 16) + "\r\n" + fake + "\r\n0\r\n\r\n")
                let second = s.readResponse()
                release()
                s.send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
                let third = s.readResponse()
                s.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n" + body)
                return [first, second, third, s.readResponse()]
            }
            #expect(result.map { $0?.status } == [503, 503, 200, 200])
            #expect(result[2]?.body == "hello")
            #expect(result[3]?.body == "100")
        }
        #expect(calls.echo.load(ordering: .relaxed) == 1, "only the POST after the queue cleared reached its handler")
        #expect(calls.hello.load(ordering: .relaxed) == 1)
    }

    @Test func aShedRequestThatAsksToCloseIsAnsweredThenClosed() async throws {
        let (detector, _) = Self.standingDetector()
        try await Self.withServer(detector, calls: Calls()) { port in
            let result = try await blocking { () -> (RawSocket.Response?, Bool) in
                let s = try RawSocket(port: port)
                s.send("GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                let all = s.readUntilClosed()
                return (RawSocket.parse(all.bytes), all.closed)
            }
            #expect(result.0?.status == 503)
            #expect(result.0?.headers["connection"] == "close")
            #expect(Self.json(result.0)?["code"] as? String == "overloaded")
            #expect(result.1)
        }
    }

    @Test func aRequestBehindAnOpenOneIsNeverShedSoAnswersKeepTheirOrder() async throws {
        let (detector, _) = Self.standingDetector()
        let calls = Calls()
        try await Self.withServer(detector, calls: calls) { port in
            let text = try await blocking { () -> String in
                let s = try RawSocket(port: port)
                // Pipelined: /health is forwarded (never shed) and still open when /hello's head is decoded.
                s.send("GET /health HTTP/1.1\r\nHost: x\r\n\r\nGET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                return String(decoding: s.readUntilClosed().bytes, as: UTF8.self)
            }
            // Both answered 200, in order (a 503 written by the guard would have come first).
            let statuses = text.components(separatedBy: "HTTP/1.1 ").dropFirst().map { $0.prefix(3) }
            #expect(statuses == ["200", "200"], "\(text)")
            let ok = try #require(text.range(of: "\r\n\r\nok"))
            let hello = try #require(text.range(of: "\r\n\r\nhello"))
            #expect(ok.lowerBound < hello.lowerBound)
        }
        #expect(calls.hello.load(ordering: .relaxed) == 1)
    }

    @Test func everyHandledRequestLeavesTheQueue() async throws {
        let clock = ManualClock()
        let detector = OverloadDetectorTests.detector(clock)
        let calls = Calls()
        try await Self.withServer(detector, calls: calls) { port in
            let statuses = try await concurrently(4) { _ -> [Int?] in
                let s = try RawSocket(port: port)
                var out: [Int?] = []
                for _ in 0..<5 {
                    s.send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
                    out.append(s.readResponse()?.status)
                }
                return out
            }
            #expect(statuses.flatMap { $0 } == Array(repeating: 200, count: 20))
            #expect(detector.waiting == 0)
        }
        #expect(calls.hello.load(ordering: .relaxed) == 20)
    }

    /// The real clock end to end: many clients keep a CPU-bound route busy; once waits stand, requests are shed
    /// with 503 and `Retry-After`, and once the load is gone requests are served again. Only what must happen is
    /// checked, never how fast.
    @Test func cpuBoundLoadIsShedWhileAQueueStandsAndServedAfterwards() async throws {
        let metrics = ServeMetrics()
        let detector = OverloadDetector(target: .milliseconds(5), interval: .milliseconds(50), longShare: 0.5, minimumRequests: 2,
                                        clock: monotonicNanoseconds)
        let router = Router(context: BasicRequestContext.self)
        // 10 ms of CPU per request, on the request's own thread, as a recommendation is.
        router.get("/busy") { _, _ -> String in
            let start = ContinuousClock.now
            var x: UInt64 = 1
            while ContinuousClock.now - start < .milliseconds(10) { for _ in 0..<1000 { x = x &* 6364136223846793005 &+ 1 } }
            return "\(x & 1)"
        }
        var logger = Logger(label: "shed-test")
        logger.logLevel = .error
        try await withLiveServer({ running in
            Application(router: router, server: .encore(limits: ConnectionLimits(retryAfterSeconds: 2), metrics: metrics, overload: detector),
                        configuration: .init(address: .hostname("127.0.0.1", port: 0)), onServerRunning: running, logger: logger)
        }) { port in
            // 48 clients, 8 requests each on one kept-alive connection: far more work than the threads can do at once.
            let answers = try await concurrently(48) { _ -> [RawSocket.Response?] in
                let s = try RawSocket(port: port, readTimeout: 60)
                var out: [RawSocket.Response?] = []
                for _ in 0..<8 {
                    s.send("GET /busy HTTP/1.1\r\nHost: x\r\n\r\n")
                    out.append(s.readResponse())
                }
                return out
            }.flatMap { $0 }
            let shed = answers.compactMap { $0 }.filter { $0.status == 503 }
            let served = answers.compactMap { $0 }.filter { $0.status == 200 }
            #expect(shed.count + served.count == 48 * 8)
            #expect(!shed.isEmpty, "no request was shed although 48 clients queued for a CPU-bound route")
            #expect(!served.isEmpty)
            #expect(shed.allSatisfy { $0.headers["retry-after"] == "2" && $0.body.contains(#""code":"overloaded""#) })
            // Once the load is over, requests are served again (a loaded machine may delay the first few).
            var recovered = false
            for _ in 0..<20 where !recovered {
                recovered = try await blocking {
                    let s = try RawSocket(port: port)
                    s.send("GET /busy HTTP/1.1\r\nHost: x\r\n\r\n")
                    return s.readResponse()?.status == 200
                }
            }
            #expect(recovered)
            #expect(detector.waiting == 0)
        }
        #expect(String(decoding: metrics.render(engine: nil), as: UTF8.self).contains(#"encore_http_requests_shed_total{reason="queue_delay"}"#))
    }
}

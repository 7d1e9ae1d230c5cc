import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import Testing
@testable import ServeKit

/// The in-flight bound: a request beyond it is shed with 503 and `Retry-After`, health is never shed, and capacity
/// comes back when a request finishes. Ordering is by signals, not by time.
@Suite struct LoadSheddingTests {
    @Test func requestsBeyondTheLimitAreShedWith503() async throws {
        let entered = AsyncStream<Void>.makeStream()
        let release = AsyncStream<Void>.makeStream()
        let metrics = ServeMetrics()
        let router = Router(context: BasicRequestContext.self)
        router.add(middleware: LoadSheddingMiddleware(limit: 1, retryAfter: 3, metrics: metrics))
        router.get("/slow") { _, _ -> String in
            entered.continuation.yield()
            for await _ in release.stream { break }
            return "done"
        }
        router.get("/health") { _, _ in "ok" }
        let app = Application(router: router)
        try await app.test(.router) { client in
            try await withThrowingTaskGroup(of: HTTPResponse.Status.self) { group in
                group.addTask { try await client.execute(uri: "/slow", method: .get) { $0.status } }
                for await _ in entered.stream { break }
                let shed = try await client.execute(uri: "/slow", method: .get) { $0 }
                #expect(shed.status == .serviceUnavailable)
                #expect(shed.headers[.retryAfter] == "3")
                #expect(String(buffer: shed.body).contains("\"overloaded\""))
                let health = try await client.execute(uri: "/health", method: .get) { $0.status }
                #expect(health == .ok)
                release.continuation.yield()
                let finished = try await group.next()
                #expect(finished == .ok)
            }
            // The slot is free again.
            try await withThrowingTaskGroup(of: HTTPResponse.Status.self) { group in
                group.addTask { try await client.execute(uri: "/slow", method: .get) { $0.status } }
                for await _ in entered.stream { break }
                release.continuation.yield()
                let finished = try await group.next()
                #expect(finished == .ok)
            }
        }
        #expect(String(decoding: metrics.render(engine: nil), as: UTF8.self).contains(#"encore_http_requests_shed_total{reason="in_flight"} 1"#))
    }
}

/// Shedding by queueing delay: the policy on a synthetic clock, and CPU-bound requests on a real socket.
@Suite struct QueueDelaySheddingTests {
    @Test func thePolicyShedsAStandingQueueAndRecoversAtOnce() {
        let ms: UInt64 = 1_000_000
        let shedder = QueueDelayShedder(target: .milliseconds(5), interval: .milliseconds(100))
        let t0 = monotonicNanoseconds()
        // Short waits are admitted.
        #expect(shedder.admit(waited: 1 * ms, now: t0))
        // A long wait within an interval of the last short one is admitted (a burst, not a standing queue).
        #expect(shedder.admit(waited: 20 * ms, now: t0 + 50 * ms))
        #expect(shedder.admit(waited: 20 * ms, now: t0 + 99 * ms))
        // No short wait for a whole interval: a standing queue, shed.
        #expect(!shedder.admit(waited: 20 * ms, now: t0 + 100 * ms))
        #expect(!shedder.admit(waited: 6 * ms, now: t0 + 150 * ms))
        // The first short wait ends it; the next long wait is admitted again.
        #expect(shedder.admit(waited: 4 * ms, now: t0 + 160 * ms))
        #expect(shedder.admit(waited: 20 * ms, now: t0 + 161 * ms))
        // A request that waited a whole interval is shed even right after a short one.
        #expect(!shedder.admit(waited: 100 * ms, now: t0 + 162 * ms))
        // After an idle second, a burst whose first requests wait above the target is not a standing queue yet:
        // its interval starts when its first request arrived.
        #expect(shedder.admit(waited: 20 * ms, now: t0 + 1_200 * ms))
        #expect(shedder.admit(waited: 30 * ms, now: t0 + 1_250 * ms))
        #expect(!shedder.admit(waited: 30 * ms, now: t0 + 1_290 * ms))
    }

    @Test func cpuBoundRequestsAreShedWhenTheyQueueAndServedWhenTheQueueDrains() async throws {
        let metrics = ServeMetrics()
        let router = Router(context: BasicRequestContext.self)
        router.add(middleware: LoadSheddingMiddleware(
            limit: 512, retryAfter: 2, metrics: metrics, queueDelay: QueueDelayShedder(target: .milliseconds(20), interval: .milliseconds(100))))
        // 25 ms of CPU per request, on the request's own thread, as a recommendation is.
        router.get("/busy") { _, _ -> String in
            let start = ContinuousClock.now
            var x: UInt64 = 1
            while ContinuousClock.now - start < .milliseconds(25) { for _ in 0..<1000 { x = x &* 6364136223846793005 &+ 1 } }
            return "\(x & 1)"
        }
        var logger = Logger(label: "shed-test")
        logger.logLevel = .error
        let app = Application(router: router, server: .encore(limits: ConnectionLimits(), metrics: metrics),
                              configuration: .init(address: .hostname("127.0.0.1", port: 0)), logger: logger)
        try await onServerThreads { try await app.test(.live) { client in
            let port = try #require(client.port)
            // 64 requests at once: about 1.6 s of work for the cores, so most wait far longer than the interval.
            let burst = try await concurrently(64) { _ -> RawSocket.Response? in
                let s = try RawSocket(port: port, readTimeout: 60)
                s.send("GET /busy HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                return RawSocket.parse(s.readUntilClosed().bytes)
            }
            let shed = burst.compactMap { $0 }.filter { $0.status == 503 }
            let served = burst.compactMap { $0 }.filter { $0.status == 200 }
            #expect(shed.count + served.count == 64)
            #expect(!shed.isEmpty, "no request was shed although they queued for up to a second")
            #expect(!served.isEmpty)
            #expect(shed.allSatisfy { $0.headers["retry-after"] == "2" && $0.body.contains(#""code":"overloaded""#) })
            #expect(shed.first?.body.contains("requests are waiting more than 20 ms to be handled") == true)
            // Once the burst is over, requests are served again (a loaded machine may delay the first few).
            var recovered = false
            for _ in 0..<20 where !recovered {
                recovered = try await blocking {
                    let s = try RawSocket(port: port)
                    s.send("GET /busy HTTP/1.1\r\nHost: x\r\n\r\n")
                    return s.readResponse()?.status == 200
                }
            }
            #expect(recovered)
        } }
        #expect(String(decoding: metrics.render(engine: nil), as: UTF8.self).contains(#"encore_http_requests_shed_total{reason="queue_delay"}"#))
    }
}

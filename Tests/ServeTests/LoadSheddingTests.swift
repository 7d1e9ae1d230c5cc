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

import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import Testing
@testable import ServeKit

/// HEAD on the read routes, and the body limit on a chunked body.
@Suite struct ServeHTTPTests {
    @Test func headAnswersLikeGetWithoutABody() async throws {
        let fixture = try ServeFixture.get()
        let server = try ServerUnderTest(bundle: fixture.bundlePath, logDir: try ServeFixture.scratch("head"),
                                         options: ServeOptions(tokens: ["secret"]))
        defer { try? server.close() }
        try await server.app.test(.router) { client in
            for uri in ["/health", "/ready", "/v1/users/u/recommendations?k=3", "/v1/items/nothing-such/similar"] {
                let get = try await client.execute(uri: uri, method: .get) { $0 }
                let head = try await client.execute(uri: uri, method: .head) { $0 }
                #expect(head.status == get.status, "\(uri)")
                #expect(head.body.readableBytes == 0, "\(uri): HEAD sent a body")
                #expect(head.headers[.contentType] == get.headers[.contentType], "\(uri)")
                #expect(head.headers[.contentLength] == "\(get.body.readableBytes)", "\(uri)")
            }
            let unauthorized = try await client.execute(uri: "/v1/users/u/state", method: .head) { $0 }
            #expect(unauthorized.status == .unauthorized && unauthorized.body.readableBytes == 0)
            #expect(unauthorized.headers[.wwwAuthenticate] == "Bearer")
            let unknown = try await client.execute(uri: "/v1/nothing", method: .head) { $0 }
            #expect(unknown.status == .notFound && unknown.body.readableBytes == 0)
        }
    }

    @Test func anOversizedChunkedBodyIsBodyTooLarge() async throws {
        let fixture = try ServeFixture.get()
        let server = try ServerUnderTest(bundle: fixture.bundlePath, logDir: try ServeFixture.scratch("chunked"),
                                         options: ServeOptions(maxBodyBytes: 2048))
        defer { try? server.close() }
        try await onServerThreads { try await server.app.test(.live) { client in
            let port = try #require(client.port)
            let response = try await blocking { () -> RawSocket.Response? in
                let s = try RawSocket(port: port)
                var request = "POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                for _ in 0..<5 { request += "400\r\n" + String(repeating: " ", count: 1024) + "\r\n" }
                request += "0\r\n\r\n"
                s.send(request)
                return s.readResponse()
            }
            #expect(response?.status == 413)
            #expect(response?.body.contains(#""code":"body_too_large""#) == true, "\(response?.body ?? "no response")")
            #expect(response?.body.contains("the body is larger than 2048 bytes") == true)
        } }
    }
}

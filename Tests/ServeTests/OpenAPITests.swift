import Foundation
import Hummingbird
import HummingbirdTesting
import RecCore
import ServeKit
import Testing
import Yams

/// Keeps `docs/openapi.yaml` true: its paths and methods are exactly the router's, and every property it documents
/// for a JSON response appears in a real response of that endpoint.
@Suite struct OpenAPITests {
    static var specPath: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("docs/openapi.yaml").path
    }

    static func spec() throws -> [String: Any] {
        let text = try String(contentsOfFile: specPath, encoding: .utf8)
        return try #require(try Yams.load(yaml: text) as? [String: Any])
    }

    @Test func theDocumentedRoutesAreTheRoutersRoutes() throws {
        let spec = try Self.spec()
        let paths = try #require(spec["paths"] as? [String: Any])
        var documented = Set<String>()
        for (path, value) in paths {
            for method in (value as? [String: Any] ?? [:]).keys where ["get", "head", "post", "put", "delete", "patch"].contains(method) {
                documented.insert("\(method.uppercased()) \(path)")
            }
        }
        let fixture = try ServeFixture.get()
        let server = try ServerUnderTest(bundle: fixture.bundlePath, logDir: try ServeFixture.scratch("openapi-routes"))
        defer { try? server.close() }
        // Router paths print captures as `:name`; OpenAPI writes `{name}`.
        let registered = Set(server.router.routes.map { route -> String in
            let path = route.path.components.map { c -> String in
                let s = "\(c)"
                return s.hasPrefix(":") ? "{\(s.dropFirst())}" : s
            }.joined(separator: "/")
            return "\(route.method.rawValue) /\(path)"
        })
        #expect(documented == registered)
        #expect(Set(EncoreServer.routeTable) == registered)
    }

    /// Resolves `$ref`s into the schema objects.
    static func resolve(_ schema: Any?, in spec: [String: Any]) -> [String: Any] {
        guard var s = schema as? [String: Any] else { return [:] }
        while let ref = s["$ref"] as? String {
            var node: Any = spec
            for part in ref.dropFirst(2).split(separator: "/") { node = (node as? [String: Any])?[String(part)] ?? [:] }
            s = node as? [String: Any] ?? [:]
        }
        return s
    }

    /// The documented property paths missing from `value` (arrays are checked through their first element).
    static func missing(_ schema: [String: Any], in value: Any, spec: [String: Any], at path: String) -> [String] {
        var out: [String] = []
        if let props = schema["properties"] as? [String: Any] {
            guard let object = value as? [String: Any] else { return ["\(path) is not an object"] }
            for (name, sub) in props {
                guard let v = object[name] else {
                    out.append("\(path).\(name)")
                    continue
                }
                out += missing(resolve(sub, in: spec), in: v, spec: spec, at: "\(path).\(name)")
            }
        } else if schema["type"] as? String == "array", let items = schema["items"] {
            guard let array = value as? [Any] else { return ["\(path) is not an array"] }
            guard let first = array.first else { return ["\(path) is empty: nothing to check"] }
            out += missing(resolve(items, in: spec), in: first, spec: spec, at: "\(path)[0]")
        }
        return out
    }

    @Test func everyDocumentedResponseFieldIsInARealResponse() async throws {
        let fixture = try ServeFixture.get()
        let dir = try ServeFixture.scratch("openapi-fields")
        let bundlePath = try fixture.copyBundle(to: dir)
        // Without its inner-product index the model is served by exact search, and /ready's index `detail` and
        // `warnings` are populated.
        try FileManager.default.removeItem(atPath: "\(dir)/items-ip.hnsw")
        let server = try ServerUnderTest(bundle: bundlePath, logDir: "\(dir)/log")
        defer { try? server.close() }
        let model = server.engine.model
        let dw = try #require(model.bundle.discoverWeekly)
        let u = try #require((0..<dw.userCount).first { dw.tracks(ofUser: $0).count >= 3 && !(model.bundle.dailyMixes?.mixes(ofUser: $0).isEmpty ?? true) })
        let user = model.bundle.userIDs.ids[u]
        let artist = model.catalog.artistCount > 0 ? model.catalog.artistIDs.id(at: 0) : "a0"
        let played = model.itemID(model.popular[0])
        try await server.app.test(.router) { client in
            let spec = try Self.spec()
            let paths = try #require(spec["paths"] as? [String: Any])
            // Populate every optional field: a play (played_at, seed_share), a like, dislikes and a follow.
            _ = try await client.event("o-1", user: user, item: played, timestamp: ServeFixture.recent)
            _ = try await client.event("o-2", user: user, item: model.itemID(model.popular[1]), type: "like", ms: nil)
            _ = try await client.event("o-3", user: user, item: model.itemID(model.popular[2]), type: "dislike", ms: nil)
            _ = try await client.event("o-4", user: user, item: artist, type: "dislike", ms: nil)
            _ = try await client.event("o-5", user: user, item: model.catalog.artistCount > 1 ? model.catalog.artistIDs.id(at: 1) : artist,
                                       type: "follow_artist", ms: nil)
            // A posted track with every field, for /features' `posted`.
            let track = try await client.post("/v1/tracks", body: """
                {"id":"o-track","artist":"\(artist)","album":"o","release_date":"2026-12-07","duration_ms":180000,"explicit":true,
                 "flagged":false,"content":{"descriptors":{"tempo_bpm":120}}}
                """)
            #expect(track.status == .ok, "\(track.text)")
            let concrete: [String: (String, String)] = [
                "GET /health": ("GET", "/health"), "GET /ready": ("GET", "/ready"),
                "GET /v1/users/{user}/recommendations": ("GET", "/v1/users/\(user)/recommendations"),
                "GET /v1/users/{user}/discover-weekly": ("GET", "/v1/users/\(user)/discover-weekly"),
                "GET /v1/users/{user}/daily-mixes": ("GET", "/v1/users/\(user)/daily-mixes"),
                "GET /v1/users/{user}/because-you-played": ("GET", "/v1/users/\(user)/because-you-played"),
                "GET /v1/users/{user}/explain/{item}": ("GET", "/v1/users/\(user)/explain/\(model.itemID(model.popular[5]))"),
                "GET /v1/users/{user}/state": ("GET", "/v1/users/\(user)/state"),
                "GET /v1/items/{item}/similar": ("GET", "/v1/items/\(played)/similar"),
                "GET /v1/items/{item}/features": ("GET", "/v1/items/o-track/features"),
                "POST /v1/events": ("POST", "/v1/events"),
                "POST /v1/tracks": ("POST", "/v1/tracks"),
                "POST /v1/admin/reload": ("POST", "/v1/admin/reload"),
            ]
            for (path, value) in paths {
                for (method, operation) in value as? [String: Any] ?? [:] {
                    let key = "\(method.uppercased()) \(path)"
                    let responses = (operation as? [String: Any])?["responses"] as? [String: Any] ?? [:]
                    let ok = Self.resolve(responses["200"], in: spec)
                    guard let content = ok["content"] as? [String: Any], let json = content["application/json"] as? [String: Any] else {
                        continue  // /metrics: text
                    }
                    let (m, uri) = try #require(concrete[key], "no request for \(key)")
                    let response: JSONResponse
                    if m == "POST" {
                        let body = key == "POST /v1/events"
                            ? #"{"event_id":"o-6","user":"\#(user)","item":"\#(played)","type":"play","ms_played":40000,"timestamp":1700000100}"#
                            : key == "POST /v1/tracks" ? #"{"tracks":[{"id":"o-track-2","artist":"\#(artist)"}]}"# : ""
                        response = try await client.post(uri, body: body)
                    } else {
                        response = try await client.get(uri)
                    }
                    #expect(response.status == .ok, "\(key): \(response.text)")
                    let schema = Self.resolve(json["schema"], in: spec)
                    let value = try JSONSerialization.jsonObject(with: Data(response.text.utf8))
                    let absent = Self.missing(schema, in: value, spec: spec, at: key)
                    #expect(absent.isEmpty, "\(absent)")
                }
            }
            // The error schema, with field and index, from an invalid event in a batch.
            let bad = try await client.post("/v1/events", body: #"[{"event_id":"o-7","user":"u","item":"i","type":"nope","timestamp":1}]"#)
            let errorSchema = Self.resolve(["$ref": "#/components/schemas/Error"], in: spec)
            let absent = Self.missing(errorSchema, in: try JSONSerialization.jsonObject(with: Data(bad.text.utf8)), spec: spec, at: "error")
            #expect(bad.status == .badRequest && absent.isEmpty, "\(absent) in \(bad.text)")
        }
    }
}

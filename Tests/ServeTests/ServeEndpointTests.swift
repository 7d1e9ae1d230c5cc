import Foundation
import Hummingbird
import HummingbirdTesting
import RecCore
@testable import ServeKit
import Testing

/// Every endpoint over a tiny bundle, in process (`.router`).
@Suite struct ServeEndpointTests {
    @Test func everyEndpointAnswersForAKnownUser() async throws {
        let fixture = try ServeFixture.get()
        let server = try ServerUnderTest(bundle: fixture.bundlePath, logDir: try ServeFixture.scratch("endpoints"))
        defer { try? server.close() }
        let bundle = server.engine.model.bundle
        let user = try #require(bundle.discoverWeekly.flatMap { dw in
            (0..<dw.userCount).first { !dw.tracks(ofUser: $0).isEmpty }.map { bundle.userIDs.ids[$0] }
        })
        let item = bundle.itemIDs.ids[Int(bundle.userItems.columns(ofRow: Int(bundle.userIDs.index(of: user)!)).first!)]
        try await server.app.test(.router) { client in
            let health = try await client.get("/health")
            #expect(health.status == .ok && health.object["status"] as? String == "ok")
            let ready = try await client.get("/ready")
            #expect(ready.status == .ok && ready.object["items"] as? Int == bundle.itemIDs.count)

            let recs = try await client.get("/v1/users/\(user)/recommendations?k=7")
            #expect(recs.status == .ok)
            #expect(recs.ids().count == 7)
            #expect(recs.object["source"] as? String == "model" && recs.object["known"] as? Bool == true)
            // Played items are left out by default, kept with exclude_played=false.
            let played = Set(bundle.userItems.columns(ofRow: Int(bundle.userIDs.index(of: user)!)).map { bundle.itemIDs.ids[Int($0)] })
            #expect(played.isDisjoint(with: recs.ids()))
            // allow and deny.
            let allowed = Array(bundle.itemIDs.ids.filter { !played.contains($0) }.prefix(5))
            let onlyAllowed = try await client.get("/v1/users/\(user)/recommendations?k=10&allow=\(allowed.joined(separator: ","))")
            #expect(Set(onlyAllowed.ids()).isSubset(of: Set(allowed)) && !onlyAllowed.ids().isEmpty)
            let denied = try await client.get("/v1/users/\(user)/recommendations?k=7&deny=\(recs.ids()[0])")
            #expect(!denied.ids().contains(recs.ids()[0]))

            let dw = try await client.get("/v1/users/\(user)/discover-weekly")
            #expect(dw.status == .ok && !dw.ids().isEmpty && !(dw.object["week"] as? String ?? "").isEmpty)
            let mixes = try await client.get("/v1/users/\(user)/daily-mixes")
            #expect(mixes.status == .ok && !mixes.array("mixes").isEmpty)
            let byp = try await client.get("/v1/users/\(user)/because-you-played")
            #expect(byp.status == .ok && !byp.array("rows").isEmpty)
            let explain = try await client.get("/v1/users/\(user)/explain/\(recs.ids()[0])")
            #expect(explain.status == .ok && !explain.array("contributions").isEmpty)
            let similar = try await client.get("/v1/items/\(item)/similar?k=5")
            #expect(similar.status == .ok && similar.ids().count == 5 && !similar.ids().contains(item))
            let state = try await client.get("/v1/users/\(user)/state")
            #expect(state.status == .ok && state.object["known"] as? Bool == true)

            let unknownItem = try await client.get("/v1/items/no-such-item/similar")
            #expect(unknownItem.status == .notFound && unknownItem.errorCode == "unknown_item")
            let metrics = try await client.get("/metrics")
            #expect(metrics.status == .ok)
            #expect(metrics.text.contains("encore_http_requests_total{route=\"/v1/users/{user}/recommendations\""))
            #expect(metrics.text.contains("encore_http_request_duration_seconds_bucket"))
            #expect(metrics.text.contains("encore_bundle_info{version="))
        }
    }

    @Test func aPlayChangesTheNextResponse() async throws {
        let fixture = try ServeFixture.get()
        let server = try ServerUnderTest(bundle: fixture.bundlePath, logDir: try ServeFixture.scratch("play"))
        defer { try? server.close() }
        let user = server.engine.model.bundle.userIDs.ids[3]
        try await server.app.test(.router) { client in
            let before = try await client.get("/v1/users/\(user)/recommendations?k=10")
            let top = try #require(before.ids().first)
            let posted = try await client.event("e-play-1", user: user, item: top, timestamp: ServeFixture.recent)
            #expect(posted.status == .ok && posted.object["accepted"] as? Int == 1)

            let after = try await client.get("/v1/users/\(user)/recommendations?k=10")
            #expect(!after.ids().contains(top))
            #expect(after.object["source"] as? String == "fold_in")
            let byp = try await client.get("/v1/users/\(user)/because-you-played")
            let first = try #require(byp.array("rows").first)
            #expect(first["seed"] as? String == top)
            #expect((first["played_at"] as? Int).map(Int64.init) == ServeFixture.recent)
            let rowItems = (first["items"] as? [[String: Any]] ?? []).compactMap { $0["item"] as? String }
            #expect(!rowItems.isEmpty && !rowItems.contains(top))
            let dw = try await client.get("/v1/users/\(user)/discover-weekly")
            #expect(!dw.ids().contains(top))
            let state = try await client.get("/v1/users/\(user)/state")
            #expect((state.object["played"] as? [String]) == [top])

            // A second play, later: its row comes first (newest first).
            let second = try #require(after.ids().first)
            _ = try await client.event("e-play-2", user: user, item: second, timestamp: ServeFixture.recent + 100)
            let byp2 = try await client.get("/v1/users/\(user)/because-you-played?rows=2")
            #expect(byp2.array("rows").compactMap { $0["seed"] as? String } == [second, top])
            // A short play is a skip: no row for it, but it leaves recommendations too.
            let third = try #require(after.ids().dropFirst().first)
            _ = try await client.event("e-skip-3", user: user, item: third, ms: 5_000, timestamp: ServeFixture.recent + 200)
            let byp3 = try await client.get("/v1/users/\(user)/because-you-played?rows=2")
            #expect(byp3.array("rows").first?["seed"] as? String == second)
            let recs3 = try await client.get("/v1/users/\(user)/recommendations?k=10")
            #expect(!recs3.ids().contains(third))
        }
    }

    @Test func aDislikedTrackAndADislikedArtistDisappearEverywhere() async throws {
        let fixture = try ServeFixture.get()
        let server = try ServerUnderTest(bundle: fixture.bundlePath, logDir: try ServeFixture.scratch("dislike"))
        defer { try? server.close() }
        let model = server.engine.model
        #expect(model.catalog.hasArtists, "the weekly bundle carries its catalog")
        let bundle = model.bundle
        let dwTable = try #require(bundle.discoverWeekly)
        let u = try #require((0..<dwTable.userCount).first { dwTable.tracks(ofUser: $0).count >= 5 })
        let user = bundle.userIDs.ids[u]
        try await server.app.test(.router) { client in
            // A disliked track leaves recommendations and Discover Weekly.
            let dw = try await client.get("/v1/users/\(user)/discover-weekly")
            let track = try #require(dw.ids().first)
            _ = try await client.event("d-1", user: user, item: track, type: "dislike", ms: nil)
            let dw2 = try await client.get("/v1/users/\(user)/discover-weekly")
            #expect(!dw2.ids().contains(track))
            let recsAll = try await client.get("/v1/users/\(user)/recommendations?k=1000&exclude_played=false")
            #expect(!recsAll.ids().contains(track))

            // A disliked artist: none of its tracks anywhere.
            let mixes = try await client.get("/v1/users/\(user)/daily-mixes")
            let mixItems = mixes.array("mixes").flatMap { ($0["items"] as? [[String: Any]] ?? []).compactMap { $0["item"] as? String } }
            let target = try #require(mixItems.first ?? dw2.ids().first)
            let artist = model.catalog.artist(of: try #require(model.item(target)))
            try #require(artist >= 0, "the bundle's catalog knows the artist of \(target)")
            let artistID = model.catalog.artistIDs.id(at: artist)
            let artistTracks = Set(model.catalog.tracks(ofArtist: artist).map { model.itemID($0) })
            let posted = try await client.event("d-2", user: user, item: artistID, type: "dislike", ms: nil)
            #expect(posted.status == .ok)
            let state = try await client.get("/v1/users/\(user)/state")
            #expect(state.object["disliked_artists"] as? [String] == [artistID])
            let recs = try await client.get("/v1/users/\(user)/recommendations?k=1000&exclude_played=false")
            #expect(artistTracks.isDisjoint(with: recs.ids()))
            let dw3 = try await client.get("/v1/users/\(user)/discover-weekly")
            #expect(artistTracks.isDisjoint(with: dw3.ids()))
            let mixes2 = try await client.get("/v1/users/\(user)/daily-mixes")
            let mixItems2 = mixes2.array("mixes").flatMap { ($0["items"] as? [[String: Any]] ?? []).compactMap { $0["item"] as? String } }
            #expect(artistTracks.isDisjoint(with: mixItems2))
            let byp = try await client.get("/v1/users/\(user)/because-you-played?rows=5")
            let bypItems = byp.array("rows").flatMap { ($0["items"] as? [[String: Any]] ?? []).compactMap { $0["item"] as? String } }
            #expect(!bypItems.isEmpty && artistTracks.isDisjoint(with: bypItems))
            // Undislike brings the artist back into the candidates.
            _ = try await client.event("d-3", user: user, item: artistID, type: "undislike", ms: nil)
            let state2 = try await client.get("/v1/users/\(user)/state")
            #expect((state2.object["disliked_artists"] as? [String])?.isEmpty == true)
        }
    }

    @Test func anUnknownUserGetsPopularTracksThenFoldedInRecommendations() async throws {
        let fixture = try ServeFixture.get()
        let server = try ServerUnderTest(bundle: fixture.bundlePath, logDir: try ServeFixture.scratch("newuser"))
        defer { try? server.close() }
        let model = server.engine.model
        try await server.app.test(.router) { client in
            let first = try await client.get("/v1/users/newcomer-1/recommendations?k=5")
            #expect(first.status == .ok)
            #expect(first.object["source"] as? String == "popular" && first.object["known"] as? Bool == false)
            #expect(first.ids() == model.popular.prefix(5).map { model.itemID($0) })
            for path in ["discover-weekly", "daily-mixes", "because-you-played"] {
                let r = try await client.get("/v1/users/newcomer-1/\(path)")
                #expect(r.status == .ok, "\(path)")
            }
            let played = first.ids()[0]
            _ = try await client.event("n-1", user: "newcomer-1", item: played)
            let second = try await client.get("/v1/users/newcomer-1/recommendations?k=5")
            #expect(second.object["source"] as? String == "fold_in")
            #expect(!second.ids().contains(played) && second.ids().count == 5)
            let byp = try await client.get("/v1/users/newcomer-1/because-you-played")
            #expect(byp.array("rows").first?["seed"] as? String == played)
            // The folded-in vector is the model's fold-in of the one play.
            let index = try #require(model.item(played))
            let v = try model.model.foldIn(items: [index], values: [1])
            let expected = try model.model.recommend(vector: v, k: 5, exclude: [index])
            #expect(second.ids() == expected.items.map { model.itemID($0) })
        }
    }

    @Test func malformedRequestsAreClientErrors() async throws {
        let fixture = try ServeFixture.get()
        let server = try ServerUnderTest(bundle: fixture.bundlePath, logDir: try ServeFixture.scratch("malformed"),
                                         options: ServeOptions(maxBodyBytes: 2048))
        defer { try? server.close() }
        let engine = server.engine
        try await server.app.test(.router) { client in
            let notJSON = try await client.post("/v1/events", body: "{not json")
            #expect(notJSON.status == .badRequest && notJSON.errorCode == "invalid_event")
            let badType = try await client.post("/v1/events", body: #"{"event_id":"x1","user":"u","item":"i","type":"teleport","timestamp":1700000000}"#)
            #expect(badType.status == .badRequest && badType.errorField == "type")
            let negative = try await client.post("/v1/events", body: #"{"event_id":"x2","user":"u","item":"i","type":"play","ms_played":-5,"timestamp":1700000000}"#)
            #expect(negative.status == .badRequest && negative.errorField == "ms_played")
            let missingID = try await client.post("/v1/events", body: #"{"user":"u","item":"i","type":"play","timestamp":1700000000}"#)
            #expect(missingID.status == .badRequest && missingID.errorField == "event_id")
            let big = try await client.post("/v1/events", body: "[" + String(repeating: " ", count: 4096) + "]")
            #expect(big.status == .contentTooLarge && big.errorCode == "body_too_large")
            let badK = try await client.get("/v1/users/u/recommendations?k=0")
            #expect(badK.status == .badRequest && badK.errorField == "k")
            let badBool = try await client.get("/v1/users/u/recommendations?exclude_played=maybe")
            #expect(badBool.status == .badRequest && badBool.errorField == "exclude_played")
            let noRoute = try await client.get("/v1/nowhere")
            #expect(noRoute.status == .notFound && noRoute.errorCode == "not_found")
            let noUser = try await client.get("/v1/users/")
            #expect(noUser.status == .notFound && noUser.errorCode == "not_found")
            // Nothing was logged.
            #expect(engine.lastSequence == 0)
        }
    }

    /// The fixture's readers fail the test on an error response or a body that is not JSON, so an absence check
    /// ("the track is not in the list") cannot pass on a failed request.
    @Test func readingAnErrorOrNonJSONResponseFailsTheTest() async throws {
        let fixture = try ServeFixture.get()
        let server = try ServerUnderTest(bundle: fixture.bundlePath, logDir: try ServeFixture.scratch("strict"))
        defer { try? server.close() }
        try await server.app.test(.router) { client in
            let notFound = try await client.get("/v1/items/no-such-item/similar")
            #expect(notFound.status == .notFound && notFound.errorCode == "unknown_item")
            withKnownIssue("items of a 404 response") { #expect(!notFound.ids().contains("no-such-item")) }
            withKnownIssue("rows of a 404 response") { _ = notFound.array("rows") }
            let metrics = try await client.get("/metrics")
            #expect(metrics.status == .ok)
            withKnownIssue("a text body read as JSON") { _ = metrics.object }
        }
    }

    @Test func writesNeedATokenWhenTokensAreConfigured() async throws {
        let fixture = try ServeFixture.get()
        let user = "auth-user"
        let server = try ServerUnderTest(bundle: fixture.bundlePath, logDir: try ServeFixture.scratch("auth"),
                                         options: ServeOptions(tokens: ["s3cret", "other"]))
        defer { try? server.close() }
        let item = server.engine.model.bundle.itemIDs.ids[0]
        try await server.app.test(.router) { client in
            let none = try await client.event("a-1", user: user, item: item)
            #expect(none.status == .unauthorized && none.errorCode == "unauthorized")
            #expect(none.headers[.wwwAuthenticate] == "Bearer")
            let wrong = try await client.event("a-1", user: user, item: item, token: "s3cre")
            #expect(wrong.status == .unauthorized)
            let right = try await client.event("a-1", user: user, item: item, token: "other")
            #expect(right.status == .ok && right.object["accepted"] as? Int == 1)
            let reload = try await client.post("/v1/admin/reload", body: "")
            #expect(reload.status == .unauthorized)
            let read = try await client.get("/v1/users/\(user)/recommendations")
            #expect(read.status == .ok)
        }
        let strict = try ServerUnderTest(bundle: fixture.bundlePath, logDir: try ServeFixture.scratch("auth2"),
                                         options: ServeOptions(tokens: ["s3cret"], readAuth: true))
        defer { try? strict.close() }
        try await strict.app.test(.router) { client in
            let read = try await client.get("/v1/users/\(user)/recommendations")
            #expect(read.status == .unauthorized)
            let withToken = try await client.get("/v1/users/\(user)/recommendations", token: "s3cret")
            #expect(withToken.status == .ok)
            let health = try await client.get("/health")
            #expect(health.status == .ok)
        }
    }
}

/// Ids that need percent-encoding in a path (spaces, slashes, non-ASCII, emoji) round-trip through POST and GET, and
/// events dated far ahead of the server clock are refused.
@Suite struct ServePathAndTimestampTests {
    @Test(arguments: ["u 1", "a/b", "café", "fan 🎵", "100%"])
    func encodedUserIDsRoundTrip(_ user: String) async throws {
        let fixture = try ServeFixture.get()
        let server = try ServerUnderTest(bundle: fixture.bundlePath, logDir: try ServeFixture.scratch("encoded-ids"))
        defer { try? server.close() }
        let item = server.engine.model.bundle.itemIDs.ids[0]
        let now = Int64(Date().timeIntervalSince1970)
        try await server.app.test(.router) { client in
            let posted = try await client.event("e1", user: user, item: item, type: "like", ms: nil, timestamp: now)
            #expect(posted.status == .ok, "\(posted.text)")
            let encoded = try #require(user.addingPercentEncoding(withAllowedCharacters: .alphanumerics))
            let state = try await client.get("/v1/users/\(encoded)/state")
            #expect(state.status == .ok)
            #expect(state.object["user"] as? String == user)
            #expect(state.object["likes"] as? [String] == [item])
            let encodedItem = try #require(item.addingPercentEncoding(withAllowedCharacters: .alphanumerics))
            let similar = try await client.get("/v1/items/\(encodedItem)/similar?k=3")
            #expect(similar.status == .ok && similar.object["item"] as? String == item)
        }
    }

    @Test func nfcAndNfdEventIDsAreTwoEvents() async throws {
        let fixture = try ServeFixture.get()
        let server = try ServerUnderTest(bundle: fixture.bundlePath, logDir: try ServeFixture.scratch("nfc-nfd"))
        defer { try? server.close() }
        let item = server.engine.model.bundle.itemIDs.ids[0]
        try await server.app.test(.router) { client in
            let nfc = try await client.event("caf\u{E9}", user: "u", item: item, timestamp: ServeFixture.recent)
            let nfd = try await client.event("cafe\u{301}", user: "u", item: item, timestamp: ServeFixture.recent)
            let again = try await client.event("cafe\u{301}", user: "u", item: item, timestamp: ServeFixture.recent)
            #expect(nfc.object["accepted"] as? Int == 1 && nfd.object["accepted"] as? Int == 1)
            #expect(again.object["duplicates"] as? Int == 1)
        }
    }

    @Test func malformedEscapesAndFutureEventsAreRefused() async throws {
        let fixture = try ServeFixture.get()
        let server = try ServerUnderTest(bundle: fixture.bundlePath, logDir: try ServeFixture.scratch("future"))
        defer { try? server.close() }
        let item = server.engine.model.bundle.itemIDs.ids[0]
        let now = Int64(Date().timeIntervalSince1970)
        try await server.app.test(.router) { client in
            let bad = try await client.get("/v1/users/u%zz/state")
            #expect(bad.status == .badRequest && bad.errorCode == "invalid_parameter" && bad.errorField == "user")
            let soon = try await client.event("f0", user: "u", item: item, timestamp: now + 3_600)
            #expect(soon.status == .ok, "\(soon.text)")
            let future = try await client.event("f1", user: "u", item: item, timestamp: now + 3 * 86_400)
            #expect(future.status == .badRequest && future.errorCode == "invalid_event" && future.errorField == "timestamp")
            #expect(future.text.contains("ahead of the server clock"), "\(future.text)")
        }
    }
}

/// Totals are exported as Prometheus counters that advance by what happened since the last scrape.
@Suite struct ServeMetricsTypeTests {
    @Test func totalsAreCounters() async throws {
        let fixture = try ServeFixture.get()
        let server = try ServerUnderTest(bundle: fixture.bundlePath, logDir: try ServeFixture.scratch("metrics-types"))
        defer { try? server.close() }
        let item = server.engine.model.bundle.itemIDs.ids[0]
        let metrics = server.metrics, engine = server.engine
        try await server.app.test(.router) { client in
            _ = try await client.event("m1", user: "u", item: item, timestamp: ServeFixture.recent)
            _ = try await client.event("m2", user: "u", item: item, timestamp: ServeFixture.recent + 1)
            _ = try await client.event("m2", user: "u", item: item, timestamp: ServeFixture.recent + 1)
            let first = String(decoding: metrics.render(engine: engine), as: UTF8.self)
            for name in ["encore_events_applied_total", "encore_events_duplicate_total", "encore_bundle_reloads_total",
                         "encore_bundle_reload_failures_total", "encore_http_requests_total"] {
                #expect(first.contains("# TYPE \(name) counter"), "\(name) is not a counter")
            }
            #expect(first.contains("encore_events_applied_total 2\n") && first.contains("encore_events_duplicate_total 1\n"), "\(first)")
            _ = try await client.event("m3", user: "u", item: item, timestamp: ServeFixture.recent + 2)
            let second = String(decoding: metrics.render(engine: engine), as: UTF8.self)
            #expect(second.contains("encore_events_applied_total 3\n"), "\(second)")
        }
    }
}

/// A path the API has, asked with the wrong method, is a 405 with `Allow`.
@Suite struct ServeMethodTests {
    @Test func wrongMethodsAre405WithAllow() async throws {
        let fixture = try ServeFixture.get()
        let server = try ServerUnderTest(bundle: fixture.bundlePath, logDir: try ServeFixture.scratch("methods"))
        defer { try? server.close() }
        #expect(EncoreServer.methods(forPath: "/v1/users/u 1/state") == ["GET", "HEAD"])
        #expect(EncoreServer.methods(forPath: "/v1/events") == ["POST"])
        #expect(EncoreServer.methods(forPath: "/v1/users//state").isEmpty)
        try await server.app.test(.router) { client in
            let post = try await client.post("/health", body: "")
            #expect(post.status == .methodNotAllowed && post.errorCode == "method_not_allowed")
            #expect(post.headers[.allow] == "GET, HEAD")
            let get = try await client.execute(uri: "/v1/events", method: .get) { $0 }
            #expect(get.status == .methodNotAllowed && get.headers[.allow] == "POST")
            let unknown = try await client.get("/v1/nothing")
            #expect(unknown.status == .notFound && unknown.errorCode == "not_found")
        }
    }
}

/// The server refuses to start without a token unless told to, and a user's state needs the token.
@Suite struct ServeAuthenticationTests {
    @Test func noTokenNeedsTheInsecureFlag() throws {
        do {
            try ServeOptions.checkAuthentication(tokens: [], insecureNoAuth: false)
            Issue.record("started without a token")
        } catch {
            #expect(error.description.contains("--token") && error.description.contains("--insecure-no-auth"), "\(error)")
        }
        try ServeOptions.checkAuthentication(tokens: [], insecureNoAuth: true)
        try ServeOptions.checkAuthentication(tokens: ["t"], insecureNoAuth: false)
    }

    @Test func stateNeedsTheToken() async throws {
        let fixture = try ServeFixture.get()
        let server = try ServerUnderTest(
            bundle: fixture.bundlePath, logDir: try ServeFixture.scratch("state-auth"), options: ServeOptions(tokens: ["secret"]))
        defer { try? server.close() }
        try await server.app.test(.router) { client in
            let open = try await client.get("/v1/users/u/state")
            #expect(open.status == .unauthorized && open.errorCode == "unauthorized")
            let authed = try await client.get("/v1/users/u/state", token: "secret")
            #expect(authed.status == .ok)
            let reads = try await client.get("/v1/users/u/recommendations")
            #expect(reads.status == .ok)
        }
    }
}

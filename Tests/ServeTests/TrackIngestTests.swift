import Foundation
import Hummingbird
import HummingbirdTesting
import RecCore
import ServeKit
import Testing

/// A hand-made bundle whose cold-start model is known exactly, so a posted track's predicted vector (and its score
/// for each user) can be computed by hand:
///
/// - 2 factors; items `t0`...`t3` (artist `a0`) point along the first factor, `t4`...`t7` (artist `a1`) along the
///   second. `u0` likes the first direction, `u1` the second (and dislikes the first a little).
/// - `/hybrid/model`: sources `audio` (ridge `p(e) = (0.2, 0.2) + 3 e`), `text` (3-d, `p(x) = (0.2 + 2 x₁, 0.2 + 2 x₀)`)
///   and `artist`, weights 1, 0.8 and 0.5, mean `μ = (0.2, 0.2)`, every track with a listener warm.
/// - `/audio`: 2-d embeddings along the items' direction, descriptors `tempo_bpm` and `key`; `/text` for `t0`...`t5`;
///   `/hybrid` the learned vectors. No `/sequence`.
enum ContentBundle {
    static let userVectors: [[Float]] = [[1, 0.05], [-0.2, 1], [1, 0], [0, 1]]
    static let mean: [Float] = [0.2, 0.2]
    static let weights: [String: Float] = ["audio": 1, "text": 0.8, "artist": 0.5]

    static func itemVector(_ t: Int) -> [Float] {
        t < 4 ? [0.5, 0.02 * Float(t)] : [0.02 * Float(t - 4), 0.5]
    }

    /// The artist prior: the mean learned vector of the artist's warm tracks.
    static func prior(_ artist: Int) -> [Float] {
        let tracks = artist == 0 ? Array(0..<4) : Array(4..<8)
        var s: [Float] = [0, 0]
        for t in tracks { for c in 0..<2 { s[c] += itemVector(t)[c] } }
        return s.map { $0 / Float(tracks.count) }
    }

    /// `μ + Σ w_s (p_s − μ)` over the sources given.
    static func predicted(embedding: [Float]? = nil, text: [Float]? = nil, artist: Int? = nil) -> [Float] {
        var v = mean
        if let e = embedding {
            let norm = e.reduce(Float(0)) { $0 + $1 * $1 }.squareRoot()
            for c in 0..<2 { v[c] += weights["audio"]! * 3 * e[c] / norm }
        }
        if let x = text {
            let norm = x.reduce(Float(0)) { $0 + $1 * $1 }.squareRoot()
            v[0] += weights["text"]! * 2 * x[1] / norm
            v[1] += weights["text"]! * 2 * x[0] / norm
        }
        if let a = artist { for c in 0..<2 { v[c] += weights["artist"]! * (prior(a)[c] - mean[c]) } }
        return v
    }

    static func dot(_ a: [Float], _ b: [Float]) -> Float { zip(a, b).map(*).reduce(0, +) }

    /// Writes the bundle to `dir/b.h5`; returns its path.
    static func write(to dir: String, extraItems: [String] = []) throws -> String {
        let itemIDs = (0..<8).map { "t\($0)" } + extraItems
        let items = itemIDs.count
        var x = Matrix(rows: 4, cols: 2), y = Matrix(rows: items, cols: 2)
        for (u, v) in userVectors.enumerated() { x.setRow(u, v) }
        for t in 0..<8 { y.setRow(t, itemVector(t)) }
        let model = try ImplicitALS(
            parameters: ALSParameters(factors: 2, regularization: 0.1, iterations: 1, solver: .cg, seed: 1, threads: 1),
            userFactors: x, itemFactors: y)
        // u0 played t0 and t1, u2 all of t0...t3, u1 and u3 all of t4...t7: every t has a listener.
        var plays: [(Int32, Int32)] = [(0, 0), (0, 1), (2, 0), (2, 1), (2, 2), (2, 3)]
        for t: Int32 in 4..<8 { plays.append((1, t)); plays.append((3, t)) }
        let csr = try CSRMatrix(rows: 4, cols: items, rowIndices: plays.map(\.0), colIndices: plays.map(\.1),
                                values: plays.map { _ in 1 })
        var b = ModelBundle(userIDs: try IDMap(ids: ["u0", "u1", "u2", "u3"]), itemIDs: try IDMap(ids: itemIDs), model: model,
                            userItems: csr)
        b.catalog = try TrackCatalog(
            itemCount: items, trackArtist: (0..<items).map { $0 < 4 ? 0 : ($0 < 8 ? 1 : -1) }, artistIDs: try IDMap(ids: ["a0", "a1"]))
        var s = ContentSpaces()
        var audio = Matrix(rows: 8, cols: 2), descriptors = Matrix(rows: 8, cols: 2)
        for t in 0..<8 {
            audio.setRow(t, t < 4 ? [1, 0.1 * Float(t)] : [0.1 * Float(t - 4), 1])
            descriptors.setRow(t, [100 + Float(t), Float(t % 12)])
        }
        s.audioEmbeddings = try ItemVectorSet(items: (0..<8).map { Int32($0) }, vectors: audio.rowNormalized())
        s.audioDescriptors = try ItemVectorSet(items: (0..<8).map { Int32($0) }, vectors: descriptors)
        s.descriptorNames = ["tempo_bpm", "key"]
        var text = Matrix(rows: 6, cols: 3)
        for t in 0..<6 { text.setRow(t, t < 4 ? [0, 1, 0.1 * Float(t)] : [1, 0, 0.1]) }
        s.text = try ItemVectorSet(items: (0..<6).map { Int32($0) }, vectors: text.rowNormalized())
        s.textInherited = [Bool](repeating: false, count: 6)
        var hybrid = Matrix(rows: 8, cols: 2)
        for t in 0..<8 { hybrid.setRow(t, itemVector(t)) }
        s.hybrid = try ItemVectorSet(items: (0..<8).map { Int32($0) }, vectors: hybrid)
        s.hybridProvenance = [String](repeating: "learned", count: 8)
        let audioRidge = try RidgeRegression(
            inputMean: [0, 0], outputMean: mean, coefficients: try Matrix(rows: 2, cols: 2, storage: [3, 0, 0, 3]), lambda: 1)
        let textRidge = try RidgeRegression(
            inputMean: [0, 0, 0], outputMean: mean, coefficients: try Matrix(rows: 3, cols: 2, storage: [0, 2, 2, 0, 0, 0]), lambda: 1)
        s.hybridModel = try ColdStartParameters(
            sourceNames: ["audio", "text", "artist"], weights: [1, 0.8, 0.5], mean: mean,
            ridges: ["audio": audioRidge, "text": textRidge], minListeners: 1, priorListeners: 10)
        b.contentSpaces = s
        let path = (dir as NSString).appendingPathComponent("b.h5")
        try b.write(to: path)
        return path
    }
}

/// `POST /v1/tracks`, the live catalog, `similar?space=` and `features` over ``ContentBundle``.
@Suite struct TrackIngestTests {
    static let newTrack = #"{"id":"new-a","artist":"a0","album":"First","release_date":"2026-12-07","duration_ms":201000,"explicit":false,"flagged":false,"content":{"embedding":[2,0],"descriptors":{"tempo_bpm":128,"key":5}}}"#

    static func server(_ name: String) throws -> (ServerUnderTest, String) {
        let dir = try ServeFixture.scratch(name)
        let bundle = try ContentBundle.write(to: dir)
        return (try ServerUnderTest(bundle: bundle, logDir: "\(dir)/log"), dir)
    }

    static func score(_ r: JSONResponse, _ item: String) -> Double? {
        r.array("items").first { $0["item"] as? String == item }?["score"] as? Double
    }

    @Test("a posted track gets its predicted vector, is recommended to the user whose taste it fits and found by similar")
    func postedTrackIsServed() async throws {
        let (server, _) = try Self.server("tracks-served")
        defer { try? server.close() }
        try await server.app.test(.router) { client in
            let posted = try await client.post("/v1/tracks", body: Self.newTrack)
            #expect(posted.status == .ok, "\(posted.text)")
            #expect(posted.object["accepted"] as? Int == 1 && posted.object["new_tracks"] as? Int == 1)
            #expect(posted.array("tracks").first?["provenance"] as? String == "predicted(audio+artist)", "\(posted.text)")
            let metrics = try await client.get("/metrics")
            #expect(metrics.text.contains("encore_posted_tracks 1") && metrics.text.contains("encore_posted_new_tracks 1"))

            // u0 (first direction): the new track's score u0·p beats every track u0 has not played (at most 0.5).
            let p = ContentBundle.predicted(embedding: [2, 0], artist: 0)
            let r0 = try await client.get("/v1/users/u0/recommendations?k=3")
            #expect(r0.ids().first == "new-a", "\(r0.text)")
            let s0 = try #require(Self.score(r0, "new-a"))
            #expect(abs(s0 - Double(ContentBundle.dot(ContentBundle.userVectors[0], p))) < 1e-4, "\(s0) vs \(p)")
            // u1 (second direction, away from the first): the new track scores below every other track.
            let r1 = try await client.get("/v1/users/u1/recommendations?k=4")
            #expect(r1.ids().count == 4 && !r1.ids().contains("new-a"), "\(r1.text)")
            let all1 = try await client.get("/v1/users/u1/recommendations?k=20&exclude_played=false")
            #expect(all1.ids().last == "new-a", "\(all1.text)")
            // allow= and deny= take posted ids too.
            let allowed = try await client.get("/v1/users/u1/recommendations?k=2&allow=new-a,t0")
            #expect(Set(allowed.ids()) == ["new-a", "t0"], "\(allowed.text)")
            let denied = try await client.get("/v1/users/u0/recommendations?k=3&deny=new-a")
            #expect(!denied.ids().contains("new-a"))

            // Similar: audio neighbours are t0...t3 (the first direction), nearest first; the bundle's t0 finds it.
            let audio = try await client.get("/v1/items/new-a/similar?space=audio&k=4")
            #expect(audio.ids() == ["t0", "t1", "t2", "t3"], "\(audio.text)")
            #expect(audio.object["space"] as? String == "audio")
            let fromT0 = try await client.get("/v1/items/t0/similar?space=audio&k=2")
            #expect(fromT0.ids().first == "new-a", "\(fromT0.text)")
            let sim = try #require(fromT0.array("items").first?["similarity"] as? Double)
            #expect(abs(sim - 1) < 1e-5)
            let hybrid = try await client.get("/v1/items/new-a/similar?space=hybrid&k=3")
            #expect(Set(hybrid.ids()).isSubset(of: ["t0", "t1", "t2", "t3"]) && hybrid.ids().count == 3, "\(hybrid.text)")
            // cf: the item factors only (unchanged for bundle tracks); a posted track has none.
            let cf = try await client.get("/v1/items/t0/similar?k=3")
            #expect(cf.ids() == ["t1", "t2", "t3"], "\(cf.text)")
            let noCF = try await client.get("/v1/items/new-a/similar?space=cf")
            #expect(noCF.status == .unprocessableContent && noCF.errorCode == "not_in_space" && noCF.errorField == "space")
            #expect(noCF.text.contains("item 'new-a' has no vector in space 'cf'"), "\(noCF.text)")
            let noSeq = try await client.get("/v1/items/t0/similar?space=sequence")
            #expect(noSeq.status == .unprocessableContent && noSeq.text.contains("no vector in space 'sequence'"), "\(noSeq.text)")
            let noText = try await client.get("/v1/items/new-a/similar?space=text")
            #expect(noText.status == .unprocessableContent && noText.text.contains("space 'text'"), "\(noText.text)")
            let badSpace = try await client.get("/v1/items/t0/similar?space=lyrics")
            #expect(badSpace.status == .badRequest && badSpace.errorField == "space", "\(badSpace.text)")

            // Features: the posted descriptors, and the bundle's for a bundle track.
            let f = try await client.get("/v1/items/new-a/features")
            #expect(f.status == .ok, "\(f.text)")
            #expect(f.object["source"] as? String == "posted")
            #expect((f.object["descriptors"] as? [String: Double]) == ["tempo_bpm": 128, "key": 5])
            #expect((f.object["posted"] as? [String: Any])?["artist"] as? String == "a0")
            let f3 = try await client.get("/v1/items/t3/features")
            #expect((f3.object["descriptors"] as? [String: Double]) == ["tempo_bpm": 103, "key": 3] && f3.object["source"] as? String == "bundle")
            let unknown = try await client.get("/v1/items/nope/features")
            #expect(unknown.status == .notFound && unknown.errorCode == "unknown_item")

            // A track known only by its artist gets μ + 0.5 (prior − μ); a text vector goes through the text ridge.
            let more = try await client.post("/v1/tracks", body: #"""
                {"tracks":[{"id":"new-b","artist":"a1"},{"id":"new-c","content":{"text_vector":[0,3,0]}},{"id":"new-d","artist":"unknown-artist"}]}
                """#)
            #expect(more.status == .ok && more.object["new_tracks"] as? Int == 3, "\(more.text)")
            #expect(more.array("tracks").map { $0["provenance"] as? String } == ["predicted(artist)", "predicted(text)", "none"])
            let r3 = try await client.get("/v1/users/u3/recommendations?k=2&exclude_played=false&allow=new-b,new-c")
            let pb = ContentBundle.predicted(artist: 1), pc = ContentBundle.predicted(text: [0, 3, 0])
            #expect(abs((Self.score(r3, "new-b") ?? 0) - Double(ContentBundle.dot([0, 1], pb))) < 1e-4, "\(r3.text) \(pb)")
            #expect(abs((Self.score(r3, "new-c") ?? 0) - Double(ContentBundle.dot([0, 1], pc))) < 1e-4, "\(r3.text) \(pc)")
            let noVector = try await client.get("/v1/items/new-d/similar?space=hybrid")
            #expect(noVector.status == .unprocessableContent, "\(noVector.text)")

            // A play of the new track counts: u0 is not offered it again.
            _ = try await client.event("tr-1", user: "u0", item: "new-a", timestamp: ServeFixture.recent)
            let after = try await client.get("/v1/users/u0/recommendations?k=3")
            #expect(!after.ids().contains("new-a"), "\(after.text)")
            let state = try await client.get("/v1/users/u0/state")
            #expect((state.object["played"] as? [String])?.contains("new-a") == true, "\(state.text)")
            // Posted again as flagged: never suggested to anyone.
            let flagged = try await client.post("/v1/tracks", body: #"{"id":"new-b","artist":"a1","flagged":true}"#)
            #expect(flagged.status == .ok && flagged.object["new_tracks"] as? Int == 1, "\(flagged.text)")
            let r3b = try await client.get("/v1/users/u3/recommendations?k=2&exclude_played=false&allow=new-b,new-c")
            #expect(r3b.ids() == ["new-c"], "\(r3b.text)")
        }
    }

    @Test("a bundle track posted again: a played one keeps its learned vector, an unplayed one gets a predicted vector")
    func bundleTracksPostedAgain() async throws {
        let dir = try ServeFixture.scratch("tracks-bundle")
        let server = try ServerUnderTest(bundle: try ContentBundle.write(to: dir, extraItems: ["c8"]), logDir: "\(dir)/log")
        defer { try? server.close() }
        try await server.app.test(.router) { client in
            let r = try await client.post("/v1/tracks", body: #"""
                [{"id":"t5","artist":"a1","content":{"descriptors":{"key":9}}},{"id":"c8","content":{"embedding":[0,1]}}]
                """#)
            #expect(r.status == .ok && r.object["new_tracks"] as? Int == 0, "\(r.text)")
            #expect(r.array("tracks").map { $0["provenance"] as? String } == ["learned", "predicted(audio)"], "\(r.text)")
            // c8 (zero item factors, no listener) now scores u3 · p = 3.2, above every track u3 has not played.
            let p = ContentBundle.predicted(embedding: [0, 1])
            let r3 = try await client.get("/v1/users/u3/recommendations?k=2")
            #expect(r3.ids().first == "c8", "\(r3.text)")
            #expect(abs((Self.score(r3, "c8") ?? 0) - Double(ContentBundle.dot([0, 1], p))) < 1e-4, "\(r3.text)")
            // t5 keeps its learned vector: its cf neighbours are unchanged; its descriptors merge, the posted key winning.
            let f = try await client.get("/v1/items/t5/features")
            #expect(f.object["source"] as? String == "bundle+posted")
            #expect((f.object["descriptors"] as? [String: Double]) == ["tempo_bpm": 105, "key": 9], "\(f.text)")
            // c8 is found in the audio space by its posted embedding, from t4 (the nearest bundle track to (0, 1)).
            let near = try await client.get("/v1/items/t4/similar?space=audio&k=1")
            #expect(near.ids() == ["c8"], "\(near.text)")
        }
    }

    @Test("acknowledged tracks are replayed from the journal after a restart, a torn tail cut, and dropped once a bundle has them")
    func journalReplays() async throws {
        let (first, dir) = try Self.server("tracks-journal")
        try await first.app.test(.router) { client in
            let r = try await client.post("/v1/tracks", body: Self.newTrack)
            #expect(r.status == .ok, "\(r.text)")
        }
        try first.close()
        // A torn write at the end (half a frame) is cut when the journal is opened again.
        let journal = "\(dir)/log/\(TrackJournal.fileName)"
        let intact = try #require(FileManager.default.attributesOfItem(atPath: journal)[.size] as? Int)
        let handle = try #require(FileHandle(forWritingAtPath: journal))
        handle.seekToEndOfFile()
        handle.write(Data([200, 0, 0, 0, 1, 2, 3]))
        try handle.close()

        let second = try ServerUnderTest(bundle: "\(dir)/b.h5", logDir: "\(dir)/log")
        #expect(second.engine.liveCatalog.newTrackCount == 1)
        #expect(try #require(FileManager.default.attributesOfItem(atPath: journal)[.size] as? Int) == intact)
        try await second.app.test(.router) { client in
            let r0 = try await client.get("/v1/users/u0/recommendations?k=1")
            #expect(r0.ids() == ["new-a"], "\(r0.text)")
            let f = try await client.get("/v1/items/new-a/features")
            #expect(f.status == .ok && f.object["source"] as? String == "posted", "\(f.text)")
        }
        // A new bundle that has the track (trained after it was posted) replaces the posted record on reload.
        // (created_at has whole seconds: the new bundle must be made a second after the post.)
        try await Task.sleep(nanoseconds: 1_100_000_000)
        let newer = try ServeFixture.scratch("tracks-journal-next")
        let next = try ContentBundle.write(to: newer, extraItems: ["new-a"])
        try second.engine.reload(path: next)
        #expect(second.engine.liveCatalog.newTrackCount == 0 && second.engine.liveCatalog.count == 0)
        try second.close()

        // Damage before the end is refused, naming the file and the offset.
        var bytes = try Data(contentsOf: URL(fileURLWithPath: journal))
        bytes[16 + 9] ^= 0xFF
        bytes.append(contentsOf: bytes[16...])
        try bytes.write(to: URL(fileURLWithPath: journal))
        let message: String
        do {
            _ = try ServerUnderTest(bundle: "\(dir)/b.h5", logDir: "\(dir)/log")
            message = "opened"
        } catch { message = "\(error)" }
        #expect(message.contains("\(journal): corrupt track journal at byte offset 16: checksum mismatch"), "\(message)")
    }

    @Test("the journal: records round-trip; a last frame with a bad checksum or running past the end is cut; a foreign file is refused")
    func journalFrames() throws {
        let dir = try ServeFixture.scratch("tracks-journal-frames")
        let path = "\(dir)/\(TrackJournal.fileName)"
        let tracks = [PostedTrack(id: "a", artist: "x", descriptors: ["key": 3]), PostedTrack(id: "b", durationMs: 5, embedding: [0.6, 0.8])]
        do {
            let (journal, records) = try TrackJournal.open(path: path)
            #expect(records.isEmpty)
            let written = try journal.append(tracks)
            #expect(written.map(\.sequence) == [1, 2] && written.map(\.track) == tracks)
        }
        #expect(try TrackJournal.read(path: path).map(\.track) == tracks)
        let intact = try Data(contentsOf: URL(fileURLWithPath: path))
        // A whole last frame whose checksum is wrong (a torn write of its payload): cut, the others kept.
        var torn = intact
        let firstLength = Int(intact[16]) | Int(intact[17]) << 8 | Int(intact[18]) << 16 | Int(intact[19]) << 24
        torn.append(contentsOf: intact[16..<(16 + 8 + firstLength)])  // a copy of the first frame...
        torn[torn.count - 1] ^= 0x55  // ...whose payload's last byte was not written right
        try torn.write(to: URL(fileURLWithPath: path))
        do {
            let (journal, records) = try TrackJournal.open(path: path)
            #expect(records.map(\.track) == tracks)
            #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == intact)
            // Appending continues the sequence.
            #expect(try journal.append([PostedTrack(id: "c")]).map(\.sequence) == [3])
        }
        // A frame whose length runs past the end of the file: cut.
        var long = try Data(contentsOf: URL(fileURLWithPath: path))
        let before = long.count
        long.append(contentsOf: [0, 0, 1, 0, 9, 9, 9, 9, 1, 2, 3])
        try long.write(to: URL(fileURLWithPath: path))
        #expect(try TrackJournal.read(path: path).map(\.track.id) == ["a", "b", "c"])
        _ = try TrackJournal.open(path: path)
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)).count == before)
        // Not a journal.
        try Data("ENCEVLG1 and more bytes".utf8).write(to: URL(fileURLWithPath: path))
        #expect(throws: ServingError.self) { _ = try TrackJournal.read(path: path) }
        do {
            _ = try TrackJournal.read(path: path)
        } catch {
            #expect("\(error)" == "event log: \(path): corrupt track journal at byte offset 0: not a track journal (bad magic)")
        }
    }

    @Test("bad tracks are refused with the field, the track and a clear message, and nothing is kept")
    func badTracks() async throws {
        let (server, _) = try Self.server("tracks-bad")
        defer { try? server.close() }
        let tooMany = "[" + (0...PostedTrack.maxTracksPerRequest).map { #"{"id":"x\#($0)"}"# }.joined(separator: ",") + "]"
        let cases: [(body: String, field: String, index: Int?, message: String)] = [
            (#"{"id":"x","content":{"embedding":[1,2,3]}}"#, "content.embedding", 0,
             "track 0: content.embedding: content.embedding has 3 values, the bundle's audio space has 2 dimensions"),
            (#"[{"id":"ok"},{"id":"x","content":{"text_vector":[1,2]}}]"#, "content.text_vector", 1,
             "content.text_vector has 2 values, the bundle's text space has 3 dimensions"),
            (#"{"id":"x","content":{"text":"a love song"}}"#, "content.text", 0,
             "raw text cannot be turned into a vector here: the bundle holds the text vectors (/text/vectors), not the text model"),
            (#"{"id":"x","genre":"pop"}"#, "genre", 0, "unknown field 'genre'"),
            (#"{"id":"x","content":{"lyrics":"la"}}"#, "content.lyrics", 0, "unknown field 'content.lyrics'"),
            (#"{"id":"x","duration_ms":"long"}"#, "duration_ms", 0, "duration_ms must be an integer"),
            (#"{"id":"x","explicit":1}"#, "explicit", 0, "explicit must be true or false"),
            (#"{"id":"x","content":{"embedding":[1,1e39]}}"#, "content.embedding[1]", 0,
             "content.embedding[1] must be a finite number within the range of Float32, got 1e+39"),
            (#"{"id":"x","content":{"descriptors":{"key":-1e40}}}"#, "content.descriptors.key", 0,
             "content.descriptors.key must be a finite number within the range of Float32"),
            (#"{"id":"x","content":{"embedding":[1,1e999]}}"#, "tracks", nil, "is not valid JSON"),
            (#"{"id":"x","content":{"embedding":[0,0]}}"#, "content.embedding", 0, "content.embedding must have a non-zero, finite norm"),
            (#"{"id":""}"#, "id", 0, "id must not be empty"),
            (#"{"artist":"a0"}"#, "id", 0, "id is required"),
            (#"{"id":"x","release_date":"yesterday"}"#, "release_date", 0, "release_date 'yesterday' is not a date"),
            (#"{"id":"x","duration_ms":-5}"#, "duration_ms", 0, "duration_ms must be in 0...86400000"),
            (#"{"id":"x","content":{"descriptors":{"tempo":120}}}"#, "content.descriptors.tempo", 0,
             "unknown descriptor 'tempo' (the bundle's descriptors are key, tempo_bpm)"),
            (#"[{"id":"x"},{"id":"x"}]"#, "id", 1, "'x' is also track 0 of the batch"),
            (#"{"tracks":[]}"#, "tracks", nil, "the batch is empty"),
            (#"{"tracks":[{"id":"x"}],"more":1}"#, "more", nil, "unknown field 'more' beside 'tracks'"),
            (tooMany, "tracks", nil, "the batch has 1001 tracks, at most 1000 are allowed"),
            ("42", "tracks", nil, "expected a track object, an array of tracks"),
        ]
        try await server.app.test(.router) { client in
            for c in cases {
                let r = try await client.post("/v1/tracks", body: c.body)
                #expect(r.status == .badRequest && r.errorCode == "invalid_track", "\(c.body.prefix(80)): \(r.text)")
                #expect(r.errorField == c.field, "\(c.body.prefix(80)): \(r.text)")
                #expect(((r.object["error"] as? [String: Any])?["index"] as? Int) == c.index, "\(c.body.prefix(80)): \(r.text)")
                let message = (r.object["error"] as? [String: Any])?["message"] as? String ?? ""
                #expect(message.contains(c.message), "\(c.body.prefix(80)): \(r.text)")
            }
        }
        // Nothing was kept: the valid first track of a refused batch included.
        #expect(server.engine.liveCatalog.count == 0)
        #expect(try TrackJournal.read(path: "\(server.engine.logDirectory)/\(TrackJournal.fileName)").isEmpty)
    }
}

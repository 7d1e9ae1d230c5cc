import Foundation
import Testing
@testable import EncoreCore
@testable import EncoreData
@testable import EncoreSynth

@Suite("SyntheticWorld")
struct SyntheticWorldTests {
    /// A small world with enough users for the statistical properties.
    static let statsConfig = SyntheticWorldConfig(users: 1_200, tracks: 2_000, artists: 200, meanTracksPerUser: 20,
                                                  maxTracksPerUser: 300)

    static func tempDir(_ name: String) -> String {
        let dir = FileManager.default.temporaryDirectory
            .appendingPathComponent("encore-synthetic-\(name)-\(UUID().uuidString)").path
        return dir
    }

    static func files(_ dir: String) throws -> [String: Data] {
        var out = [String: Data]()
        for name in try FileManager.default.contentsOfDirectory(atPath: dir) {
            out[name] = try Data(contentsOf: URL(fileURLWithPath: dir).appendingPathComponent(name))
        }
        return out
    }

    /// Rows of a TSV file without its header, and the header.
    static func readTSV(_ dir: String, _ name: String) throws -> (header: [String], rows: [[String]]) {
        let text = try String(contentsOfFile: (dir as NSString).appendingPathComponent(name), encoding: .utf8)
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(lines.last == "", "\(name) ends with a newline")
        lines.removeLast()
        let header = lines.removeFirst().components(separatedBy: "\t")
        let rows = lines.map { $0.components(separatedBy: "\t") }
        for (i, r) in rows.enumerated() where r.count != header.count {
            Issue.record("\(name) row \(i + 2) has \(r.count) fields, header \(header.count)")
        }
        return (header, rows)
    }

    // MARK: Determinism

    @Test("same seed gives identical files whatever the threads and block size; another seed differs")
    func determinism() throws {
        let config = SyntheticWorldConfig.tiny
        let a = try SyntheticWorld.generate(config, threads: 1, usersPerBlock: 1_024, progress: nil)
        let b = try SyntheticWorld.generate(config, threads: 3, usersPerBlock: 37, progress: nil)
        #expect(a.plays == b.plays)
        #expect(a.users == b.users)
        let dirA = Self.tempDir("a"), dirB = Self.tempDir("b"), dirC = Self.tempDir("c")
        defer { for d in [dirA, dirB, dirC] { try? FileManager.default.removeItem(atPath: d) } }
        try a.write(to: dirA, threads: 1)
        try b.write(to: dirB, threads: 2)
        let fa = try Self.files(dirA), fb = try Self.files(dirB)
        #expect(fa.keys.sorted() == fb.keys.sorted())
        for (name, data) in fa { #expect(data == fb[name], "\(name) differs") }
        #expect(fa.keys.sorted() == [
            "albums.tsv", "artists.tsv", "dislikes.tsv", "follows.tsv", "likes.tsv", "plays.tsv", "tracks.tsv",
            "truth_tracks.tsv", "truth_users.tsv", "world.json",
        ])

        var other = config
        other.seed = 43
        try SyntheticWorld.generate(other).write(to: dirC)
        let fc = try Self.files(dirC)
        #expect(fc["plays.tsv"] != fa["plays.tsv"])
        #expect(fc["tracks.tsv"] != fa["tracks.tsv"])
    }

    @Test("genre traits for audio and text do not change the play log")
    func traitsAreSeparate() throws {
        var config = SyntheticWorldConfig.tiny
        let base = try SyntheticWorld.generate(config)
        for i in config.genres.indices {
            config.genres[i].tags = ["x", "y"]
            config.genres[i].tempoMin += 7
            config.genres[i].energy = 0.5
        }
        let changed = try SyntheticWorld.generate(config)
        #expect(base.plays == changed.plays)
        #expect(base.likes == changed.likes)
    }

    @Test("the published catalog names a genre for about the configured share of albums, wrong for about the configured share, one label per album; labels leave the plays alone")
    func catalogLabels() throws {
        var config = Self.statsConfig
        config.catalogGenreCoverage = 0.6
        config.catalogGenreErrorRate = 0.2
        let w = try SyntheticWorld.generate(config)
        let labels = w.catalogLabels
        let c = w.catalog
        var albumLabel = [Int32: Int32]()
        var labeledAlbums = 0, wrongAlbums = 0
        for t in 0..<c.trackCount {
            let album = c.trackAlbum[t], label = labels.trackGenre[t]
            if let seen = albumLabel[album] {
                #expect(seen == label, "album \(album) has two labels")
            } else {
                albumLabel[album] = label
                if label >= 0 {
                    labeledAlbums += 1
                    if label != c.trackGenre[t] { wrongAlbums += 1 }
                }
            }
            #expect(label >= -1 && Int(label) < config.genres.count)
        }
        // Binomial bounds: 4 standard deviations around the configured shares.
        func near(_ k: Int, _ n: Int, _ p: Double) -> Bool {
            abs(Double(k) - Double(n) * p) <= 4 * (Double(n) * p * (1 - p)).squareRoot() + 1
        }
        #expect(near(labeledAlbums, albumLabel.count, 0.6), "\(labeledAlbums) of \(albumLabel.count) albums labeled")
        #expect(near(wrongAlbums, labeledAlbums, 0.2), "\(wrongAlbums) of \(labeledAlbums) labels wrong")
        let artistsLabeled = labels.artistGenre.filter { $0 >= 0 }.count
        #expect(near(artistsLabeled, c.artistCount, 0.6), "\(artistsLabeled) of \(c.artistCount) artists labeled")

        var withheld = config
        withheld.catalogGenreCoverage = 0
        let w0 = try SyntheticWorld.generate(withheld)
        #expect(w0.catalogLabels.trackGenre.allSatisfy { $0 == -1 })
        #expect(w0.catalogLabels.artistGenre.allSatisfy { $0 == -1 })
        #expect(w0.plays == w.plays)
        var exact = config
        exact.catalogGenreCoverage = 1
        exact.catalogGenreErrorRate = 0
        #expect(try SyntheticWorld.generate(exact).catalogLabels.trackGenre == c.trackGenre)
    }

    // MARK: Structure

    @Test("counts match the configuration")
    func counts() throws {
        let config = Self.statsConfig
        let w = try SyntheticWorld.generate(config)
        let n = w.counts
        #expect(n.users == config.users)
        #expect(n.tracks == config.tracks)
        #expect(n.artists == config.artists)
        #expect(n.genres == config.genres.count)
        #expect(w.catalog.artistTrackStart.last == Int32(config.tracks))
        #expect(n.plays == w.plays.count)
        #expect(n.plays >= n.distinctPairs)
        // Every artist has a track and a genre, every genre an artist.
        for a in 0..<config.artists { #expect(!w.catalog.tracks(ofArtist: Int32(a)).isEmpty) }
        #expect(Set(w.catalog.artistGenre).count == config.genres.count)
        // Every user plays between the minimum and the maximum, near the configured mean on average.
        let distinct = w.users.distinctTracks.map(Int.init)
        #expect(distinct.allSatisfy { $0 >= config.minTracksPerUser && $0 <= config.maxTracksPerUser })
        let mean = Double(n.distinctPairs) / Double(config.users)
        #expect(mean > 0.75 * config.meanTracksPerUser && mean < 1.25 * config.meanTracksPerUser, "mean \(mean)")
        // Distinct pairs counted from the log agree with the truth.
        var pairs = Set<Int64>()
        for i in 0..<w.plays.count { pairs.insert(Int64(w.plays.users[i]) << 32 | Int64(w.plays.tracks[i])) }
        #expect(pairs.count == n.distinctPairs)
        // Activity is heavy-tailed: the busiest user plays several times the mean.
        #expect(Double(distinct.max() ?? 0) > 4 * mean)
    }

    @Test("plays are in the window, sorted by time, never before the track's release; new releases exist")
    func timeline() throws {
        let w = try SyntheticWorld.generate(.tiny)
        let c = w.config
        var previous = Int64.min
        var newPlays = 0
        for i in 0..<w.plays.count {
            let ts = w.plays.timestamps[i]
            let t = Int(w.plays.tracks[i])
            #expect(ts >= previous)
            previous = ts
            #expect(ts >= c.startTimestamp && ts <= c.endTimestamp)
            if ts < w.catalog.trackRelease[t] { Issue.record("play \(i) of track \(t) precedes its release") }
            if w.catalog.trackRelease[t] >= w.catalog.newReleaseStart { newPlays += 1 }
        }
        #expect(w.catalog.trackRelease.allSatisfy { $0 <= c.endTimestamp })
        #expect(w.counts.newReleaseTracks > 0)
        #expect(newPlays > 0)
        #expect(w.catalog.newReleaseStart == c.endTimestamp + 1 - Int64(c.newReleaseWeeks) * Timestamp.secondsPerWeek)
        // Albums are in release order within an artist, and tracks share their album's date.
        for t in 0..<w.catalog.trackCount {
            #expect(w.catalog.trackRelease[t] == w.catalog.albumRelease[Int(w.catalog.trackAlbum[t])])
        }
    }

    @Test("play counts per track are heavy-tailed")
    func heavyTail() throws {
        let w = try SyntheticWorld.generate(Self.statsConfig)
        var perTrack = [Int](repeating: 0, count: w.catalog.trackCount)
        for t in w.plays.tracks { perTrack[Int(t)] += 1 }
        perTrack.sort(by: >)
        let top = perTrack.prefix(max(1, perTrack.count / 100)).reduce(0, +)
        let share = Double(top) / Double(w.plays.count)
        // Uniform popularity would give 1%; Zipf at three levels gives many times that.
        #expect(share > 0.08, "top 1% of tracks have \(share) of plays")
        let half = perTrack.prefix(perTrack.count / 2).reduce(0, +)
        #expect(Double(half) / Double(w.plays.count) > 0.8)
    }

    @Test("users' tracks are dominated by their true genres, and skips are likelier off-taste")
    func tastes() throws {
        let w = try SyntheticWorld.generate(Self.statsConfig)
        var inTaste = [Int](repeating: 0, count: w.users.count)
        var seen = Set<Int64>()
        var onPlays = 0, onSkips = 0, offPlays = 0, offSkips = 0
        for i in 0..<w.plays.count {
            let u = w.plays.users[i], t = w.plays.tracks[i]
            let on = w.users.hasTaste(user: u, genre: w.catalog.trackGenre[Int(t)])
            if seen.insert(Int64(u) << 32 | Int64(t)).inserted, on { inTaste[Int(u)] += 1 }
            if on { onPlays += 1; if w.plays.isSkip(i) { onSkips += 1 } } else {
                offPlays += 1; if w.plays.isSkip(i) { offSkips += 1 }
            }
        }
        var fractionSum = 0.0
        for u in 0..<w.users.count { fractionSum += Double(inTaste[u]) / Double(w.users.distinctTracks[u]) }
        let meanFraction = fractionSum / Double(w.users.count)
        #expect(meanFraction >= 0.7, "mean in-taste fraction \(meanFraction)")
        let onRate = Double(onSkips) / Double(onPlays), offRate = Double(offSkips) / Double(offPlays)
        #expect(offPlays > 0)
        #expect(offRate > 2 * onRate, "skip rate on-taste \(onRate), off-taste \(offRate)")
        // Taste weights are a distribution, heaviest first.
        for u in 0..<Int32(w.users.count) {
            let tastes = w.users.tastes(ofUser: u)
            #expect((1...3).contains(tastes.count))
            #expect(abs(tastes.reduce(0) { $0 + $1.weight } - 1) < 1e-4)
            #expect(zip(tastes, tastes.dropFirst()).allSatisfy { $0.weight >= $1.weight })
            #expect(Set(tastes.map(\.genre)).count == tastes.count)
        }
    }

    @Test("likes, follows and dislikes agree with the plays and the truth")
    func feedback() throws {
        let w = try SyntheticWorld.generate(Self.statsConfig)
        var fullListens = Set<String>()
        var playsOfPair = [Int64: [Int]]()
        var artistsOfUser = Set<Int64>()
        for i in 0..<w.plays.count {
            let u = w.plays.users[i], t = w.plays.tracks[i]
            if !w.plays.isSkip(i) { fullListens.insert("\(u) \(t) \(w.plays.timestamps[i])") }
            playsOfPair[Int64(u) << 32 | Int64(t), default: []].append(i)
            artistsOfUser.insert(Int64(u) << 32 | Int64(w.catalog.trackArtist[Int(t)]))
        }
        #expect(!w.likes.isEmpty && !w.follows.isEmpty && !w.dislikes.isEmpty)
        for l in w.likes {
            #expect(fullListens.contains("\(l.user) \(l.track) \(l.timestamp)"), "like \(l) is not at a full listen")
            #expect((playsOfPair[Int64(l.user) << 32 | Int64(l.track)]?.count ?? 0) >= w.config.likeMinPlays)
        }
        for f in w.follows {
            #expect(w.users.favouriteArtists(ofUser: f.user).contains(f.artist))
            #expect(f.timestamp >= w.config.startTimestamp && f.timestamp <= w.config.endTimestamp)
        }
        for d in w.dislikes {
            switch d.kind {
            case .track:
                let plays = playsOfPair[Int64(d.user) << 32 | Int64(d.target)] ?? []
                #expect(!plays.isEmpty && plays.allSatisfy { w.plays.isSkip($0) && w.plays.timestamps[$0] <= d.timestamp })
                #expect(!w.users.hasTaste(user: d.user, genre: w.catalog.trackGenre[Int(d.target)]))
            case .artist:
                #expect(!w.users.favouriteArtists(ofUser: d.user).contains(d.target))
            }
        }
        #expect(w.likes == w.likes.sorted { ($0.timestamp, $0.user, $0.track) < ($1.timestamp, $1.user, $1.track) })
    }

    // MARK: Files

    @Test("files parse back with consistent ids")
    func filesParseBack() throws {
        let w = try SyntheticWorld.generate(.tiny)
        let dir = Self.tempDir("parse")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let written = try w.write(to: dir)
        #expect(written.last?.name == "world.json")

        let plays = try Self.readTSV(dir, "plays.tsv")
        #expect(plays.header == ["user", "item", "timestamp", "ms_played"])
        #expect(plays.rows.count == w.plays.count)
        let tracks = try Self.readTSV(dir, "tracks.tsv")
        #expect(tracks.header == ["item", "artist", "album", "genre", "release_date", "duration_ms"])
        let artists = try Self.readTSV(dir, "artists.tsv")
        let truthUsers = try Self.readTSV(dir, "truth_users.tsv")
        let likes = try Self.readTSV(dir, "likes.tsv")
        let follows = try Self.readTSV(dir, "follows.tsv")
        let dislikes = try Self.readTSV(dir, "dislikes.tsv")
        let albums = try Self.readTSV(dir, "albums.tsv")
        let truthTracks = try Self.readTSV(dir, "truth_tracks.tsv")

        let userIDs = Set(truthUsers.rows.map { $0[0] })
        let artistIDs = Set(artists.rows.map { $0[0] })
        let albumIDs = Set(albums.rows.map { $0[0] })
        let genreNames = Set(w.config.genres.map(\.name))
        var release = [String: Int64]()
        #expect(userIDs.count == w.config.users && userIDs.contains("u000000"))
        #expect(artistIDs.count == w.config.artists && artistIDs.contains("a00000"))
        #expect(tracks.rows.count == w.config.tracks && truthTracks.rows.count == w.config.tracks)
        for r in tracks.rows {
            #expect(r[0].hasPrefix("t") && r[0].count == 8)
            #expect(artistIDs.contains(r[1]) && albumIDs.contains(r[2]) && (r[3].isEmpty || genreNames.contains(r[3])))
            let date = try #require(Timestamp.parse(r[4]), "release date \(r[4])")
            release[r[0]] = date
            #expect((Int(r[5]) ?? 0) >= 45_000)
        }
        #expect(release.count == w.config.tracks)

        var previous: Int64 = 0
        for r in plays.rows {
            let ts = try #require(Int64(r[2]))
            let ms = try #require(Int(r[3]))
            #expect(userIDs.contains(r[0]))
            let rel = try #require(release[r[1]], "unknown item \(r[1])")
            #expect(ts >= rel, "play of \(r[1]) at \(ts) before its release")
            #expect(ts >= previous)
            #expect(ms > 0)
            previous = ts
        }
        // The file is the in-memory log.
        let ids = w.ids
        for i in stride(from: 0, to: w.plays.count, by: 97) {
            #expect(plays.rows[i] == [ids.user(w.plays.users[i]), ids.track(w.plays.tracks[i]),
                                      String(w.plays.timestamps[i]), String(w.plays.msPlayed[i])])
        }
        for r in likes.rows { #expect(userIDs.contains(r[0]) && release[r[1]] != nil && Int64(r[2]) != nil) }
        for r in follows.rows { #expect(userIDs.contains(r[0]) && artistIDs.contains(r[1]) && Int64(r[2]) != nil) }
        for r in dislikes.rows {
            #expect(userIDs.contains(r[0]))
            #expect(r[2] == "track" ? release[r[1]] != nil : (r[2] == "artist" && artistIDs.contains(r[1])))
        }
        for r in truthUsers.rows {
            let tastes = r[1].components(separatedBy: ";").map { $0.components(separatedBy: ":") }
            #expect(tastes.allSatisfy { $0.count == 2 && genreNames.contains($0[0]) && Double($0[1]) != nil })
            #expect(r[2].isEmpty || r[2].components(separatedBy: ";").allSatisfy { artistIDs.contains($0) })
        }

        let manifest = try SyntheticWorld.Manifest.read(directory: dir)
        #expect(manifest.config == w.config)
        #expect(manifest.counts == w.counts)
        #expect(manifest.files.first { $0.name == "plays.tsv" }?.rows == w.plays.count)
        #expect(manifest.end == "2026-11-15T23:59:59Z")
    }

    @Test("the in-memory world gives Interactions directly")
    func interactions() throws {
        let w = try SyntheticWorld.generate(.tiny)
        let all = try w.playInteractions()
        #expect(all.count == w.plays.count)
        #expect(all.userIDs.count == w.config.users && all.itemIDs.count == w.config.tracks)
        #expect(all.userIDs.id(at: 5) == "u000005")
        let listened = try w.playInteractions(includingSkips: false)
        #expect(listened.count == w.counts.plays - w.counts.skips)
        let pairs = try w.pairInteractions()
        #expect(pairs.count == w.counts.distinctPairs)
        #expect(Int(pairs.weights.reduce(0, +)) == w.plays.count)
        #expect(pairs.matrix() == all.matrix())
        for i in 0..<pairs.count {
            let rel = w.catalog.trackRelease[Int(pairs.items[i])]
            #expect(pairs.timestamps[i] >= rel)
        }
    }

    // MARK: Configuration and errors

    @Test("presets validate and the configuration round-trips through JSON, old files included")
    func configuration() throws {
        for p in SyntheticWorldPreset.allCases { try SyntheticWorldConfig.preset(p).validate() }
        #expect(SyntheticWorldConfig.preset(.lastfm360k).users == 360_000)
        let c = SyntheticWorldConfig.tiny
        let data = try JSONEncoder().encode(c)
        #expect(try JSONDecoder().decode(SyntheticWorldConfig.self, from: data) == c)
        let partial = try JSONDecoder().decode(SyntheticWorldConfig.self, from: Data(#"{"users": 7, "seed": 9}"#.utf8))
        #expect(partial.users == 7 && partial.seed == 9 && partial.tracks == SyntheticWorldConfig().tracks)

        // Overrides of any field, applied over a preset.
        let patched = try c.overriding(json: Data(#"{"users": 50, "skipProbabilityOffTaste": 0.9}"#.utf8))
        var expected = c
        expected.users = 50
        expected.skipProbabilityOffTaste = 0.9
        #expect(patched == expected)
        #expect(throws: SyntheticWorldError.self) { try c.overriding(json: Data(#"{"usrs": 5}"#.utf8)) }
        #expect(throws: SyntheticWorldError.self) { try c.overriding(json: Data(#"{"users": "many"}"#.utf8)) }
        #expect(throws: SyntheticWorldError.self) { try c.overriding(json: Data("[1]".utf8)) }
    }

    @Test("invalid configurations are rejected with the field named")
    func invalidConfig() {
        var c = SyntheticWorldConfig.tiny
        c.users = 0
        #expect(throws: SyntheticWorldError.self) { try SyntheticWorld.generate(c) }
        c = .tiny
        c.artists = 5
        do {
            _ = try SyntheticWorld.generate(c)
            Issue.record("expected an error")
        } catch {
            #expect(error.description.contains("artists"))
        }
        c = .tiny
        c.newReleaseWeeks = c.weeks + 1
        #expect(throws: SyntheticWorldError.self) { try c.validate() }
    }

    @Test("an unwritable output directory is a clear error")
    func unwritable() throws {
        let w = try SyntheticWorld.generate(.tiny)
        let dir = Self.tempDir("file")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Data("x".utf8).write(to: URL(fileURLWithPath: dir))
        #expect(throws: SyntheticWorldError.cannotCreateDirectory(path: dir, reason: "a file of that name exists")) {
            try w.write(to: dir)
        }
        do {
            try w.write(to: dir + "/sub")
            Issue.record("expected an error")
        } catch {
            guard case .cannotCreateDirectory(let path, _) = error else {
                Issue.record("unexpected \(error)")
                return
            }
            #expect(path == dir + "/sub")
            #expect(error.description.contains("is not a directory"))
        }
    }

    @Test("dates convert both ways")
    func dates() {
        #expect(Timestamp.isoString(timestamp: 1_794_787_199) == "2026-11-15T23:59:59Z")
        #expect(Timestamp.parse("2026-11-15T23:59:59Z") == 1_794_787_199)
        #expect(Timestamp.parse("1970-01-01") == 0)
        #expect(Timestamp.dateString(timestamp: 951_782_400) == "2000-02-29")
        #expect(Timestamp.parse("2001-02-29") == nil)
        #expect(Timestamp.parse("2026-13-01") == nil)
        for day: Int64 in stride(from: -800, to: 40_000, by: 37) {
            let ts = day * Timestamp.secondsPerDay
            #expect(Timestamp.parse(Timestamp.dateString(timestamp: ts)) == ts)
        }
    }
}

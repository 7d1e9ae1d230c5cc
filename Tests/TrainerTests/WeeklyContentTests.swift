import ArgumentParser
import Foundation
import Testing
@testable import RecCore
@testable import Trainer
@testable import EncoreWeekly
@testable import EncoreStorage
import EncoreTestSupport

/// The weekly job's content side: catalog tracks without plays become items, and the audio, text and sequence
/// stages fill the bundle's content spaces.
@Suite(.serialized) struct WeeklyContentTests {
    /// A tiny world with the music of 12 tracks (FLAC), made once per test that needs it.
    static func world(_ dir: String) throws -> String {
        let world = "\(dir)/world"
        try run(["generate", "--preset", "tiny", "--output", world, "--seed", "9", "--audio", "--audio-tracks", "12",
                 "--audio-format", "flac", "--threads", "2"])
        return world
    }

    /// A small configuration: a small ALS, no evaluation, a small audio network and short excerpts.
    static func configuration(world: String, output: String, cache: String) -> WeeklyConfiguration {
        var c = WeeklyConfiguration(output: output)
        c.events = "\(world)/plays.tsv"
        c.parameters = ALSParameters(factors: 8, regularization: 0.05, iterations: 3, solver: .cg, seed: 3, threads: 2)
        c.threads = 2
        c.evaluationUsers = 0
        c.content.audio = "\(world)/audio"
        c.content.audioCache = cache
        c.content.analysis.decode.duration = 6
        c.content.audioNetwork.convChannels = [16, 16]
        c.content.audioNetwork.poolSizes = [2, 2]
        c.content.audioNetwork.hidden = 32
        c.content.audioNetwork.dim = 8
        c.content.audioTraining.epochs = 2
        c.content.audioTraining.batchSize = 4
        c.content.audioTraining.validationShare = 0.25
        c.content.audioCropSeconds = 1
        c.content.textOptions.dimensions = 16
        c.content.sequenceOptions.dimensions = 8
        c.content.sequenceOptions.minCount = 2
        c.content.sequenceOptions.epochs = 2
        return c
    }

    /// Rows of a TSV file with a header, as dictionaries.
    static func table(_ path: String) throws -> [[String: String]] {
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map(String.init)
        let header = lines[0].split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
        return lines.dropFirst().map { line in
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            return Dictionary(uniqueKeysWithValues: zip(header, fields))
        }
    }

    @Test("the weekly job with audio, texts and sequences: catalog-only tracks are items with zero CF vectors, every space is in the bundle with its ids, and a second week analyses nothing")
    func contentStagesEndToEnd() throws {
        let dir = makeTemporaryDirectory("weekly-content")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let world = try Self.world(dir)
        let cache = "\(dir)/cache"
        let job = try WeeklyJob(configuration: Self.configuration(world: world, output: "\(dir)/a/b.h5", cache: cache),
                                logger: TrainerLogging.logger())
        try job.run()
        let bundle = try PublishedModel.readBundle(at: "\(dir)/a/b.h5")

        // Catalog-only tracks: the catalog's tracks released before the day after the week's Monday that are not
        // in the play log, after the played ones, with zero CF rows and no training entries.
        let played = Set(try Self.table("\(world)/plays.tsv").map { $0["item"]! })
        let week = try #require(bundle.metadata["week"])
        let tracks = try Self.table("\(world)/tracks.tsv")
        let expected = tracks.filter { !played.contains($0["item"]!) && $0["release_date"]! <= week }.map { $0["item"]! }
        #expect(!expected.isEmpty, "the tiny world has unplayed tracks")
        #expect(job.catalogOnlyTracks == expected.count)
        let n = bundle.itemIDs.count
        #expect(Set(bundle.itemIDs.ids[..<(n - expected.count)]) == played)
        #expect(Array(bundle.itemIDs.ids[(n - expected.count)...]) == expected)
        #expect(bundle.metadata["catalog_only_tracks"] == "\(expected.count)")
        for i in (n - expected.count)..<n {
            #expect(bundle.model.itemFactors.row(i).allSatisfy { $0 == 0 })
        }
        #expect(bundle.userItems.indices.allSatisfy { Int($0) < n - expected.count })
        // The collaborative indexes hold the played tracks only: an all-zero row has no direction to index.
        let unit = try PublishedModel.open(path: "\(dir)/a/b.h5")
        for role in ["items-ip", "items-cosine"] {
            let index = try HNSWIndex.load(from: try #require(unit.indexes.first { $0.role == role }).path)
            #expect(index.count == n - expected.count)
            let found = try index.search(bundle.model.itemFactors.row(0), k: n)
            #expect(found.count == n - expected.count && found.allSatisfy { Int($0.id) < n - expected.count })
        }
        // Catalog-only tracks are never familiar to anyone, and Daily Mixes never hold a track without a vector.
        if let dm = bundle.dailyMixes {
            for u in 0..<dm.userCount {
                for mix in dm.mixes(ofUser: u) {
                    for t in mix.tracks where t.familiar { #expect(Int(t.item) < n - expected.count) }
                }
            }
        }

        // Audio: the 12 rendered tracks, descriptors as a direct analysis of the file gives them.
        let spaces = try #require(bundle.contentSpaces)
        #expect(spaces == job.content)
        let audioFiles = try FileManager.default.contentsOfDirectory(atPath: "\(world)/audio").filter { $0.hasSuffix(".flac") }
        #expect(audioFiles.count == 12)
        let audioTracks = Set(audioFiles.map { String($0.dropLast(5)) })
        let embeddings = try #require(spaces.audioEmbeddings)
        #expect(Set(embeddings.items.map { bundle.itemIDs.id(at: $0) }) == audioTracks)
        #expect(embeddings.dimension == 8)
        for r in 0..<embeddings.count {
            let norm = embeddings.vectors.row(r).reduce(Float(0)) { $0 + $1 * $1 }.squareRoot()
            #expect(abs(norm - 1) < 1e-4)
        }
        let descriptors = try #require(spaces.audioDescriptors)
        #expect(descriptors.items == embeddings.items)
        #expect(spaces.descriptorNames == AudioDescriptors.names)
        let first = descriptors.items[0]
        let direct = try AudioAnalyzer.analyze(
            path: "\(world)/audio/\(bundle.itemIDs.id(at: first)).flac", options: job.config.content.analysis)
        #expect(descriptors.vector(of: first)! == direct.descriptors.values.map { Float($0) })
        #expect(spaces.audioCFPredicted?.items == embeddings.items)
        #expect(job.contentSummary.audioAnalysed == 12 && job.contentSummary.audioCached == 0)
        #expect(job.contentSummary.audioModel == "trained-both")

        // Text: every track with its own text or its artist's bio has a vector; inherited ones have no text of
        // their own.
        let texts = try Self.table("\(world)/texts.tsv")
        let ownText = Set(texts.map { $0["id"]! })
        let text = try #require(spaces.text)
        #expect(text.count > 0 && spaces.textInherited.count == text.count)
        for (k, item) in text.items.enumerated() where spaces.textInherited[k] {
            #expect(!ownText.contains(bundle.itemIDs.id(at: item)))
        }
        for (k, item) in text.items.enumerated() where !spaces.textInherited[k] {
            #expect(ownText.contains(bundle.itemIDs.id(at: item)))
        }
        #expect(spaces.textInherited.contains(true))

        // Sequences: played tracks only.
        let sequence = try #require(spaces.sequence)
        #expect(sequence.count > 0)
        #expect(sequence.items.allSatisfy { Int($0) < n - expected.count })

        // Hybrid: played tracks keep their learned vector or blend it with the prediction; catalog-only tracks (no
        // listener) have only the prediction, from content and their artist's other tracks.
        let hybrid = try #require(spaces.hybrid)
        #expect(spaces.hybridProvenance.count == hybrid.count)
        var listeners = [Int](repeating: 0, count: n)
        for i in bundle.userItems.indices { listeners[Int(i)] += 1 }
        let k = job.config.content.coldStart.priorListeners
        for (r, item) in hybrid.items.enumerated() {
            let p = spaces.hybridProvenance[r]
            if listeners[Int(item)] == 0 {
                // Catalog-only tracks, and played tracks whose every play was a skip.
                #expect(p.hasPrefix("predicted("), "\(bundle.itemIDs.id(at: item)): \(p)")
            } else {
                #expect(p == "learned" || p.hasPrefix("blended("), "\(p)")
                // The blend's learned weight is n / (n + k).
                if p.hasPrefix("blended(") {
                    let w = (Double(listeners[Int(item)]) / (Double(listeners[Int(item)]) + k) * 100).rounded() / 100
                    #expect(p.hasPrefix("blended(\(w) learned;"), "\(p) with \(listeners[Int(item)]) listeners")
                }
            }
        }
        #expect(hybrid.items.contains { Int($0) >= n - expected.count }, "no catalog-only track got a predicted vector")
        // The cold-start model is stored (/hybrid/model): restored from the bundle alone (its factors, listeners,
        // catalog artists and content spaces) it gives every track without listeners its stored hybrid vector.
        let parameters = try #require(spaces.hybridModel)
        let catalog = try #require(bundle.catalog)
        let artists = catalog.hasArtists ? catalog.trackArtist : nil
        let restored = try ColdStartModel(
            parameters: parameters, itemFactors: bundle.model.itemFactors, listeners: listeners, artists: artists)
        var content: [ContentSpace] = []
        for (name, set) in [("audio", spaces.audioEmbeddings), ("text", spaces.text), ("sequence", spaces.sequence)] {
            guard let set else { continue }
            let (vectors, present) = set.aligned(itemCount: n)
            content.append(try ContentSpace(name: name, vectors: vectors, present: present))
        }
        let predicted = try restored.predict(artists: artists, spaces: content)
        var checked = 0
        for (r, item) in hybrid.items.enumerated() where listeners[Int(item)] == 0 {
            let stored = hybrid.vectors.row(r), again = predicted.vectors.row(Int(item))
            #expect(zip(stored, again).allSatisfy { abs($0 - $1) <= 1e-5 * max(1, abs($0)) }, "\(stored) vs \(again)")
            checked += 1
        }
        #expect(checked >= expected.count)
        // Discover Weekly's new-for-you tracks are tracks with at most --cold-max-listeners listeners or released
        // within --new-release-days before the week, and never released after its Monday.
        let dw = try #require(bundle.discoverWeekly)
        let monday = try PlaylistDate(week).timestamp
        let window = Int64(job.config.content.newReleaseDays) * Timestamp.secondsPerDay
        var newForYou = 0
        for u in 0..<dw.userCount {
            for t in dw.tracks(ofUser: u) where t.source.contains("new-for-you") {
                newForYou += 1
                let released = catalog.trackRelease[Int(t.item)]
                let recent = released != TrackCatalog.unknownTime && released >= monday - window
                #expect(listeners[Int(t.item)] <= job.config.content.coldMaxListeners || recent)
                #expect(released == TrackCatalog.unknownTime || released <= monday)
            }
        }
        #expect(newForYou > 0, "no Discover Weekly track came from the hybrid space's new tracks")

        // The report covers every space and the catalog-only tracks.
        let report = try String(contentsOfFile: "\(dir)/a/b-report/report.txt", encoding: .utf8)
        #expect(report.contains("catalog tracks without plays: \(expected.count) of \(n) items"), "\(report)")
        #expect(report.contains("content audio: \(embeddings.count) of \(n)"), "\(report)")
        #expect(report.contains("12 analysed, 0 from the cache"), "\(report)")
        #expect(report.contains("content text: \(text.count) of \(n)"), "\(report)")
        #expect(report.contains("content sequence: \(sequence.count) of \(n)"), "\(report)")
        #expect(report.contains("content hybrid: \(hybrid.count) of \(n)"), "\(report)")

        // h5py reads the same ids and vectors.
        if TestPython.shouldRun {
            if let missing = TestPython.h5pyMissing { Issue.record(Comment(rawValue: missing)); return }
            func space(_ set: ItemVectorSet) -> [String: Any] {
                ["ids": set.items.map { bundle.itemIDs.id(at: $0) },
                 "vectors": (0..<set.count).map { set.vectors.row($0).map(Double.init) }]
            }
            let content: [String: Any] = [
                "audio_embeddings": space(embeddings), "audio_descriptors": space(descriptors), "text": space(text),
                "sequence": space(sequence), "descriptor_names": spaces.descriptorNames,
                "text_inherited": spaces.textInherited.map { $0 ? 1 : 0 },
            ]
            try JSONSerialization.data(withJSONObject: content).write(to: URL(fileURLWithPath: "\(dir)/content.json"))
            let unit = try PublishedModel.open(path: "\(dir)/a/b.h5")
            let result = try TestPython.run([Self.checkScript, unit.bundlePath, "--content", "\(dir)/content.json"])
            #expect(result.status == 0 && result.output.contains("OK"), "\(result.output)")
            // The notebook's numpy code projects every space and writes its plots.
            let notebook = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .deletingLastPathComponent().appendingPathComponent("notebooks-data/content_spaces.py").path
            let plots = try TestPython.run([notebook, "\(dir)/a/b.h5", "--svg", "\(dir)/plots"])
            #expect(plots.status == 0, "\(plots.output)")
            for (name, count) in [("cf", n - expected.count), ("audio", embeddings.count), ("text", text.count),
                                  ("sequence", sequence.count), ("hybrid", hybrid.count)] {
                #expect(plots.output.contains("\(name): \(count) tracks"), "\(plots.output)")
                #expect(FileManager.default.fileExists(atPath: "\(dir)/plots/\(name).svg"))
            }
        }

        // The next week, with the same cache and the model trained this week: no file is analysed again, and the
        // saved model embeds the tracks exactly as the job did.
        var next = Self.configuration(world: world, output: "\(dir)/b/b.h5", cache: cache)
        next.content.audioModel = "\(dir)/a/b.h5.work/audio-model.h5"
        next.content.sequenceVectors = false
        next.content.useTexts = false
        let second = try WeeklyJob(configuration: next, logger: TrainerLogging.logger())
        try second.run()
        #expect(second.contentSummary.audioAnalysed == 0 && second.contentSummary.audioCached == 12)
        #expect(second.contentSummary.audioModel == "given")
        let again = try #require(try PublishedModel.readBundle(at: "\(dir)/b/b.h5").contentSpaces)
        #expect(again.audioDescriptors == descriptors)
        // Equal up to sgemm's batch-size-dependent blocking.
        let e2 = try #require(again.audioEmbeddings)
        #expect(e2.items == embeddings.items)
        #expect(zip(e2.vectors.storage, embeddings.vectors.storage).allSatisfy { abs($0 - $1) < 1e-5 })
        #expect(again.text == nil && again.sequence == nil)
    }

    static var checkScript: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("python/check_bundle.py").path
    }

    @Test("without a catalog nothing is added, and --no-catalog-tracks keeps only played tracks")
    func catalogTracksOnlyWithACatalog() throws {
        let dir = makeTemporaryDirectory("weekly-content")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try run(["generate", "--preset", "tiny", "--output", "\(dir)/world", "--seed", "9"])
        let played = Set(try Self.table("\(dir)/world/plays.tsv").map { $0["item"]! })
        for (extra, name) in [(["--no-catalog"], "bare"), (["--no-catalog-tracks"], "played")] {
            try run(["weekly", "--events", "\(dir)/world/plays.tsv", "--output", "\(dir)/\(name)/b.h5", "--factors", "4",
                     "--iterations", "1", "--eval-users", "0", "--threads", "2", "--no-sequence-vectors", "--no-texts"] + extra)
            let bundle = try PublishedModel.readBundle(at: "\(dir)/\(name)/b.h5")
            #expect(Set(bundle.itemIDs.ids) == played)
            // No content space; with a catalog, the artist prior still gives a hybrid space.
            let spaces = bundle.contentSpaces
            #expect(spaces?.audioEmbeddings == nil && spaces?.text == nil && spaces?.sequence == nil)
            #expect((spaces?.hybrid != nil) == (name == "played"))
            #expect(bundle.metadata["catalog_only_tracks"] == nil)
        }
    }

    @Test("--no-content-indexes publishes the collaborative and hybrid indexes only; the content spaces stay in the bundle")
    func contentIndexesCanBeLeftOut() throws {
        let dir = makeTemporaryDirectory("weekly-content")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try run(["generate", "--preset", "tiny", "--output", "\(dir)/world", "--seed", "9"])
        for (extra, name) in [([String](), "with"), (["--no-content-indexes"], "without")] {
            try run(["weekly", "--events", "\(dir)/world/plays.tsv", "--output", "\(dir)/\(name)/b.h5", "--factors", "4",
                     "--iterations", "1", "--eval-users", "0", "--threads", "1", "--no-texts"] + extra)
            let bundle = try PublishedModel.readBundle(at: "\(dir)/\(name)/b.h5")
            #expect(bundle.contentSpaces?.sequence != nil, "\(name)")
            let unit = try PublishedModel.open(path: "\(dir)/\(name)/b.h5")
            #expect(unit.indexes.allSatisfy { $0.present }, "\(name)")
            let roles = unit.indexes.map(\.role).sorted()
            let collaborative = ["hybrid-cosine", "items-cosine", "items-ip", "users-cosine"]
            #expect(roles == (name == "with" ? (collaborative + ["sequence-cosine"]).sorted() : collaborative), "\(name)")
        }
    }

    @Test("bad content inputs are refused with the option and the file named")
    func badContentInputs() throws {
        let dir = makeTemporaryDirectory("weekly-content")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try run(["generate", "--preset", "tiny", "--output", "\(dir)/world", "--seed", "9"])
        let base = ["weekly", "--events", "\(dir)/world/plays.tsv", "--factors", "4", "--iterations", "1",
                    "--eval-users", "0", "--threads", "2", "--no-sequence-vectors"]
        // A texts file without a text column.
        try "id\tbody\nt0000001\tloud guitars\n".write(toFile: "\(dir)/notext.tsv", atomically: true, encoding: .utf8)
        // A folder of recordings none of which is named after a track.
        try FileManager.default.createDirectory(atPath: "\(dir)/strangers", withIntermediateDirectories: true)
        do {
            var writer = try AudioFileWriter(path: "\(dir)/strangers/nobody.wav", format: .wav, sampleRate: 22_050)
            try writer.write((0..<22_050).map { Float(sin(Double($0) * 0.05)) * 0.3 })
            try writer.close()
        }
        // An audio model for 8 mel bands (the job analyses with 128).
        var config = AudioModelConfiguration()
        config.bands = 8; config.convChannels = [4]; config.poolSizes = [1]; config.hidden = 4; config.dim = 3
        let model = try AudioEmbeddingModel(configuration: config)
        let snapshot = AudioModelSnapshot(
            configuration: config, objective: .contrastive, cropFrames: 16, framesPerSecond: 22_050 / 512,
            temperature: 0.5, featureMean: [Float](repeating: 0, count: 8), featureStd: [Float](repeating: 1, count: 8),
            weights: model.weights(), history: [])
        try AudioModelFiles.write(snapshot, to: "\(dir)/bands8.h5")
        let cases: [([String], [String])] = [
            (["--audio", "\(dir)/missing"], ["--audio \(dir)/missing: no such file or folder"]),
            (["--audio", "\(dir)/strangers"], ["--audio \(dir)/strangers: none of the 1 files is named after a track"]),
            (["--audio", "\(dir)/world", "--audio-model", "\(dir)/bands8.h5"],
             ["--audio-model \(dir)/bands8.h5: the model expects 8 mel bands; the job analyses the audio with 128"]),
            (["--audio-model", "\(dir)/bands8.h5"], ["--audio-model needs --audio"]),
            (["--texts", "\(dir)/none.tsv"], ["--texts \(dir)/none.tsv: no such file"]),
            (["--texts", "\(dir)/notext.tsv"], ["\(dir)/notext.tsv", "no column 'text'"]),
            (["--session-gap-minutes=-1"], ["--session-gap-minutes must be a non-negative number of minutes"]),
            (["--audio-duration=-2"], ["--audio-duration must be a non-negative number of seconds"]),
        ]
        for (n, (extra, fragments)) in cases.enumerated() {
            let message = errorMessage {
                var cmd = try EncoreTrain.parseAsRoot(base + ["--output", "\(dir)/out\(n)/b.h5"] + extra)
                try cmd.run()
            }
            for fragment in fragments {
                #expect(message?.contains(fragment) == true, "\(extra): \(message ?? "no error")")
            }
        }
    }
}

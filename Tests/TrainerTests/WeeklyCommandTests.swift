import ArgumentParser
import Foundation
import Testing
@testable import RecCore
@testable import Trainer
@testable import EncoreWeekly
import EncoreTestSupport

@Suite(.serialized) struct WeeklyCommandTests {
    @Test func residentMemoryPeakRisesWithAnAllocationAndResets() throws {
        #expect(ResidentMemory.resetPeak(), "Linux lets a process reset its own peak")
        let before = try #require(ResidentMemory.peakBytes())
        // 1 GiB written, so resident (other suites running at the same time only add to the peak).
        var block = [UInt8](repeating: 1, count: 1 << 30)
        block[block.count - 1] = 2
        let during = try #require(ResidentMemory.peakBytes())
        #expect(during - before >= 900 << 20, "peak \(before) then \(during) bytes")
        #expect(block[block.count - 1] == 2)
        block = []
        // After a reset the peak is the resident set now, without the freed block.
        #expect(ResidentMemory.resetPeak())
        let after = try #require(ResidentMemory.peakBytes())
        #expect(after <= during - (512 << 20), "peak \(during) then \(after) bytes after the reset")
    }

    @Test func weeklyJobMakesPlaylistsForEveryUserAndResumes() throws {
        let dir = makeTemporaryDirectory("weekly")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var generate = try EncoreTrain.parseAsRoot(["generate", "--preset", "tiny", "--output", "\(dir)/world", "--seed", "5"])
        try generate.run()
        let args = ["weekly", "--events", "\(dir)/world/plays.tsv", "--output", "\(dir)/out/b.h5", "--factors", "16",
                    "--iterations", "5", "--eval-users", "50", "--threads", "2"]
        var first = try EncoreTrain.parseAsRoot(args)
        try first.run()

        let bundle = try PublishedModel.readBundle(at: "\(dir)/out/b.h5")
        let dw = try #require(bundle.discoverWeekly)
        let dm = try #require(bundle.dailyMixes)
        #expect(dw.userCount == bundle.userIDs.count && dm.userCount == bundle.userIDs.count)
        #expect(PlaylistDate.mondayAfter(0).isMonday)
        #expect(try PlaylistDate(dw.week).isMonday)
        // Never a played (or skipped) track in Discover Weekly: check against the raw log.
        let (log, _) = try DelimitedLoader.load(path: "\(dir)/world/plays.tsv", format: .encorePlaysWithMsPlayed)
        var played = Set<String>()
        for t in 0..<log.count { played.insert(log.userIDs.id(at: log.users[t]) + "|" + log.itemIDs.id(at: log.items[t])) }
        var full = 0
        for u in 0..<dw.userCount {
            let tracks = dw.tracks(ofUser: u)
            if tracks.count == 30 { full += 1 }
            for t in tracks { #expect(!played.contains(bundle.userIDs.ids[u] + "|" + bundle.itemIDs.ids[Int(t.item)])) }
        }
        #expect(full > dw.userCount / 2)
        // Mixes of a user never share a track.
        for u in 0..<dm.userCount {
            let items = dm.mixes(ofUser: u).flatMap { $0.tracks.map(\.item) }
            #expect(Set(items).count == items.count)
        }
        #expect(FileManager.default.fileExists(atPath: "\(dir)/out/b-report/report.html"))
        // The report gives each stage's time, processor time and peak resident memory.
        let stageReport = try String(contentsOfFile: "\(dir)/out/b-report/report.txt", encoding: .utf8)
        let memory = try #require(stageReport.split(separator: "\n").first { $0.hasPrefix("peak resident memory: ") })
        var stagePeaks: [Double] = []
        for stage in ["load", "fit", "index", "discover-weekly", "daily-mix", "evaluate", "bundle"] {
            let field = try #require(memory.split(separator: ";")[0].split(separator: ",").first { $0.hasPrefix(" \(stage) ") || $0.hasPrefix("peak resident memory: \(stage) ") }, "\(memory)")
            stagePeaks.append(try #require(Double(field.split(separator: " ").dropLast().last ?? ""), "\(field)"))
        }
        // The whole job's peak is the highest stage's.
        let whole = try #require(memory.split(separator: ";").last?.split(separator: " ").dropLast().last.flatMap { Double($0) })
        #expect(whole >= stagePeaks.max()! && stagePeaks.min()! > 0, "\(memory)")
        // The bundle and its indexes are published as one unit, out/b.h5.d, listed by its manifest.
        let published = try PublishedModel.open(path: "\(dir)/out/b.h5")
        #expect(published.unitDirectory == "\(dir)/out/b.h5.d" && published.version == "v-00000001")
        // The world has texts, so the job has a hybrid space, and Daily Mix's index over it is published too, with
        // one index per content space that has vectors (for the server's similar?space=).
        let c = try #require(bundle.contentSpaces)
        let spaces = [("audio", c.audioEmbeddings), ("text", c.text), ("sequence", c.sequence)].filter { ($0.1?.count ?? 0) > 0 }
        #expect(spaces.contains { $0.0 == "text" })
        #expect(published.indexes.map(\.role) == (["hybrid-cosine", "items-cosine", "items-ip", "users-cosine"] + spaces.map { $0.0 + "-cosine" }).sorted())
        for (space, set) in spaces {
            let index = try HNSWIndex.load(from: try #require(published.indexes.first { $0.role == space + "-cosine" }).path)
            let withVector = try #require(set).vectors.rowNorms().filter { $0 > 0 }.count
            #expect(index.count == withVector && index.dimension == set?.dimension && index.metric == .cosine, "\(space)")
        }
        let hybridIndex = try HNSWIndex.load(from: try #require(published.indexes.first { $0.role == "hybrid-cosine" }).path)
        let hybrid = try #require(bundle.contentSpaces?.hybrid)
        #expect(hybridIndex.count == hybrid.count && hybridIndex.metric == .cosine)
        #expect(published.indexes.allSatisfy { $0.present && $0.path.hasPrefix("\(dir)/out/b.h5.d/v-00000001/") })
        #expect(bundle.metrics["weekly/discover-weekly/hit_rate@30"] != nil)
        // The world's texts.tsv is beside the log, so the job has content: the evaluation also makes Discover Weekly
        // without it, and counts the hits on new releases (tracks no one played before the test week) for both.
        let m = bundle.metrics
        let users = try #require(m["weekly/users"]), pairs = try #require(m["weekly/new_release_pairs"])
        #expect(try #require(m["weekly/new_release_pairs_released"]) <= pairs)
        for method in ["discover-weekly", "discover-weekly-no-content"] {
            #expect(m["weekly/\(method)/hit_rate@30"] != nil, "\(method)")
            let hits = try #require(m["weekly/\(method)/new_release_hits"], "\(method)")
            #expect(hits <= pairs)
            #expect(abs(try #require(m["weekly/\(method)/new_release_hit_rate@30"]) - hits / (users * 30)) < 1e-9)
            #expect(m["weekly/\(method)/new_track_slots"] != nil)
        }
        // The generator's truth files are beside the log: the report scores the mixes against the true tastes.
        let truth = try TasteTruth.load(
            tracks: "\(dir)/world/truth_tracks.tsv", users: "\(dir)/world/truth_users.tsv",
            userIDs: bundle.userIDs, itemIDs: bundle.itemIDs)
        let dominance = PlaylistEvaluation.tasteDominance(table: dm, truth: truth)
        #expect(dominance.mixes > 0 && dominance.meanPurity > 0.5, "\(dominance)")
        let report = try String(contentsOfFile: "\(dir)/out/b-report/report.txt", encoding: .utf8)
        let line = try #require(report.split(separator: "\n").first { $0.hasPrefix("daily mix taste dominance") })
        #expect(line.contains("\(dominance.mixes) mixes of \(dominance.users) users"), "\(line)")
        #expect(line.contains(String(format: "%.1f%% of a mix's familiar tracks", 100 * dominance.meanPurity)), "\(line)")
        #expect(line.contains(String(format: "%.1f%% of mixes dominated", 100 * dominance.dominatedShare)), "\(line)")
        let html = try String(contentsOfFile: "\(dir)/out/b-report/report.html", encoding: .utf8)
        #expect(html.contains("Daily Mix against the true tastes"))

        // A second run with the same inputs resumes: every stage is already finished and the result is the same.
        try FileManager.default.removeItem(atPath: "\(dir)/out/b.h5.d/current.json")
        let state = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(dir)/out/b.h5.work/state.json"))) as? [String: Any]
        let finished = (state?["order"] as? [String]) ?? []
        #expect(finished == ["fit", "text", "sequence", "hybrid", "index", "discover-weekly", "daily-mix", "evaluate", "bundle"])
        var second = try EncoreTrain.parseAsRoot(args)
        try second.run()
        // Only the bundle, whose output was removed, is written again, from the saved stages.
        let rewritten = try PublishedModel.readBundle(at: "\(dir)/out/b.h5")
        #expect(rewritten.discoverWeekly == dw && rewritten.dailyMixes == dm)
        #expect(rewritten.model.itemFactors == bundle.model.itemFactors && rewritten.metrics == bundle.metrics)
        #expect(try PublishedModel.open(path: "\(dir)/out/b.h5").version == "v-00000002")
        // Forget the last stages: they run again from the saved earlier ones and give the same playlists.
        var trimmed = try #require(state)
        trimmed["order"] = ["fit", "index", "discover-weekly"]
        var done = try #require(trimmed["finished"] as? [String: Double])
        for s in ["daily-mix", "evaluate", "bundle"] { done.removeValue(forKey: s) }
        trimmed["finished"] = done
        try JSONSerialization.data(withJSONObject: trimmed).write(to: URL(fileURLWithPath: "\(dir)/out/b.h5.work/state.json"))
        var third = try EncoreTrain.parseAsRoot(args)
        try third.run()
        let again = try PublishedModel.readBundle(at: "\(dir)/out/b.h5")
        #expect(again.discoverWeekly == dw)
        #expect(again.dailyMixes == dm)
    }

    @Test func withoutTruthFilesTheReportHasNoTasteDominance() throws {
        let dir = makeTemporaryDirectory("weekly")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var generate = try EncoreTrain.parseAsRoot(["generate", "--preset", "tiny", "--output", "\(dir)/world", "--seed", "6"])
        try generate.run()
        for f in ["truth_users.tsv", "truth_tracks.tsv"] { try FileManager.default.removeItem(atPath: "\(dir)/world/\(f)") }
        var weekly = try EncoreTrain.parseAsRoot([
            "weekly", "--events", "\(dir)/world/plays.tsv", "--output", "\(dir)/out/b.h5", "--factors", "8",
            "--iterations", "2", "--eval-users", "0", "--threads", "2"])
        try weekly.run()
        let report = try String(contentsOfFile: "\(dir)/out/b-report/report.txt", encoding: .utf8)
        #expect(report.contains("daily mix:"))
        #expect(!report.contains("taste dominance"))
    }

    @Test func aLogWithoutTimestampsIsAClearError() throws {
        let dir = makeTemporaryDirectory("weekly")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "user\titem\tweight\nu1\ti1\t2\n".write(toFile: "\(dir)/log.tsv", atomically: true, encoding: .utf8)
        var cmd = try EncoreTrain.parseAsRoot(["weekly", "--events", "\(dir)/log.tsv", "--output", "\(dir)/b.h5"])
        let message = errorMessage { try cmd.run() }
        #expect(message?.contains("\(dir)/log.tsv") == true, "\(message ?? "no error")")
        #expect(message?.contains("needs timestamps") == true, "\(message ?? "no error")")
    }

    /// `weekly` takes `fit`'s input options: columns by name, bad rows skipped, and a headerless file read by
    /// auto-detection as user, item, weight, timestamp.
    @Test func weeklyTakesTheInputOptionsOfFit() throws {
        let dir = makeTemporaryDirectory("weekly")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "listener\tsong\tn\twhen\nu1\tt1\t2\t1700000000\nu2\tt2\tlots\t1700000100\nu2\tt1\t3\t1700000200\n"
            .write(toFile: "\(dir)/listens.tsv", atomically: true, encoding: .utf8)
        let named = try #require(try EncoreTrain.parseAsRoot([
            "weekly", "--events", "\(dir)/listens.tsv", "--output", "\(dir)/b.h5", "--format", "tsv",
            "--user-column", "listener", "--item-column", "song", "--weight-column", "n", "--timestamp-column", "when",
            "--skip-bad-rows"]) as? WeeklyCommand)
        let job = try WeeklyJob(command: named, logger: TrainerLogging.logger())
        try job.load()
        #expect(job.plays.userIDs.ids == ["u1", "u2"] && job.plays.itemIDs.ids == ["t1"])
        #expect(job.plays.weights == [2, 3] && job.plays.timestamps == [1_700_000_000, 1_700_000_200])
        #expect(job.weighting == .counts)

        try "u1\tt1\t2\t1700000000\nu2\tt2\t1\t1700000100\n".write(toFile: "\(dir)/bare.tsv", atomically: true, encoding: .utf8)
        let bare = try #require(try EncoreTrain.parseAsRoot(
            ["weekly", "--events", "\(dir)/bare.tsv", "--output", "\(dir)/c.h5"]) as? WeeklyCommand)
        let bareJob = try WeeklyJob(command: bare, logger: TrainerLogging.logger())
        try bareJob.load()
        #expect(bareJob.plays.userIDs.ids == ["u1", "u2"] && bareJob.plays.itemIDs.ids == ["t1", "t2"])
        #expect(bareJob.plays.weights == [2, 1] && bareJob.plays.timestamps == [1_700_000_000, 1_700_000_100])

        // Without --skip-bad-rows the bad row stops the job, naming the file, the line and the column.
        let strict = try #require(try EncoreTrain.parseAsRoot([
            "weekly", "--events", "\(dir)/listens.tsv", "--output", "\(dir)/d.h5", "--format", "tsv", "--user-column", "listener",
            "--item-column", "song", "--weight-column", "n", "--timestamp-column", "when"]) as? WeeklyCommand)
        let message = errorMessage { try WeeklyJob(command: strict, logger: TrainerLogging.logger()).load() }
        #expect(message?.contains("listens.tsv:3") == true && message?.contains("'n'") == true, "\(message ?? "no error")")
    }

    @Test func indexQuantizationOptionReachesTheConfiguration() throws {
        let plain = try #require(try EncoreTrain.parseAsRoot(["weekly", "--events", "x.tsv", "--output", "y.h5"]) as? WeeklyCommand)
        #expect(try plain.jobConfiguration().index.quantization == .none)
        let quantized = try #require(try EncoreTrain.parseAsRoot(
            ["weekly", "--events", "x.tsv", "--output", "y.h5", "--index-quantization", "int8"]) as? WeeklyCommand)
        #expect(try quantized.jobConfiguration().index.quantization == .int8)
        let bad = errorMessage {
            _ = try EncoreTrain.parseAsRoot(["weekly", "--events", "x.tsv", "--output", "y.h5", "--index-quantization", "int4"])
        }
        #expect(bad?.contains("--index-quantization") == true && bad?.contains("'int4'") == true, "\(bad ?? "no error")")
    }

    /// A play log whose indices do not fit its id maps cannot become a training matrix: an error, not an empty matrix.
    @Test func aTrainingMatrixThatCannotBeBuiltIsAnError() throws {
        let command = try #require(try EncoreTrain.parseAsRoot(["weekly", "--events", "x.tsv", "--output", "y.h5"]) as? WeeklyCommand)
        let job = try WeeklyJob(command: command, logger: TrainerLogging.logger())
        job.plays = try Interactions(
            userIDs: IDMap(ids: ["u1"]), itemIDs: IDMap(ids: ["t1"]), users: [0, 1], items: [0, 0], weights: [1, 1])
        let message = errorMessage { _ = try job.listenMatrix() }
        #expect(message?.contains("training matrix") == true, "\(message ?? "no error")")
        #expect(message?.contains("row 1 of 1") == true, "\(message ?? "no error")")
    }
}

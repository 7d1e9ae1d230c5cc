import ArgumentParser
import Foundation
import Testing
@testable import RecCore
@testable import Trainer
@testable import EncoreWeekly
import EncoreTestSupport

/// Rows of a TSV file (without the header) split into fields.
private func tsvRows(_ path: String) throws -> (header: [String], rows: [[String]]) {
    let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map(String.init)
    return (lines[0].components(separatedBy: "\t"), lines.dropFirst().map { $0.components(separatedBy: "\t") })
}

@Suite(.serialized) struct EventLogInputTests {
    @Test func aWorldSplitIntoPlaysTSVAndAnEventLogLoadsLikeTheWholeFile() throws {
        let dir = makeTemporaryDirectory("evlog")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var generate = try EncoreTrain.parseAsRoot(["generate", "--preset", "tiny", "--output", "\(dir)/world", "--seed", "11"])
        try generate.run()
        let world = "\(dir)/world"

        // The whole world, as the weekly job loads it.
        let wholeCommand = try #require(try EncoreTrain.parseAsRoot(["weekly", "--events", "\(world)/plays.tsv", "--output", "\(dir)/a.h5"]) as? WeeklyCommand)
        let whole = try WeeklyJob(command: wholeCommand, logger: TrainerLogging.logger())
        try whole.load()

        // Split: the first 60% of plays stay in a TSV (with the catalog beside it, but no likes.tsv); the rest,
        // and every like, go to the event log; a like withdrawn later and a duplicate event id change nothing.
        let part = "\(dir)/part"
        try FileManager.default.createDirectory(atPath: part, withIntermediateDirectories: true)
        for name in ["tracks.tsv", "artists.tsv", "dislikes.tsv", "follows.tsv"] {
            try FileManager.default.copyItem(atPath: "\(world)/\(name)", toPath: "\(part)/\(name)")
        }
        let plays = try tsvRows("\(world)/plays.tsv")
        #expect(plays.header == ["user", "item", "timestamp", "ms_played"])
        let cut = plays.rows.count * 6 / 10
        let head = (["user\titem\ttimestamp\tms_played"] + plays.rows[..<cut].map { $0.joined(separator: "\t") }).joined(separator: "\n") + "\n"
        try head.write(toFile: "\(part)/plays.tsv", atomically: true, encoding: .utf8)
        var events: [UserEvent] = plays.rows[cut...].enumerated().map { k, r in
            UserEvent(eventID: "p\(k)", user: r[0], item: r[1], type: .play, msPlayed: Int64(r[3])!, timestamp: Int64(r[2])!)
        }
        let likes = try tsvRows("\(world)/likes.tsv")
        #expect(!likes.rows.isEmpty)
        events += likes.rows.enumerated().map { k, r in
            UserEvent(eventID: "l\(k)", user: r[0], item: r[1], type: .like, timestamp: Int64(r[2])!)
        }
        let extra = UserEvent(eventID: "x1", user: plays.rows[0][0], item: plays.rows[1][1], type: .like, timestamp: 5)
        let withdraw = UserEvent(eventID: "x2", user: extra.user, item: extra.item, type: .unlike, timestamp: 6)
        let logDir = "\(dir)/log"
        let log = try EventLog(directory: logDir, fsync: .never, segmentBytes: 64 << 10)
        for chunk in stride(from: 0, to: events.count, by: 100) {
            try log.append(Array(events[chunk..<min(chunk + 100, events.count)]))
        }
        // A play dated 9999-12-31 (a wrong client clock) must not move the week: it is skipped and counted.
        let future = UserEvent(eventID: "f1", user: extra.user, item: extra.item, type: .play, msPlayed: 60_000,
                               timestamp: UserEvent.maxTimestamp)
        try log.append([extra, events[0], withdraw, future])  // events[0] again: a retried event id
        let through = log.lastSequence
        try log.close()

        let splitCommand = try #require(try EncoreTrain.parseAsRoot(
            ["weekly", "--events", "\(part)/plays.tsv", "--event-log", logDir, "--output", "\(dir)/b.h5"]) as? WeeklyCommand)
        let split = try WeeklyJob(command: splitCommand, logger: TrainerLogging.logger())
        try split.load()

        #expect(split.plays == whole.plays)
        #expect(split.weighting == whole.weighting)
        #expect(split.week == whole.week)
        #expect(split.feedback.likes == whole.feedback.likes)
        #expect(split.feedback.follows == whole.feedback.follows)
        #expect(split.feedback.dislikedTracks == whole.feedback.dislikedTracks)
        #expect(split.eventLog?.through == through)
        #expect(split.eventLog?.duplicates == 1)
        #expect(split.eventLogReport.withdrawals == 1)
        #expect(split.eventLogReport.implausible == 1)
        #expect(split.eventLogReport.description.contains("1 skipped as dated in the future"))
        #expect(split.eventLog?.metadata == ["event_log_dir": logDir, "event_log_through": String(through)])
    }

    @Test func aLogOnlyWeeklyRunWritesTheCatalogAndHowFarItRead() throws {
        let dir = makeTemporaryDirectory("evlog")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var generate = try EncoreTrain.parseAsRoot(["generate", "--preset", "tiny", "--output", "\(dir)/world", "--seed", "3"])
        try generate.run()
        let plays = try tsvRows("\(dir)/world/plays.tsv")
        let events = plays.rows.enumerated().map { k, r in
            UserEvent(eventID: "p\(k)", user: r[0], item: r[1], type: .play, msPlayed: Int64(r[3])!, timestamp: Int64(r[2])!)
        }
        let log = try EventLog(directory: "\(dir)/log", fsync: .never)
        for chunk in stride(from: 0, to: events.count, by: 500) { try log.append(Array(events[chunk..<min(chunk + 500, events.count)])) }
        let through = log.lastSequence
        try log.close()

        var weekly = try EncoreTrain.parseAsRoot(
            ["weekly", "--event-log", "\(dir)/log", "--catalog", "\(dir)/world", "--output", "\(dir)/out/b.h5", "--factors", "8",
             "--iterations", "2", "--eval-users", "0", "--threads", "2"])
        try weekly.run()
        let bundle = try PublishedModel.readBundle(at: "\(dir)/out/b.h5")
        #expect(bundle.metadata["event_log_through"] == String(through))
        #expect(bundle.metadata["event_log_dir"] == "\(dir)/log")
        let catalog = try #require(bundle.catalog)
        let expected = try TrackCatalog.load(tracks: "\(dir)/world/tracks.tsv", artists: "\(dir)/world/artists.tsv", itemIDs: bundle.itemIDs)
        #expect(catalog.sameContents(as: expected))
        #expect(catalog.hasArtists)

        // `events` checks the log and dumps it.
        var check = try EncoreTrain.parseAsRoot(["events", "--log-dir", "\(dir)/log", "--check", "--tsv", "\(dir)/dump.tsv"])
        try check.run()
        let dump = try tsvRows("\(dir)/dump.tsv")
        #expect(dump.header == ["event_id", "user", "item", "type", "ms_played", "timestamp", "sequence"])
        #expect(dump.rows.count == events.count)
        #expect(dump.rows.last == ["p\(events.count - 1)", events.last!.user, events.last!.item, "play",
                                   String(events.last!.msPlayed!), String(events.last!.timestamp), String(through)])

        // Neither --events nor --event-log: refused.
        let neither = errorMessage { _ = try EncoreTrain.parseAsRoot(["weekly", "--output", "\(dir)/c.h5"]) }
        #expect(neither?.contains("give --events, --event-log or both") == true, "\(neither ?? "no error")")
    }

    @Test func eventsCommandFailsOnCorruption() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("encore-evlog-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let log = try EventLog(directory: dir, fsync: .never, segmentBytes: 4096)
        for k in 0..<80 { try log.append([UserEvent(eventID: "e\(k)", user: "u", item: "i\(k)", type: .skip, timestamp: 1)]) }
        try log.close()
        let first = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasPrefix("events-") }.sorted()[0]
        let handle = try #require(FileHandle(forUpdatingAtPath: "\(dir)/\(first)"))
        try handle.seek(toOffset: 100)
        try handle.write(contentsOf: Data([0xFF]))
        try handle.close()
        var check = try EncoreTrain.parseAsRoot(["events", "--log-dir", dir, "--check"])
        #expect {
            try check.run()
        } throws: { ($0 as? ExitCode)?.rawValue == 1 }
    }
}

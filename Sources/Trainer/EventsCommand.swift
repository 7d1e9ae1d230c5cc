import ArgumentParser
import Foundation
import RecCore

/// `encore-train events`: checks the server's event log and dumps it as TSV.
struct EventsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "events",
        abstract: "Check an event log (segments, lengths, checksums, sequences, events) and optionally dump it as TSV.",
        discussion: """
            Prints one summary line per key: `segments`, `records`, `first_sequence`, `last_sequence`, `bytes`, and \
            `torn_tail <path> <offset> <bytes>` when the last segment ends in a torn write (a crash; the server cuts \
            it when it next opens the log). Damage that is not a torn tail is reported as `corrupt <path> <offset> \
            <reason>` on standard error with exit code 1. Nothing is changed. --tsv writes the intact records with \
            the header `event_id user item type ms_played timestamp sequence` (`-` for standard output).
            """)

    @Option(help: "The event log folder.")
    var logDir: String

    @Flag(help: "Only check (the default when --tsv is not given); exit code 1 on corruption.")
    var check = false

    @Option(help: "Write the records as TSV to this file (`-`: standard output).")
    var tsv: String?

    @Option(help: "Benchmark: append this many events to --log-dir (created; must not hold a log) and report the rate.")
    var benchAppends: Int?

    @Option(help: "Benchmark: the fsync policy (always, never, interval:<ms>).")
    var fsync: String = "always"

    @Option(help: "Benchmark: events per append.")
    var batch: Int = 1

    @Option(help: "Benchmark: concurrent appenders.")
    var appenders: Int = 1

    func run() throws {
        if let benchAppends { return try bench(benchAppends) }
        let summary: EventLogSummary
        do {
            summary = try EventLog.verify(directory: logDir)
        } catch let EventLogError.corrupt(path, offset, reason) {
            FileHandle.standardError.write(Data("corrupt \(path) \(offset) \(reason)\n".utf8))
            throw ExitCode(1)
        }
        var lines = [
            "segments \(summary.segments.count)", "records \(summary.records)",
            "first_sequence \(summary.firstSequence)", "last_sequence \(summary.lastSequence)", "bytes \(summary.bytes)",
        ]
        if let t = summary.tornTail { lines.append("torn_tail \(t.path) \(t.offset) \(t.bytes)") }
        let toStdout = tsv == "-"
        let report = lines.joined(separator: "\n") + "\n"
        if toStdout {
            FileHandle.standardError.write(Data(report.utf8))
        } else {
            print(report, terminator: "")
        }
        guard let tsv else { return }
        try Self.dump(directory: logDir, to: tsv)
    }

    /// Appends `total` events from `appenders` threads in batches of `batch` and prints the rate.
    func bench(_ total: Int) throws {
        guard total > 0, batch > 0, appenders > 0 else { throw ValidationError("--bench-appends, --batch and --appenders must be positive") }
        if let existing = try? EventLog.verify(directory: logDir), existing.records > 0 {
            throw ValidationError("\(logDir) already holds \(existing.records) records; benchmark into an empty folder")
        }
        let log = try EventLog(directory: logDir, fsync: try FsyncPolicy(parsing: fsync))
        let perAppender = (total + appenders - 1) / appenders
        let failures = Locked(0)
        let start = Date()
        DispatchQueue.concurrentPerform(iterations: appenders) { a in
            var k = 0
            while k < perAppender {
                let n = min(batch, perAppender - k)
                let events = (0..<n).map { j in
                    UserEvent(eventID: "bench-\(a)-\(k + j)", user: "user\((k + j) % 1000)", item: "track\((k + j) % 5000)",
                              type: .play, msPlayed: 200_000, timestamp: 1_700_000_000)
                }
                do { try log.append(events) } catch { failures.withLock { $0 += 1 } }
                k += n
            }
        }
        let seconds = Date().timeIntervalSince(start)
        try log.close()
        let appended = perAppender * appenders
        print(String(format: "fsync %@, batch %d, %d appenders: %d events in %.3f s = %.0f events/s, %.0f appends/s, %d failures",
                     fsync, batch, appenders, appended, seconds, Double(appended) / seconds,
                     Double(appended) / Double(batch) / seconds, failures.value))
    }

    /// Writes every intact record as TSV to `path` (`-` for standard output).
    static func dump(directory: String, to path: String) throws {
        let handle: FileHandle
        if path == "-" {
            handle = FileHandle.standardOutput
        } else {
            guard FileManager.default.createFile(atPath: path, contents: nil), let h = FileHandle(forWritingAtPath: path) else {
                throw TrainerError("\(path): cannot create the TSV file")
            }
            handle = h
        }
        defer { if path != "-" { try? handle.close() } }
        var buffer = Array("event_id\tuser\titem\ttype\tms_played\ttimestamp\tsequence\n".utf8)
        func flush() throws {
            try handle.write(contentsOf: buffer)
            buffer.removeAll(keepingCapacity: true)
        }
        try EventLog.read(directory: directory) { r in
            let e = r.event
            // Ids never hold control characters (validated), so tabs and newlines cannot appear in them.
            buffer.append(contentsOf: "\(e.eventID)\t\(e.user)\t\(e.item)\t\(e.type.rawValue)\t\(e.msPlayed.map(String.init) ?? "")\t\(e.timestamp)\t\(r.sequence)\n".utf8)
            if buffer.count > 1 << 20 { try flush() }
        }
        try flush()
    }
}

import Foundation
import Logging
import EncoreCore

/// Whether standard error is a terminal (progress bars are drawn only there).
let stderrIsTerminal: Bool = isatty(STDERR_FILENO) != 0

/// Progress of a long stage: a bar redrawn in place with percentage and ETA on a terminal, and structured log
/// lines (at most one every few seconds, plus the last) otherwise.
package final class ProgressReporter: Sendable {
    private let stage: String
    private let total: Int
    private let logger: Logger
    private let interactive: Bool
    private let start = Date()
    /// When the last log line was written; held while a report is drawn or logged, so reports never interleave.
    private let lastLog = Locked(Date.distantPast)

    /// A reporter for `total` steps of `stage`.
    package init(stage: String, total: Int, logger: Logger, interactive: Bool = stderrIsTerminal) {
        self.stage = stage
        self.total = max(1, total)
        self.logger = logger
        self.interactive = interactive
    }

    /// Reports that `done` of the steps are finished, with extra `fields` (shown after the bar, logged as metadata).
    package func update(_ done: Int, fields: [(String, String)] = []) {
        lastLog.withLock { lastLog in report(done, fields: fields, lastLog: &lastLog) }
    }

    private func report(_ done: Int, fields: [(String, String)], lastLog: inout Date) {
        let elapsed = Date().timeIntervalSince(start)
        let fraction = min(1, Double(done) / Double(total))
        let eta = done > 0 ? elapsed / Double(done) * Double(total - done) : .nan
        if interactive {
            let width = 30
            let filled = Int(fraction * Double(width))
            let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
            let extra = fields.map { "\($0.0)=\($0.1)" }.joined(separator: " ")
            let line = String(format: "\r%@ [%@] %3.0f%% %d/%d elapsed %@ ETA %@ %@",
                              stage, bar, fraction * 100, done, total, Self.clock(elapsed), Self.clock(eta), extra)
            FileHandle.standardError.write(Data((line + "\u{1B}[K").utf8))
            if done >= total { FileHandle.standardError.write(Data("\n".utf8)) }
        } else if done >= total || Date().timeIntervalSince(lastLog) >= 5 {
            lastLog = Date()
            var metadata: Logger.Metadata = [
                "stage": .string(stage), "done": "\(done)", "total": "\(total)",
                "elapsed_s": .string(String(format: "%.1f", elapsed)),
                "eta_s": .string(eta.isFinite ? String(format: "%.1f", eta) : "unknown"),
            ]
            for (k, v) in fields { metadata[k] = .string(v) }
            logger.info("progress", metadata: metadata)
        }
    }

    /// `h:mm:ss` or `m:ss`.
    static func clock(_ seconds: Double) -> String {
        guard seconds.isFinite, seconds >= 0 else { return "--:--" }
        let s = Int(seconds.rounded())
        return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%d:%02d", s / 60, s % 60)
    }
}

/// A log handler that writes one `logfmt` line per message to standard error:
/// `ts=2026-11-22T03:00:00Z level=info label=encore-train msg="..." key=value ...`.
struct LogfmtHandler: LogHandler {
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .info
    let label: String

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var fields = [
            "ts=\(Self.timestamp())", "level=\(event.level)", "label=\(label)", "msg=\(Self.quote(event.message.description))",
        ]
        let merged = metadata.merging(event.metadata ?? [:]) { $1 }
        for key in merged.keys.sorted() { fields.append("\(key)=\(Self.quote(merged[key]!.description))") }
        FileHandle.standardError.write(Data((fields.joined(separator: " ") + "\n").utf8))
    }

    static func quote(_ s: String) -> String {
        s.contains(where: { $0 == " " || $0 == "\"" || $0 == "=" }) || s.isEmpty
            ? "\"" + s.replacingOccurrences(of: "\"", with: "\\\"") + "\"" : s
    }

    static func timestamp() -> String {
        let f = ISO8601DateFormatter()
        return f.string(from: Date())
    }
}

/// Sets up logging once: logfmt lines on standard error at the given level.
package enum TrainerLogging {
    static let bootstrap: Void = {
        LoggingSystem.bootstrap { LogfmtHandler(label: $0) }
    }()

    package static func logger(verbose: Bool = false) -> Logger {
        _ = bootstrap
        var l = Logger(label: "encore-train")
        l.logLevel = verbose ? .debug : .info
        return l
    }
}

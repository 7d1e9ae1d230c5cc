import ArgumentParser
import Foundation
import Logging
import RecCore

/// Errors the trainer reports itself (library errors describe themselves too).
struct TrainerError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// How an interaction file is read: shared by `split`, `fit`, `evaluate` and `weekly`.
struct InputFormatOptions: ParsableArguments {
    @Option(help: ArgumentHelp(
        "File format: auto, tsv, csv, movielens-100k (u.data), movielens-dat (ratings.dat), movielens-csv (ratings.csv), lastfm-360k, encore-plays.",
        discussion: "auto picks a preset from a known file name, else reads a TSV/CSV header with columns user, item and optionally weight/plays/count/rating and timestamp; a file without a header (its first row's third field a number) is read as user, item, weight and optionally timestamp."))
    var format: String = "auto"

    @Option(help: "User column: a header name or a 0-based index (overrides the format's).")
    var userColumn: String?

    @Option(help: "Item column: a header name or a 0-based index.")
    var itemColumn: String?

    @Option(help: "Weight column (play count, rating): a header name or a 0-based index. Without one every row counts 1.")
    var weightColumn: String?

    @Option(help: "Timestamp column (epoch seconds or ISO-8601): a header name or a 0-based index.")
    var timestampColumn: String?

    @Option(help: "Drop rows whose ms_played is below this many milliseconds (plays under 30 s are skips; encore-plays uses 30000). 0 keeps every row.")
    var minMsPlayed: Double?

    @Flag(help: "Skip malformed rows (and report how many) instead of stopping at the first one.")
    var skipBadRows = false

    /// Whether the format and its columns are guessed from the file (`--format auto`, no column option).
    var guessesColumns: Bool {
        format.lowercased() == "auto" && userColumn == nil && itemColumn == nil && weightColumn == nil
            && timestampColumn == nil
    }

    /// Whether every option has its default.
    var isDefault: Bool { guessesColumns && minMsPlayed == nil && !skipBadRows }

    func column(_ text: String) -> DelimitedFormat.ColumnRef {
        if let i = Int(text), i >= 0 { return .index(i) }
        return .name(text)
    }

    /// The format for `path` after the overrides.
    func format(for path: String) throws -> DelimitedFormat {
        var f: DelimitedFormat
        switch format.lowercased() {
        case "auto": f = try DelimitedFormat.guess(path: path)
        case "tsv": f = DelimitedFormat(separator: "\t", hasHeader: true, user: .name("user"), item: .name("item"))
        case "csv": f = DelimitedFormat(separator: ",", hasHeader: true, user: .name("user"), item: .name("item"))
        case "movielens-100k": f = .movieLens100K
        case "movielens-dat": f = .movieLensDat
        case "movielens-csv": f = .movieLensCSV
        case "lastfm-360k": f = .lastFM360K
        case "encore-plays": f = .encorePlays
        default:
            throw ValidationError("unknown --format '\(format)'; expected auto, tsv, csv, movielens-100k, movielens-dat, movielens-csv, lastfm-360k or encore-plays")
        }
        if let userColumn { f.user = column(userColumn) }
        if let itemColumn { f.item = column(itemColumn) }
        if let weightColumn { f.weight = column(weightColumn) }
        if let timestampColumn { f.timestamp = column(timestampColumn) }
        if let minMsPlayed {
            f.minimum = minMsPlayed > 0 ? .init(column: f.minimum?.column ?? .name("ms_played"), value: minMsPlayed) : nil
        }
        f.skipBadRows = skipBadRows
        return f
    }

    /// Loads `path`, logging what was read.
    func load(_ path: String, logger: Logger) throws -> Interactions {
        let f = try format(for: path)
        let start = Date()
        let (interactions, report) = try DelimitedLoader.load(path: path, format: f)
        logger.info("loaded", metadata: [
            "file": .string(path), "rows": "\(report.rowsRead)", "kept": "\(report.rowsKept)",
            "skipped": "\(report.rowsSkipped)", "filtered": "\(report.rowsFiltered)",
            "users": "\(interactions.userIDs.count)", "items": "\(interactions.itemIDs.count)",
            "seconds": .string(String(format: "%.2f", Date().timeIntervalSince(start))),
        ])
        if report.rowsSkipped > 0 {
            for reason in report.skipReasons.prefix(5) { logger.warning("skipped row", metadata: ["reason": .string("\(reason)")]) }
        }
        return interactions
    }
}

/// Writes interactions as TSV with the header `user item weight timestamp` (timestamp only when present).
func writeInteractions(_ log: Interactions, to path: String) throws {
    guard let out = OutputStream(toFileAtPath: path, append: false) else { throw TrainerError("\(path): cannot open for writing") }
    out.open()
    defer { out.close() }
    var buffer = [UInt8]()
    buffer.reserveCapacity(1 << 20)
    func flush() throws {
        var offset = 0
        while offset < buffer.count {
            let n = buffer[offset...].withUnsafeBufferPointer { out.write($0.baseAddress!, maxLength: $0.count) }
            if n <= 0 { throw TrainerError("\(path): write failed: \(out.streamError.map { "\($0)" } ?? "unknown error")") }
            offset += n
        }
        buffer.removeAll(keepingCapacity: true)
    }
    buffer.append(contentsOf: (log.hasTimestamps ? "user\titem\tweight\ttimestamp\n" : "user\titem\tweight\n").utf8)
    let userIDs = log.userIDs.ids, itemIDs = log.itemIDs.ids
    for r in 0..<log.count {
        buffer.append(contentsOf: userIDs[Int(log.users[r])].utf8)
        buffer.append(9)
        buffer.append(contentsOf: itemIDs[Int(log.items[r])].utf8)
        buffer.append(9)
        let w = log.weights[r]
        buffer.append(contentsOf: (w == w.rounded() && abs(w) < 1e7 ? String(Int(w)) : "\(w)").utf8)
        if log.hasTimestamps {
            buffer.append(9)
            buffer.append(contentsOf: String(log.timestamps[r]).utf8)
        }
        buffer.append(10)
        if buffer.count > (1 << 20) { try flush() }
    }
    try flush()
}

/// The peak resident memory of this process in MiB.
func peakResidentMiB() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_maxrss) / 1024
}

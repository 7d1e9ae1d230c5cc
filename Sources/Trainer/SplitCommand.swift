import ArgumentParser
import Foundation
import RecCore

/// `encore-train split`: writes a train and a test file from one interaction log.
struct SplitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "split",
        abstract: "Split an interaction log into train and test files (random, leave-k-out or temporal).",
        discussion: """
            All rows of one (user, item) pair land on the same side for the random and leave-k-out splits. The \
            temporal split trains on rows before --cutoff and tests on pairs first played at or after it. Output \
            files are TSV with the header user, item, weight[, timestamp], readable by fit and evaluate.
            """)

    @Option(help: "The interaction log to split.")
    var input: String

    @OptionGroup var inputFormat: InputFormatOptions

    @Option(help: "random, leave-k-out or temporal.")
    var method: String = "random"

    @Option(help: "Share of (user, item) pairs held out by the random split.")
    var testFraction: Double = 0.2

    @Option(help: "Pairs held out per user by leave-k-out.")
    var leaveOut: Int = 1

    @Flag(help: "leave-k-out holds out each user's latest pairs instead of random ones.")
    var latest = false

    @Option(help: "Temporal cutoff: epoch seconds or YYYY-MM-DD (UTC).")
    var cutoff: String?

    @Option(help: "Seed of the random and leave-k-out splits.")
    var seed: UInt64 = 42

    @Option(help: "Where to write the training part.")
    var train: String

    @Option(help: "Where to write the test part.")
    var test: String

    func run() throws {
        let logger = TrainerLogging.logger()
        let log = try inputFormat.load(input, logger: logger)
        let split: TrainTestSplit
        switch method {
        case "random": split = try TrainTestSplit.random(log, testFraction: testFraction, seed: seed)
        case "leave-k-out":
            split = try TrainTestSplit.leaveKOut(log, k: leaveOut, seed: seed, latestByTimestamp: latest)
        case "temporal":
            guard let cutoff else { throw ValidationError("--method temporal needs --cutoff") }
            split = try TrainTestSplit.temporal(log, cutoff: try parseDate(cutoff))
        default: throw ValidationError("unknown --method '\(method)'; expected random, leave-k-out or temporal")
        }
        try writeInteractions(split.train, to: train)
        try writeInteractions(split.test, to: test)
        logger.info("split written", metadata: [
            "method": .string(method), "train_rows": "\(split.train.count)", "test_rows": "\(split.test.count)",
            "train": .string(train), "test": .string(test),
        ])
    }
}

/// Parses epoch seconds or a `YYYY-MM-DD` date (midnight UTC).
func parseDate(_ text: String) throws -> Int64 {
    if let s = Int64(text) { return s }
    let f = DateFormatter()
    f.locale = Locale(identifier: "en_US_POSIX")
    f.timeZone = TimeZone(identifier: "UTC")
    f.dateFormat = "yyyy-MM-dd"
    guard let d = f.date(from: text) else { throw ValidationError("'\(text)' is neither epoch seconds nor YYYY-MM-DD") }
    return Int64(d.timeIntervalSince1970)
}

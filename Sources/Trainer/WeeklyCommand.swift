import ArgumentParser
import Foundation
import Logging
import RecCore
import EncoreWeekly

/// `encore-train weekly`: the weekly batch job, from the play log to a bundle with every user's playlists.
struct WeeklyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "weekly",
        abstract: "Run the weekly job: fit, index, Discover Weekly and Daily Mix for every user, evaluate, write the bundle and a report.",
        discussion: """
            Stages: fit (warm-started from --previous when given), index (HNSW over item and user vectors), \
            discover-weekly, daily-mix, evaluate (a temporal split: train before the last week, test on its first \
            plays), bundle, report. Finished stages are kept in --work-dir, so a job that crashed resumes from the \
            last finished stage when run again with the same inputs and options. The catalog and feedback files \
            (tracks.tsv, artists.tsv, likes.tsv, dislikes.tsv, follows.tsv) are read from --catalog (default: the \
            play log's folder) when present; from a bare play log (user, item, weight, timestamp) the rules that \
            need artists do not apply. The play log takes the input options of `fit`; with none, a log with an \
            ms_played column keeps its skips (plays under --min-ms-played, default 30 000 ms) as skips.
            """)

    @Option(help: "The play log: Encore's plays.tsv (user, item, timestamp, ms_played) or any log `fit` reads (optional with --event-log).")
    var events: String?

    @OptionGroup var inputFormat: InputFormatOptions

    @Option(help: "The server's event log folder: its plays, skips, likes, dislikes and follows are added to the inputs; the bundle records event_log_through.")
    var eventLog: String?

    @Option(help: "Folder with tracks.tsv, artists.tsv, likes.tsv, dislikes.tsv, follows.tsv (default: the play log's folder).")
    var catalog: String?

    @Flag(help: "Ignore catalog and feedback files even when present.")
    var noCatalog = false

    @Option(help: "Where to publish the bundle and its HNSW indexes: B.h5 publishes the unit B.h5.d (a folder with current.json and versions).")
    var output: String

    @Option(help: "Last week's bundle: its factors warm-start the fit for the users and tracks it knows.")
    var previous: String?

    @Option(help: "The week (a Monday, YYYY-MM-DD). Default: the Monday after the latest event.")
    var week: String?

    @Option(help: "Folder for the finished stages (default: <output>.work).")
    var workDir: String?

    @Option(help: "Folder for the report (default: <output without .h5>-report).")
    var report: String?

    @Option(help: "Latent factors.") var factors: Int = 64
    @Option(help: "L2 regularization.") var regularization: Float = 0.05
    @Option(help: "Confidence scale.") var alpha: Float = 1.0
    @Option(help: "ALS iterations.") var iterations: Int = 15
    @Option(help: "Threads (0 = every core).") var threads: Int = 0
    @Option(help: "Seed of the fit, the index and the evaluation sample.") var seed: UInt64 = 42

    @Option(help: "Users sampled for the offline evaluation (0 skips it).")
    var evalUsers: Int = 2000

    @Option(help: "Print this user's playlists at the end (default: the first user).")
    var showUser: String?

    func validate() throws {
        if events == nil && eventLog == nil { throw ValidationError("give --events, --event-log or both") }
        try FitCommand.validateALSOptions(
            factors: factors, regularization: regularization, alpha: alpha, iterations: iterations, threads: threads)
    }

    /// The job's configuration from the options.
    func jobConfiguration() throws -> WeeklyConfiguration {
        var config = WeeklyConfiguration(output: output)
        config.events = events
        config.eventLog = eventLog
        config.catalog = catalog
        config.useCatalog = !noCatalog
        config.previous = previous
        config.week = week
        config.workDir = workDir
        config.reportDir = report
        config.parameters = ALSParameters(
            factors: factors, regularization: regularization, alpha: alpha, iterations: iterations, solver: .cg,
            seed: seed, threads: threads)
        config.threads = threads
        config.evaluationUsers = evalUsers
        config.detectsEncorePlays = inputFormat.guessesColumns
        config.skipBadRows = inputFormat.skipBadRows
        if let ms = inputFormat.minMsPlayed { config.rules = EventRules(minimumListenMs: Int64(ms)) }
        config.hasInputOptions = !inputFormat.isDefault
        // An explicit format or column option is resolved here (reading the header when it must); plain `auto` is
        // left to the job, which guesses when it loads the log.
        if let events, !(inputFormat.isDefault && inputFormat.format.lowercased() == "auto") {
            config.playLogFormat = try inputFormat.format(for: events)
        }
        return config
    }

    func run() throws {
        let logger = TrainerLogging.logger()
        if let previous { try BundleCheck.validate(previous) }
        let job = try WeeklyJob(configuration: try jobConfiguration(), logger: logger)
        let report = try job.run()
        print(report.text)
        print(try job.userPlaylists(showUser), terminator: "")
    }
}

extension WeeklyJob {
    /// A job for the options of `encore-train weekly`.
    convenience init(command: WeeklyCommand, logger: Logger) throws {
        try self.init(configuration: try command.jobConfiguration(), logger: logger)
    }
}


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
            ms_played column keeps its skips (plays under --min-ms-played, default 30 000 ms) as skips. \
            With a catalog, its tracks released by the week's date that no one has played join the items (with zero \
            collaborative vectors). Content stages after fit: audio (--audio: analysed with a cache keyed by file \
            content, embedded with --audio-model or a model trained in the job), text (--texts, default the \
            catalog's texts.tsv) and sequence vectors (listening sessions); the bundle stores them under /audio, \
            /text and /sequence.
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

    @Option(help: "A model trained elsewhere (import-factors' bundle): its factors replace the fit (ALS options are then unused).")
    var model: String?

    @Flag(help: "Publish the item side only (factors, content spaces, indexes): no Discover Weekly or Daily Mix stage; `encore-train playlists --users-shard I/N` makes them by shard.")
    var noPlaylists = false

    @Option(help: "Folder for the finished stages (default: <output>.work).")
    var workDir: String?

    @Option(help: "Folder for the report (default: <output without .h5>-report).")
    var report: String?

    @Option(help: "Latent factors.") var factors: Int = 64
    @Option(help: "L2 regularization.") var regularization: Float = 0.05
    @Option(help: "Confidence scale.") var alpha: Float = 1.0
    @Option(help: ArgumentHelp(
        "The least confidence of an observed pair: max(alpha * weight, floor). 0 is implicit's rule; 1 keeps a "
            + "played track at least as certain as one never played (Hu, Koren and Volinsky's and Spark's 1 + alpha * r)."))
    var confidenceFloor: Float = 0
    @Option(help: "ALS iterations.") var iterations: Int = 15
    @Option(help: "Threads (0 = every core).") var threads: Int = 0
    @Option(help: "Seed of the fit, the index and the evaluation sample.") var seed: UInt64 = 42

    @Option(help: "Quantization of the HNSW indexes: none, or int8 (the graph walk ranks by 8-bit codes, then the candidates are re-ranked by exact distances).")
    var indexQuantization: VectorQuantization = .none

    @Flag(help: "Leave out the audio, text and sequence spaces' cosine indexes (the server then answers similar?space= for them by an exact scan; the playlists do not use them).")
    var noContentIndexes = false

    @Option(help: "Users sampled for the offline evaluation (0 skips it).")
    var evalUsers: Int = 2000

    @Option(help: "Print this user's playlists at the end (default: the first user).")
    var showUser: String?

    @Flag(help: "Keep only played tracks as items (catalog tracks without plays are not added).")
    var noCatalogTracks = false

    @Option(help: "The catalog's recordings: a folder (searched recursively for .wav, .flac, .ogg, .opus, .mp3) or a TSV manifest whose first column is a path; a file stands for the track named by its file name without folder and extension.")
    var audio: String?

    @Option(help: "Folder of the audio analysis cache, kept across weeks (default: <output without .h5>-audio-cache).")
    var audioCache: String?

    @Option(help: "A trained audio model (train-audio) to embed the recordings with; without it the job trains one.")
    var audioModel: String?

    @Option(help: "Seconds of each recording analysed, from its start (0: the whole file).")
    var audioDuration: Double = 30

    @Option(help: "Epochs of the audio model trained in the job (early stopping may end sooner).")
    var audioEpochs: Int = 5

    @Option(help: "Embedding dimension of the audio model trained in the job.")
    var audioDim: Int = 64

    @Option(help: "Texts about tracks and artists (columns id, text; generate's texts.tsv). Default: the catalog folder's texts.tsv when present.")
    var texts: String?

    @Flag(help: "Skip the text vectors.")
    var noTexts = false

    @Option(help: "Dimensions of the text vectors.")
    var textDimensions: Int = 100

    @Flag(help: "Skip the sequence vectors.")
    var noSequenceVectors = false

    @Option(help: "Listening sessions are split where a user's plays are further apart than this.")
    var sessionGapMinutes: Double = 30

    @Flag(help: "Skip the hybrid stage (CF vectors predicted from content and artist for tracks with few plays).")
    var noHybrid = false

    @Option(help: "The evidence prior k of the hybrid blend: a predicted vector weighs as much as k listeners.")
    var priorListeners: Double = 10

    @Option(help: "The most of Discover Weekly new tracks (--new-release-days, --cold-max-listeners) may take, each only from a track whose calibrated score it beats.")
    var newTrackShare: Float = 0.2

    @Option(help: "A track with at most this many listeners is a new-track candidate scored by its hybrid vector.")
    var coldMaxListeners: Int = 0

    @Option(help: "A track released within this many days before the week is a new-track candidate (0: none by date).")
    var newReleaseDays: Int = 14

    @Option(help: "Dimension of the sequence vectors.")
    var sequenceDim: Int = 64

    func validate() throws {
        if events == nil && eventLog == nil { throw ValidationError("give --events, --event-log or both") }
        try FitCommand.validateALSOptions(
            factors: factors, regularization: regularization, alpha: alpha, iterations: iterations, threads: threads,
            confidenceFloor: confidenceFloor)
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
            seed: seed, threads: threads, confidenceFloor: confidenceFloor)
        config.threads = threads
        config.evaluationUsers = evalUsers
        config.index.quantization = indexQuantization
        config.index.contentSpaces = !noContentIndexes
        config.model = model
        config.makesPlaylists = !noPlaylists
        try inputFormat.apply(to: &config, events: events)
        config.includeUnplayedCatalogTracks = !noCatalogTracks
        config.content.audio = audio
        config.content.audioCache = audioCache
        config.content.audioModel = audioModel
        guard audioDuration.isFinite, audioDuration >= 0 else {
            throw ValidationError("--audio-duration must be a non-negative number of seconds (got \(audioDuration))")
        }
        config.content.analysis.decode.duration = audioDuration > 0 ? audioDuration : nil
        config.content.audioTraining.epochs = audioEpochs
        guard audioDim >= 1 else { throw ValidationError("--audio-dim must be at least 1 (got \(audioDim))") }
        config.content.audioNetwork.dim = audioDim
        config.content.texts = texts
        config.content.useTexts = !noTexts
        config.content.textOptions.dimensions = textDimensions
        config.content.sequenceVectors = !noSequenceVectors
        config.content.sessionGapMinutes = sessionGapMinutes
        config.content.sequenceOptions.dimensions = sequenceDim
        config.content.hybrid = !noHybrid
        config.content.coldStart.priorListeners = priorListeners
        config.content.newTrackShare = newTrackShare
        config.content.coldMaxListeners = coldMaxListeners
        config.content.newReleaseDays = newReleaseDays
        do { try config.content.validate() } catch let e as WeeklyError { throw ValidationError(e.description) }
        return config
    }

    func run() throws {
        let logger = TrainerLogging.logger()
        if let previous { try BundleCheck.validate(previous) }
        if let model { try BundleCheck.validate(model) }
        let job = try WeeklyJob(configuration: try jobConfiguration(), logger: logger)
        let report = try job.run()
        print(report.text)
        print(try job.userPlaylists(showUser), terminator: "")
    }
}

extension InputFormatOptions {
    /// Sets the play log's reading options of a weekly job (shared by `weekly` and `playlists`, which must read
    /// the log the same way).
    func apply(to config: inout WeeklyConfiguration, events: String?) throws {
        config.detectsEncorePlays = guessesColumns
        config.skipBadRows = skipBadRows
        if let ms = minMsPlayed { config.rules = EventRules(minimumListenMs: Int64(ms)) }
        config.hasInputOptions = !isDefault
        // An explicit format or column option is resolved here (reading the header when it must); plain `auto` is
        // left to the job, which guesses when it loads the log.
        if let events, !(isDefault && format.lowercased() == "auto") {
            config.playLogFormat = try format(for: events)
        }
    }
}

extension WeeklyJob {
    /// A job for the options of `encore-train weekly`.
    convenience init(command: WeeklyCommand, logger: Logger) throws {
        try self.init(configuration: try command.jobConfiguration(), logger: logger)
    }
}


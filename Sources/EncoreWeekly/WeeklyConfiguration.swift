import EncoreCore
import EncoreData
import EncoreFactorization

/// Everything the weekly job reads, writes and tunes: the inputs, the outputs, the model, the indexes and the
/// listen rule. `encore-train weekly` fills it from its options; a service embedding Encore fills it in code.
public struct WeeklyConfiguration: Sendable {
    /// HNSW parameters of the item and user indexes the job builds.
    public struct IndexParameters: Sendable, Equatable {
        /// Links per node.
        public var m: Int = 16
        /// Candidate list size while building.
        public var efConstruction: Int = 100
        /// Default candidate list size of searches.
        public var ef: Int = 100
        /// The defaults (M 16, efConstruction 100, ef 100).
        public init() {}
    }

    /// The play log (Encore's `plays.tsv` or any log `DelimitedLoader` reads); optional when ``eventLog`` is set.
    public var events: String?
    /// The play log's format when it is not detected: `nil` guesses it from the header.
    public var playLogFormat: DelimitedFormat?
    /// Whether a log whose header has an `ms_played` column is read as Encore's play log, keeping its skips.
    public var detectsEncorePlays = true
    /// Whether malformed rows of an Encore play log are skipped and counted instead of stopping the job.
    public var skipBadRows = false
    /// Whether input options were given (they then enter the fingerprint that decides which stages resume).
    public var hasInputOptions = false
    /// What counts as a listen and what the feedback events do.
    public var rules = EventRules.standard
    /// The server's event log folder, whose events join the inputs.
    public var eventLog: String?
    /// The job's clock (Unix seconds) for the plausibility of event timestamps; `nil` reads the system clock.
    public var now: Int64?
    /// The folder of the catalog and feedback files (default: the play log's folder).
    public var catalog: String?
    /// Whether catalog and feedback files are read when present.
    public var useCatalog = true
    /// Where the bundle is written (`.h5`); the HNSW indexes are written beside it.
    public var output: String
    /// Last week's bundle, whose factors warm-start the fit.
    public var previous: String?
    /// The week (a Monday, `YYYY-MM-DD`); default the Monday after the latest event.
    public var week: String?
    /// The folder of finished stages (default `<output>.work`).
    public var workDir: String?
    /// The folder of the report (default `<output without .h5>-report`).
    public var reportDir: String?
    /// The ALS fit.
    public var parameters = ALSParameters(factors: 64, regularization: 0.05, iterations: 15, solver: .cg, seed: 42)
    /// How listens become the confidences ALS trains on.
    public var weighting = ConfidenceWeighting.bm25Default
    /// The HNSW indexes.
    public var index = IndexParameters()
    /// Neighbors precomputed per track for the playlists' item-to-item queries (the heavy-rotation source asks ten
    /// per user; 64 covers its 30 per seed after the user's own tracks are filtered out, and a short list falls back
    /// to the index).
    public var neighborListSize = 64
    /// Threads (0: every core).
    public var threads = 0
    /// Users sampled for the offline evaluation (0 skips it).
    public var evaluationUsers = 2_000

    /// A configuration writing to `output`, with the defaults above.
    public init(output: String) { self.output = output }
}

/// Why the weekly job stopped, in a sentence that names the file or stage at fault.
public struct WeeklyError: Error, Sendable, CustomStringConvertible {
    /// The message.
    public let description: String
    /// An error with its message.
    public init(_ description: String) { self.description = description }
}

import EncoreCore
import EncoreHybrid
import EncoreData
import EncoreFactorization
import EncoreAudio
import EncoreAudioModel
import EncoreText
import EncoreIndex

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
        /// Whether searches walk the graph on 8-bit codes before exact re-ranking (see ``VectorQuantization``).
        public var quantization = VectorQuantization.none
        /// Whether the content spaces (audio, text, sequence) get cosine indexes for the server's `similar?space=`.
        /// Without them the server answers those queries by an exact scan; the playlists never read them.
        public var contentSpaces = true
        /// The defaults (M 16, efConstruction 100, ef 100, no quantization, content-space indexes built).
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
    /// A model trained elsewhere (`encore-train import-factors`' bundle, or any bundle) whose factors replace the
    /// fit: the fit stage only builds the training matrix. `nil` fits ALS.
    public var model: String?
    /// Whether the Discover Weekly and Daily Mix stages run; `false` publishes the item side only (the factors,
    /// content spaces and indexes), for `encore-train playlists --users-shard` to make the playlists by shard.
    public var makesPlaylists = true
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
    /// Whether the catalog's tracks (`tracks.tsv`) released by the week's date that no one has played join the
    /// items (with zero collaborative vectors), so content can place them; without a catalog nothing is added.
    public var includeUnplayedCatalogTracks = true
    /// The content spaces: audio, text and sequence vectors.
    public var content = ContentOptions()

    /// A configuration writing to `output`, with the defaults above.
    public init(output: String) { self.output = output }
}

/// The weekly job's content stages: what the audio, the texts and the listening sessions say about the tracks.
public struct ContentOptions: Sendable {
    /// The catalog's recordings: a folder (searched recursively for .wav, .flac, .ogg, .opus and .mp3) or a TSV
    /// manifest whose first column is a path; a file stands for the track named by its file name without folder
    /// and extension (`audio/t0000042.flac` is track `t0000042`). `nil`: no audio stage.
    public var audio: String?
    /// The folder of the analysis cache (kept across weeks; default `<output without .h5>-audio-cache` beside the
    /// bundle). Entries are keyed by the XXH64 of the file's bytes and the analysis settings.
    public var audioCache: String?
    /// A trained audio model (`train-audio`) to embed the tracks with; `nil` trains one in the job.
    public var audioModel: String?
    /// Decoding and spectrogram settings (log-mel is always kept); by default a 30 s excerpt from the start.
    public var analysis = AnalysisOptions(decode: DecodeOptions(duration: 30), keepLogMel: true)
    /// The network trained when no ``audioModel`` is given (its `bands` and `cfFactors` are set by the job).
    public var audioNetwork = AudioModelConfiguration()
    /// Training of that network: with this week's CF vectors when some analysed tracks have plays (objective
    /// `both`), contrastive otherwise; the objective set here is replaced by that choice.
    public var audioTraining: AudioTrainingOptions = {
        var o = AudioTrainingOptions()
        o.epochs = 5
        return o
    }()
    /// Crop length (seconds) of the trained network.
    public var audioCropSeconds: Double = 3
    /// The texts (`id`, `text` columns; `texts.tsv` of `generate`): `nil` reads the catalog folder's `texts.tsv`
    /// when present.
    public var texts: String?
    /// Whether the text stage runs (`--no-texts` turns it off).
    public var useTexts = true
    /// LSA settings of the text vectors.
    public var textOptions = LSAOptions()
    /// Whether the sequence stage runs (`--no-sequence-vectors` turns it off).
    public var sequenceVectors = true
    /// Listening sessions split where two plays of a user are further apart than this many minutes.
    public var sessionGapMinutes: Double = 30
    /// Skip-gram settings of the sequence vectors.
    public var sequenceOptions = SkipGramOptions()
    /// Whether the hybrid stage runs (`--no-hybrid` turns it off): CF vectors predicted from the content spaces and
    /// the artist for tracks with few plays, blended with the learned ones by evidence.
    public var hybrid = true
    /// The cold-start model's settings (warm-track threshold, validation share, ridge grid, evidence prior `k`).
    public var coldStart = ColdStartOptions()
    /// The most of Discover Weekly new tracks may take (`--new-track-share`), each only from a track whose calibrated
    /// score it beats (``DiscoverWeekly/Configuration/newTrackShare``).
    public var newTrackShare: Float = 0.2
    /// A track is new (a "new for you" candidate) with at most this many listeners (`--cold-max-listeners`): by
    /// default only a track no one has played; tracks with a few listeners already have a blended vector in the
    /// collaborative sources.
    public var coldMaxListeners = 0
    /// A track is also new when released within this many days before the week (`--new-release-days`; 0: no release
    /// window): the "new releases" of "new releases that sound like your taste".
    public var newReleaseDays = 14

    /// The defaults: no audio, texts when the catalog has them, sequence vectors.
    public init() {}

    /// Checks the settings that do not need the files.
    /// - Throws: ``WeeklyError`` naming the option at fault.
    public func validate() throws {
        guard sessionGapMinutes.isFinite, sessionGapMinutes >= 0 else {
            throw WeeklyError("--session-gap-minutes must be a non-negative number of minutes (got \(sessionGapMinutes))")
        }
        guard audioCropSeconds.isFinite, audioCropSeconds > 0 else {
            throw WeeklyError("--audio-crop-seconds must be positive (got \(audioCropSeconds))")
        }
        do { try audioTraining.validate() } catch { throw WeeklyError("audio training: \(error)") }
        do { try sequenceOptions.validate() } catch { throw WeeklyError("sequence vectors: \(error)") }
        guard textOptions.dimensions > 0 else { throw WeeklyError("--text-dimensions must be positive (got \(textOptions.dimensions))") }
        do { try coldStart.validate() } catch { throw WeeklyError("hybrid: \(error)") }
        guard newTrackShare.isFinite, newTrackShare >= 0, newTrackShare <= 1 else {
            throw WeeklyError("--new-track-share must be in [0, 1] (got \(newTrackShare))")
        }
        guard coldMaxListeners >= 0 else { throw WeeklyError("--cold-max-listeners must be >= 0 (got \(coldMaxListeners))") }
        guard newReleaseDays >= 0 else { throw WeeklyError("--new-release-days must be >= 0 (got \(newReleaseDays))") }
        if audio == nil && audioModel != nil { throw WeeklyError("--audio-model needs --audio (the recordings to embed)") }
    }
}

/// Why the weekly job stopped, in a sentence that names the file or stage at fault.
public struct WeeklyError: Error, Sendable, CustomStringConvertible {
    /// The message.
    public let description: String
    /// An error with its message.
    public init(_ description: String) { self.description = description }
}

import ArgumentParser
import Foundation
import Logging
import RecCore

extension TermWeighting: ExpressibleByArgument {}
extension StopWords: ExpressibleByArgument {}
extension SVDAlgorithm: ExpressibleByArgument {}
extension TextCorpus.Format: ExpressibleByArgument {}

/// `encore-train text`: documents in, LSA text vectors out.
struct TextCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "text",
        abstract: "Text vectors: TF-IDF (or BM25) and a truncated SVD (LSA) of documents, one vector per id.",
        discussion: """
            Tokens, vocabulary and weights are scikit-learn's TfidfVectorizer's; the SVD is the randomized one of \
            TruncatedSVD (or exact). Documents with one id (a track's reviews, an artist's bio and tags) combine into \
            one vector; with --track-artists, a track without text takes its artist's vector (marked in /inherited). \
            Output (HDF5): /ids, /vectors, /inherited, /vocabulary/terms, /vocabulary/document_frequency, \
            /vocabulary/idf, /svd/singular_values, /svd/components, parameters as root attributes.
            """)

    @Option(help: "The documents: TSV or CSV with a header (quoted fields allowed), or JSON Lines (.jsonl).")
    var input: String

    @Option(help: "Where to write the vectors (.h5).")
    var output: String

    @Option(help: "The input format: auto (from the extension), tsv, csv or jsonl.")
    var format: TextCorpus.Format = .auto

    @Option(help: "The id column (or JSON member).")
    var idColumn: String = "id"

    @Option(help: "The text column (or JSON member).")
    var textColumn: String = "text"

    @Option(help: "Dimensions of the vectors (SVD components).")
    var dimensions: Int = 100

    @Option(help: "Drop terms in fewer documents: a count (2) or a proportion (0.01).")
    var minDf: String = "2"

    @Option(help: "Drop terms in more documents: a proportion (0.95) or a count.")
    var maxDf: String = "0.95"

    @Option(help: "Keep only the N terms most frequent over the corpus.")
    var maxFeatures: Int?

    @Option(help: "Term weighting: tfidf or bm25.")
    var weighting: TermWeighting = .tfidf

    @Flag(help: "Use 1 + ln(tf) for the term frequency (tfidf).")
    var sublinearTf = false

    @Option(help: "Stop words to drop: none or english (scikit-learn's list).")
    var stopWords: StopWords = .none

    @Option(help: "The longest n-gram (2 adds bigrams).")
    var ngramMax: Int = 1

    @Option(help: "SVD: randomized or exact (small corpora).")
    var svd: SVDAlgorithm = .randomized

    @Option(help: "Power iterations of the randomized SVD.")
    var powerIterations: Int = 5

    @Option(help: "A table with columns item and artist (generate's tracks.tsv): tracks without text inherit their artist's vector.")
    var trackArtists: String?

    @Flag(help: "Also store the weighted documents x terms matrix (CSR under /weighted).")
    var storeWeighted = false

    @Option(help: "Seed of the randomized SVD.")
    var seed: UInt64 = 0

    @Option(help: "Threads (0 = every core).")
    var threads: Int = 0

    func options() throws -> LSAOptions {
        guard let minDF = DocumentFrequencyBound(parsing: minDf) else {
            throw ValidationError("--min-df must be a count or a proportion, got '\(minDf)'")
        }
        guard let maxDF = DocumentFrequencyBound(parsing: maxDf) else {
            throw ValidationError("--max-df must be a proportion or a count, got '\(maxDf)'")
        }
        let vectorizer = TextVectorizerOptions(
            tokenizer: TokenizerOptions(stopWords: stopWords, ngramMax: ngramMax), minDF: minDF, maxDF: maxDF,
            maxFeatures: maxFeatures, weighting: weighting, sublinearTF: sublinearTf)
        try vectorizer.validate()
        return LSAOptions(vectorizer: vectorizer, dimensions: dimensions, algorithm: svd,
                          powerIterations: powerIterations, seed: seed)
    }

    func validate() throws {
        guard dimensions > 0 else { throw ValidationError("--dimensions must be positive, got \(dimensions)") }
        guard threads >= 0 else { throw ValidationError("--threads must be >= 0, got \(threads)") }
        guard powerIterations >= 0 else { throw ValidationError("--power-iterations must be >= 0, got \(powerIterations)") }
        _ = try options()
    }

    func run() throws {
        let logger = TrainerLogging.logger()
        let options = try options()
        let workers = threads == 0 ? Parallel.coreCount : threads
        let corpus = try TextCorpus.read(path: input, idColumn: idColumn, textColumn: textColumn, format: format)
        logger.info("read documents", metadata: ["file": .string(input), "documents": "\(corpus.count)"])
        var artists: [(track: String, artist: String)]?
        if let trackArtists {
            let table = try TextCorpus.read(path: trackArtists, idColumn: "item", textColumn: "artist")
            artists = zip(table.ids, table.texts).map { (track: $0, artist: $1) }
        }
        let reporters = StageReporters(logger: logger)
        let result = try TextVectorsResult.fit(corpus, options: options, trackArtists: artists, threads: workers) {
            stage, done, total in reporters.update(stage, done: done, total: total)
        }
        let inherited = result.vectors.inherited.filter { $0 }.count
        let attributes: [String: VectorFileAttribute] = [
            "input": .string(input), "documents": .int(Int64(result.documents)),
            "dimensions": .int(Int64(result.model.dimensions)), "min_df": .string(options.vectorizer.minDF.description),
            "max_df": .string(options.vectorizer.maxDF.description),
            "max_features": .int(Int64(options.vectorizer.maxFeatures ?? 0)),
            "weighting": .string(options.vectorizer.weighting.rawValue),
            "sublinear_tf": .int(sublinearTf ? 1 : 0), "stop_words": .string(stopWords.rawValue),
            "ngram_max": .int(Int64(ngramMax)), "svd": .string(svd.rawValue),
            "oversamples": .int(Int64(options.oversamples)), "power_iterations": .int(Int64(powerIterations)),
            "seed": .int(Int64(bitPattern: seed)), "bm25_k1": .double(options.vectorizer.bm25K1),
            "bm25_b": .double(options.vectorizer.bm25B), "ids_without_terms": .int(Int64(result.idsWithoutTerms)),
            "inherited": .int(Int64(inherited)),
        ]
        try VectorFiles.writeText(result.vectors, model: result.model, attributes: attributes,
                                  weighted: storeWeighted ? result.weighted : nil, to: output)
        logger.info("text vectors written", metadata: [
            "path": .string(output), "ids": "\(result.vectors.ids.count)", "inherited": "\(inherited)",
            "terms": "\(result.model.vectorizer.termCount)", "dimensions": "\(result.model.dimensions)",
            "ids_without_terms": "\(result.idsWithoutTerms)",
        ])
    }
}

/// `encore-train sequences`: a play log in, skip-gram item vectors out.
struct SequencesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sequences",
        abstract: "Sequence vectors: skip-gram with negative sampling over listening sessions (and playlists).",
        discussion: """
            A user's plays in time order split into sessions where the gap exceeds --session-gap-minutes; each \
            session (and each playlist) is a sentence whose words are tracks, trained as word2vec's skip-gram. \
            Output (HDF5): /ids, /vectors (unit length), /counts, parameters as root attributes.
            """)

    @Option(help: "The play log (the input options of fit apply; timestamps are required).")
    var events: String

    @Option(help: "Where to write the vectors (.h5).")
    var output: String

    @OptionGroup var inputFormat: InputFormatOptions

    @Option(help: "A table with columns playlist and item (one row per track, in playlist order): more sequences.")
    var playlists: String?

    @Option(help: "Split a user's plays where the gap exceeds this many minutes.")
    var sessionGapMinutes: Double = 30

    @Option(help: "Vector dimensions.")
    var dim: Int = 64

    @Option(help: "Largest distance between a track and a context track.")
    var window: Int = 5

    @Option(help: "Negative samples per pair.")
    var negative: Int = 5

    @Option(help: "Drop tracks played fewer times.")
    var minCount: Int = 5

    @Option(help: "Passes over the sessions.")
    var epochs: Int = 5

    @Option(help: "Subsampling threshold of frequent tracks (0 = none).")
    var sample: Double = 1e-3

    @Option(help: "Seed of the initial vectors and the random draws.")
    var seed: UInt64 = 1

    @Option(help: "Threads updating the vectors lock-free (0 = every core; 1 is deterministic).")
    var threads: Int = 0

    func options() -> SkipGramOptions {
        SkipGramOptions(dimensions: dim, window: window, negative: negative, minCount: minCount, epochs: epochs,
                        sample: sample, seed: seed, threads: threads == 0 ? Parallel.coreCount : threads)
    }

    func validate() throws {
        guard sessionGapMinutes >= 0, sessionGapMinutes.isFinite else {
            throw ValidationError("--session-gap-minutes must be >= 0, got \(sessionGapMinutes)")
        }
        guard threads >= 0 else { throw ValidationError("--threads must be >= 0, got \(threads)") }
        try options().validate()
    }

    func run() throws {
        let logger = TrainerLogging.logger()
        let log = try inputFormat.load(events, logger: logger)
        var playlistSequences: [[String]] = []
        if let playlists {
            playlistSequences = try TextCorpus.read(path: playlists, idColumn: "playlist", textColumn: "item").grouped()
        }
        let options = options()
        let reporters = StageReporters(logger: logger)
        let result = try SequenceVectorsResult.fit(
            log: log, sessionGapSeconds: Int64((sessionGapMinutes * 60).rounded()), playlists: playlistSequences,
            options: options
        ) { done, total in reporters.update("skip-gram", done: done, total: total) }
        let attributes: [String: VectorFileAttribute] = [
            "events": .string(events), "sequences": .int(Int64(result.sequences)),
            "session_gap_minutes": .double(sessionGapMinutes), "dim": .int(Int64(dim)), "window": .int(Int64(window)),
            "negative": .int(Int64(negative)), "min_count": .int(Int64(minCount)), "epochs": .int(Int64(epochs)),
            "sample": .double(sample), "seed": .int(Int64(bitPattern: seed)), "threads": .int(Int64(options.threads)),
            "playlists": .int(Int64(playlistSequences.count)),
        ]
        try VectorFiles.writeSequences(result.vectors, counts: result.model.counts, attributes: attributes, to: output)
        logger.info("sequence vectors written", metadata: [
            "path": .string(output), "items": "\(result.vectors.ids.count)", "sequences": "\(result.sequences)",
            "tokens_per_second": .string(String(format: "%.0f", result.model.tokensPerSecond)),
        ])
    }
}

/// Progress reporters made on each stage's first report, when its total is known (`text` and `sequences`).
private struct StageReporters: Sendable {
    let logger: Logger
    let reporters = Locked([String: ProgressReporter]())

    func update(_ stage: String, done: Int, total: Int) {
        let r = reporters.withLock { r in
            if let found = r[stage] { return found }
            let fresh = ProgressReporter(stage: stage, total: total, logger: logger)
            r[stage] = fresh
            return fresh
        }
        r.update(done)
    }
}

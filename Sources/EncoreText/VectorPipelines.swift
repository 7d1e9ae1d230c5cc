import EncoreCore
import EncoreData

/// Text vectors of ids from a corpus: LSA over the documents, one vector per id, tracks inheriting their artist's.
public struct TextVectorsResult: Sendable {
    /// The fitted model.
    public let model: LSAModel
    /// One unit-length vector per id (documents combined; inherited rows marked).
    public let vectors: IDVectors
    /// The weighted documents x terms matrix (rows in input order).
    public let weighted: CSRMatrix
    /// The number of documents read.
    public let documents: Int
    /// Ids whose documents had no vocabulary term (left out).
    public let idsWithoutTerms: Int

    /// Fits LSA to `corpus` and combines the documents of each id; when `trackArtists` is given, tracks without text
    /// take their artist's vector (marked in ``IDVectors/inherited``).
    public static func fit(
        _ corpus: TextCorpus, options: LSAOptions, trackArtists: [(track: String, artist: String)]? = nil,
        threads: Int = 1, progress: (@Sendable (String, Int, Int) -> Void)? = nil
    ) throws(TextError) -> TextVectorsResult {
        guard corpus.count > 0 else { throw .emptyCorpus("no documents") }
        let (model, documentVectors, weighted) = try LSAModel.fit(corpus.texts, options: options, threads: threads, progress: progress)
        let combined = try IDVectors.combiningCounted(documentIDs: corpus.ids, vectors: documentVectors)
        var vectors = combined.vectors
        let without = combined.distinct - vectors.ids.count
        if let trackArtists { vectors = vectors.inheriting(trackArtists: trackArtists) }
        return TextVectorsResult(model: model, vectors: vectors, weighted: weighted, documents: corpus.count, idsWithoutTerms: without)
    }
}

/// Sequence vectors of items: skip-gram over listening sessions (and playlists).
public struct SequenceVectorsResult: Sendable {
    /// The trained model (raw vectors).
    public let model: SkipGramModel
    /// One unit-length vector per kept item.
    public let vectors: IDVectors
    /// The number of sequences trained on.
    public let sequences: Int

    /// Splits `log` into sessions at gaps above `sessionGapSeconds`, appends `playlists` (sequences of item ids),
    /// and trains skip-gram.
    public static func fit(
        log: Interactions, sessionGapSeconds: Int64, playlists: [[String]] = [], options: SkipGramOptions,
        progress: (@Sendable (Int, Int) -> Void)? = nil
    ) throws(TextError) -> SequenceVectorsResult {
        var sequences = try SequenceCorpus.sessions(log, gapSeconds: sessionGapSeconds)
        // Playlist tracks the log never played get new indices after the log's items.
        var items = log.itemIDs
        for p in playlists where p.count >= 2 { sequences.append(p.map { items.intern($0) }) }
        guard !sequences.isEmpty else {
            throw .emptyCorpus("no session of two or more plays (\(log.count) plays) and no playlist")
        }
        let model = try SkipGramModel.train(sequences: sequences, names: items.ids, options: options, progress: progress)
        let vectors = try IDVectors(ids: model.tokens, vectors: model.vectors.rowNormalized())
        return SequenceVectorsResult(model: model, vectors: vectors, sequences: sequences.count)
    }
}

extension TextCorpus {
    /// Rows grouped by id in order of first appearance, each group's texts in file order (playlists: id = playlist,
    /// text = item).
    public func grouped() -> [[String]] {
        var index: [String: Int] = [:]
        var out: [[String]] = []
        for (id, text) in zip(ids, texts) {
            if let i = index[id] { out[i].append(text) } else { index[id] = out.count; out.append([text]) }
        }
        return out
    }
}

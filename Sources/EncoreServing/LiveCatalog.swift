import Foundation
import EncoreCore
import EncoreHybrid
import EncoreIndex

/// The tracks posted to the server since its bundle, over one ``ServingModel`` (which stays immutable): their ids,
/// predicted CF vectors, provenance, content vectors and descriptors, and the live HNSW indexes that make them
/// searchable.
///
/// A new track gets the item number `itemCount + k` (`k` in order of first posting), so it lives in the same
/// `Int32` space as the bundle's items. A bundle track may be posted too: its metadata, descriptors and content
/// vectors are replaced, and when no one has played it (no learned vector) it gets a predicted vector like a new
/// track; a played bundle track keeps its learned vector.
///
/// Indexes (one writer at a time, the engine's track lock; any number of searches meanwhile):
/// - `hybrid-ip`: inner product over the predicted vectors (recommendations score them with the user's vector);
/// - `hybrid`: cosine over the predicted vectors (`similar?space=hybrid`);
/// - `audio`, `text`: cosine over the posted embeddings and text vectors, when the bundle has the space (or the
///   cold-start model a ridge for it), which fixes the dimension.
public final class LiveCatalog: Sendable {
    /// One posted track as served.
    public struct Entry: Sendable, Equatable {
        /// The track as posted (the latest record).
        public var track: PostedTrack
        /// Its item number (a bundle index, or `itemCount + k` for a new track).
        public var item: Int32
        /// The predicted CF vector, or `nil` (no source applied, or a played bundle track).
        public var vector: [Float]?
        /// The sources of the prediction (`audio`, `text`, `artist`).
        public var sources: [String]
        /// The artist's index in the bundle's catalog, when the catalog knows the artist.
        public var artist: Int32?
        /// The journal sequence of the record.
        public var sequence: UInt64

        /// Where the track's CF vector comes from: `predicted(audio+artist)`, `learned` (a played bundle track) or
        /// `none`.
        public var provenance: String {
            if let _ = vector { return "predicted(\(sources.joined(separator: "+")))" }
            return sources == ["learned"] ? "learned" : "none"
        }
    }

    struct State {
        var items: [String: Int32] = [:]
        var entries: [Int32: Entry] = [:]
        var newIDs: [String] = []
        var version: UInt64 = 0
        /// Posted tracks marked `flagged`.
        var flagged: Set<Int32> = []
        /// Posted tracks by the artist's catalog index.
        var byArtist: [Int32: Set<Int32>] = [:]
        /// Bundle tracks whose vector in a space (`hybrid`, `audio`, `text`) was replaced by a posted one.
        var replaced: [String: Set<Int32>] = [:]
    }

    /// The model the tracks extend.
    public let model: ServingModel
    let state = Locked(State())
    /// Live indexes by name (`hybrid-ip`, `hybrid`, `audio`, `text`); a space without a known dimension is absent.
    let indexes: [String: HNSWIndex]
    /// The dimension of the posted content vectors each space takes (`audio`, `text`).
    public let contentDimensions: [String: Int]

    /// An empty live catalog over `model`.
    /// - Throws: ``ServingError/model(_:)`` when an index cannot be made.
    public init(model: ServingModel) throws(ServingError) {
        self.model = model
        var dims: [String: Int] = [:]
        let ridgeDims = (try? model.coldStart?.parameters.inputDimensions) ?? [:]
        for name in ["audio", "text"] {
            if let d = model.contentVectors(name)?.dimension ?? ridgeDims[name] { dims[name] = d }
        }
        contentDimensions = dims
        var made: [String: HNSWIndex] = [:]
        do {
            let f = model.model.parameters.factors
            if model.coldStart != nil {
                made["hybrid-ip"] = try HNSWIndex(dimension: f, metric: .innerProduct, m: 16, efConstruction: 100, ef: 64)
                made["hybrid"] = try HNSWIndex(dimension: f, metric: .cosine, m: 16, efConstruction: 100, ef: 64)
            }
            for (name, d) in dims { made[name] = try HNSWIndex(dimension: d, metric: .cosine, m: 16, efConstruction: 100, ef: 64) }
        } catch { throw .model("live index: \(error)") }
        indexes = made
    }

    /// The number of tracks posted (new and bundle tracks).
    public var count: Int { state.withLock { $0.entries.count } }
    /// The number of new tracks (not in the bundle).
    public var newTrackCount: Int { state.withLock { $0.newIDs.count } }
    /// Bumped by every applied track.
    public var version: UInt64 { state.withLock { $0.version } }

    /// The item number of `id`: a bundle item or a posted track.
    public func item(_ id: String) -> Int32? {
        model.item(id) ?? state.withLock { $0.items[id] }
    }

    /// The external id of an item number (a bundle item or a new track).
    public func itemID(_ i: Int32) -> String {
        let n = Int32(model.itemCount)
        if i < n { return model.itemID(i) }
        return state.withLock { s in Int(i - n) < s.newIDs.count ? s.newIDs[Int(i - n)] : "#\(i)" }
    }

    /// The posted entry of an item number, if any.
    public func entry(_ i: Int32) -> Entry? { state.withLock { $0.entries[i] } }

    /// The posted tracks never to suggest: flagged ones, and those by the given artists.
    func excluded(artists: Set<Int32>) -> Set<Int32> {
        state.withLock { s in
            var out = s.flagged
            for a in artists { if let t = s.byArtist[a] { out.formUnion(t) } }
            return out
        }
    }

    /// The bundle tracks whose vector in `space` was replaced by a posted one.
    func replacedBundleItems(space: String) -> Set<Int32> { state.withLock { $0.replaced[space] ?? [] } }

    /// Checks `tracks` against the model: content vector dimensions, descriptor names (those of the bundle's
    /// `/audio/descriptor_names` when it has any).
    /// - Throws: ``TrackValidationError`` naming the field and the track.
    public func check(_ tracks: [PostedTrack]) throws(TrackValidationError) {
        let names = Set(model.bundle.contentSpaces?.descriptorNames ?? [])
        for (k, t) in tracks.enumerated() {
            for (field, space, v) in [("content.embedding", "audio", t.embedding), ("content.text_vector", "text", t.textVector)] {
                guard let v else { continue }
                guard let d = contentDimensions[space] else {
                    throw TrackValidationError(field: field, index: k, message: "\(field) cannot be used: the bundle has no \(space) space "
                        + "(no /\(space == "audio" ? "audio/embeddings" : "text/vectors") and no \(space) ridge in /hybrid/model)")
                }
                guard v.count == d else {
                    throw TrackValidationError(field: field, index: k, message: "\(field) has \(v.count) values, the bundle's \(space) space has \(d) dimensions")
                }
            }
            if let ds = t.descriptors, !names.isEmpty, let bad = ds.keys.sorted().first(where: { !names.contains($0) }) {
                throw TrackValidationError(field: "content.descriptors.\(bad)", index: k,
                    message: "unknown descriptor '\(bad)' (the bundle's descriptors are \(names.sorted().joined(separator: ", ")))")
            }
        }
    }

    /// Applies journal records in order: each track is added or replaced, gets its predicted vector and enters the
    /// live indexes. Call under the engine's track lock (one writer).
    /// - Throws: ``ServingError/model(_:)`` when prediction or an index fails.
    func apply(_ records: [TrackJournalRecord]) throws(ServingError) {
        for r in records { try apply(r) }
    }

    private func apply(_ r: TrackJournalRecord) throws(ServingError) {
        let t = r.track
        let n = Int32(model.itemCount)
        let bundleItem = model.item(t.id)
        let item: Int32 = bundleItem ?? state.withLock { s in
            if let i = s.items[t.id] { return i }
            let i = n + Int32(s.newIDs.count)
            s.newIDs.append(t.id)
            s.items[t.id] = i
            return i
        }
        let previous = entry(item)
        let artist = t.artist.flatMap { model.artist($0) }
        var vector: [Float]?
        var sources: [String] = []
        if let b = bundleItem, model.listenerCounts[Int(b)] > 0 {
            sources = ["learned"]
        } else if let cold = model.coldStart {
            var content: [String: [Float]] = [:]
            if let e = t.embedding { content["audio"] = e }
            if let v = t.textVector { content["text"] = v }
            do {
                if let p = try cold.predict(content: content, artist: artist) {
                    vector = p.vector
                    sources = p.sources
                }
            } catch { throw .model("predicting track '\(t.id)': \(error)") }
        }
        do {
            try set(item, vector, previous?.vector != nil, in: ["hybrid-ip", "hybrid"])
            try set(item, t.embedding, previous?.track.embedding != nil, in: ["audio"])
            try set(item, t.textVector, previous?.track.textVector != nil, in: ["text"])
        } catch { throw .model("indexing track '\(t.id)': \(error)") }
        let e = Entry(track: t, item: item, vector: vector, sources: sources, artist: artist, sequence: r.sequence)
        state.withLock { s in
            s.entries[item] = e
            s.version += 1
            if t.flagged == true { s.flagged.insert(item) } else { s.flagged.remove(item) }
            if let a = previous?.artist { s.byArtist[a]?.remove(item) }
            if let a = artist { s.byArtist[a, default: []].insert(item) }
            if item < n {
                for (space, v) in [("hybrid", vector), ("audio", t.embedding), ("text", t.textVector)] {
                    if v != nil { s.replaced[space, default: []].insert(item) } else { s.replaced[space]?.remove(item) }
                }
            }
        }
    }

    /// Adds, replaces or removes `item`'s vector in the named indexes.
    private func set(_ item: Int32, _ vector: [Float]?, _ present: Bool, in names: [String]) throws(IndexError) {
        for name in names {
            guard let index = indexes[name] else { continue }
            switch (vector, present) {
            case (let v?, true): try index.update(id: item, vector: v)
            case (let v?, false): try index.add(id: item, vector: v)
            case (nil, true): try index.remove(id: item)
            case (nil, false): break
            }
        }
    }

    /// The `k` posted tracks with the largest `vector · v` that `allows` admits, best first.
    func recommend(_ vector: [Float], k: Int, allows: @escaping @Sendable (Int32) -> Bool) throws(ServingError) -> [(item: Int32, score: Float)] {
        guard let index = indexes["hybrid-ip"], index.count > 0 else { return [] }
        do {
            return try index.search(vector, k: k, filter: .predicate(allows)).map { ($0.id, -$0.distance) }
        } catch { throw .model("live index: \(error)") }
    }

    /// The `k` posted tracks nearest to `query` by cosine in `space` (`hybrid`, `audio`, `text`), `besides` left out.
    func neighbors(space: String, of query: [Float], k: Int, besides: Int32?) throws(ServingError) -> [(item: Int32, similarity: Float)] {
        guard let index = indexes[space], index.count > 0 else { return [] }
        do {
            let found = try index.search(query, k: k, filter: besides.map { b in .predicate { $0 != b } })
            return found.map { ($0.id, 1 - $0.distance) }
        } catch { throw .model("live index: \(error)") }
    }

    /// The posted vector of `item` in `space` (`hybrid`: the predicted vector; `audio`, `text`: the posted content).
    func vector(of item: Int32, space: String) -> [Float]? {
        guard let e = entry(item) else { return nil }
        switch space {
        case "hybrid": return e.vector
        case "audio": return e.track.embedding
        case "text": return e.track.textVector
        default: return nil
        }
    }
}

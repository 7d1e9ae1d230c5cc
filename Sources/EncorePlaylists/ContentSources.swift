import EncoreCore
import EncoreIndex

/// Candidates among cold tracks (few or no plays, such as this week's releases) for the user: each cold track is
/// scored by the user's collaborative-filtering vector against the track's *predicted* CF vector, `x·ŷᵢ`, the vector
/// a content model (audio, text, the artist's prior) predicts for a track whose learned vector is missing or noise.
///
/// The caller gives the cold tracks and their predicted vectors (the hybrid model makes them); the source scans them
/// exactly (one `gemv` over the cold rows), so it is cheap while the cold set is a small share of the catalog.
public struct PredictedVectorCandidates: CandidateSource {
    /// The source's name.
    public let name: String
    /// The cold items, ascending.
    public let items: [Int32]
    /// Their predicted CF vectors, one row per entry of ``items``.
    public let vectors: Matrix

    /// A source over `items` and their predicted vectors.
    ///
    /// - Parameters:
    ///   - items: the cold items (catalog indices, distinct).
    ///   - vectors: one predicted CF vector per item, in the order of `items`, in the model's factor space.
    /// - Throws: ``PlaylistError/shapeMismatch(_:)`` when the rows and items differ in number,
    ///   ``PlaylistError/invalidParameter(name:value:expected:)`` for a negative or repeated item or a vector with a
    ///   non-finite value.
    public init(items: [Int32], vectors: Matrix, name: String = "new-for-you") throws(PlaylistError) {
        guard vectors.rows == items.count else {
            throw .shapeMismatch("\(items.count) cold items but \(vectors.rows) predicted vectors")
        }
        var seen = Set<Int32>()
        for (r, i) in items.enumerated() {
            guard i >= 0 else { throw .invalidParameter(name: "items[\(r)]", value: "\(i)", expected: "an item index >= 0") }
            guard seen.insert(i).inserted else {
                throw .invalidParameter(name: "items[\(r)]", value: "\(i)", expected: "distinct cold items")
            }
        }
        for (k, x) in vectors.storage.enumerated() where !x.isFinite {
            throw .invalidParameter(
                name: "predicted vector of item \(items[k / max(1, vectors.cols)])", value: "\(x)", expected: "finite values")
        }
        let order = items.indices.sorted { items[$0] < items[$1] }
        var sorted = Matrix(rows: vectors.rows, cols: vectors.cols)
        for (r, p) in order.enumerated() { sorted.setRow(r, vectors.row(p)) }
        self.items = order.map { items[$0] }
        self.vectors = sorted
        self.name = name
    }

    /// A source over the items of `cold`, their vectors taken from `predicted` (one row per catalog item, such as
    /// the hybrid item space's predicted vectors).
    ///
    /// With `learned` (the model's item factors), cold items that have a learned (non-zero) row are left out: the
    /// learned-vector sources rank them already, and Discover Weekly lets only tracks without one compete for the
    /// new-track places, so scoring them per user would only credit this source on tracks others listed.
    /// - Throws: ``PlaylistError/unknownIndex(_:)`` when a cold item has no row in `predicted`, or as
    ///   ``init(items:vectors:name:)``.
    public init(cold: IDBitset, predicted: Matrix, learned: Matrix? = nil, name: String = "new-for-you") throws(PlaylistError) {
        var items: [Int32] = []
        for i in 0..<Int32(clamping: cold.words.count * 64) where cold.contains(i) {
            guard Int(i) < predicted.rows else {
                throw .unknownIndex("cold item \(i) has no row among the \(predicted.rows) predicted vectors")
            }
            if let learned, Int(i) < learned.rows, !learned.isZeroRow(Int(i)) { continue }
            items.append(i)
        }
        var rows = Matrix(rows: items.count, cols: predicted.cols)
        for (r, i) in items.enumerated() { rows.setRow(r, predicted.row(Int(i))) }
        try self.init(items: items, vectors: rows, name: name)
    }

    public func candidates(for context: PlaylistContext, limit: Int) throws(PlaylistError) -> [Candidate] {
        guard limit > 0, !items.isEmpty, vectors.cols > 0, let x = context.userVector else { return [] }
        guard x.count == vectors.cols else {
            throw .shapeMismatch("user vector of \(x.count) values, predicted vectors of \(vectors.cols) for source '\(name)'")
        }
        var scores = [Float](repeating: 0, count: items.count)
        vectors.storage.withUnsafeBufferPointer { y in
            x.withUnsafeBufferPointer { xb in
                scores.withUnsafeMutableBufferPointer { s in
                    BLAS.gemv(y.baseAddress!, m: items.count, n: vectors.cols, xb.baseAddress!, s.baseAddress!)
                }
            }
        }
        var top = TopK(k: limit)
        for (r, i) in items.enumerated() {
            // The rules' check last: most scores fall below the k-th best so far.
            let s = scores[r]
            guard s > 0, s.isFinite, s >= top.threshold, context.allows(i) else { continue }
            top.push(i, s)
        }
        top.finish()
        return zip(top.indices, top.scores).map { Candidate(item: $0, score: $1, source: name) }
    }
}

/// The cold tracks of a catalog: the ones a collaborative model knows too little about, which content has to
/// place.
public enum ColdTracks {
    /// The items with at most `maxListeners` distinct listeners in `histories`, or released within the last
    /// `releasedWithinDays` days before `referenceTime` (0: no release window), and not released after it.
    ///
    /// - Throws: ``PlaylistError/invalidParameter(name:value:expected:)`` for a negative count or window,
    ///   ``PlaylistError/shapeMismatch(_:)`` when the histories and the catalog have different items.
    public static func select(
        histories: ListeningHistories, catalog: TrackCatalog, maxListeners: Int = 0, releasedWithinDays: Int = 0,
        referenceTime: Int64
    ) throws(PlaylistError) -> IDBitset {
        guard maxListeners >= 0 else {
            throw .invalidParameter(name: "maxListeners", value: "\(maxListeners)", expected: ">= 0")
        }
        guard releasedWithinDays >= 0 else {
            throw .invalidParameter(name: "releasedWithinDays", value: "\(releasedWithinDays)", expected: ">= 0 (0: no window)")
        }
        guard histories.itemCount == catalog.itemCount else {
            throw .shapeMismatch("histories of \(histories.itemCount) items, catalog of \(catalog.itemCount)")
        }
        var listeners = [Int](repeating: 0, count: catalog.itemCount)
        for (i, p) in zip(histories.pairItems, histories.pairPlays) where p > 0 { listeners[Int(i)] += 1 }
        let oldest = referenceTime - Int64(releasedWithinDays) * Timestamp.secondsPerDay
        var out = IDBitset(capacity: catalog.itemCount)
        for i in 0..<catalog.itemCount {
            let r = catalog.trackRelease[i]
            if r != TrackCatalog.unknownTime && r > referenceTime { continue }
            let recent = releasedWithinDays > 0 && r != TrackCatalog.unknownTime && r >= oldest
            if listeners[i] <= maxListeners || recent { out.insert(Int32(i)) }
        }
        return out
    }
}

extension DiscoverWeekly {
    /// The content side of Discover Weekly: item spaces other than the collaborative one (audio, text, sequence,
    /// hybrid), whose neighbors of the user's heavy rotation become sources named `similar-<space>` ("songs with
    /// similar audio" is `similar-audio`), and cold tracks with their predicted CF vectors for the `new-for-you`
    /// source ("new releases that sound like your taste"), with a share of every playlist reserved for them.
    public struct Content: Sendable {
        /// Spaces whose heavy-rotation neighbors are sources (one ``HeavyRotationNeighbors`` each, named
        /// `similar-<name>`), in this order.
        public var spaces: [ItemSpace]
        /// The weight of each content-space source in the merge.
        public var spaceWeight: Float
        /// Candidates asked from each content-space source.
        public var spaceLimit: Int
        /// The cold tracks scored by ``PredictedVectorCandidates``, or `nil` for none.
        public var coldItems: IDBitset?
        /// One predicted CF vector per catalog item (only the cold items' rows are read), or `nil`.
        public var predictedVectors: Matrix?
        /// The weight of the `new-for-you` source in the merge.
        public var newWeight: Float
        /// Candidates asked from the `new-for-you` source.
        public var newLimit: Int
        /// The most of each playlist the new-track sources' tracks may take (see ``Configuration/newTrackShare``).
        public var newTrackShare: Float
        /// The scale on which new tracks compete for places (``Configuration/newTrackCalibration``), or `nil`.
        public var calibration: NewTrackCalibration?

        /// Content inputs.
        ///
        /// - Parameters:
        ///   - audio: the audio space (its source is `similar-audio` when the space is named `audio`).
        ///   - spaces: further content spaces (text, sequence, ...), each a `similar-<name>` source.
        ///   - coldItems, predictedVectors: the cold tracks and every item's predicted CF vector; both or neither.
        ///   - newTrackShare: the most of the playlist new tracks may take.
        ///   - calibration: the scale new tracks compete on, or `nil` for raw scores.
        public init(
            audio: ItemSpace? = nil, spaces: [ItemSpace] = [], coldItems: IDBitset? = nil, predictedVectors: Matrix? = nil,
            newTrackShare: Float = 0.2, calibration: NewTrackCalibration? = nil, spaceWeight: Float = 0.3,
            spaceLimit: Int = 100, newWeight: Float = 0.5, newLimit: Int = 100
        ) {
            self.calibration = calibration
            self.spaces = (audio.map { [$0] } ?? []) + spaces
            self.coldItems = coldItems
            self.predictedVectors = predictedVectors
            self.newTrackShare = newTrackShare
            self.spaceWeight = spaceWeight
            self.spaceLimit = spaceLimit
            self.newWeight = newWeight
            self.newLimit = newLimit
        }

        /// The content the weekly job gives Discover Weekly: neighbours of the heavy rotation in the audio space
        /// (`similar-audio`) and, with a hybrid space, the new tracks that have a hybrid vector, scored by it
        /// (`new-for-you`): released within `newReleaseDays` days before `referenceTime`, or with at most
        /// `coldMaxListeners` listeners in `histories` (never released after `referenceTime`), with
        /// at most `newTrackShare` of the playlist for them, each placed only where its calibrated score beats the
        /// track it displaces (``Configuration/newTrackShare``). The weekly job and the temporal evaluation with
        /// content both build it here.
        ///
        /// - Parameters:
        ///   - audio: one audio embedding per item (zero rows for items without one), or `nil`.
        ///   - hybridItems: the items that have a hybrid vector (ignored without `hybridVectors`).
        ///   - hybridVectors: one hybrid (blended) CF vector per item, or `nil` without a hybrid space.
        ///   - histories: the listening histories as of the playlist's week (for the listener counts).
        ///   - catalog: the catalog (release dates).
        ///   - coldMaxListeners: a track is new with at most this many listeners.
        ///   - newReleaseDays: a track is new when released within this many days before `referenceTime` (0: no
        ///     release window; tracks without a release date are new only by their listeners).
        ///   - referenceTime: the week's start; tracks released later are not new tracks.
        ///   - newTrackShare: the most of the playlist new tracks may take.
        ///   - calibration: the scale on which new tracks compete for places (``NewTrackCalibration``), or `nil`.
        /// - Returns: the content, or `nil` when there is neither an audio nor a hybrid space.
        /// - Throws: as ``ColdTracks/select(histories:catalog:maxListeners:releasedWithinDays:referenceTime:)`` and
        ///   ``ItemSpace/init(name:vectors:index:validItems:)``; ``PlaylistError/shapeMismatch(_:)`` when the audio or
        ///   hybrid rows are not one per item of the histories.
        public static func weekly(
            audio: Matrix?, hybridItems: [Int32], hybridVectors: Matrix?, histories: ListeningHistories,
            catalog: TrackCatalog, coldMaxListeners: Int, newReleaseDays: Int = 0, referenceTime: Int64,
            newTrackShare: Float, calibration: NewTrackCalibration? = nil
        ) throws(PlaylistError) -> Content? {
            let n = histories.itemCount
            var space: ItemSpace?
            if let audio {
                guard audio.rows == n else { throw .shapeMismatch("\(audio.rows) audio embeddings for \(n) items") }
                space = try ItemSpace(name: "audio", vectors: audio)
            }
            var cold: IDBitset?
            if let hybridVectors {
                guard hybridVectors.rows == n else {
                    throw .shapeMismatch("\(hybridVectors.rows) hybrid vectors for \(n) items")
                }
                // New tracks: recent releases or few listeners, and a hybrid vector to score them with.
                let few = try ColdTracks.select(
                    histories: histories, catalog: catalog, maxListeners: coldMaxListeners,
                    releasedWithinDays: newReleaseDays, referenceTime: referenceTime)
                var c = IDBitset(capacity: n)
                for i in hybridItems where few.contains(i) { c.insert(i) }
                cold = c
            }
            guard space != nil || cold != nil else { return nil }
            return Content(
                audio: space, coldItems: cold, predictedVectors: cold == nil ? nil : hybridVectors,
                newTrackShare: cold == nil ? 0 : newTrackShare, calibration: cold == nil ? nil : calibration)
        }

        /// The name of the source over `space`: `similar-<name>`.
        public static func sourceName(of space: ItemSpace) -> String { "similar-\(space.name)" }

        /// The sources these inputs add, with their weights and limits; `new-for-you` leaves out the cold tracks
        /// with a non-zero row in `learned` (see ``PredictedVectorCandidates/init(cold:predicted:learned:name:)``).
        /// - Throws: ``PlaylistError/shapeMismatch(_:)`` when a space or the predicted vectors do not cover
        ///   `itemCount` items, or the predicted vectors' width is not `factors`;
        ///   ``PlaylistError/invalidParameter(name:value:expected:)`` for a bad weight, limit or share, or cold items
        ///   without predicted vectors (or the reverse).
        public func sources(itemCount: Int, factors: Int, learned: Matrix? = nil) throws(PlaylistError) -> [Source] {
            guard spaceWeight.isFinite, spaceWeight >= 0 else {
                throw .invalidParameter(name: "content.spaceWeight", value: "\(spaceWeight)", expected: "a finite weight >= 0")
            }
            guard newWeight.isFinite, newWeight >= 0 else {
                throw .invalidParameter(name: "content.newWeight", value: "\(newWeight)", expected: "a finite weight >= 0")
            }
            guard spaceLimit >= 1 else {
                throw .invalidParameter(name: "content.spaceLimit", value: "\(spaceLimit)", expected: ">= 1")
            }
            guard newLimit >= 1 else {
                throw .invalidParameter(name: "content.newLimit", value: "\(newLimit)", expected: ">= 1")
            }
            try Configuration.checkNewTrackShare(newTrackShare)
            var out: [Source] = []
            for space in spaces {
                guard space.itemCount == itemCount else {
                    throw .shapeMismatch("the content space '\(space.name)' has \(space.itemCount) items, the catalog \(itemCount)")
                }
                out.append(Source(try HeavyRotationNeighbors(space: space, name: Self.sourceName(of: space)),
                                  weight: spaceWeight, limit: spaceLimit))
            }
            switch (coldItems, predictedVectors) {
            case (nil, nil):
                break
            case (let cold?, let predicted?):
                guard predicted.rows == itemCount else {
                    throw .shapeMismatch("\(predicted.rows) predicted vectors for \(itemCount) items")
                }
                guard predicted.cols == factors else {
                    throw .shapeMismatch("predicted vectors of \(predicted.cols) values, the model has \(factors) factors")
                }
                if let calibration, calibration.factors != factors {
                    throw .shapeMismatch("calibration vectors of \(calibration.factors) values, the model has \(factors) factors")
                }
                out.append(Source(try PredictedVectorCandidates(cold: cold, predicted: predicted, learned: learned),
                                  weight: newWeight, limit: newLimit))
            case (nil, _?):
                throw .invalidParameter(name: "content.coldItems", value: "nil",
                                        expected: "the cold tracks whose predicted vectors are given")
            case (_?, nil):
                throw .invalidParameter(name: "content.predictedVectors", value: "nil",
                                        expected: "a predicted CF vector per item for the cold tracks")
            }
            return out
        }
    }

    /// A short, human explanation of a source's name, for the track it suggested (the names of the standard
    /// sources; any other name is returned as it is).
    public static func explanation(ofSource name: String) -> String {
        switch name {
        case "user-vector": return "picked for your taste"
        case "similar-users": return "liked by listeners like you"
        case "new-releases": return "new from an artist you follow or play"
        case "recent-releases": return "a recent release for your taste"
        case "heavy-rotation": return "like what you play most"
        case "artist-affinity": return "from an artist you play"
        case "genre-affinity": return "from a genre you play"
        case "popular": return "popular right now"
        case "new-for-you": return "new releases that sound like your taste"
        case "similar-audio": return "songs with similar audio to what you play most"
        default:
            if name.hasPrefix("similar-") { return "similar \(name.dropFirst("similar-".count)) to what you play most" }
            return name
        }
    }
}

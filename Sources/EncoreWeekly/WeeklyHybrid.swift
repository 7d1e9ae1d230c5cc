import Foundation
import EncoreCore
import EncoreHybrid
import EncorePlaylists
import EncoreStorage

// The hybrid stage and what the playlists take from it: predicted CF vectors for tracks with few plays, blended with
// the learned ones by evidence (EncoreHybrid), the audio space, and the descriptors that order Daily Mixes.
extension WeeklyJob {
    /// Fits the cold-start model on this week's factors, content spaces and artists, and keeps the hybrid vectors.
    func makeHybridSpace() throws {
        guard let b = fitted else { throw WeeklyError("no model") }
        let (spaces, artists) = try hybridInputs(itemCount: b.model.itemCount)
        var out = ContentSpaces()
        defer { content.hybrid = out.hybrid; content.hybridProvenance = out.hybridProvenance; content.hybridModel = out.hybridModel }
        guard !spaces.isEmpty || artists != nil else {
            contentSummary.hybridNote = "no content space and no artists: nothing to predict from"
            logger.info("hybrid stage: nothing to predict from (no content space, no catalog artists)")
            try saveContent(out, name: "hybrid")
            return
        }
        let progress = ProgressReporter(stage: "hybrid", total: 1, logger: logger)
        let listeners = ColdStartModel.listeners(userItems: b.userItems)
        let hybrid: HybridSpace
        do {
            hybrid = try HybridSpace.fit(
                itemFactors: b.model.itemFactors, listeners: listeners, artists: artists, spaces: spaces,
                options: config.content.coldStart)
        } catch {
            // Too few warm tracks (a tiny catalog) is not a reason to stop the week: the CF playlists still stand.
            contentSummary.hybridNote = "not fitted: \(error)"
            logger.warning("hybrid stage skipped", metadata: ["reason": .string("\(error)")])
            try saveContent(out, name: "hybrid")
            return
        }
        let model = hybrid.model
        out.hybrid = try ItemVectorSet(items: hybrid.items, vectors: hybrid.itemVectors, object: "/hybrid/vectors")
        out.hybridProvenance = hybrid.itemProvenance
        // What a server needs to predict a vector for a track it is sent (the artist prior is recomputed from the
        // bundle's item factors, listeners and catalog artists, the ones fitted on here).
        out.hybridModel = try model.parameters
        contentSummary.hybridWeights = Dictionary(uniqueKeysWithValues: zip(model.sourceNames, model.weights))
        contentSummary.hybridProvenance = Dictionary(uniqueKeysWithValues: hybrid.blended.counts().map { ("\($0.key)", $0.value) })
        progress.update(1)
        logger.info("hybrid vectors", metadata: [
            "tracks": "\(hybrid.items.count)", "sources": .string(model.sourceNames.joined(separator: ",")),
            "weights": .string(model.weights.map { String(format: "%.2f", $0) }.joined(separator: ",")),
            "warm": "\(model.warmTracks)"])
        try saveContent(out, name: "hybrid")
    }

    /// The content spaces (audio, text, sequence, in that order) aligned to the items, and the catalog's artists:
    /// what the cold-start model is fitted on and predicts from.
    func hybridInputs(itemCount n: Int) throws -> (spaces: [ContentSpace], artists: [Int32]?) {
        var spaces: [ContentSpace] = []
        for (name, set) in [("audio", content.audioEmbeddings), ("text", content.text), ("sequence", content.sequence)] {
            guard let set, set.count > 0 else { continue }
            let (vectors, present) = set.aligned(itemCount: n)
            spaces.append(try ContentSpace(name: name, vectors: vectors, present: present))
        }
        return (spaces, catalog.hasArtists ? catalog.trackArtist : nil)
    }

    /// The scale on which Discover Weekly's new tracks compete for places: the learned and predicted vectors of
    /// (a sample of) the warm tracks, the model restored from the stage's stored parameters as a server restores it,
    /// so a resumed week calibrates as a fresh one; `nil` without a hybrid model or warm track with a prediction.
    func newTrackCalibration() throws -> NewTrackCalibration? {
        guard let parameters = content.hybridModel, let b = fitted else { return nil }
        let (spaces, artists) = try hybridInputs(itemCount: b.model.itemCount)
        let listeners = ColdStartModel.listeners(userItems: b.userItems)
        let model = try ColdStartModel(
            parameters: parameters, itemFactors: b.model.itemFactors, listeners: listeners, artists: artists)
        let predicted = try model.predict(artists: artists, spaces: spaces)
        let reference = HybridSpace.referenceTracks(
            listeners: listeners, predicted: predicted, minListeners: parameters.minListeners)
        guard !reference.isEmpty else { return nil }
        return try NewTrackCalibration.reference(
            learned: b.model.itemFactors, predicted: predicted.vectors, items: reference, seed: config.content.coldStart.seed)
    }

    /// The hybrid space for Daily Mix's new tracks, when the stage made one (tracks without a hybrid vector have a
    /// zero row, which the space leaves out), with an HNSW index over it: every mix of every user asks it for the
    /// tracks near the mix's centroid, too many queries for a scan of the catalog each. The index is the index
    /// stage's (published with the bundle as `hybrid-cosine`) once that stage has run or been loaded, else built here.
    func hybridItemSpace() throws -> ItemSpace? {
        guard let h = content.hybrid, let b = fitted else { return nil }
        let vectors = h.aligned(itemCount: b.model.itemCount).vectors
        if let hybridCosine {
            let space = try ItemSpace(name: "hybrid", vectors: vectors, index: hybridCosine)
            guard hybridCosine.count == space.hasVector.count else {
                throw WeeklyError("the hybrid-cosine index has \(hybridCosine.count) vectors, the hybrid space \(space.hasVector.count)")
            }
            return space
        }
        let space = try ItemSpace(name: "hybrid", vectors: vectors)
        let start = Date()
        let indexed = try space
            .indexed(efConstruction: config.index.efConstruction, ef: config.index.ef, seed: params.seed, threads: threads)
        logger.info("hybrid space index", metadata: [
            "tracks": "\(indexed.index?.count ?? 0)",
            "seconds": .string(String(format: "%.1f", Date().timeIntervalSince(start)))])
        return indexed
    }

    /// Discover Weekly's content sources: audio neighbours of the heavy rotation, and new tracks (released within
    /// `newReleaseDays`, or with at most `coldMaxListeners` listeners) scored by their hybrid vectors, with
    /// at most `newTrackShare` of the list for them, each placed where its calibrated score beats the track it displaces.
    func discoverWeeklyContent(histories: ListeningHistories) throws -> DiscoverWeekly.Content? {
        guard let b = fitted else { return nil }
        let n = b.model.itemCount
        let audio = content.audioEmbeddings.flatMap { $0.count > 0 ? $0.aligned(itemCount: n).vectors : nil }
        return try DiscoverWeekly.Content.weekly(
            audio: audio, hybridItems: content.hybrid?.items ?? [], hybridVectors: content.hybrid?.aligned(itemCount: n).vectors,
            histories: histories, catalog: catalog, coldMaxListeners: config.content.coldMaxListeners,
            newReleaseDays: config.content.newReleaseDays, referenceTime: week.timestamp,
            newTrackShare: config.content.newTrackShare, calibration: try newTrackCalibration())
    }

    /// Tempo, key, mode and energy of the analysed tracks, for Daily Mix's flow; `nil` without audio descriptors.
    func trackDescriptors() throws -> TrackDescriptors? {
        guard let d = content.audioDescriptors, let b = fitted else { return nil }
        let names = content.descriptorNames
        func column(_ name: String) -> Int? { names.firstIndex(of: name) }
        let tempo = column("tempo_bpm"), key = column("key"), mode = column("mode"), energy = column("energy")
        var tracks: [Int32: TrackDescriptors.Track] = [:]
        for (k, item) in d.items.enumerated() {
            let row = d.vectors.row(k)
            func value(_ c: Int?) -> Float? { c.flatMap { row[$0].isFinite ? row[$0] : nil } }
            // Values a descriptor file should not hold count as unknown rather than stopping the week.
            let m = value(mode).map { Int($0.rounded()) }.flatMap { (0...1).contains($0) ? $0 : nil }
            let k = m == nil ? nil : value(key).map { Int($0.rounded()) }.flatMap { (0...11).contains($0) ? $0 : nil }
            tracks[item] = TrackDescriptors.Track(
                tempoBPM: value(tempo).flatMap { $0 > 0 ? $0 : nil }, key: k, mode: k == nil ? nil : m,
                energy: value(energy).flatMap { $0 >= 0 ? $0 : nil })
        }
        return try TrackDescriptors(itemCount: b.model.itemCount, tracks: tracks)
    }
}

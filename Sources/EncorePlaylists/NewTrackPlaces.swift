import EncoreCore

extension DiscoverWeekly {
    /// One place of a playlist being made: the candidate and its perturbed relevance.
    struct Place {
        var candidate: MergedCandidate
        var keyed: Float
    }

    /// The places after the new-track sources' candidates have competed for them (see
    /// ``Configuration/newTrackShare``).
    ///
    /// Each track's *value* is its calibrated score: the quantile of `x·ℓ` (its learned vector) among the reference
    /// tracks' learned scores, or, for a track a new-track source suggested, the larger of that and the quantile of
    /// the source's score `x·ŷ` among the references' predicted scores (without a calibration, the larger raw
    /// score). New candidates not already in the list are tried best value first (ties by item); each takes the place
    /// of the list's lowest-valued track not yet displaced (ties: the later place) when its value is strictly higher
    /// and the artist and album caps hold with the swap; the first candidate that is not higher ends it, as does the
    /// cap of `round(newTrackShare · size)` places. A track of the list that a new-track source also suggested keeps
    /// its place and gains the source's name. A new track placed this way plays in the place it took (the flow
    /// sees that place's relevance) and records the relevance of the new-track sources' own merge.
    func placeNewTracks(_ places: [Place], newLists: [[Candidate]], context: PlaylistContext) throws(PlaylistError) -> [Place] {
        guard !newLists.isEmpty else { return places }
        var places = places
        // Each new candidate's sources and best new-track score.
        let fresh = CandidateMerge.merge(
            newLists.map { (weight: Float(1), candidates: $0) }, context: context,
            userScoreWeight: configuration.userScoreWeight, priors: configuration.priors)
        var freshScore: [Int32: Float] = [:]
        var freshIndex: [Int32: Int] = [:]
        for (k, c) in fresh.enumerated() {
            freshIndex[c.item] = k
            freshScore[c.item] = c.sources.map(\.score).max()
        }
        // A listed track that a new-track source also suggested keeps its place and gains the source.
        for p in places.indices {
            guard let k = freshIndex[places[p].candidate.item] else { continue }
            places[p].candidate.sources += fresh[k].sources
        }
        let cap = min(configuration.size, configuration.reservedNewTracks)
        guard cap > 0, !fresh.isEmpty, let x = context.userVector else { return places }
        let scale = try configuration.newTrackCalibration?.scale(for: x)
        func value(_ item: Int32) -> Float {
            let learned = context.userScore(item) ?? 0
            let predicted = freshScore[item]
            guard let scale else { return max(learned, predicted ?? learned) }
            let q = scale.quantile(learned: learned)
            return predicted.map { max(q, scale.quantile(predicted: $0)) } ?? q
        }
        let listed = Set(places.map(\.candidate.item))
        var newcomers = fresh.map(\.item).filter { !listed.contains($0) }.map { (item: $0, value: value($0)) }
        newcomers.sort { $0.value != $1.value ? $0.value > $1.value : $0.item < $1.item }
        let values = places.map { value($0.candidate.item) }
        let weakest = places.indices.sorted { values[$0] != values[$1] ? values[$0] < values[$1] : $0 > $1 }
        let catalog = environment.catalog
        var taken = 0, next = 0
        for c in newcomers where taken < cap && next < weakest.count {
            let d = weakest[next]
            guard c.value > values[d] else { break }
            var caps = CapCounter(rules: configuration.rules)
            for (p, place) in places.enumerated() where p != d { caps.add(place.candidate.item, catalog: catalog) }
            guard caps.admits(c.item, catalog: catalog) else { continue }
            places[d].candidate = fresh[freshIndex[c.item]!]
            next += 1
            taken += 1
        }
        return places
    }
}

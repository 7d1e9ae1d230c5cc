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
    /// Only tracks without a learned vector (a zero CF row: the weekly job's tracks no one has played) compete: a
    /// track with one is the collaborative sources' to list. Scores are on the scale of learned scores: a listed
    /// track's is `x·ℓ`; a new track's is the learned score expected of the new-track source's score `x·ŷ`
    /// (``NewTrackCalibration/Scale/expectedLearned(_:)``; without a calibration, `x·ŷ` itself). New tracks are
    /// tried best first (ties by item); each takes the place of the list's least relevant track not yet displaced
    /// (by perturbed relevance, the list's own order; ties: the later place), the track it would displace, when its
    /// score is strictly higher than that track's and the artist and album caps hold with the swap (a new track the
    /// caps refuse is skipped); the first one that is not higher ends it, as does the cap of
    /// `round(newTrackShare · size)` places. A listed track that a new-track source also suggested keeps its place
    /// and gains the source's name. A new track placed this way plays in the place it took (the flow sees that
    /// place's relevance) and records the relevance of the new-track sources' own merge.
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
        let factors = environment.model?.itemFactors
        func hasLearnedVector(_ item: Int32) -> Bool {
            guard let y = factors, item >= 0, Int(item) < y.rows else { return false }
            return !y.isZeroRow(Int(item))
        }
        let listed = Set(places.map(\.candidate.item))
        let competing = fresh.map(\.item).filter { !listed.contains($0) && !hasLearnedVector($0) }
        guard !competing.isEmpty else { return places }
        // The user's line, only for users with a new track to place.
        let scale = try configuration.newTrackCalibration?.scale(for: x)
        var newcomers: [(item: Int32, value: Float)] = competing.map { i in
            let s = freshScore[i] ?? 0
            return (i, scale?.expectedLearned(s) ?? s)
        }
        newcomers.sort { $0.value != $1.value ? $0.value > $1.value : $0.item < $1.item }
        let learned = places.map { context.userScore($0.candidate.item) ?? 0 }
        let leastRelevant = places.indices.sorted { places[$0].keyed != places[$1].keyed ? places[$0].keyed < places[$1].keyed : $0 > $1 }
        let catalog = environment.catalog
        var taken = 0, next = 0
        for c in newcomers where taken < cap && next < leastRelevant.count {
            let d = leastRelevant[next]
            guard c.value > learned[d] else { break }
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

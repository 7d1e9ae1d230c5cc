import EncoreCore

/// What prediction needs of a fitted ``ColdStartModel``, as plain values: what a bundle stores under
/// `/hybrid/model` so a server can predict a CF vector for a track it is sent.
///
/// The artist prior is not part of it: it is the mean learned vector of each artist's warm tracks, which
/// ``ColdStartModel/init(parameters:itemFactors:listeners:artists:)`` recomputes from the same item factors,
/// listener counts and artists the model was fitted on (so a restored model predicts exactly as the fitted one).
public struct ColdStartParameters: Sendable, Equatable {
    /// The sources in order: content spaces, then `artist` when the prior is used.
    public var sourceNames: [String]
    /// The combination weight of each source (same order).
    public var weights: [Float]
    /// The mean CF vector `μ` of the warm tracks.
    public var mean: [Float]
    /// The ridge of each content source with a positive weight, keyed by space name.
    public var ridges: [String: RidgeRegression]
    /// Warm tracks (the artist prior's members) have at least this many listeners.
    public var minListeners: Int
    /// The `k` of the evidence blend.
    public var priorListeners: Double

    /// Parameters from their parts, checked to agree.
    /// - Throws: ``HybridError/shapeMismatch(_:)`` when the weights and sources differ in number, a ridge's outputs
    ///   differ from the mean's length, or a positive-weight content source has no ridge;
    ///   ``HybridError/invalidParameter(name:value:expected:)`` for a negative or non-finite weight or value.
    public init(
        sourceNames: [String], weights: [Float], mean: [Float], ridges: [String: RidgeRegression], minListeners: Int,
        priorListeners: Double
    ) throws(HybridError) {
        guard sourceNames.count == weights.count else {
            throw .shapeMismatch("\(sourceNames.count) sources for \(weights.count) weights")
        }
        guard Set(sourceNames).count == sourceNames.count, sourceNames.count <= 32 else {
            throw .invalidParameter(name: "sources", value: "\(sourceNames)", expected: "at most 32 distinct names")
        }
        for (s, w) in zip(sourceNames, weights) where !(w >= 0 && w.isFinite) {
            throw .invalidParameter(name: "weight of '\(s)'", value: "\(w)", expected: "a finite value >= 0")
        }
        if let bad = mean.firstIndex(where: { !$0.isFinite }) {
            throw .invalidParameter(name: "mean[\(bad)]", value: "\(mean[bad])", expected: "a finite value")
        }
        for (name, ridge) in ridges {
            guard ridge.outputMean.count == mean.count else {
                throw .shapeMismatch("the ridge of '\(name)' predicts \(ridge.outputMean.count) factors, the mean has \(mean.count)")
            }
            let values = ridge.inputMean + ridge.outputMean + ridge.coefficients.storage
            guard values.allSatisfy(\.isFinite) else {
                throw .invalidParameter(name: "ridge of '\(name)'", value: "a non-finite value", expected: "finite coefficients")
            }
        }
        for (s, w) in zip(sourceNames, weights) where w > 0 && s != "artist" && ridges[s] == nil {
            throw .shapeMismatch("the content source '\(s)' has weight \(w) but no ridge")
        }
        guard minListeners >= 1 else {
            throw .invalidParameter(name: "minListeners", value: "\(minListeners)", expected: "an integer >= 1")
        }
        guard priorListeners >= 0, priorListeners.isFinite else {
            throw .invalidParameter(name: "priorListeners", value: "\(priorListeners)", expected: "a finite value >= 0")
        }
        self.sourceNames = sourceNames
        self.weights = weights
        self.mean = mean
        self.ridges = ridges
        self.minListeners = minListeners
        self.priorListeners = priorListeners
    }

    /// The number of CF factors predicted.
    public var factors: Int { mean.count }

    /// The input dimension of each content source's ridge, keyed by space name.
    public var inputDimensions: [String: Int] { ridges.mapValues { $0.inputMean.count } }
}

extension ColdStartModel {
    /// What prediction needs of this model (see ``ColdStartParameters``).
    /// - Throws: ``HybridError`` when a value is not finite (item factors that were not).
    public var parameters: ColdStartParameters {
        get throws(HybridError) {
            try ColdStartParameters(
                sourceNames: sourceNames, weights: weights, mean: mean, ridges: ridges,
                minListeners: options.minListeners, priorListeners: options.priorListeners)
        }
    }

    /// A model restored from its parameters, the artist prior recomputed from the catalogue it was fitted on.
    ///
    /// - Parameters:
    ///   - itemFactors: the learned CF item vectors, one row per track.
    ///   - listeners: each track's number of listeners (warm tracks have at least
    ///     ``ColdStartParameters/minListeners``).
    ///   - artists: each track's artist index (`-1`: unknown), or `nil` (no artist prior).
    /// - Throws: ``HybridError/shapeMismatch(_:)`` when the factors differ from the parameters' or the inputs
    ///   disagree in length.
    public init(
        parameters p: ColdStartParameters, itemFactors: Matrix, listeners: [Int], artists: [Int32]?
    ) throws(HybridError) {
        let n = itemFactors.rows, f = itemFactors.cols
        guard f == p.factors else {
            throw .shapeMismatch("the model predicts \(p.factors) factors, the item factors have \(f)")
        }
        try Self.checkInputs(n: n, listeners: listeners, artists: artists, spaces: [])
        let warmRows = (0..<n).filter { listeners[$0] >= p.minListeners }
        var isWarm = [Bool](repeating: false, count: n)
        for t in warmRows { isWarm[t] = true }
        let usesArtist = p.sourceNames.contains("artist")
        let (sums, counts) = (usesArtist ? artists : nil).map {
            Self.artistTotals(itemFactors, rows: warmRows, artists: $0, artistCount: Int($0.max() ?? -1) + 1)
        } ?? (Matrix(rows: 0, cols: f), [])
        let reports = zip(p.sourceNames, p.weights).map { name, w in
            var r = ColdStartSource(name: name, fitTracks: 0, validationTracks: 0, weight: w)
            r.lambda = p.ridges[name]?.lambda
            r.note = "restored from stored parameters"
            return r
        }
        let options = ColdStartOptions(minListeners: p.minListeners, artistPrior: usesArtist, priorListeners: p.priorListeners)
        self.init(
            options: options, sourceNames: p.sourceNames, sourceReports: reports, mean: p.mean, ridges: p.ridges,
            warmTracks: warmRows.count, fitTracks: 0, validationTracks: 0, validationErrorOfMean: .nan,
            validationErrorCombined: .nan, warm: isWarm, targets: itemFactors, artistSums: sums, artistCounts: counts,
            contentSources: p.sourceNames.filter { $0 != "artist" })
    }

    /// The number of tracks of artist `artist` in the prior (warm tracks), 0 when none or out of range.
    public func artistPriorCount(_ artist: Int32) -> Int {
        artist >= 0 && Int(artist) < artistCounts.count ? artistCounts[Int(artist)] : 0
    }
}

import EncoreCore

/// The hybrid item space of a catalogue, made in one step: the cold-start model fitted on the warm tracks, every
/// track's predicted vector, and the evidence blend of predicted and learned vectors (``EvidenceBlend``).
///
/// The weekly job's hybrid stage and the temporal evaluation with content both make it here, so the vectors Discover
/// Weekly scores new tracks with are the same in the job and in its measurement.
public struct HybridSpace: Sendable {
    /// The fitted cold-start model (its sources, weights and warm tracks).
    public let model: ColdStartModel
    /// Every track's blended vector and provenance (a zero row and `none` for a track with neither).
    public let blended: HybridVectors
    /// Every track's predicted vector, as for a new track (the artist prior leaves the track itself out).
    public let predicted: ColdStartPrediction
    /// Each track's number of listeners (the evidence of the blend).
    public let listeners: [Int]
    /// The tracks that have a hybrid vector (provenance other than `none`), ascending.
    public let items: [Int32]

    /// Fits the cold-start model, predicts every track and blends the prediction with the learned vector.
    ///
    /// - Parameters:
    ///   - itemFactors: the learned CF item vectors, one row per track.
    ///   - listeners: each track's number of distinct listeners (``ColdStartModel/listeners(userItems:)``).
    ///   - artists: each track's artist index (`-1`: unknown), or `nil` for no artist prior.
    ///   - spaces: the content spaces, one row per track each.
    ///   - options: the cold-start options (the blend's `k` is ``ColdStartOptions/priorListeners``).
    /// - Throws: ``HybridError`` as ``ColdStartModel/fit(itemFactors:listeners:artists:spaces:options:)`` (too few
    ///   warm tracks among them), ``ColdStartModel/predict(artists:spaces:)`` and
    ///   ``EvidenceBlend/blend(learned:listeners:predicted:priorListeners:)``.
    public static func fit(
        itemFactors: Matrix, listeners: [Int], artists: [Int32]?, spaces: [ContentSpace],
        options: ColdStartOptions = ColdStartOptions()
    ) throws(HybridError) -> HybridSpace {
        let model = try ColdStartModel.fit(
            itemFactors: itemFactors, listeners: listeners, artists: artists, spaces: spaces, options: options)
        let prediction = try model.predict(artists: artists, spaces: spaces)
        let blended = try EvidenceBlend.blend(
            learned: itemFactors, listeners: listeners, predicted: prediction, priorListeners: options.priorListeners)
        let items = (0..<itemFactors.rows).filter { blended.provenance[$0].kind != .none }.map(Int32.init)
        return HybridSpace(model: model, blended: blended, predicted: prediction, listeners: listeners, items: items)
    }

    /// The warm tracks (at least ``ColdStartOptions/minListeners`` listeners) that have a prediction, ascending:
    /// tracks whose learned and predicted vectors can both be trusted, the references on which a user's scores of
    /// learned and predicted vectors are compared.
    public var referenceTracks: [Int32] {
        Self.referenceTracks(listeners: listeners, predicted: predicted, minListeners: model.options.minListeners)
    }

    /// The tracks with at least `minListeners` listeners that have a prediction, ascending.
    public static func referenceTracks(listeners: [Int], predicted: ColdStartPrediction, minListeners: Int) -> [Int32] {
        (0..<min(listeners.count, predicted.sources.count))
            .filter { listeners[$0] >= minListeners && predicted.sources[$0] != 0 }.map(Int32.init)
    }

    /// The vectors of ``items``, one row each, in that order.
    public var itemVectors: Matrix {
        var out = Matrix(rows: items.count, cols: blended.vectors.cols)
        for (k, i) in items.enumerated() { out.setRow(k, blended.vectors.row(Int(i))) }
        return out
    }

    /// The provenance of each of ``items`` in words (``HybridVectors/describe(_:)``), in that order.
    public var itemProvenance: [String] { items.map { blended.describe(Int($0)) } }
}

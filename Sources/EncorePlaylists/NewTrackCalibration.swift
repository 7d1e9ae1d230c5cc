import EncoreCore

/// Puts a user's score of a new track (the user vector against the track's *predicted* CF vector, `x·ŷ`) and of a
/// warm track (against its *learned* vector, `x·ℓ`) on one scale: the quantile of each among the user's scores of a
/// fixed set of reference tracks, warm tracks that have both a learned and a predicted vector.
///
/// A predicted vector is a regression towards the mean, so `x·ŷ` spreads less than `x·ℓ` and the two raw scores
/// are not comparable. Each is compared with the same reference tracks scored the same way: a new track whose
/// predicted score beats 99.5 % of the references' predicted scores is placed where a warm track beating 99.5 % of
/// the references' learned scores would be, which is what the user's taste says about it as far as the content
/// model can tell. Discover Weekly uses it to decide whether a new track may take a place from the track it
/// displaces (``DiscoverWeekly/Configuration/newTrackShare``).
public struct NewTrackCalibration: Sendable {
    /// The reference tracks' learned CF vectors, one row each.
    public let learned: Matrix
    /// The same tracks' predicted CF vectors (made by the cold-start model as for a new track), row for row.
    public let predicted: Matrix

    /// A calibration over reference tracks given by their vectors.
    /// - Throws: ``PlaylistError/shapeMismatch(_:)`` when the two matrices differ in shape,
    ///   ``PlaylistError/invalidParameter(name:value:expected:)`` when there is no reference track or a value is not
    ///   finite.
    public init(learned: Matrix, predicted: Matrix) throws(PlaylistError) {
        guard learned.rows == predicted.rows, learned.cols == predicted.cols else {
            throw .shapeMismatch(
                "reference tracks: \(learned.rows) x \(learned.cols) learned vectors, \(predicted.rows) x \(predicted.cols) predicted")
        }
        guard learned.rows >= 1, learned.cols >= 1 else {
            throw .invalidParameter(name: "calibration", value: "\(learned.rows) reference tracks", expected: "at least one")
        }
        for (name, m) in [("learned", learned), ("predicted", predicted)] {
            if let k = m.storage.firstIndex(where: { !$0.isFinite }) {
                throw .invalidParameter(
                    name: "\(name) vector of reference track \(k / m.cols)", value: "\(m.storage[k])", expected: "finite values")
            }
        }
        self.learned = learned
        self.predicted = predicted
    }

    /// A calibration whose references are up to `count` of `items` (a seeded sample when there are more), their rows
    /// taken from `learned` and `predicted` (one row per catalog item each).
    ///
    /// - Parameters:
    ///   - items: the candidate reference tracks: warm tracks (enough listeners to trust the learned vector) that
    ///     have a predicted vector.
    ///   - count: the most reference tracks; more gives a finer scale (each user's scale costs two `gemv` over them).
    ///   - seed: the sample's seed.
    /// - Throws: ``PlaylistError/unknownIndex(_:)`` for an item without a row, and as ``init(learned:predicted:)``.
    public static func reference(
        learned: Matrix, predicted: Matrix, items: [Int32], count: Int = 4096, seed: UInt64 = 0
    ) throws(PlaylistError) -> NewTrackCalibration {
        guard count >= 1 else { throw .invalidParameter(name: "count", value: "\(count)", expected: ">= 1") }
        var chosen = items.sorted()
        if chosen.count > count {
            var rng = SplitMix64(seed: seed)
            for j in 0..<count { chosen.swapAt(j, j + Int(rng.next() % UInt64(chosen.count - j))) }
            chosen = Array(chosen.prefix(count)).sorted()
        }
        var l = Matrix(rows: chosen.count, cols: learned.cols), p = Matrix(rows: chosen.count, cols: predicted.cols)
        for (r, i) in chosen.enumerated() {
            guard i >= 0, Int(i) < learned.rows, Int(i) < predicted.rows else {
                throw .unknownIndex("reference track \(i): \(learned.rows) learned and \(predicted.rows) predicted vectors")
            }
            l.setRow(r, learned.row(Int(i)))
            p.setRow(r, predicted.row(Int(i)))
        }
        return try NewTrackCalibration(learned: l, predicted: p)
    }

    /// The reference tracks.
    public var count: Int { learned.rows }
    /// The factors of the vectors.
    public var factors: Int { learned.cols }

    /// One user's scale: the reference tracks' learned and predicted scores by `userVector`.
    /// - Throws: ``PlaylistError/shapeMismatch(_:)`` when the vector's length is not ``factors``.
    public func scale(for userVector: [Float]) throws(PlaylistError) -> Scale {
        guard userVector.count == factors else {
            throw .shapeMismatch("user vector of \(userVector.count) values, calibration vectors of \(factors)")
        }
        func scores(_ m: Matrix) -> [Float] {
            var s = [Float](repeating: 0, count: m.rows)
            m.storage.withUnsafeBufferPointer { y in
                userVector.withUnsafeBufferPointer { x in
                    s.withUnsafeMutableBufferPointer { out in
                        BLAS.gemv(y.baseAddress!, m: m.rows, n: m.cols, x.baseAddress!, out.baseAddress!)
                    }
                }
            }
            return s.sorted()
        }
        return Scale(learned: scores(learned), predicted: scores(predicted))
    }

    /// One user's reference scores, ascending.
    public struct Scale: Sendable, Equatable {
        /// The references' learned scores `x·ℓ`, ascending.
        public let learned: [Float]
        /// The references' predicted scores `x·ŷ`, ascending.
        public let predicted: [Float]

        /// The quantile of a learned score: the share of references whose learned score is below it, ties counting
        /// one half (in `[0, 1]`).
        public func quantile(learned score: Float) -> Float { Self.quantile(score, in: learned) }
        /// The quantile of a predicted score among the references' predicted scores, as ``quantile(learned:)``.
        public func quantile(predicted score: Float) -> Float { Self.quantile(score, in: predicted) }

        static func quantile(_ s: Float, in sorted: [Float]) -> Float {
            guard !sorted.isEmpty else { return 0 }
            // Below: the first position not < s; ties: up to the first position > s.
            var lo = 0, hi = sorted.count
            while lo < hi { let m = (lo + hi) / 2; if sorted[m] < s { lo = m + 1 } else { hi = m } }
            let below = lo
            hi = sorted.count
            while lo < hi { let m = (lo + hi) / 2; if sorted[m] <= s { lo = m + 1 } else { hi = m } }
            return (Float(below) + Float(lo - below) / 2) / Float(sorted.count)
        }
    }
}

import EncoreCore

/// Puts a user's score of a new track (the user vector against the track's *predicted* CF vector, `x·ŷ`) on the scale
/// of their scores of warm tracks (against *learned* vectors, `x·ℓ`): the expected learned score given the predicted
/// one, `E[x·ℓ | x·ŷ] ≈ a + b·x·ŷ`, a least-squares line fitted for the user over a fixed set of reference tracks,
/// warm tracks that have both a learned and a predicted vector.
///
/// The line shrinks as much as the user's predicted scores deserve: where predictions rank the references as the
/// learned vectors do, a new track scored like a warm track's prediction counts like that warm track; where they
/// rank them poorly (`b` near 0), every new track counts about as an average reference, so it beats few listed
/// tracks. (Matching quantiles instead would treat a top prediction as a top learned score however weakly the two
/// agree.) Discover Weekly uses it to decide whether a new track may take a place from the track it displaces
/// (``DiscoverWeekly/Configuration/newTrackShare``).
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

    /// One user's scale: the least-squares line of the reference tracks' learned scores on their predicted scores.
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
            return s
        }
        return Scale(predicted: scores(predicted), learned: scores(learned))
    }

    /// One user's line from predicted to expected learned scores.
    public struct Scale: Sendable, Equatable {
        /// The slope `b`: the covariance of the references' predicted and learned scores over the variance of the
        /// predicted ones (0 when the predicted scores do not vary).
        public let slope: Float
        /// The intercept `a`: the mean learned score minus `b` times the mean predicted score.
        public let intercept: Float

        /// A line from its coefficients.
        public init(slope: Float, intercept: Float) {
            self.slope = slope
            self.intercept = intercept
        }

        /// The least-squares line of `learned` on `predicted` (paired, same length, at least one pair).
        public init(predicted: [Float], learned: [Float]) {
            let n = Double(min(predicted.count, learned.count))
            guard n > 0 else { self.init(slope: 0, intercept: 0); return }
            var mp = 0.0, ml = 0.0
            for (p, l) in zip(predicted, learned) { mp += Double(p); ml += Double(l) }
            mp /= n; ml /= n
            var cov = 0.0, v = 0.0
            for (p, l) in zip(predicted, learned) {
                cov += (Double(p) - mp) * (Double(l) - ml)
                v += (Double(p) - mp) * (Double(p) - mp)
            }
            let b = v > 0 ? cov / v : 0
            self.init(slope: Float(b), intercept: Float(ml - b * mp))
        }

        /// The expected learned score of a track whose predicted score is `score`: `a + b · score`.
        public func expectedLearned(_ score: Float) -> Float { intercept + slope * score }
    }
}

import EncoreCore

/// Where a track's hybrid vector came from.
public struct VectorProvenance: Sendable, Equatable {
    /// The kind of vector.
    public enum Kind: UInt8, Sendable, Equatable, Codable, CaseIterable {
        /// No vector: no plays and no content source applied (a zero vector).
        case none = 0
        /// Predicted from content and the artist only: the track has no listener.
        case predicted = 1
        /// The learned vector and the predicted one, weighed by the evidence.
        case blended = 2
        /// The learned vector alone: the track has listeners and no prediction.
        case learned = 3
    }

    /// The kind.
    public var kind: Kind
    /// A bit per cold-start source (see ``HybridVectors/sourceNames``) that made the predicted part.
    public var sources: UInt32
    /// The weight `n / (n + k)` of the learned vector (0 for predicted and none, 1 for learned).
    public var learnedWeight: Float

    /// A provenance from its parts.
    public init(kind: Kind, sources: UInt32, learnedWeight: Float) {
        self.kind = kind
        self.sources = sources
        self.learnedWeight = learnedWeight
    }
}

/// The blended item vectors of a catalogue, each with its provenance.
public struct HybridVectors: Sendable, Equatable {
    /// One vector per track (a zero row for provenance `none`).
    public var vectors: Matrix
    /// Each track's provenance.
    public var provenance: [VectorProvenance]
    /// The cold-start source names that provenance bits refer to.
    public let sourceNames: [String]

    /// The names of the sources in track `i`'s predicted part.
    public func sourceNames(of i: Int) -> [String] { ColdStartPrediction.names(provenance[i].sources, sourceNames) }

    /// A short description of track `i`'s provenance: `learned`, `none`, `predicted(text+artist)` or
    /// `blended(0.67 learned; text+artist)`.
    public func describe(_ i: Int) -> String {
        let p = provenance[i], s = sourceNames(of: i).joined(separator: "+")
        switch p.kind {
        case .none: return "none"
        case .learned: return "learned"
        case .predicted: return "predicted(\(s))"
        case .blended:
            let w = (Double(p.learnedWeight) * 100).rounded() / 100
            return "blended(\(w) learned; \(s))"
        }
    }

    /// The number of tracks of each provenance kind.
    public func counts() -> [VectorProvenance.Kind: Int] {
        var out: [VectorProvenance.Kind: Int] = [:]
        for p in provenance { out[p.kind, default: 0] += 1 }
        return out
    }
}

/// The evidence blend: as plays arrive, a track moves from its predicted vector to its learned one.
///
/// With `n` the track's number of listeners, `k` the prior's weight in listeners (``ColdStartOptions/priorListeners``),
/// `ℓ` the learned (ALS) vector and `p` the predicted one (``ColdStartModel``):
///
/// `v = n / (n + k) · ℓ + k / (n + k) · p`
///
/// A track no one has played (`n = 0`) is purely predicted; a heavily played one (`n ≫ k`) is essentially learned;
/// at `n = k` the two weigh the same. A track with listeners and no prediction keeps `ℓ`; a track with neither has no
/// vector. With `k = 0` every played track keeps its learned vector.
public enum EvidenceBlend {
    /// The learned vector's weight `n / (n + k)`: 0 for `n = 0`, 1 for `n > 0` and `k = 0`.
    public static func learnedWeight(listeners n: Int, priorListeners k: Double) -> Float {
        guard n > 0 else { return 0 }
        return Float(Double(n) / (Double(n) + k))
    }

    /// Blends learned and predicted vectors track by track.
    /// - Parameters:
    ///   - learned: the learned CF vectors (rows of tracks without plays are ignored).
    ///   - listeners: each track's number of listeners.
    ///   - predicted: the cold-start predictions for the same tracks.
    ///   - priorListeners: `k`, at least 0.
    /// - Throws: ``HybridError`` for misaligned inputs or a bad `k`.
    public static func blend(
        learned: Matrix, listeners: [Int], predicted: ColdStartPrediction, priorListeners k: Double
    ) throws(HybridError) -> HybridVectors {
        guard k >= 0, k.isFinite else {
            throw .invalidParameter(name: "priorListeners", value: "\(k)", expected: "a finite value >= 0")
        }
        let n = learned.rows, f = learned.cols
        guard listeners.count == n, predicted.vectors.rows == n else {
            throw .shapeMismatch(
                "\(n) learned vectors, \(listeners.count) listener counts, \(predicted.vectors.rows) predicted vectors")
        }
        guard predicted.vectors.cols == f else {
            throw .shapeMismatch("learned vectors have \(f) factors, predicted ones \(predicted.vectors.cols)")
        }
        var out = Matrix(rows: n, cols: f)
        var provenance = [VectorProvenance](repeating: VectorProvenance(kind: .none, sources: 0, learnedWeight: 0), count: n)
        for t in 0..<n {
            let plays = listeners[t]
            guard plays >= 0 else {
                throw .invalidParameter(name: "listeners[\(t)]", value: "\(plays)", expected: "a count >= 0")
            }
            let bits = predicted.sources[t]
            let base = t * f
            switch (plays > 0, bits != 0) {
            case (false, false):
                continue
            case (false, true):
                for c in 0..<f { out.storage[base + c] = predicted.vectors.storage[base + c] }
                provenance[t] = VectorProvenance(kind: .predicted, sources: bits, learnedWeight: 0)
            case (true, false):
                for c in 0..<f { out.storage[base + c] = learned.storage[base + c] }
                provenance[t] = VectorProvenance(kind: .learned, sources: 0, learnedWeight: 1)
            case (true, true):
                let w = learnedWeight(listeners: plays, priorListeners: k)
                for c in 0..<f {
                    out.storage[base + c] = w * learned.storage[base + c] + (1 - w) * predicted.vectors.storage[base + c]
                }
                provenance[t] = VectorProvenance(kind: w == 1 ? .learned : .blended, sources: w == 1 ? 0 : bits, learnedWeight: w)
            }
        }
        return HybridVectors(vectors: out, provenance: provenance, sourceNames: predicted.sourceNames)
    }
}

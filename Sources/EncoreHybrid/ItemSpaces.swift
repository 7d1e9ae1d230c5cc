import EncoreCore

/// The item spaces available for search, each with its vectors, its presence mask and its metric, so the weekly job,
/// the playlists and the server can build one index per space.
///
/// - `cf`: the learned ALS item vectors, inner product (tracks with listeners).
/// - content spaces (`audio`, `text`, `sequence`, ...): cosine over their vectors (tracks that have one).
/// - `hybrid`: the blended vectors of ``EvidenceBlend``, inner product (tracks with any provenance but `none`), so a
///   user vector scores cold and warm tracks alike.
public struct ItemSpaces: Sendable, Equatable {
    /// How a space's vectors compare.
    public enum Metric: String, Sendable, Equatable, Codable {
        /// Inner product (larger is closer).
        case innerProduct = "ip"
        /// Cosine similarity.
        case cosine
    }

    /// One searchable space.
    public struct Space: Sendable, Equatable {
        /// The space's name: `cf`, `hybrid` or a content space's.
        public let name: String
        /// The metric to index it by.
        public let metric: Metric
        /// One row per track.
        public let vectors: Matrix
        /// Whether track `i` has a vector in this space.
        public let present: [Bool]

        /// A space from its parts.
        public init(name: String, metric: Metric, vectors: Matrix, present: [Bool]) throws(HybridError) {
            guard present.count == vectors.rows else {
                throw .shapeMismatch("space '\(name)': \(present.count) presence flags for \(vectors.rows) rows")
            }
            self.name = name
            self.metric = metric
            self.vectors = vectors
            self.present = present
        }

        /// The number of tracks with a vector.
        public var presentCount: Int { present.reduce(0) { $0 + ($1 ? 1 : 0) } }
        /// The ids (row indices) of the tracks with a vector, ascending: what an index over this space holds.
        public var presentItems: [Int32] { present.indices.filter { present[$0] }.map { Int32($0) } }
    }

    /// The spaces: `cf` first, then the content spaces in the order given, then `hybrid`.
    public let spaces: [Space]
    /// The provenance of each track's hybrid vector.
    public let hybrid: HybridVectors

    /// The spaces of a catalogue.
    /// - Parameters:
    ///   - learned: the ALS item vectors.
    ///   - listeners: each track's number of listeners (a track without any has no `cf` vector).
    ///   - content: the content spaces.
    ///   - hybrid: the blended vectors (``EvidenceBlend/blend(learned:listeners:predicted:priorListeners:)``).
    /// - Throws: ``HybridError/shapeMismatch(_:)`` when the spaces cover different numbers of tracks.
    public init(learned: Matrix, listeners: [Int], content: [ContentSpace], hybrid: HybridVectors) throws(HybridError) {
        let n = learned.rows
        guard listeners.count == n, hybrid.vectors.rows == n, content.allSatisfy({ $0.count == n }) else {
            throw .shapeMismatch(
                "item spaces of different sizes: cf \(n), listeners \(listeners.count), hybrid \(hybrid.vectors.rows), "
                    + content.map { "\($0.name) \($0.count)" }.joined(separator: ", "))
        }
        var spaces = [try Space(name: "cf", metric: .innerProduct, vectors: learned, present: listeners.map { $0 > 0 })]
        for c in content { spaces.append(try Space(name: c.name, metric: .cosine, vectors: c.vectors, present: c.present)) }
        spaces.append(try Space(
            name: "hybrid", metric: .innerProduct, vectors: hybrid.vectors, present: hybrid.provenance.map { $0.kind != .none }))
        self.spaces = spaces
        self.hybrid = hybrid
    }

    /// The space named `name`, if any.
    public subscript(name: String) -> Space? { spaces.first { $0.name == name } }

    /// The space names, in order.
    public var names: [String] { spaces.map(\.name) }
}

extension ColdStartModel {
    /// The number of distinct listeners of each item in a users x items matrix (stored entries per column).
    public static func listeners(userItems: CSRMatrix) -> [Int] {
        var out = [Int](repeating: 0, count: userItems.cols)
        for i in userItems.indices { out[Int(i)] += 1 }
        return out
    }
}

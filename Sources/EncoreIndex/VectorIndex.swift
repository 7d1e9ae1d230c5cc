import EncoreCore

/// The distance an index ranks by. Smaller is closer for every metric.
public enum VectorMetric: String, Sendable, Codable, CaseIterable {
    /// `1 − cos(a, b)`; vectors are L2-normalized when added. A zero vector (stored or queried) has no direction:
    /// its cosine with anything is taken as 0, so it is at distance exactly 1 from every vector, as in hnswlib and
    /// faiss.
    case cosine
    /// Squared Euclidean distance `‖a − b‖²`.
    case l2
    /// Negative inner product `−a·b` (maximum inner-product search).
    case innerProduct = "ip"
}

/// One search result: an id and its distance to the query under the index's metric (smaller is closer).
public struct Neighbor: Sendable, Equatable, Hashable {
    /// The id given when the vector was added.
    public var id: Int32
    /// The distance under the index's ``VectorMetric``: `1 − cos`, squared L2, or `−a·b`.
    public var distance: Float

    /// A result.
    public init(id: Int32, distance: Float) {
        self.id = id
        self.distance = distance
    }
}

/// Which ids a search may return.
public enum SearchFilter: Sendable {
    /// Only the ids whose bit is set (a bitset over ids: bit `id % 64` of word `id / 64`).
    case allowed(IDBitset)
    /// Every id except those whose bit is set ("not already played").
    case excluded(IDBitset)
    /// Only the ids for which the predicate returns true. It is called from search threads.
    case predicate(@Sendable (Int32) -> Bool)

    /// Whether `id` may be returned.
    @inlinable
    public func allows(_ id: Int32) -> Bool {
        switch self {
        case .allowed(let b): return b.contains(id)
        case .excluded(let b): return !b.contains(id)
        case .predicate(let p): return p(id)
        }
    }
}

/// A k-nearest-neighbor index over `Float` vectors of one dimension, queried by any thread.
public protocol VectorIndex: Sendable {
    /// The dimension of the vectors.
    var dimension: Int { get }
    /// The metric results are ranked by.
    var metric: VectorMetric { get }
    /// The number of live (not deleted) vectors.
    var count: Int { get }
    /// The `k` nearest live vectors to `query` that the filter allows, closest first (fewer only when fewer exist).
    func search(_ query: [Float], k: Int, filter: SearchFilter?) throws(IndexError) -> [Neighbor]
}

/// Errors from building, querying, saving and loading indexes.
public enum IndexError: Error, Equatable, CustomStringConvertible {
    /// A vector or query has the wrong number of values.
    case dimensionMismatch(expected: Int, got: Int)
    /// A vector holds NaN or infinity, or its norm overflows.
    case invalidVector(id: Int32, reason: String)
    /// A parameter is out of range.
    case invalidParameter(String)
    /// An id is unknown, deleted, or already present.
    case invalidID(Int32, reason: String)
    /// A file could not be read or written.
    case io(path: String, reason: String)
    /// A file is not an index of this kind or version, or is damaged.
    case corruptFile(path: String, reason: String)

    public var description: String {
        switch self {
        case .dimensionMismatch(let e, let g): return "vector has \(g) values, the index \(e)"
        case .invalidVector(let id, let r): return "vector \(id): \(r)"
        case .invalidParameter(let s): return "invalid parameter: \(s)"
        case .invalidID(let id, let r): return "id \(id): \(r)"
        case .io(let p, let r): return "\(p): \(r)"
        case .corruptFile(let p, let r): return "\(p): not a valid index file: \(r)"
        }
    }
}

extension IndexError: FileErrorConvertible {
    /// A file that could not be read or written (``io(path:reason:)``), e.g. "cannot fsync x.tmp-…: I/O error".
    public init(_ file: FileError) { self = .io(path: file.path, reason: "cannot \(file.operation): \(file.reason)") }
}

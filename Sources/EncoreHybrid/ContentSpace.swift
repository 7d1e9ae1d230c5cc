import EncoreCore

/// Errors of the cold-start and hybrid layer. Each case says what was wrong and with which input.
public enum HybridError: Error, Equatable, CustomStringConvertible {
    /// An option or argument is out of range: its name, the value given and what was expected.
    case invalidParameter(name: String, value: String, expected: String)
    /// Two inputs do not line up (rows, columns, mask lengths).
    case shapeMismatch(String)
    /// Too few tracks with enough listeners to fit anything.
    case notEnoughWarmTracks(warm: Int, minListeners: Int, needed: Int)
    /// A linear solve failed (the matrix was not positive definite even with the ridge term).
    case solveFailed(String)

    public var description: String {
        switch self {
        case .invalidParameter(let name, let value, let expected):
            return "invalid parameter '\(name)' = \(value): expected \(expected)"
        case .shapeMismatch(let s):
            return "shape mismatch: \(s)"
        case .notEnoughWarmTracks(let warm, let minListeners, let needed):
            return "only \(warm) tracks have at least \(minListeners) listeners; the cold-start model needs \(needed) "
                + "(lower minListeners or give more plays)"
        case .solveFailed(let s):
            return "linear solve failed: \(s)"
        }
    }
}

/// A named, item-aligned matrix of content vectors: row `i` is track `i`'s vector when `present[i]`, and a track may
/// have none (no text, no recording, too few plays for a sequence vector).
///
/// Rows of absent tracks are ignored (they are usually zero). Names such as `audio`, `text` and `sequence` identify
/// the space in reports and provenance.
public struct ContentSpace: Sendable, Equatable {
    /// The space's name (`audio`, `text`, `sequence`, ...).
    public let name: String
    /// One row per track, `Float32`.
    public let vectors: Matrix
    /// Whether track `i` has a vector.
    public let present: [Bool]

    /// A space over `vectors` with the given presence mask (`nil`: every row present).
    /// - Throws: ``HybridError/shapeMismatch(_:)`` when the mask length differs from the row count,
    ///   ``HybridError/invalidParameter(name:value:expected:)`` for an empty name or a non-finite present value.
    public init(name: String, vectors: Matrix, present: [Bool]? = nil) throws(HybridError) {
        guard !name.isEmpty else { throw .invalidParameter(name: "name", value: "\"\"", expected: "a non-empty space name") }
        let mask = present ?? [Bool](repeating: true, count: vectors.rows)
        guard mask.count == vectors.rows else {
            throw .shapeMismatch("space '\(name)': \(mask.count) presence flags for \(vectors.rows) rows")
        }
        for r in 0..<vectors.rows where mask[r] {
            for c in 0..<vectors.cols where !vectors[r, c].isFinite {
                throw .invalidParameter(
                    name: "\(name)[\(r)][\(c)]", value: "\(vectors[r, c])", expected: "a finite vector component")
            }
        }
        self.name = name
        self.vectors = vectors
        self.present = mask
    }

    /// A space aligned to `itemIDs` from vectors keyed by `ids`: rows of ids the catalogue does not know are dropped,
    /// tracks without a vector are absent. The first row of a repeated id wins.
    public static func aligning(name: String, ids: [String], vectors: Matrix, to itemIDs: IDMap) throws(HybridError) -> ContentSpace {
        guard ids.count == vectors.rows else {
            throw .shapeMismatch("space '\(name)': \(ids.count) ids for \(vectors.rows) vector rows")
        }
        var out = Matrix(rows: itemIDs.count, cols: vectors.cols)
        var present = [Bool](repeating: false, count: itemIDs.count)
        for (r, id) in ids.enumerated() {
            guard let i = itemIDs.index(of: id), !present[Int(i)] else { continue }
            present[Int(i)] = true
            out.storage.replaceSubrange(
                (Int(i) * vectors.cols)..<((Int(i) + 1) * vectors.cols),
                with: vectors.storage[(r * vectors.cols)..<((r + 1) * vectors.cols)])
        }
        return try ContentSpace(name: name, vectors: out, present: present)
    }

    /// The number of tracks (rows).
    public var count: Int { vectors.rows }
    /// The vector dimension.
    public var dimension: Int { vectors.cols }
    /// The number of tracks with a vector.
    public var presentCount: Int { present.reduce(0) { $0 + ($1 ? 1 : 0) } }
}

import Foundation

/// A dense, row-major matrix of `Float` values.
///
/// Factors and embeddings are stored as `Matrix`: row `i` is the vector of user or item `i`.
/// The storage is one contiguous array, so a row can be handed to BLAS without copying.
public struct Matrix: Sendable, Equatable {
    /// Number of rows.
    public private(set) var rows: Int
    /// Number of columns.
    public let cols: Int
    /// Row-major storage, `rows * cols` values.
    public var storage: [Float]

    /// A matrix of zeros.
    public init(rows: Int, cols: Int) {
        precondition(rows >= 0 && cols >= 0, "matrix dimensions must be non-negative")
        self.rows = rows
        self.cols = cols
        self.storage = [Float](repeating: 0, count: rows * cols)
    }

    /// A matrix over existing row-major values.
    /// - Throws: ``LinalgError/shapeMismatch(_:)`` when `storage.count != rows * cols`.
    public init(rows: Int, cols: Int, storage: [Float]) throws(LinalgError) {
        guard rows >= 0, cols >= 0, storage.count == rows * cols else {
            throw .shapeMismatch("storage has \(storage.count) values, expected \(rows) x \(cols)")
        }
        self.rows = rows
        self.cols = cols
        self.storage = storage
    }

    /// A matrix with values drawn uniformly from `[0, scale)` by a seeded generator.
    public static func random(rows: Int, cols: Int, scale: Float, seed: UInt64) -> Matrix {
        var m = Matrix(rows: rows, cols: cols)
        var rng = SplitMix64(seed: seed)
        for i in 0..<m.storage.count { m.storage[i] = rng.nextFloat() * scale }
        return m
    }

    /// The element at row `r`, column `c`.
    @inlinable
    public subscript(r: Int, c: Int) -> Float {
        get { storage[r * cols + c] }
        set { storage[r * cols + c] = newValue }
    }

    /// A copy of row `r`.
    public func row(_ r: Int) -> [Float] {
        Array(storage[(r * cols)..<((r + 1) * cols)])
    }

    /// Whether row `r` is all zeros (an item or user without a learned vector), read in place.
    public func isZeroRow(_ r: Int) -> Bool {
        storage.withUnsafeBufferPointer { s in !s[(r * cols)..<((r + 1) * cols)].contains { $0 != 0 } }
    }

    /// Replaces row `r` with `values` (which must have `cols` elements).
    public mutating func setRow(_ r: Int, _ values: [Float]) {
        precondition(values.count == cols, "row length \(values.count) != \(cols)")
        storage.replaceSubrange((r * cols)..<((r + 1) * cols), with: values)
    }

    /// Appends zero rows until the matrix has `newRows` rows.
    public mutating func grow(toRows newRows: Int) {
        guard newRows > rows else { return }
        storage.append(contentsOf: repeatElement(0, count: (newRows - rows) * cols))
        rows = newRows
    }

    /// The Euclidean norm of every row.
    public func rowNorms() -> [Float] {
        var norms = [Float](repeating: 0, count: rows)
        storage.withUnsafeBufferPointer { s in
            for r in 0..<rows {
                norms[r] = Kernels.dot(s.baseAddress! + r * cols, s.baseAddress! + r * cols, cols).squareRoot()
            }
        }
        return norms
    }

    /// A copy whose rows have unit length (zero rows stay zero).
    public func rowNormalized() -> Matrix {
        var out = self
        let norms = rowNorms()
        out.storage.withUnsafeMutableBufferPointer { s in
            for r in 0..<rows where norms[r] > 0 {
                let inv = 1 / norms[r]
                for c in 0..<cols { s[r * cols + c] *= inv }
            }
        }
        return out
    }
}

/// Errors from the linear-algebra layer.
public enum LinalgError: Error, Equatable, CustomStringConvertible {
    /// Two operands do not have compatible shapes.
    case shapeMismatch(String)
    /// A LAPACK routine reported failure (`info` is its return code).
    case lapackFailure(routine: String, info: Int32)

    public var description: String {
        switch self {
        case .shapeMismatch(let s): return "shape mismatch: \(s)"
        case .lapackFailure(let routine, let info):
            return "\(routine) failed with info=\(info) (matrix not positive definite or singular)"
        }
    }
}

/// A small, fast, seedable pseudo-random generator (SplitMix64), deterministic on every platform.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    /// Creates a generator from a seed.
    public init(seed: UInt64) { state = seed }

    /// The next 64 random bits.
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A uniform `Float` in `[0, 1)`.
    public mutating func nextFloat() -> Float {
        Float(next() >> 40) * (1.0 / Float(1 << 24))
    }

    /// A uniform `Double` in `[0, 1)`.
    public mutating func nextDouble() -> Double {
        Double(next() >> 11) * (1.0 / Double(UInt64(1) << 53))
    }

    /// A standard normal variate (Box-Muller).
    public mutating func nextGaussian() -> Double {
        var u = nextDouble()
        if u < 1e-300 { u = 1e-300 }
        let v = nextDouble()
        return (-2 * Foundation.log(u)).squareRoot() * Foundation.cos(2 * Double.pi * v)
    }
}


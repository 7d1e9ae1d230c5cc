/// A compressed sparse row matrix of `Float` values with `Int32` column indices.
///
/// Rows are users and columns items (or the transpose). Within a row, column indices are sorted and unique.
/// Memory is O(nnz + rows).
public struct CSRMatrix: Sendable, Equatable {
    /// Number of rows.
    public let rows: Int
    /// Number of columns.
    public let cols: Int
    /// Row `r` occupies `indptr[r]..<indptr[r+1]` in `indices` and `values`; `rows + 1` entries.
    public private(set) var indptr: [Int]
    /// Column index of each stored value.
    public private(set) var indices: [Int32]
    /// The stored values.
    public var values: [Float]

    /// The number of stored values.
    public var nnz: Int { indices.count }

    /// A matrix from its raw CSR arrays; validates shapes, bounds and ordering.
    public init(rows: Int, cols: Int, indptr: [Int], indices: [Int32], values: [Float]) throws(DataError) {
        guard indptr.count == rows + 1, indptr.first == 0, indptr.last == indices.count,
              indices.count == values.count
        else { throw .invalidArgument("CSR arrays do not match: indptr \(indptr.count), rows \(rows), nnz \(indices.count)/\(values.count)") }
        for r in 0..<rows {
            guard indptr[r] <= indptr[r + 1] else { throw .invalidArgument("indptr decreases at row \(r)") }
            var prev: Int32 = -1
            for j in indptr[r]..<indptr[r + 1] {
                let c = indices[j]
                guard c >= 0, Int(c) < cols else { throw .indexOutOfRange("column \(c) in row \(r), \(cols) columns") }
                guard c > prev else { throw .invalidArgument("columns not sorted and unique in row \(r)") }
                prev = c
            }
        }
        self.rows = rows
        self.cols = cols
        self.indptr = indptr
        self.indices = indices
        self.values = values
    }

    private init(unchecked rows: Int, cols: Int, indptr: [Int], indices: [Int32], values: [Float]) {
        self.rows = rows
        self.cols = cols
        self.indptr = indptr
        self.indices = indices
        self.values = values
    }

    /// Builds a matrix from unsorted `(row, col, value)` triples; duplicates are summed.
    ///
    /// Two counting-sort passes (by column, then stably by row) give sorted rows in O(nnz + rows + cols) time.
    public init(rows: Int, cols: Int, rowIndices: [Int32], colIndices: [Int32], values: [Float]) throws(DataError) {
        let n = rowIndices.count
        guard colIndices.count == n, values.count == n else {
            throw .invalidArgument("triples have \(n) rows, \(colIndices.count) columns, \(values.count) values")
        }
        for t in 0..<n {
            let r = rowIndices[t], c = colIndices[t]
            guard r >= 0, Int(r) < rows else { throw .indexOutOfRange("row \(r) of \(rows) in triple \(t)") }
            guard c >= 0, Int(c) < cols else { throw .indexOutOfRange("column \(c) of \(cols) in triple \(t)") }
        }
        self.init(validTriples: rows, cols: cols, rowIndices: rowIndices, colIndices: colIndices, values: values)
    }

    /// Builds from triples already known to be in range and of equal length.
    package init(validTriples rows: Int, cols: Int, rowIndices: [Int32], colIndices: [Int32], values: [Float]) {
        let n = rowIndices.count
        // Pass 1: order by column.
        var colStart = [Int](repeating: 0, count: cols + 1)
        for c in colIndices { colStart[Int(c) + 1] += 1 }
        for c in 0..<cols { colStart[c + 1] += colStart[c] }
        var byCol = [Int32](repeating: 0, count: n)
        var next = colStart
        for t in 0..<n {
            let c = Int(colIndices[t])
            byCol[next[c]] = Int32(truncatingIfNeeded: t)
            next[c] += 1
        }
        // Pass 2: stable order by row.
        var rowStart = [Int](repeating: 0, count: rows + 1)
        for r in rowIndices { rowStart[Int(r) + 1] += 1 }
        for r in 0..<rows { rowStart[r + 1] += rowStart[r] }
        var order = [Int](repeating: 0, count: n)
        var rnext = rowStart
        for t in byCol {
            let r = Int(rowIndices[Int(t)])
            order[rnext[r]] = Int(t)
            rnext[r] += 1
        }
        // Merge duplicates.
        var indptr = [Int](repeating: 0, count: rows + 1)
        var outIdx = [Int32]()
        var outVal = [Float]()
        outIdx.reserveCapacity(n)
        outVal.reserveCapacity(n)
        for r in 0..<rows {
            var last: Int32 = -1
            for p in rowStart[r]..<rowStart[r + 1] {
                let t = order[p]
                let c = colIndices[t]
                if c == last {
                    outVal[outVal.count - 1] += values[t]
                } else {
                    outIdx.append(c)
                    outVal.append(values[t])
                    last = c
                }
            }
            indptr[r + 1] = outIdx.count
        }
        self.init(unchecked: rows, cols: cols, indptr: indptr, indices: outIdx, values: outVal)
    }

    /// A matrix with no stored values.
    public static func empty(rows: Int, cols: Int) -> CSRMatrix {
        CSRMatrix(unchecked: max(0, rows), cols: max(0, cols), indptr: [Int](repeating: 0, count: max(0, rows) + 1),
                  indices: [], values: [])
    }

    /// The transpose (columns become rows), also in CSR form.
    public func transposed() -> CSRMatrix {
        var start = [Int](repeating: 0, count: cols + 1)
        for c in indices { start[Int(c) + 1] += 1 }
        for c in 0..<cols { start[c + 1] += start[c] }
        var next = start
        var tIdx = [Int32](repeating: 0, count: nnz)
        var tVal = [Float](repeating: 0, count: nnz)
        for r in 0..<rows {
            for p in indptr[r]..<indptr[r + 1] {
                let c = Int(indices[p])
                tIdx[next[c]] = Int32(r)
                tVal[next[c]] = values[p]
                next[c] += 1
            }
        }
        return CSRMatrix(unchecked: cols, cols: rows, indptr: start, indices: tIdx, values: tVal)
    }

    /// The column indices of row `r`.
    public func columns(ofRow r: Int) -> ArraySlice<Int32> { indices[indptr[r]..<indptr[r + 1]] }

    /// The values of row `r`.
    public func values(ofRow r: Int) -> ArraySlice<Float> { values[indptr[r]..<indptr[r + 1]] }

    /// The number of stored values in row `r`.
    public func count(ofRow r: Int) -> Int { indptr[r + 1] - indptr[r] }

    /// The value at `(r, c)`, or zero when it is not stored (binary search within the row).
    public func value(row r: Int, col c: Int32) -> Float {
        var lo = indptr[r], hi = indptr[r + 1]
        while lo < hi {
            let mid = (lo + hi) / 2
            if indices[mid] < c { lo = mid + 1 } else { hi = mid }
        }
        return lo < indptr[r + 1] && indices[lo] == c ? values[lo] : 0
    }

    /// The sum of each row's values.
    public func rowSums() -> [Float] {
        (0..<rows).map { r in values[indptr[r]..<indptr[r + 1]].reduce(0, +) }
    }

    /// A copy with every stored value transformed by `f`.
    public func mapValues(_ f: (Float) -> Float) -> CSRMatrix {
        var out = self
        for i in 0..<out.values.count { out.values[i] = f(out.values[i]) }
        return out
    }

    /// A copy restricted to the given rows, in the given order (the result has `rowList.count` rows).
    public func selectingRows(_ rowList: [Int32]) -> CSRMatrix {
        var ptr = [0]
        var idx = [Int32]()
        var val = [Float]()
        for r in rowList {
            let rr = Int(r)
            idx.append(contentsOf: indices[indptr[rr]..<indptr[rr + 1]])
            val.append(contentsOf: values[indptr[rr]..<indptr[rr + 1]])
            ptr.append(idx.count)
        }
        return CSRMatrix(unchecked: rowList.count, cols: cols, indptr: ptr, indices: idx, values: val)
    }
}

/// What "popular" means for ``CSRMatrix/popularityRanking(measure:)``.
public enum PopularityMeasure: String, Sendable, Codable, CaseIterable {
    /// The sum of an item's training values (total plays when values are play counts).
    case totalWeight
    /// The number of distinct training users of an item.
    case userCount
}

extension CSRMatrix {
    /// The items of the matrix (a users x items matrix) from most to least popular.
    ///
    /// Ties, including the items never played (popularity 0, at the end), are in increasing index order.
    public func popularityRanking(measure: PopularityMeasure = .totalWeight) -> [Int32] {
        var popularity = [Double](repeating: 0, count: cols)
        for p in 0..<nnz {
            let i = Int(indices[p])
            switch measure {
            case .totalWeight: popularity[i] += Double(values[p])
            case .userCount: popularity[i] += 1
            }
        }
        return (0..<cols).sorted { a, b in
            popularity[a] != popularity[b] ? popularity[a] > popularity[b] : a < b
        }.map { Int32($0) }
    }
}

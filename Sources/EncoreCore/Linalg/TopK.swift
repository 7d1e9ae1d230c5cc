/// Partial top-k selection: the `k` largest scores and their indices, best first.
///
/// A bounded min-heap over `k` entries: O(n log k), no allocation beyond the result.
public struct TopK: Sendable {
    /// The indices of the selected entries, best first.
    public private(set) var indices: [Int32] = []
    /// The scores of the selected entries, best first.
    public private(set) var scores: [Float] = []
    private let k: Int
    private var heapScores: [Float] = []
    private var heapIndices: [Int32] = []

    /// An empty selection of at most `k` entries.
    public init(k: Int) {
        self.k = max(0, k)
        heapScores.reserveCapacity(self.k)
        heapIndices.reserveCapacity(self.k)
    }

    /// The score an entry must beat to be selected now (−∞ until `k` entries are held).
    @inlinable public var threshold: Float { heapCount < kValue ? -.infinity : heapMin }

    @usableFromInline var heapCount: Int { heapScores.count }
    @usableFromInline var kValue: Int { k }
    @usableFromInline var heapMin: Float { heapScores[0] }

    /// Offers an entry. Ties keep the lower index (deterministic).
    public mutating func push(_ index: Int32, _ score: Float) {
        guard k > 0, !score.isNaN else { return }
        if heapScores.count < k {
            heapScores.append(score)
            heapIndices.append(index)
            siftUp(heapScores.count - 1)
        } else if better(score, index, than: heapScores[0], heapIndices[0]) {
            heapScores[0] = score
            heapIndices[0] = index
            siftDown(0)
        }
    }

    /// Finishes the selection: `indices` and `scores`, best first.
    public mutating func finish() {
        var pairs = Array(zip(heapIndices, heapScores))
        pairs.sort { better($0.1, $0.0, than: $1.1, $1.0) }
        indices = pairs.map(\.0)
        scores = pairs.map(\.1)
    }

    /// Selects the top `k` of `scores[0..<n]`, skipping indices for which `exclude` returns true.
    public static func select(
        _ scores: UnsafeBufferPointer<Float>, k: Int, exclude: ((Int32) -> Bool)? = nil
    ) -> (indices: [Int32], scores: [Float]) {
        var top = TopK(k: k)
        for i in 0..<scores.count {
            let s = scores[i]
            if s < top.threshold { continue }
            if let exclude, exclude(Int32(i)) { continue }
            top.push(Int32(i), s)
        }
        top.finish()
        return (top.indices, top.scores)
    }

    @inline(__always)
    private func better(_ s1: Float, _ i1: Int32, than s2: Float, _ i2: Int32) -> Bool {
        s1 > s2 || (s1 == s2 && i1 < i2)
    }

    private mutating func siftUp(_ start: Int) {
        var c = start
        while c > 0 {
            let p = (c - 1) / 2
            if better(heapScores[p], heapIndices[p], than: heapScores[c], heapIndices[c]) {
                heapScores.swapAt(p, c)
                heapIndices.swapAt(p, c)
                c = p
            } else { break }
        }
    }

    private mutating func siftDown(_ start: Int) {
        var p = start
        let n = heapScores.count
        while true {
            let l = 2 * p + 1, r = l + 1
            var m = p
            if l < n && better(heapScores[m], heapIndices[m], than: heapScores[l], heapIndices[l]) { m = l }
            if r < n && better(heapScores[m], heapIndices[m], than: heapScores[r], heapIndices[r]) { m = r }
            if m == p { break }
            heapScores.swapAt(p, m)
            heapIndices.swapAt(p, m)
            p = m
        }
    }
}

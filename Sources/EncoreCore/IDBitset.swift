/// A fixed-size set of non-negative `Int32` ids, one bit each.
public struct IDBitset: Sendable, Equatable {
    /// The words, 64 ids each.
    public private(set) var words: [UInt64]

    /// An empty set able to hold ids below `capacity`.
    public init(capacity: Int) { words = [UInt64](repeating: 0, count: (max(0, capacity) + 63) / 64) }

    /// A set holding `ids`, sized to the largest.
    public init<S: Sequence>(_ ids: S) where S.Element == Int32 {
        let list = Array(ids)
        self.init(capacity: Int((list.max() ?? -1) + 1))
        for id in list { insert(id) }
    }

    /// Adds `id` (growing the set when needed; negative ids are ignored).
    public mutating func insert(_ id: Int32) {
        guard id >= 0 else { return }
        let w = Int(id) >> 6
        if w >= words.count { words.append(contentsOf: repeatElement(0, count: w - words.count + 1)) }
        words[w] |= 1 << UInt64(id & 63)
    }

    /// Removes `id`.
    public mutating func remove(_ id: Int32) {
        let w = Int(id) >> 6
        guard id >= 0, w < words.count else { return }
        words[w] &= ~(1 << UInt64(id & 63))
    }

    /// Whether `id` is in the set.
    @inlinable
    public func contains(_ id: Int32) -> Bool {
        let w = Int(id) >> 6
        return id >= 0 && w < words.count && words[w] & (1 << UInt64(id & 63)) != 0
    }

    /// The number of ids in the set.
    public var count: Int { words.reduce(0) { $0 + $1.nonzeroBitCount } }

    /// Adds every id of `other` (growing the set when needed).
    public mutating func formUnion(_ other: IDBitset) {
        if other.words.count > words.count { words.append(contentsOf: repeatElement(0, count: other.words.count - words.count)) }
        words.withUnsafeMutableBufferPointer { w in
            other.words.withUnsafeBufferPointer { o in
                for i in 0..<o.count { w[i] |= o[i] }
            }
        }
    }

    /// Keeps only the ids also in `other`.
    public mutating func formIntersection(_ other: IDBitset) {
        words.withUnsafeMutableBufferPointer { w in
            other.words.withUnsafeBufferPointer { o in
                for i in 0..<w.count { w[i] &= i < o.count ? o[i] : 0 }
            }
        }
    }
}

/// A stable, two-way map between external string ids and dense `Int32` indices.
///
/// Indices are handed out in order of first appearance, so the map is deterministic for a given input order, and
/// it is saved in the bundle so a model's rows keep their meaning.
public struct IDMap: Sendable, Equatable {
    /// The external ids, in index order.
    public private(set) var ids: [String] = []
    private var lookup: [String: Int32] = [:]

    /// An empty map.
    public init() {}

    /// A map over `ids` in order; fails on a duplicate id.
    public init(ids: [String]) throws(DataError) {
        self.ids = ids
        lookup.reserveCapacity(ids.count)
        for (i, id) in ids.enumerated() {
            if lookup.updateValue(Int32(i), forKey: id) != nil { throw .duplicateID(id) }
        }
    }

    /// The number of ids.
    public var count: Int { ids.count }

    /// The dense index of `id`, or `nil` when it is unknown.
    public func index(of id: String) -> Int32? { lookup[id] }

    /// The external id at `index`.
    public func id(at index: Int32) -> String { ids[Int(index)] }

    /// The index of `id`, adding it at the end when it is new.
    @discardableResult
    public mutating func intern(_ id: String) -> Int32 {
        if let i = lookup[id] { return i }
        let i = Int32(ids.count)
        ids.append(id)
        lookup[id] = i
        return i
    }

    public static func == (a: IDMap, b: IDMap) -> Bool { a.ids == b.ids }
}

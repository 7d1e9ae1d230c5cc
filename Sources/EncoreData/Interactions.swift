import EncoreCore

/// A log of user-item interactions with their external ids: the input of training and evaluation.
///
/// Each interaction has a user, an item, a weight (a play count, or 1 for one event) and optionally a timestamp
/// (seconds since the epoch). Repeated pairs are allowed; ``matrix()`` sums them.
public struct Interactions: Sendable, Equatable {
    /// The user ids; `users` holds indices into it.
    public var userIDs: IDMap
    /// The item ids; `items` holds indices into it.
    public var itemIDs: IDMap
    /// The user of each interaction.
    public var users: [Int32]
    /// The item of each interaction.
    public var items: [Int32]
    /// The weight of each interaction.
    public var weights: [Float]
    /// The timestamp of each interaction, or empty when the source had none.
    public var timestamps: [Int64]

    /// An interaction log; `timestamps` may be empty.
    public init(
        userIDs: IDMap, itemIDs: IDMap, users: [Int32], items: [Int32], weights: [Float], timestamps: [Int64] = []
    ) throws(DataError) {
        guard items.count == users.count, weights.count == users.count,
              timestamps.isEmpty || timestamps.count == users.count
        else { throw .invalidArgument("interaction columns have different lengths") }
        self.userIDs = userIDs
        self.itemIDs = itemIDs
        self.users = users
        self.items = items
        self.weights = weights
        self.timestamps = timestamps
    }

    /// An empty log.
    public init() {
        userIDs = IDMap(); itemIDs = IDMap(); users = []; items = []; weights = []; timestamps = []
    }

    /// The number of interactions.
    public var count: Int { users.count }

    /// Whether every interaction has a timestamp.
    public var hasTimestamps: Bool { !timestamps.isEmpty }

    /// Appends one interaction by external ids.
    public mutating func append(user: String, item: String, weight: Float = 1, timestamp: Int64? = nil) {
        users.append(userIDs.intern(user))
        items.append(itemIDs.intern(item))
        weights.append(weight)
        if let timestamp {
            if timestamps.count == users.count - 1 { timestamps.append(timestamp) }
        } else if !timestamps.isEmpty {
            timestamps.append(0)
        }
    }

    /// The users x items matrix, duplicates summed.
    public func matrix() -> CSRMatrix {
        // Indices come from the id maps, so they are always in range.
        CSRMatrix(validTriples: userIDs.count, cols: itemIDs.count, rowIndices: users, colIndices: items, values: weights)
    }

    /// The interactions at the given positions, keeping both id maps (so matrices of subsets share a shape).
    public func subset(_ positions: [Int]) -> Interactions {
        var out = self
        out.users = positions.map { users[$0] }
        out.items = positions.map { items[$0] }
        out.weights = positions.map { weights[$0] }
        out.timestamps = timestamps.isEmpty ? [] : positions.map { timestamps[$0] }
        return out
    }
}

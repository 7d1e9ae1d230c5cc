import Foundation
import EncoreCore
import EncoreIndex
import EncoreFactorization
import EncorePlaylists

/// One shard `I/N` of the users: the users whose stable hash of their id is `I` modulo `N`.
///
/// The hash is XXH64 (seed 0) of the id's UTF-8 bytes, the same on every machine, process and run (not Swift's
/// per-process randomized `Hasher`), so a router, the weekly job's shard tasks and the shard servers all agree on
/// who owns a user: `shard(of: "u000448", count: 4)` is `XXH64("u000448") % 4`. Shards are numbered from 0.
public struct UserShard: Sendable, Equatable, Hashable, CustomStringConvertible {
    /// The shard's number, `0..<count`.
    public let index: Int
    /// The number of shards.
    public let count: Int

    /// The shard `index` of `count`.
    /// - Throws: ``ShardError`` when `count < 1` or `index` is outside `0..<count`.
    public init(index: Int, count: Int, option: String = "--users-shard") throws(ShardError) {
        guard count >= 1 else { throw ShardError("\(option) \(index)/\(count): the shard count N must be at least 1") }
        guard index >= 0, index < count else {
            throw ShardError("\(option) \(index)/\(count): the shard number I must be in 0..<\(count) (shards are numbered from 0)")
        }
        self.index = index
        self.count = count
    }

    /// Parses `I/N` (e.g. `0/4`), naming `option` in the error.
    /// - Throws: ``ShardError`` for text that is not two integers separated by `/`, or an impossible pair.
    public init(parsing text: String, option: String = "--users-shard") throws(ShardError) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let i = Int(parts[0]), let n = Int(parts[1]) else {
            throw ShardError("\(option) '\(text)': expected I/N, the shard number and the shard count (e.g. 0/4)")
        }
        try self.init(index: i, count: n, option: option)
    }

    /// `I/N`.
    public var description: String { "\(index)/\(count)" }

    /// The shard (of `count`) that owns `user`: XXH64 (seed 0) of its UTF-8 bytes, modulo `count`.
    public static func shard(of user: String, count: Int) -> Int {
        precondition(count >= 1, "a shard count is at least 1")
        var id = user
        let h = id.withUTF8 { XXHash64.hash(UnsafeRawBufferPointer($0)) }
        return Int(h % UInt64(count))
    }

    /// Whether this shard owns `user`.
    public func contains(_ user: String) -> Bool { Self.shard(of: user, count: count) == index }

    /// The rows (in order) of `users` that this shard owns.
    public func rows(of users: IDMap) -> [Int32] {
        users.ids.indices.filter { contains(users.ids[$0]) }.map { Int32($0) }
    }

    /// How the hash is named in files: `xxh64-utf8-mod-n`.
    public static let hashName = "xxh64-utf8-mod-n"
}

/// A user shard option, a shard part or a sharded bundle manifest that is wrong, in a sentence naming it.
public struct ShardError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The message.
    public let description: String
    /// An error with its message.
    public init(_ description: String) { self.description = description }
}

/// The user side of one shard: its users' ids, factors, training rows and playlists (`encore-train playlists`
/// writes it as `part-I.h5`); with the item side (the bundle it was made from) it is what a shard server loads.
/// The factors and training rows make the part a self-contained record of its users: a shard server takes them
/// from the part and never reads the other users' rows of the item side; the part's `item_side_xxh64` (the item
/// side's file checksum) keeps it from being served with a bundle it was not made from.
///
/// File layout (HDF5; root attributes `encore_version`, `encore_part_format_version` 1):
/// `/shard` attributes `index`, `count` (int64), `hash` (``UserShard/hashName``), `bundle_users`, `items`
/// (int64: the item side's counts), `item_side_xxh64` (the XXH64 of the item side's bundle file);
/// `/shard/bundle_rows` (int32 `[users]`: each user's row in the item side's `/ids/users`); `/ids/users`;
/// `/cf/user_factors` (float32 `[users, factors]`); `/cf/user_items/indptr|indices|data` (the training rows, the
/// bundle's CSR layout); `/playlists/discover_weekly` and `/playlists/daily_mix` (the bundle's layout, rows aligned
/// with `/ids/users`).
public struct UserShardPart: Sendable, Equatable {
    /// The shard.
    public var shard: UserShard
    /// The shard's users, in the item side's order.
    public var userIDs: [String]
    /// Each user's row in the item side's users.
    public var bundleRows: [Int32]
    /// Users of the whole bundle.
    public var bundleUserCount: Int
    /// The XXH64 of the item side's bundle file (16 hexadecimal digits), so a part is never served with another.
    public var itemSideChecksum: String
    /// The users' factors, one row per user.
    public var userFactors: Matrix
    /// The users' training rows (columns are the item side's items).
    public var userItems: CSRMatrix
    /// The users' Discover Weekly, rows aligned with ``userIDs``.
    public var discoverWeekly: DiscoverWeeklyTable?
    /// The users' Daily Mixes, rows aligned with ``userIDs``.
    public var dailyMixes: DailyMixTable?

    /// The part of `bundle` (whose file hashes to `itemSideChecksum`) for `shard`, with the shard's playlists.
    /// - Throws: ``ShardError`` when a table's rows do not match the shard's users.
    public init(shard: UserShard, bundle: ModelBundle, itemSideChecksum: String,
                discoverWeekly: DiscoverWeeklyTable?, dailyMixes: DailyMixTable?) throws(ShardError) {
        let rows = shard.rows(of: bundle.userIDs)
        for (name, n) in [("discover weekly", discoverWeekly?.userCount), ("daily mix", dailyMixes?.userCount)] {
            if let n, n != rows.count {
                throw ShardError("shard \(shard): the \(name) table has \(n) rows for \(rows.count) users")
            }
        }
        self.shard = shard
        userIDs = rows.map { bundle.userIDs.id(at: $0) }
        bundleRows = rows
        bundleUserCount = bundle.userIDs.count
        self.itemSideChecksum = itemSideChecksum
        var f = Matrix(rows: rows.count, cols: bundle.model.userFactors.cols)
        for (k, r) in rows.enumerated() { f.setRow(k, bundle.model.userFactors.row(Int(r))) }
        userFactors = f
        userItems = bundle.userItems.selectingRows(rows)
        self.discoverWeekly = discoverWeekly
        self.dailyMixes = dailyMixes
    }

    init(shard: UserShard, userIDs: [String], bundleRows: [Int32], bundleUserCount: Int, itemSideChecksum: String,
         userFactors: Matrix, userItems: CSRMatrix, discoverWeekly: DiscoverWeeklyTable?, dailyMixes: DailyMixTable?) {
        self.shard = shard
        self.userIDs = userIDs
        self.bundleRows = bundleRows
        self.bundleUserCount = bundleUserCount
        self.itemSideChecksum = itemSideChecksum
        self.userFactors = userFactors
        self.userItems = userItems
        self.discoverWeekly = discoverWeekly
        self.dailyMixes = dailyMixes
    }

    /// The number of items (columns of the training rows).
    public var itemCount: Int { userItems.cols }

    /// The format version of part files this library writes and reads.
    public static let formatVersion: Int64 = 1

    /// Writes the part to `path` atomically (a temporary sibling renamed into place).
    public func write(to path: String) throws(BundleError) {
        let part = self
        try PlaylistTableFile.write(to: path) { (f: borrowing HDF5File) throws(BundleError) in
            try f.setAttribute("encore_part_format_version", scalar: Self.formatVersion, on: "/")
            try f.createGroup("/shard")
            try f.setAttribute("index", scalar: Int64(part.shard.index), on: "/shard")
            try f.setAttribute("count", scalar: Int64(part.shard.count), on: "/shard")
            try f.setAttribute("hash", string: UserShard.hashName, on: "/shard")
            try f.setAttribute("bundle_users", scalar: Int64(part.bundleUserCount), on: "/shard")
            try f.setAttribute("items", scalar: Int64(part.itemCount), on: "/shard")
            try f.setAttribute("item_side_xxh64", string: part.itemSideChecksum, on: "/shard")
            try f.write(part.bundleRows, shape: [part.bundleRows.count], at: "/shard/bundle_rows")
            try f.write(strings: part.userIDs, at: "/ids/users")
            try f.write(part.userFactors, at: "/cf/user_factors")
            try f.createGroup("/cf/user_items")
            try f.setAttribute("shape", array: [Int64(part.userItems.rows), Int64(part.userItems.cols)], on: "/cf/user_items")
            try f.setAttribute("format", string: "csr", on: "/cf/user_items")
            try f.write(part.userItems.indptr.map { Int64($0) }, shape: [part.userItems.indptr.count], at: "/cf/user_items/indptr")
            try f.write(part.userItems.indices, shape: [part.userItems.nnz], at: "/cf/user_items/indices")
            try f.write(part.userItems.values, shape: [part.userItems.nnz], at: "/cf/user_items/data")
            if let dw = part.discoverWeekly { try f.write(dw) }
            if let dm = part.dailyMixes { try f.write(dm) }
        }
    }

    /// The shard header of the part at `path` (shard, user count, item side checksum) without its arrays.
    /// - Throws: ``BundleError`` for a file that is not a part.
    public static func header(of path: String) throws(BundleError) -> (shard: UserShard, users: Int, bundleUsers: Int, itemSideChecksum: String) {
        var file = try openPart(path)
        let h = try readHeader(file)
        let users = try file.shape(of: "/ids/users").first ?? 0
        try file.close()
        return (h.shard, users, h.bundleUsers, h.checksum)
    }

    private static func openPart(_ path: String) throws(BundleError) -> HDF5File {
        let file = try BundleReader.open(path)
        guard file.hasAttribute("encore_part_format_version", on: "/") else {
            throw .notABundle(path: path, reason: "it is not a user shard part (no '/@encore_part_format_version'; `encore-train playlists --users-shard` writes parts)")
        }
        let v = try file.scalarAttribute(Int64.self, "encore_part_format_version", on: "/")
        guard v == formatVersion else {
            throw .invalidData(path: path, object: "/@encore_part_format_version", reason: "format \(v) is not \(formatVersion), the one this library reads")
        }
        return file
    }

    private static func readHeader(_ file: borrowing HDF5File) throws(BundleError) -> (shard: UserShard, bundleUsers: Int, items: Int, checksum: String) {
        let i = try file.scalarAttribute(Int64.self, "index", on: "/shard")
        let n = try file.scalarAttribute(Int64.self, "count", on: "/shard")
        let hash = try file.stringAttribute("hash", on: "/shard")
        guard hash == UserShard.hashName else {
            throw .invalidData(path: file.path, object: "/shard@hash", reason: "hash '\(hash)' is not \(UserShard.hashName)")
        }
        let shard: UserShard
        do { shard = try UserShard(index: Int(i), count: Int(n), option: "/shard") } catch {
            throw .invalidData(path: file.path, object: "/shard", reason: error.description)
        }
        return (shard, Int(try file.scalarAttribute(Int64.self, "bundle_users", on: "/shard")),
                Int(try file.scalarAttribute(Int64.self, "items", on: "/shard")),
                try file.stringAttribute("item_side_xxh64", on: "/shard"))
    }

    /// Reads the part at `path`, checking its arrays agree and that every user belongs to its shard.
    /// - Throws: ``BundleError`` naming the file and the object at fault.
    public static func read(from path: String) throws(BundleError) -> UserShardPart {
        var file = try openPart(path)
        let h = try readHeader(file)
        let ids = try file.readStrings(at: "/ids/users").values
        let rows = try file.read(Int32.self, at: "/shard/bundle_rows").values
        guard rows.count == ids.count else {
            throw .shapeMismatch(path: path, object: "/shard/bundle_rows", reason: "\(rows.count) rows for \(ids.count) users")
        }
        if let bad = rows.first(where: { $0 < 0 || Int($0) >= h.bundleUsers }) {
            throw .invalidData(path: path, object: "/shard/bundle_rows", reason: "row \(bad) is outside 0..<\(h.bundleUsers)")
        }
        if let stranger = ids.first(where: { !h.shard.contains($0) }) {
            throw .invalidData(path: path, object: "/ids/users", reason: "user '\(stranger)' belongs to shard \(UserShard.shard(of: stranger, count: h.shard.count))/\(h.shard.count), not \(h.shard)")
        }
        let factors = try file.readMatrix(at: "/cf/user_factors")
        guard factors.rows == ids.count else {
            throw .shapeMismatch(path: path, object: "/cf/user_factors", reason: "\(factors.rows) rows for \(ids.count) users")
        }
        let indptr = try file.read(Int64.self, at: "/cf/user_items/indptr").values.map { Int($0) }
        let indices = try file.read(Int32.self, at: "/cf/user_items/indices").values
        let data = try file.read(Float.self, at: "/cf/user_items/data").values
        let userItems: CSRMatrix
        do {
            userItems = try CSRMatrix(rows: ids.count, cols: h.items, indptr: indptr, indices: indices, values: data)
        } catch {
            throw .invalidData(path: path, object: "/cf/user_items", reason: error.description)
        }
        let dw = try file.readDiscoverWeekly()
        let dm = try file.readDailyMix()
        try file.close()
        try dw?.validate(users: ids.count, items: h.items, path: path)
        try dm?.validate(users: ids.count, items: h.items, path: path)
        return UserShardPart(shard: h.shard, userIDs: ids, bundleRows: rows, bundleUserCount: h.bundleUsers,
                             itemSideChecksum: h.checksum, userFactors: factors, userItems: userItems,
                             discoverWeekly: dw, dailyMixes: dm)
    }

    /// The bundle a shard server answers with: the item side at `path` (the bundle this part was made from) with
    /// this part's users, factors, training rows and playlists, and the item side's listener counts
    /// (``ModelBundle/read(from:userShard:)``).
    /// - Throws: ``BundleError`` when the item side cannot be read or its counts are not the part's.
    public func bundle(itemSide path: String) throws(BundleError) -> ModelBundle {
        try ModelBundle.read(from: path, userShard: self)
    }
}

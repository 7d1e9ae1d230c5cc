import Foundation
import EncoreCore

/// A sharded bundle: a JSON manifest naming the item side (a published unit or a bundle file) and the user shard
/// parts made from it (`part-I.h5`), so `N` servers (`encore-serve --users-shard I/N`) share the users.
///
/// The manifest (written with sorted keys; paths relative to the manifest's folder):
/// ```json
/// { "format": "encore-sharded-bundle", "format_version": 1, "encore_version": "0.1.0",
///   "user_hash": "xxh64-utf8-mod-n", "shard_count": 2,
///   "item_side": { "path": "model.h5.d", "xxh64": "…", "users": 2000, "items": 5000 },
///   "shards": [ { "index": 0, "path": "part-0.h5", "users": 1013, "size": 123456, "xxh64": "…" }, … ] }
/// ```
/// `item_side.xxh64` is the XXH64 of the item side's bundle file (for a unit, the one its `current.json` records);
/// each shard's `xxh64` and `size` are its part file's. Reading checks that the shards are `0..<shard_count`, each
/// once, and that their users add up to the item side's.
public struct ShardedBundle: Codable, Sendable, Equatable {
    /// The `format` value.
    public static let formatName = "encore-sharded-bundle"
    /// The format version this library writes and reads.
    public static let currentFormatVersion = 1

    /// The item side of a sharded bundle.
    public struct ItemSide: Codable, Sendable, Equatable {
        /// A unit folder or a bundle file, relative to the manifest's folder (or absolute).
        public var path: String
        /// The XXH64 of its bundle file, 16 hexadecimal digits.
        public var xxh64: String
        /// Users of the whole bundle.
        public var users: Int
        /// Items of the bundle.
        public var items: Int
    }

    /// One user shard's part file.
    public struct Shard: Codable, Sendable, Equatable {
        /// The shard number `I`.
        public var index: Int
        /// The part file, relative to the manifest's folder (or absolute).
        public var path: String
        /// The shard's users.
        public var users: Int
        /// The part file's size in bytes.
        public var size: Int64
        /// The part file's XXH64, 16 hexadecimal digits.
        public var xxh64: String
    }

    /// ``formatName``.
    public var format: String
    /// ``currentFormatVersion``.
    public var formatVersion: Int
    /// The Encore version that wrote the manifest.
    public var encoreVersion: String
    /// How users are assigned to shards: ``UserShard/hashName``.
    public var userHash: String
    /// `N`.
    public var shardCount: Int
    /// The item side.
    public var itemSide: ItemSide
    /// The shards, by number.
    public var shards: [Shard]

    enum CodingKeys: String, CodingKey {
        case format, formatVersion = "format_version", encoreVersion = "encore_version", userHash = "user_hash"
        case shardCount = "shard_count", itemSide = "item_side", shards
    }

    /// The XXH64 of the bundle file of `model` (for a unit, the checksum its manifest records, verified on open).
    /// - Throws: ``BundleError`` when the file cannot be read.
    public static func checksum(of model: PublishedModel) throws(BundleError) -> String {
        if let recorded = model.manifest?.files.first(where: { $0.role == PublishedModel.bundleRole })?.xxh64 { return recorded }
        guard let d = try PublishedModel.digest(ofFile: model.bundlePath) else { throw .fileNotFound(path: model.bundlePath) }
        return PublishedModel.hex(d.checksum)
    }

    /// Writes the manifest of `itemSide` (a unit or a bundle file) and `parts` to `output` (JSON, atomically),
    /// after checking that the parts are the shards `0..<N` of one `N`, each once, all made from that item side.
    /// Paths are stored relative to `output`'s folder when they are inside it.
    /// - Throws: ``ShardError`` for a missing, repeated or foreign shard; ``BundleError`` for an unreadable file.
    @discardableResult
    public static func assemble(itemSide: String, parts: [String], output: String) throws -> ShardedBundle {
        let model = try PublishedModel.open(path: itemSide)
        let summary = try ModelBundle.inspect(path: model.bundlePath)
        let sum = try checksum(of: model)
        guard !parts.isEmpty else { throw ShardError("no shard parts given") }
        var shards: [Shard] = [], count: Int?
        for p in parts {
            let h = try UserShardPart.header(of: p)
            if let count, count != h.shard.count {
                throw ShardError("\(p): shard \(h.shard) is one of \(h.shard.count) shards, the others of \(count)")
            }
            count = h.shard.count
            guard h.itemSideChecksum == sum else {
                throw ShardError("\(p): made from an item side whose bundle hashes to XXH64 \(h.itemSideChecksum), not \(itemSide) (\(sum))")
            }
            if let other = shards.first(where: { $0.index == h.shard.index }) {
                throw ShardError("\(p): shard \(h.shard) is given twice (also \(other.path))")
            }
            guard let d = try PublishedModel.digest(ofFile: p) else { throw BundleError.fileNotFound(path: p) }
            shards.append(Shard(index: h.shard.index, path: p, users: h.users, size: d.size, xxh64: PublishedModel.hex(d.checksum)))
        }
        let n = count ?? 0
        let missing = Set(0..<n).subtracting(shards.map(\.index)).sorted()
        guard missing.isEmpty else {
            throw ShardError("shards \(missing.map { "\($0)/\(n)" }.joined(separator: ", ")) are missing: a sharded bundle needs every shard of 0..<\(n)")
        }
        let users = shards.reduce(0) { $0 + $1.users }
        guard users == summary.userCount else {
            throw ShardError("the shards hold \(users) users, the item side \(summary.userCount)")
        }
        let folder = ((output as NSString).deletingLastPathComponent as NSString).standardizingPath
        func relative(_ p: String) -> String {
            let full = ((p as NSString).isAbsolutePath ? p : FileManager.default.currentDirectoryPath + "/" + p)
            let standard = (full as NSString).standardizingPath
            let base = ((folder.isEmpty ? FileManager.default.currentDirectoryPath : ((folder as NSString).isAbsolutePath ? folder : FileManager.default.currentDirectoryPath + "/" + folder)) as NSString).standardizingPath
            return standard.hasPrefix(base + "/") ? String(standard.dropFirst(base.count + 1)) : standard
        }
        for k in shards.indices { shards[k].path = relative(shards[k].path) }
        let manifest = ShardedBundle(
            format: formatName, formatVersion: currentFormatVersion, encoreVersion: Encore.version,
            userHash: UserShard.hashName, shardCount: n,
            itemSide: ItemSide(path: relative(itemSide), xxh64: sum, users: summary.userCount, items: summary.itemCount),
            shards: shards.sorted { $0.index < $1.index })
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let data = try encoder.encode(manifest)
        try AtomicFile.write(Array(data) + [10], to: output, as: FileError.self)
        return manifest
    }

    /// Reads and checks the manifest at `path` (its files are not opened: ``resolve(_:relativeTo:)`` and
    /// ``open(shard:manifest:)`` do that).
    /// - Throws: ``ShardError`` naming the manifest and the field at fault.
    public static func read(from path: String) throws(ShardError) -> ShardedBundle {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw ShardError("\(path): cannot read the sharded bundle manifest: \(error.localizedDescription)")
        }
        let m: ShardedBundle
        do { m = try JSONDecoder().decode(ShardedBundle.self, from: data) } catch {
            throw ShardError("\(path): not a sharded bundle manifest: \(PublishedModel.describe(error))")
        }
        guard m.format == formatName else { throw ShardError("\(path): format is '\(m.format)', expected '\(formatName)'") }
        guard m.formatVersion == currentFormatVersion else {
            throw ShardError("\(path): format_version \(m.formatVersion) is not supported (Encore \(Encore.version) reads \(currentFormatVersion))")
        }
        guard m.userHash == UserShard.hashName else { throw ShardError("\(path): user_hash '\(m.userHash)' is not \(UserShard.hashName)") }
        guard m.shardCount >= 1, m.shards.map(\.index).sorted() == Array(0..<m.shardCount) else {
            throw ShardError("\(path): shards must be 0..<\(m.shardCount), each once (found \(m.shards.map(\.index).sorted()))")
        }
        guard m.shards.reduce(0, { $0 + $1.users }) == m.itemSide.users else {
            throw ShardError("\(path): the shards' users add up to \(m.shards.reduce(0) { $0 + $1.users }), item_side.users is \(m.itemSide.users)")
        }
        return m
    }

    /// Whether the file at `path` looks like a sharded bundle manifest (a JSON object naming this format).
    public static func isManifest(_ path: String) -> Bool {
        guard !PublishedModel.isDirectory(path), let data = FileManager.default.contents(atPath: path), data.first == UInt8(ascii: "{"),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return false }
        return object["format"] as? String == formatName
    }

    /// `path` of the manifest resolved against the manifest's folder.
    public static func resolve(_ file: String, relativeTo manifest: String) -> String {
        if (file as NSString).isAbsolutePath { return file }
        return ((manifest as NSString).deletingLastPathComponent as NSString).appendingPathComponent(file)
    }

    /// Opens shard `shard` of the manifest at `manifest`: the item side (checked against the recorded checksum)
    /// and the part (size and checksum verified before HDF5 reads it, made from that item side), and returns the
    /// item side's bundle with the shard's users only (``UserShardPart/bundle(itemSide:)``): the other users' rows
    /// are not read.
    /// - Throws: ``ShardError`` when the shard count differs or a file is not the one recorded; ``BundleError``
    ///   for an unreadable file.
    public static func open(shard: UserShard, manifest path: String) throws -> (bundle: ModelBundle, itemSide: PublishedModel, part: UserShardPart) {
        let m = try read(from: path)
        guard m.shardCount == shard.count else {
            throw ShardError("--users-shard \(shard): \(path) has \(m.shardCount) shards, not \(shard.count)")
        }
        let itemPath = resolve(m.itemSide.path, relativeTo: path)
        let model = try PublishedModel.open(path: itemPath)
        let sum = try checksum(of: model)
        guard sum == m.itemSide.xxh64 else {
            throw ShardError("\(itemPath): its bundle hashes to XXH64 \(sum) but \(path) records \(m.itemSide.xxh64) (republished after the shards were made?)")
        }
        guard let entry = m.shards.first(where: { $0.index == shard.index }) else { throw ShardError("\(path): no shard \(shard)") }
        let partPath = resolve(entry.path, relativeTo: path)
        guard let d = try PublishedModel.digest(ofFile: partPath) else { throw BundleError.fileNotFound(path: partPath) }
        guard d.size == entry.size else {
            throw BundleError.sizeMismatch(path: partPath, manifest: path, recorded: entry.size, found: d.size)
        }
        guard PublishedModel.hex(d.checksum) == entry.xxh64 else {
            throw BundleError.checksumMismatch(path: partPath, manifest: path, recorded: entry.xxh64, computed: PublishedModel.hex(d.checksum))
        }
        let part = try UserShardPart.read(from: partPath)
        guard part.shard == shard, part.itemSideChecksum == sum else {
            throw ShardError("\(partPath): holds shard \(part.shard) of the item side \(part.itemSideChecksum), not shard \(shard) of \(sum)")
        }
        let bundle = try part.bundle(itemSide: model.bundlePath)
        return (bundle, model, part)
    }
}

/// Every group and dataset of an HDF5 file, for `encore-train inspect`.
public enum HDF5Outline {
    /// One line per object, depth first in name order: `/cf/user_factors  float32 [2000, 64]`, `/playlists/  group`.
    /// - Throws: ``BundleError`` for a file HDF5 cannot open.
    public static func lines(of path: String) throws(BundleError) -> [String] {
        var file = try BundleReader.open(path)
        var out: [String] = []
        func walk(_ group: String) throws(BundleError) {
            for name in try file.children(of: group) {
                let object = group == "/" ? "/" + name : group + "/" + name
                switch file.kind(of: object) {
                case .group?:
                    out.append("\(object)/")
                    try walk(object)
                case .dataset?:
                    let shape = try file.shape(of: object)
                    out.append("\(object)  \(try file.typeDescription(of: object)) \(shape)")
                default:
                    out.append("\(object)  (other)")
                }
            }
        }
        try walk("/")
        try file.close()
        return out
    }
}

import Foundation
import EncoreCore
import EncoreIndex

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A model bundle and its index files published as one unit, switched into place by one atomic rename.
///
/// ## Layout
///
/// A unit is a folder (the weekly job's `--output B.h5` publishes `B.h5.d/`):
///
/// ```
/// B.h5.d/
///   current.json              the manifest of the version being served (replaced by one rename)
///   v-00000007/               one folder per version, never changed once published
///     bundle.h5
///     items-ip.hnsw
///     items-cosine.hnsw
///     users-cosine.hnsw
///   v-00000006/               the previous version, kept for readers still loading it
///   .publish.lock             held by the one publisher at a time
/// ```
///
/// ``Manifest`` (`current.json`) names the version and, for each file, its role (`bundle` or an index role such as
/// `items-ip`), its path relative to the unit, its size and its XXH64 checksum. A reader reads the manifest once and
/// takes every file from the version it names, so it sees the old version or the new one, never a mix.
///
/// ## Publishing
///
/// ``publish(bundle:indexes:to:keep:)`` writes the new version into a staging folder (the bundle, copies of the
/// index files, each synced), hashes every file, renames the staging folder to `v-<sequence>`, then writes the
/// manifest to a temporary file, syncs it and renames it over `current.json`. Versions older than the newest
/// `keep` (default 2) are removed afterwards, so a reader that read the previous manifest can still open its files.
/// The bundle records the file name and checksum of each index in its metadata (`index/<role>.hnsw`,
/// `index_xxh64/<role>.hnsw`), so an index file that does not belong to it is recognized even outside a unit.
///
/// ## Opening
///
/// ``open(path:)`` accepts a unit folder, a plain bundle file (as before units existed), or the path `P` given to the
/// weekly job's `--output`, which stands for the unit `P.d` when that folder exists. For a unit it checks the size and the
/// checksum of every listed file before HDF5 reads a byte of the bundle, and refuses the unit with a
/// ``BundleError/checksumMismatch(path:manifest:recorded:computed:)`` or
/// ``BundleError/sizeMismatch(path:manifest:recorded:found:)`` naming the file. An index file the manifest lists but
/// that is absent is not an error: it is reported in ``indexes`` so the caller can fall back to exact search.
public struct PublishedModel: Sendable {
    /// The manifest's file name inside a unit.
    public static let manifestName = "current.json"
    /// The bundle's file name inside a version folder.
    public static let bundleFileName = "bundle.h5"
    /// The role of the bundle in a manifest.
    public static let bundleRole = "bundle"
    /// How many versions a publish keeps by default: the new one and the one before it.
    public static let defaultKeep = 2
    /// The prefix of the bundle metadata keys that record an index file's name (`index/<role>.hnsw`).
    public static let indexNameKeyPrefix = "index/"
    /// The prefix of the bundle metadata keys that record an index file's XXH64 (`index_xxh64/<role>.hnsw`).
    public static let indexChecksumKeyPrefix = "index_xxh64/"

    /// The path that was opened, as given.
    public let path: String
    /// The unit's folder, or `nil` for a plain bundle file.
    public let unitDirectory: String?
    /// The manifest of the version opened, or `nil` for a plain bundle file.
    public let manifest: Manifest?
    /// The bundle file to read.
    public let bundlePath: String
    /// The index files the manifest lists (empty for a plain bundle file, whose index files the bundle's metadata
    /// names).
    public let indexes: [Index]
    /// The file whose replacement means a new model: the manifest of a unit, or the plain bundle file.
    public let watchPath: String

    /// One index file of a unit.
    public struct Index: Sendable, Equatable {
        /// The role, e.g. `items-ip`.
        public var role: String
        /// The file's path.
        public var path: String
        /// The XXH64 the manifest records (16 hexadecimal digits), verified when ``present``.
        public var checksum: String
        /// Whether the file exists (a listed file that is absent is reported, not refused).
        public var present: Bool
    }

    /// Whether this is a published unit (not a plain bundle file).
    public var isUnit: Bool { unitDirectory != nil }

    /// The version folder's name (`v-00000007`), or `nil` for a plain bundle file.
    public var version: String? { manifest?.version }

    /// The index files that are present, by role.
    public var presentIndexPaths: [String: String] {
        Dictionary(uniqueKeysWithValues: indexes.filter(\.present).map { ($0.role, $0.path) })
    }

    /// Reads the bundle (after ``open(path:)`` verified its checksum, for a unit).
    /// - Throws: ``BundleError`` as ``ModelBundle/read(from:)``.
    public func readBundle() throws(BundleError) -> ModelBundle {
        try ModelBundle.read(from: bundlePath)
    }

    // MARK: Manifest

    /// The JSON manifest of one published version (`current.json`).
    public struct Manifest: Codable, Sendable, Equatable {
        /// The value of ``format``.
        public static let formatName = "encore-model-unit"
        /// The manifest format version this library writes and reads.
        public static let currentFormatVersion = 1
        /// The value of ``checksumAlgorithm``.
        public static let xxh64 = "xxh64"

        /// Always ``formatName``.
        public var format: String
        /// The manifest format version.
        public var formatVersion: Int
        /// The version folder, `v-` and the sequence in eight digits.
        public var version: String
        /// The publish sequence number (1 for a unit's first version).
        public var sequence: Int
        /// When the version was published (ISO-8601, UTC).
        public var publishedAt: String
        /// The Encore library that published it.
        public var encoreVersion: String
        /// The checksum of every file: ``xxh64``.
        public var checksumAlgorithm: String
        /// The files: the bundle first, then the indexes by role.
        public var files: [File]

        /// One file of a version.
        public struct File: Codable, Sendable, Equatable {
            /// ``PublishedModel/bundleRole`` or an index role such as `items-ip`.
            public var role: String
            /// The path relative to the unit's folder, e.g. `v-00000007/bundle.h5`.
            public var path: String
            /// The size in bytes.
            public var size: Int64
            /// The XXH64 of the contents, 16 lowercase hexadecimal digits (as `xxhsum -H64` prints it).
            public var xxh64: String
        }

        enum CodingKeys: String, CodingKey {
            case format, formatVersion = "format_version", version, sequence, publishedAt = "published_at"
            case encoreVersion = "encore_version", checksumAlgorithm = "checksum_algorithm", files
        }
    }

    // MARK: Paths

    /// The unit folder the weekly job publishes for `--output`: `output` itself when it ends in `.d`, else
    /// `output + ".d"` (`out/sample.h5` publishes `out/sample.h5.d/`).
    public static func unitDirectory(forOutput output: String) -> String {
        output.hasSuffix(".d") ? output : output + ".d"
    }

    /// The unit folder `path` names, or `nil` when it names a plain bundle file (or nothing at all).
    ///
    /// `P.d` wins over a plain file `P`: the plain file is what the weekly job wrote before it published units, and
    /// the unit is what it publishes now for the same `--output`.
    static func unitDirectory(at path: String) -> String? {
        if isDirectory(path) { return path }
        let sibling = unitDirectory(forOutput: path)
        return sibling != path && isDirectory(sibling) ? sibling : nil
    }

    static func isDirectory(_ path: String) -> Bool {
        var dir: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &dir) && dir.boolValue
    }

    static func join(_ dir: String, _ name: String) -> String { (dir as NSString).appendingPathComponent(name) }

    // MARK: Opening

    /// Opens the model at `path`: a unit folder (verifying every checksum the manifest records), `P` standing for
    /// the unit `P.d` when that folder exists, or else a plain bundle file.
    ///
    /// Nothing is read from the bundle by HDF5 here; ``readBundle()`` does that. When a version folder disappears
    /// while it is being verified (two publishes in a row pruned it), the manifest is read again, a few times.
    /// - Throws: ``BundleError/invalidManifest(path:reason:)`` for a missing, malformed or foreign manifest;
    ///   ``BundleError/fileNotFound(path:)`` when the bundle the manifest lists is absent;
    ///   ``BundleError/sizeMismatch(path:manifest:recorded:found:)`` or
    ///   ``BundleError/checksumMismatch(path:manifest:recorded:computed:)`` naming a damaged file;
    ///   ``BundleError/unreadable(path:reason:)`` when a file cannot be read.
    public static func open(path: String) throws(BundleError) -> PublishedModel {
        guard let unit = unitDirectory(at: path) else {
            return PublishedModel(path: path, unitDirectory: nil, manifest: nil, bundlePath: path, indexes: [], watchPath: path)
        }
        var attempt = 0
        while true {
            let manifest = try readManifest(unit: unit)
            do {
                return try verify(manifest, unit: unit, source: path)
            } catch {
                // A version pruned under the reader: retry with the manifest that replaced it.
                attempt += 1
                guard case .fileNotFound = error, attempt < 4,
                      let again = try? readManifest(unit: unit), again.version != manifest.version
                else { throw error }
            }
        }
    }

    /// Opens `path` (see ``open(path:)``) and reads its bundle.
    /// - Throws: ``BundleError`` from ``open(path:)`` or ``ModelBundle/read(from:)``.
    public static func readBundle(at path: String) throws(BundleError) -> ModelBundle {
        try open(path: path).readBundle()
    }

    /// Reads and checks the manifest of the unit `unit`.
    static func readManifest(unit: String) throws(BundleError) -> Manifest {
        let file = join(unit, manifestName)
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: file))
        } catch {
            let reason = FileManager.default.fileExists(atPath: file)
                ? "cannot read it: \(error.localizedDescription)"
                : "missing: \(unit) holds no published model (a unit is published by `encore-train weekly`)"
            throw .invalidManifest(path: file, reason: reason)
        }
        let manifest: Manifest
        do {
            manifest = try JSONDecoder().decode(Manifest.self, from: data)
        } catch {
            throw .invalidManifest(path: file, reason: "not a manifest: \(describe(error))")
        }
        guard manifest.format == Manifest.formatName else {
            throw .invalidManifest(path: file, reason: "format is '\(manifest.format)', expected '\(Manifest.formatName)'")
        }
        guard manifest.formatVersion == Manifest.currentFormatVersion else {
            throw .invalidManifest(
                path: file,
                reason: "format version \(manifest.formatVersion) is not supported: Encore \(Encore.version) reads "
                    + "version \(Manifest.currentFormatVersion)")
        }
        guard manifest.checksumAlgorithm == Manifest.xxh64 else {
            throw .invalidManifest(path: file, reason: "checksum algorithm '\(manifest.checksumAlgorithm)' is not supported (xxh64 is)")
        }
        let bundles = manifest.files.filter { $0.role == bundleRole }
        guard bundles.count == 1 else {
            throw .invalidManifest(path: file, reason: "\(bundles.count) files have the role '\(bundleRole)', expected 1")
        }
        var roles = Set<String>()
        for f in manifest.files {
            guard roles.insert(f.role).inserted else {
                throw .invalidManifest(path: file, reason: "the role '\(f.role)' is listed twice")
            }
            let parts = f.path.split(separator: "/", omittingEmptySubsequences: false)
            guard !f.path.hasPrefix("/"), !parts.isEmpty, !parts.contains(where: { $0.isEmpty || $0 == "." || $0 == ".." }) else {
                throw .invalidManifest(path: file, reason: "the path '\(f.path)' is not a plain path inside the unit")
            }
            guard f.size >= 0, parseChecksum(f.xxh64) != nil else {
                throw .invalidManifest(path: file, reason: "the entry of '\(f.path)' has a bad size or checksum")
            }
        }
        return manifest
    }

    /// Checks the size and checksum of every file `manifest` lists.
    static func verify(_ manifest: Manifest, unit: String, source: String) throws(BundleError) -> PublishedModel {
        let manifestPath = join(unit, manifestName)
        var bundlePath = ""
        var indexes: [Index] = []
        for f in manifest.files {
            let full = join(unit, f.path)
            let isBundle = f.role == bundleRole
            guard let digest = try digest(ofFile: full) else {
                if isBundle { throw .fileNotFound(path: full) }
                indexes.append(Index(role: f.role, path: full, checksum: f.xxh64, present: false))
                continue
            }
            guard digest.size == f.size else {
                throw .sizeMismatch(path: full, manifest: manifestPath, recorded: f.size, found: digest.size)
            }
            guard digest.checksum == parseChecksum(f.xxh64) else {
                throw .checksumMismatch(path: full, manifest: manifestPath, recorded: f.xxh64, computed: hex(digest.checksum))
            }
            if isBundle {
                bundlePath = full
            } else {
                indexes.append(Index(role: f.role, path: full, checksum: f.xxh64, present: true))
            }
        }
        return PublishedModel(path: source, unitDirectory: unit, manifest: manifest, bundlePath: bundlePath,
                              indexes: indexes, watchPath: manifestPath)
    }

    // MARK: Publishing

    /// Publishes `bundle` and the index files `indexes` (role, e.g. `items-ip`, to the file's path) as a new version
    /// of the unit at `unit`, switches `current.json` to it with one rename, and removes all but the newest `keep`
    /// versions.
    ///
    /// The index files are copied (the sources stay where they are); the bundle is written with its
    /// `index/<role>.hnsw` and `index_xxh64/<role>.hnsw` metadata set to the copies (other keys under those prefixes
    /// are dropped). One publisher at a time: a second one fails while the first holds the unit's lock.
    /// - Returns: the published version, as ``open(path:)`` would return it.
    /// - Throws: ``BundleError``: an invalid role or `keep`, a missing index file, or a failure to write.
    @discardableResult
    public static func publish(
        bundle: ModelBundle, indexes: [String: String], to unit: String, keep: Int = defaultKeep
    ) throws(BundleError) -> PublishedModel {
        guard keep >= 1 else { throw .io(path: unit, operation: "publish", reason: "keep must be at least 1, got \(keep)") }
        for (role, source) in indexes {
            guard isValidRole(role) else {
                throw .io(path: unit, operation: "publish",
                          reason: "'\(role)' is not an index role (lowercase letters, digits and '-', not '\(bundleRole)')")
            }
            guard FileManager.default.fileExists(atPath: source) else { throw .fileNotFound(path: source) }
        }
        do {
            try FileManager.default.createDirectory(atPath: unit, withIntermediateDirectories: true)
        } catch {
            throw .io(path: unit, operation: "create the unit folder", reason: describe(error))
        }
        let lock = try PublishLock(unit: unit)
        defer { lock.release() }

        let previous = try? readManifest(unit: unit)
        let sequence = max(previous?.sequence ?? 0, versions(in: unit).map(\.sequence).max() ?? 0) + 1
        let version = versionName(sequence)
        let staging = join(unit, ".staging-\(version)-\(getpid())-\(String(UInt64.random(in: 0...UInt64.max), radix: 16))")
        do {
            try FileManager.default.createDirectory(atPath: staging, withIntermediateDirectories: false)
        } catch {
            throw .io(path: staging, operation: "create the staging folder", reason: describe(error))
        }
        let final = join(unit, version)
        var files: [Manifest.File] = []
        do throws(BundleError) {
            var b = bundle
            for key in b.metadata.keys where key.hasPrefix(indexNameKeyPrefix) || key.hasPrefix(indexChecksumKeyPrefix) {
                b.metadata[key] = nil
            }
            for (role, source) in indexes.sorted(by: { $0.key < $1.key }) {
                let name = role + ".hnsw"
                let target = join(staging, name)
                do {
                    try FileManager.default.copyItem(atPath: source, toPath: target)
                } catch {
                    throw BundleError.io(path: target, operation: "copy the index file \(source)", reason: describe(error))
                }
                try AtomicFile.sync(file: target, reportingAs: target, as: BundleError.self)
                guard let d = try digest(ofFile: target) else { throw BundleError.fileNotFound(path: target) }
                files.append(.init(role: role, path: version + "/" + name, size: d.size, xxh64: hex(d.checksum)))
                b.metadata[indexNameKeyPrefix + name] = name
                b.metadata[indexChecksumKeyPrefix + name] = hex(d.checksum)
            }
            let bundleTarget = join(staging, bundleFileName)
            try b.write(to: bundleTarget)
            guard let d = try digest(ofFile: bundleTarget) else { throw BundleError.fileNotFound(path: bundleTarget) }
            files.insert(.init(role: bundleRole, path: version + "/" + bundleFileName, size: d.size, xxh64: hex(d.checksum)), at: 0)
            try AtomicFile.rename(staging, to: final, as: BundleError.self)
        } catch {
            try? FileManager.default.removeItem(atPath: staging)
            throw error
        }
        try AtomicFile.syncDirectory(of: final, as: BundleError.self)

        let manifest = Manifest(
            format: Manifest.formatName, formatVersion: Manifest.currentFormatVersion, version: version,
            sequence: sequence, publishedAt: Date().ISO8601Format(), encoreVersion: Encore.version,
            checksumAlgorithm: Manifest.xxh64, files: files)
        let manifestPath = join(unit, manifestName)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let data: Data
        do { data = try encoder.encode(manifest) } catch {
            throw .io(path: manifestPath, operation: "encode the manifest", reason: describe(error))
        }
        // The one atomic replace that switches readers to the new version.
        try AtomicFile.write(Array(data) + Array("\n".utf8), to: manifestPath, as: BundleError.self)
        prune(unit: unit, current: sequence, keep: keep)
        return try verify(manifest, unit: unit, source: unit)
    }

    /// The version folders of `unit`, oldest first.
    static func versions(in unit: String) -> [(name: String, sequence: Int)] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: unit)) ?? []
        return names.compactMap { name -> (String, Int)? in
            guard name.hasPrefix("v-"), let n = Int(name.dropFirst(2)), n > 0, isDirectory(join(unit, name)) else { return nil }
            return (name, n)
        }.sorted { $0.1 < $1.1 }
    }

    /// Removes every version but the newest `keep` up to `current`, and staging folders left by failed publishes
    /// (the caller holds the lock, so none is in use). Best effort: a folder that cannot be removed is tried again
    /// on the next publish.
    static func prune(unit: String, current: Int, keep: Int) {
        let all = versions(in: unit)
        let kept = Set(all.filter { $0.sequence <= current }.suffix(keep).map(\.name))
        for v in all where !kept.contains(v.name) {
            try? FileManager.default.removeItem(atPath: join(unit, v.name))
        }
        for name in (try? FileManager.default.contentsOfDirectory(atPath: unit)) ?? [] where name.hasPrefix(".staging-") {
            try? FileManager.default.removeItem(atPath: join(unit, name))
        }
    }

    static func versionName(_ sequence: Int) -> String {
        let digits = String(sequence)
        return "v-" + String(repeating: "0", count: max(0, 8 - digits.count)) + digits
    }

    static func isValidRole(_ role: String) -> Bool {
        !role.isEmpty && role != bundleRole && role.first != "-"
            && role.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "-" }
    }

    // MARK: Checksums

    /// The size and XXH64 of the file at `path`, or `nil` when it does not exist.
    ///
    /// XXH64 rather than CRC-32C: it is the checksum of the index container's sections already, it is several
    /// times faster on large files than the table-driven CRC-32C, its 64 bits make an accidental match of a damaged
    /// file negligible, and `xxhsum -H64` checks a manifest entry by hand.
    /// - Throws: ``BundleError/unreadable(path:reason:)`` when the file exists but cannot be read.
    public static func digest(ofFile path: String) throws(BundleError) -> (size: Int64, checksum: UInt64)? {
        let file: MappedFile
        do { file = try MappedFile(path: path, access: .sequential) } catch {
            if error.code == ENOENT { return nil }
            throw .unreadable(path: path, reason: error.reason)
        }
        return (Int64(file.bytes.count), XXHash64.hash(file.bytes))
    }

    /// A checksum as 16 lowercase hexadecimal digits.
    public static func hex(_ x: UInt64) -> String {
        let digits = String(x, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }

    static func parseChecksum(_ s: String) -> UInt64? {
        s.count == 16 ? UInt64(s, radix: 16) : nil
    }

    static func describe(_ error: any Error) -> String {
        if let e = error as? DecodingError {
            switch e {
            case .keyNotFound(let key, _): return "the key '\(key.stringValue)' is missing"
            case .typeMismatch(_, let c), .valueNotFound(_, let c), .dataCorrupted(let c):
                let at = c.codingPath.map(\.stringValue).joined(separator: ".")
                return at.isEmpty ? c.debugDescription : "\(at): \(c.debugDescription)"
            @unknown default: return "\(e)"
            }
        }
        return (error as NSError).localizedDescription
    }
}

/// The unit's `.publish.lock`, held with `flock` for one publish.
private struct PublishLock {
    let fd: Int32

    init(unit: String) throws(BundleError) {
        let path = PublishedModel.join(unit, ".publish.lock")
        fd = sysOpen(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw .io(path: path, operation: "open the publish lock", reason: FileError.errnoText(errno)) }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let code = errno
            _ = sysClose(fd)
            let reason = code == EWOULDBLOCK ? "another publisher holds it" : FileError.errnoText(code)
            throw .io(path: path, operation: "take the publish lock", reason: reason)
        }
    }

    func release() {
        _ = flock(fd, LOCK_UN)
        _ = sysClose(fd)
    }
}

private func sysOpen(_ path: String, _ flags: Int32, _ mode: mode_t = 0) -> Int32 { open(path, flags, mode) }
private func sysClose(_ fd: Int32) -> Int32 { close(fd) }

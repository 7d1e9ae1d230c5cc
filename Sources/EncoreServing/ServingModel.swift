import Foundation
import Logging
import EncoreCore
import EncoreFactorization
import EncoreHybrid
import EncoreIndex
import EncorePlaylists
import EncoreStorage

/// One loaded bundle, ready to answer queries: the model, the catalog, the HNSW indexes written beside the bundle
/// (exact search when they are absent), the item space of "Because you played" and a popularity ranking for users
/// without a vector.
///
/// Immutable once made: any number of requests read one value at once, and a hot reload swaps in a new one while
/// requests in flight finish on the old.
public final class ServingModel: Sendable {
    /// The model's path as given: a unit folder or a plain bundle file (empty for a bundle built in memory).
    public let path: String
    /// The bundle file read (inside the unit's version folder for a unit; empty for a bundle built in memory).
    public let bundlePath: String
    /// The bundle.
    public let bundle: ModelBundle
    /// The track catalog: the bundle's when it has one, else a bare catalog (no artist rules).
    public let catalog: TrackCatalog
    /// The inner-product index over the item factors used for recommendations, or `nil` (exact scoring).
    public let recommendationIndex: HNSWIndex?
    /// The catalog, the cosine item space (with its index when present) and the model.
    public let environment: PlaylistEnvironment
    /// The "Because you played" row builder.
    public let becauseYouPlayed: BecauseYouPlayed
    /// Items by number of training listeners, most first (items nobody played are left out).
    public let popular: [Int32]
    /// The number of training listeners of each item.
    public let listenerCounts: [Int]
    /// A short identifier of the bundle: its `created_at` and, for a published unit, the version folder
    /// (`v-00000007`), else the file's modification time.
    public let version: String
    /// The last event-log sequence the bundle was trained on (`/meta@event_log_through`), when recorded.
    public let eventLogThrough: UInt64?
    /// The bundle's creation time in Unix milliseconds (`created_at`), when known.
    public let createdAtMs: Int64?
    /// The identity of ``watchPath`` when the model was loaded (for change polling).
    public let fileIdentity: FileIdentity?
    /// The file whose replacement means a new model: a unit's manifest (`current.json`), or the plain bundle file.
    public let watchPath: String
    /// The published unit's version folder (`v-00000007`), or `nil` for a plain bundle file.
    public let publishedVersion: String?
    /// What became of each index role the server uses, in ``indexRoles`` order: `items-ip` and `items-cosine`
    /// always, a space's role (`hybrid-cosine`, ...) when the bundle has the space or an index file is named for it.
    public let indexStatus: [IndexStatus]
    /// When the model was loaded (Unix seconds).
    public let loadedAt: Double
    /// Which index files were loaded, by role (`items-ip`, `items-cosine`, `hybrid-cosine`, ...), for the logs and
    /// `/metrics`.
    public let indexFiles: [String: String]
    /// The published indexes of the content and hybrid spaces, by space name (`hybrid`, `audio`, `text`,
    /// `sequence`): cosine HNSW over the space's tracks that have a vector (ids = item indices), which
    /// ``contentSpace(_:)`` searches instead of scanning the space.
    public let spaceIndexes: [String: HNSWIndex]
    /// The users this model answers for (`encore-serve --users-shard I/N`); `nil`: every user.
    public let userShard: UserShard?
    /// The cold-start model restored from the bundle's `/hybrid/model` (the artist prior recomputed from the item
    /// factors, the listeners and the catalog's artists), or `nil` for a bundle without one: a track posted to the
    /// server gets its predicted CF vector from it.
    public let coldStart: ColdStartModel?
    /// The content and hybrid spaces made so far (``contentSpace(_:)`` makes each on its first use).
    let contentSpaceCache = Locked<[String: ItemSpace]>([:])

    /// The spaces `GET /v1/items/{item}/similar` searches.
    public static let similaritySpaces = ["cf", "audio", "text", "sequence", "hybrid"]

    /// The index roles the server loads: the collaborative ones, then one per content or hybrid space
    /// (``spaceIndexRoles``).
    public static let indexRoles = ["items-ip", "items-cosine"] + spaceIndexRoles.map(\.role)

    /// The index role of each space `similar?space=` searches by index when the model's unit has it, in order.
    public static let spaceIndexRoles: [(space: String, role: String)] = [
        ("audio", "audio-cosine"), ("text", "text-cosine"), ("sequence", "sequence-cosine"), ("hybrid", "hybrid-cosine"),
    ]

    /// What became of one index role when the model was loaded.
    public struct IndexStatus: Sendable, Equatable {
        /// The outcome.
        public enum State: String, Sendable {
            /// The index was loaded.
            case loaded
            /// Neither the manifest nor the bundle names an index for the role, and none is beside the bundle:
            /// exact search, as intended (a bundle from `encore-train fit`).
            case none
            /// The manifest or the bundle names an index file that is absent: exact search.
            case missing
            /// The index file is not the one published with the bundle (its checksum differs from the one the
            /// bundle records, or its dimension or count differ from the model's): exact search.
            case mismatch
            /// The index file could not be read: exact search.
            case unreadable
        }

        /// The role, e.g. `items-ip`.
        public var role: String
        /// The outcome.
        public var state: State
        /// The index file looked for (empty when none was).
        public var file: String
        /// Why the index is not used (empty when it is loaded).
        public var detail: String

        /// Whether the role is served by exact search although an index was expected (a warning).
        public var isWarning: Bool { state == .missing || state == .mismatch || state == .unreadable }
    }

    /// Reads the model at `path`, a published unit or a plain bundle file (see ``PublishedModel/open(path:)``), and
    /// its index files.
    ///
    /// A unit's checksums are verified before the bundle is read, and its indexes are the ones its manifest lists.
    /// A plain bundle's index files are named by its `/meta@index/<name>` keys (relative to the bundle's folder) or,
    /// by default, `<bundle without .h5>.items-ip.hnsw` and `.items-cosine.hnsw`. An index that is expected but
    /// missing, that does not belong to the bundle (another checksum than the bundle records, another dimension or
    /// count) or that cannot be read is logged as a warning, reported in ``indexStatus`` and replaced by exact search.
    /// The spaces' indexes (``spaceIndexRoles``) follow the same rules, their dimension and count checked against
    /// the space's vectors (the tracks with a non-zero vector).
    /// - Throws: ``ServingError/bundle(_:)`` when the unit is refused or the bundle cannot be read.
    ///
    /// With a `validator`, the model is first opened and checked in a child process (see ``BundleValidator``), so a
    /// damaged file that crashes the HDF5 library ends the child, not this process; the files loaded here are then
    /// checked to be the ones the child read (same device, inode, size and modification time), and validated again
    /// when the model was replaced in between.
    /// - Throws: ``ServingError/bundle(_:)`` when the unit is refused or the bundle cannot be read,
    ///   ``ServingError/validation(_:)`` when the validating child refuses the model, crashes or times out.
    ///
    /// With `shard`, `path` is a sharded bundle's manifest (``ShardedBundle``): the item side it names is validated
    /// with the users of the shard's part only (their factors, training rows and playlists; the other users' rows
    /// are not read, ``UserShardPart/bundle(itemSide:)``) and the item side's listener counts, so the shard's users
    /// get the answers the whole bundle gives them; the manifest is the file watched for a new model, and
    /// ``userShard`` says which users this model answers for.
    public static func load(path: String, shard: UserShard? = nil, validator: BundleValidator? = nil, logger: Logger? = nil) throws(ServingError) -> ServingModel {
        if let shard { return try loadShard(manifest: path, shard: shard, validator: validator, logger: logger) }
        var attempt = 0
        while true {
            var report: BundleValidator.Report?
            if let validator {
                do { report = try validator.validate(path: path) } catch { throw .validation(error) }
            }
            let opened: PublishedModel
            do { opened = try PublishedModel.open(path: path) } catch { throw .bundle(error) }
            let identity = FileIdentity.of(opened.watchPath)
            if let report {
                let same = report.bundlePath == opened.bundlePath
                    && report.files[opened.bundlePath] != nil && report.files[opened.bundlePath] == FileIdentity.of(opened.bundlePath)
                guard same else {
                    attempt += 1
                    if attempt < 4 { continue }
                    throw .validation(.changedDuringValidation(path: path))
                }
            }
            let bundle: ModelBundle
            do {
                bundle = try opened.readBundle()
            } catch {
                // A unit whose version was pruned between the manifest and the read: read the new manifest.
                attempt += 1
                if case .fileNotFound = error, opened.isUnit, attempt < 4, FileIdentity.of(opened.watchPath) != identity {
                    continue
                }
                throw .bundle(error)
            }
            return try load(opened: opened, bundle: bundle, identity: identity, validated: report?.files, logger: logger)
        }
    }

    /// The item side of the sharded bundle `manifest` with the playlists of `shard`.
    private static func loadShard(manifest: String, shard: UserShard, validator: BundleValidator?, logger: Logger?) throws(ServingError) -> ServingModel {
        let identity = FileIdentity.of(manifest)
        do {
            let m = try ShardedBundle.read(from: manifest)
            let report = try validator?.validate(path: ShardedBundle.resolve(m.itemSide.path, relativeTo: manifest))
            let (bundle, itemSide, part) = try ShardedBundle.open(shard: shard, manifest: manifest)
            logger?.info("user shard loaded", metadata: [
                "shard": .string(shard.description), "users": "\(part.userIDs.count) of \(part.bundleUserCount)", "manifest": .string(manifest)])
            return try load(opened: itemSide, bundle: bundle, identity: identity, validated: report?.files, logger: logger,
                            shard: (manifest, shard))
        } catch let e as ServingError {
            throw e
        } catch let e as BundleError {
            throw .bundle(e)
        } catch let e as BundleValidationError {
            throw .validation(e)
        } catch {
            throw .model("\(error)")
        }
    }

    /// The index files of an opened model, checked against its bundle.
    private static func load(
        opened: PublishedModel, bundle: ModelBundle, identity: FileIdentity?, validated: [String: FileIdentity]?,
        logger: Logger?, shard: (manifest: String, shard: UserShard)? = nil
    ) throws(ServingError) -> ServingModel {
        var indexes: [String: HNSWIndex] = [:]
        var files: [String: String] = [:]
        var statuses: [IndexStatus] = []
        // Counted once for both collaborative roles (see expectedShape).
        let itemFactors = bundle.model.itemFactors
        let nonZeroItems = (0..<itemFactors.rows).count { !itemFactors.isZeroRow($0) }
        let dir = (opened.bundlePath as NSString).deletingLastPathComponent
        let base = opened.bundlePath.hasSuffix(".h5") ? String(opened.bundlePath.dropLast(3)) : opened.bundlePath
        for role in indexRoles {
            let space = spaceIndexRoles.first { $0.role == role }?.space
            let name = role + ".hnsw"
            let named = bundle.metadata[PublishedModel.indexNameKeyPrefix + name]
            let recorded = bundle.metadata[PublishedModel.indexChecksumKeyPrefix + name]
            let file: String
            let present: Bool
            let expected: Bool
            var checksum: String?
            if opened.isUnit {
                let entry = opened.indexes.first { $0.role == role }
                file = entry?.path ?? ""
                present = entry?.present ?? false
                expected = entry != nil || named != nil
                checksum = entry?.checksum
            } else {
                file = named.map { (dir as NSString).appendingPathComponent($0) } ?? base + "." + name
                present = FileManager.default.fileExists(atPath: file)
                expected = named != nil
            }
            func fallBack(_ state: IndexStatus.State, _ detail: String) {
                statuses.append(IndexStatus(role: role, state: state, file: file, detail: detail))
                let metadata: Logger.Metadata = ["role": .string(role), "file": .string(file), "reason": .string(detail)]
                if state == .none {
                    logger?.info("no index file: exact search", metadata: metadata)
                } else {
                    logger?.warning("index file \(state.rawValue): exact search", metadata: metadata)
                }
            }
            // A space's role is only reported when the bundle has the space or an index file is named for it.
            let shape = expectedShape(role: role, space: space, bundle: bundle, nonZeroItems: nonZeroItems)
            if space != nil, shape == nil, !expected, !present { continue }
            guard present else {
                if expected {
                    fallBack(.missing, opened.isUnit && file.isEmpty
                        ? "the bundle names \(name) but the manifest lists no \(role) index"
                        : "the index file is absent")
                } else {
                    fallBack(.none, "no index file was published with the bundle")
                }
                continue
            }
            if let recorded {
                if checksum == nil {
                    do {
                        checksum = try PublishedModel.digest(ofFile: file).map { PublishedModel.hex($0.checksum) }
                    } catch {
                        fallBack(.unreadable, error.description)
                        continue
                    }
                }
                guard checksum == recorded else {
                    fallBack(.mismatch, "the file's XXH64 is \(checksum ?? "unknown") but the bundle records \(recorded): "
                        + "it was not published with this bundle")
                    continue
                }
            }
            // An index file the validating child did not load (absent then, or replaced since) is not read here.
            if let validated, validated[file] == nil || validated[file] != FileIdentity.of(file) {
                fallBack(.unreadable, "the file is not the one the validating process checked (it changed or was not loaded there)")
                continue
            }
            do {
                let index = try HNSWIndex.load(from: file)
                guard let shape else {
                    fallBack(.mismatch, "the bundle has no \(space ?? role) space for the index")
                    continue
                }
                guard index.dimension == shape.dimension, shape.counts.contains(index.count), index.metric == shape.metric else {
                    fallBack(.mismatch, "the index has dimension \(index.dimension), \(index.count) vectors and metric "
                        + "\(index.metric.rawValue), the bundle's \(shape.what)")
                    continue
                }
                indexes[role] = index
                files[role] = file
                statuses.append(IndexStatus(role: role, state: .loaded, file: file, detail: ""))
            } catch {
                fallBack(.unreadable, error.description)
            }
        }
        var spaceIndexes: [String: HNSWIndex] = [:]
        for (space, role) in spaceIndexRoles { spaceIndexes[space] = indexes[role] }
        return try ServingModel(bundle: bundle, path: shard?.manifest ?? opened.path, bundlePath: opened.bundlePath, catalog: nil, recommendationIndex: indexes["items-ip"],
                                similarityIndex: indexes["items-cosine"], spaceIndexes: spaceIndexes, fileIdentity: identity, indexFiles: files,
                                watchPath: shard?.manifest ?? opened.watchPath, publishedVersion: opened.version, indexStatus: statuses,
                                userShard: shard?.shard)
    }

    /// The dimension, count and metric an index of `role` must have to belong to `bundle` (`space`: the role's
    /// content or hybrid space), with the bundle's side of the comparison in words; `nil` when the bundle lacks the
    /// space.
    private static func expectedShape(
        role: String, space: String?, bundle: ModelBundle, nonZeroItems: Int
    ) -> (dimension: Int, counts: [Int], metric: VectorMetric, what: String)? {
        let f = bundle.model.parameters.factors, n = bundle.itemIDs.count
        guard let space else {
            // Every item, or (since the weekly job leaves all-zero rows out) every item with a non-zero row.
            return (f, [n, nonZeroItems], role == "items-ip" ? .innerProduct : .cosine,
                    "\(f) factors and \(n) items (\(nonZeroItems) with a non-zero factor row)")
        }
        guard let set = contentVectors(space, of: bundle), set.count > 0 else { return nil }
        let vectors = set.vectors.rowNorms().filter { $0 > 0 && $0.isFinite }.count
        return (set.dimension, [vectors], .cosine, "\(space) space has dimension \(set.dimension) and \(vectors) tracks with a vector (cosine)")
    }

    /// A serving model from a bundle in memory.
    ///
    /// - Parameters:
    ///   - bundlePath: the bundle file read (default: `path`).
    ///   - catalog: the catalog; `nil` takes the bundle's, or a bare one.
    ///   - recommendationIndex: an inner-product index over the item factors (ids = item indices), or `nil`.
    ///   - similarityIndex: a cosine index over the item factors, or `nil`.
    ///   - spaceIndexes: cosine indexes of content or hybrid spaces by space name (see ``spaceIndexes``).
    ///   - watchPath: the file a poller watches for a new model (default: `path`).
    ///   - publishedVersion: the published unit's version folder, when loaded from a unit.
    ///   - indexStatus: what became of each index role at load.
    ///   - userShard: the users this model answers for (`nil`: every user).
    /// - Throws: ``ServingError/model(_:)`` when the parts disagree in size.
    public init(
        bundle: ModelBundle, path: String = "", bundlePath: String? = nil, catalog: TrackCatalog? = nil, recommendationIndex: HNSWIndex? = nil,
        similarityIndex: HNSWIndex? = nil, spaceIndexes: [String: HNSWIndex] = [:], fileIdentity: FileIdentity? = nil,
        indexFiles: [String: String] = [:],
        watchPath: String? = nil, publishedVersion: String? = nil, indexStatus: [IndexStatus] = [], userShard: UserShard? = nil
    ) throws(ServingError) {
        self.userShard = userShard
        let items = bundle.itemIDs.count
        let catalog = catalog ?? Self.catalog(of: bundle)
        guard catalog.itemCount == items else {
            throw .model("the catalog has \(catalog.itemCount) items, the bundle \(items)")
        }
        let now = Int64(Date().timeIntervalSince1970)
        // Counted over every user of the model, also when the bundle holds one user shard's rows.
        let listeners = bundle.itemListeners
        var played = IDBitset(capacity: items)
        for i in 0..<items where listeners[i] > 0 { played.insert(Int32(i)) }
        do {
            let space = try ItemSpace(name: "cf", vectors: bundle.model.itemFactors, index: similarityIndex, validItems: played)
            environment = try PlaylistEnvironment(catalog: catalog, space: space, model: bundle.model)
            becauseYouPlayed = try BecauseYouPlayed(
                environment: environment, configuration: .init(count: 10, poolSize: 50), referenceTime: now)
        } catch { throw .model(error.description) }
        if let parameters = bundle.contentSpaces?.hybridModel {
            do {
                coldStart = try ColdStartModel(
                    parameters: parameters, itemFactors: bundle.model.itemFactors, listeners: listeners,
                    artists: catalog.hasArtists ? catalog.trackArtist : nil)
            } catch { throw .model("/hybrid/model: \(error)") }
        } else {
            coldStart = nil
        }
        // By listeners, most first, ties by item (``CSRMatrix/popularityRanking(measure:)`` with `.userCount`).
        popular = (0..<Int32(items)).filter { listeners[Int($0)] > 0 }
            .sorted { listeners[Int($0)] != listeners[Int($1)] ? listeners[Int($0)] > listeners[Int($1)] : $0 < $1 }
        listenerCounts = listeners
        self.path = path
        self.bundlePath = bundlePath ?? path
        self.bundle = bundle
        self.catalog = catalog
        self.recommendationIndex = recommendationIndex
        self.spaceIndexes = spaceIndexes
        self.fileIdentity = fileIdentity
        self.indexFiles = indexFiles
        self.watchPath = watchPath ?? path
        self.publishedVersion = publishedVersion
        self.indexStatus = indexStatus
        self.loadedAt = Date().timeIntervalSince1970
        eventLogThrough = bundle.metadata["event_log_through"].flatMap { UInt64($0.trimmingCharacters(in: .whitespaces)) }
        let created = bundle.createdAt ?? bundle.metadata["created_at"]
        createdAtMs = created.flatMap(Timestamp.parseMilliseconds)
        let mtime = publishedVersion ?? fileIdentity.map { "\($0.modifiedNs / 1_000_000)" } ?? "memory"
        version = "\(created ?? "unknown")/\(mtime)"
    }

    /// The bundle's catalog, or a bare one when it has none.
    static func catalog(of bundle: ModelBundle) -> TrackCatalog {
        bundle.catalog ?? .bare(itemCount: bundle.itemIDs.count)
    }

    /// The bundle's vectors of a content or hybrid space (`audio`, `text`, `sequence`, `hybrid`), or `nil` when the
    /// bundle has none.
    public func contentVectors(_ name: String) -> ItemVectorSet? { Self.contentVectors(name, of: bundle) }

    static func contentVectors(_ name: String, of bundle: ModelBundle) -> ItemVectorSet? {
        guard let c = bundle.contentSpaces else { return nil }
        switch name {
        case "audio": return c.audioEmbeddings
        case "text": return c.text
        case "sequence": return c.sequence
        case "hybrid": return c.hybrid
        default: return nil
        }
    }

    /// The bundle's space `name` (`audio`, `text`, `sequence`, `hybrid`) for similarity search: cosine over its
    /// L2-normalized vectors, through the space's published index when it was loaded (``spaceIndexes``), else by
    /// exact scan; made on first use (the aligned copy costs `items x dim` floats, so only the spaces asked for are
    /// made); `nil` when the bundle lacks the space.
    /// - Throws: ``ServingError/model(_:)`` when the space cannot be made.
    public func contentSpace(_ name: String) throws(ServingError) -> ItemSpace? {
        if let made = contentSpaceCache.withLock({ $0[name] }) { return made }
        guard let set = contentVectors(name), set.count > 0 else { return nil }
        let n = itemCount
        let (vectors, present) = set.aligned(itemCount: n)
        var valid = IDBitset(capacity: n)
        for i in 0..<n where present[i] { valid.insert(Int32(i)) }
        let space: ItemSpace
        do { space = try ItemSpace(name: name, vectors: vectors, index: spaceIndexes[name], validItems: valid) } catch {
            throw .model("space '\(name)': \(error)")
        }
        return contentSpaceCache.withLock { cache in
            if let other = cache[name] { return other }
            cache[name] = space
            return space
        }
    }

    /// The model.
    public var model: ImplicitALS { bundle.model }
    /// The number of items.
    public var itemCount: Int { bundle.itemIDs.count }
    /// The index of an external item id.
    public func item(_ id: String) -> Int32? { bundle.itemIDs.index(of: id) }
    /// The external id of an item index.
    public func itemID(_ i: Int32) -> String { bundle.itemIDs.id(at: i) }
    /// The row of an external user id, when the bundle knows the user.
    public func user(_ id: String) -> Int32? { bundle.userIDs.index(of: id) }
    /// The index of an external artist id in the catalog.
    public func artist(_ id: String) -> Int32? { catalog.artistIDs.index(of: id) }
}

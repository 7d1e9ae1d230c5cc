import Foundation
import EncoreCore
import EncoreFactorization
import EncorePlaylists
import EncoreData
import EncoreHybrid

/// A trained recommendation model with everything needed to serve and explain it, stored as one HDF5 file.
///
/// A bundle holds the id maps, the implicit-ALS model (hyper-parameters and both factor matrices), the training
/// users x items confidence matrix (so a server can exclude played items and explain a recommendation), the
/// evaluation metrics and free-form metadata.
///
/// ## File layout (format version 1)
///
/// Readable from h5py; names in `snake_case`. Attributes are written `<object>@<name>` in errors.
///
/// | object | kind | content |
/// |---|---|---|
/// | `/` | attributes | `encore_version` (string), `encore_format_version` (int64), `created_at` (ISO-8601 string) |
/// | `/ids/users` | dataset `[users]` | variable-length UTF-8 strings: the external user ids, row order of the factors |
/// | `/ids/items` | dataset `[items]` | variable-length UTF-8 strings: the external item ids |
/// | `/cf` | group attributes | `factors` (int64), `regularization` (float64), `alpha` (float64), `iterations` (int64), `solver` (string: `cg` or `cholesky`), `cg_steps` (int64), `seed` (uint64), `threads` (int64), `calculate_loss` (uint8), `confidence_floor` (float64; absent in bundles written before it existed, read as 0) |
/// | `/cf/user_factors` | dataset `[users, factors]` | float32, row-major |
/// | `/cf/item_factors` | dataset `[items, factors]` | float32, row-major |
/// | `/cf/user_items` | group attributes | `shape` (int64 `[users, items]`), `format` (`"csr"`) |
/// | `/cf/user_items/indptr` | dataset `[users + 1]` | int64: row `u` is `indptr[u]..<indptr[u+1]` |
/// | `/cf/user_items/indices` | dataset `[nnz]` | int32 item indices, sorted within a row |
/// | `/cf/user_items/data` | dataset `[nnz]` | float32 confidence values |
/// | `/eval` | group attributes | one float64 attribute per metric, e.g. `precision@10` |
/// | `/meta` | group attributes | one string attribute per metadata key |
/// | `/playlists/discover_weekly` | group (optional) | ``DiscoverWeeklyTable``: every user's Discover Weekly |
/// | `/playlists/daily_mix` | group (optional) | ``DailyMixTable``: every user's Daily Mixes |
/// | `/catalog` | group (optional) | ``TrackCatalog`` aligned to the items: artist, album, genre, release, duration, flagged, artist ids and names (layout in `CatalogTable.swift`) |
/// | `/audio`, `/text`, `/sequence` | groups (optional) | ``ContentSpaces``: audio embeddings and descriptors, text and sequence vectors, each with its item ids (layout in `ContentSpaces.swift`) |
///
/// `/cf/user_items` is the `scipy.sparse.csr_matrix((data, indices, indptr), shape=shape)` layout. Large CSR arrays
/// (64 Ki values or more) are chunked and gzip-compressed (level 1, byte-shuffled); the factors are contiguous.
///
/// ## Reading and writing
/// ``write(to:)`` writes a temporary sibling file, syncs it and renames it into place, so a reader never sees half a
/// bundle. ``read(from:)`` checks the file is HDF5, that it is an Encore bundle of the current
/// ``Encore/bundleFormatVersion``, and that every dataset exists with consistent shapes; it fails with a
/// ``BundleError`` (never a crash) on a foreign, truncated or inconsistent file. ``inspect(path:)`` reads the
/// versions, counts and metrics without the factors.
public struct ModelBundle: Sendable {
    /// The external user ids; user `u` is row `u` of the user factors and of ``userItems``.
    public var userIDs: IDMap
    /// The external item ids; item `i` is row `i` of the item factors and column `i` of ``userItems``.
    public var itemIDs: IDMap
    /// The factor model: hyper-parameters and the user and item factor matrices.
    public var model: ImplicitALS
    /// The training confidence matrix, users x items.
    public var userItems: CSRMatrix
    /// Evaluation metrics by name, for example `"precision@10"`.
    public var metrics: [String: Double]
    /// Free-form metadata: input file, weighting, `created_at`, ...
    public var metadata: [String: String]
    /// The Encore version that wrote the bundle (``Encore/version`` for a bundle built in memory).
    public internal(set) var libraryVersion: String
    /// The bundle format version (``Encore/bundleFormatVersion`` for a bundle built in memory).
    public internal(set) var formatVersion: Int32
    /// Every user's Discover Weekly, when the weekly job made them (`/playlists/discover_weekly`).
    public var discoverWeekly: DiscoverWeeklyTable?
    /// Every user's Daily Mixes, when the weekly job made them (`/playlists/daily_mix`).
    public var dailyMixes: DailyMixTable?
    /// The track catalog aligned to ``itemIDs`` (`/catalog`), when the weekly job had one; `nil` in older bundles.
    public var catalog: TrackCatalog?
    /// The content spaces (audio, text, sequence vectors) of some of the items, when the weekly job made them;
    /// `nil` in older bundles.
    public var contentSpaces: ContentSpaces?
    /// How ``userItems`` was weighted from listens (`/cf/weighting`), so new plays are weighted the same way;
    /// `nil` in older bundles and in bundles of models trained elsewhere.
    public var confidence: ConfidenceContext?
    /// The root `created_at` of the file this bundle was read from; `nil` for a bundle built in memory.
    ///
    /// ``write(to:)`` stamps `metadata["created_at"]` when present, else the current time (ISO-8601, UTC).
    public internal(set) var createdAt: String?
    /// The item side's listener counts when this bundle holds one user shard's users only
    /// (``read(from:userShard:)``), else `nil`.
    public internal(set) var shardListeners: [Int]?

    /// The number of users with a training entry for each item (its listeners), over every user of the model: from
    /// ``userItems`` for a whole bundle, from the item side's `/cf/item_listeners` for a bundle that holds one user
    /// shard (whose ``userItems`` has that shard's rows only).
    public var itemListeners: [Int] { shardListeners ?? ColdStartModel.listeners(userItems: userItems) }

    /// Whether the user side holds only one user shard's users (read with ``read(from:userShard:)``): such a
    /// bundle answers for those users with the item side's counts, and is never written as a bundle.
    public var isUserShard: Bool { shardListeners != nil }

    /// A bundle of the current library and format versions.
    public init(
        userIDs: IDMap, itemIDs: IDMap, model: ImplicitALS, userItems: CSRMatrix,
        metrics: [String: Double] = [:], metadata: [String: String] = [:]
    ) {
        self.userIDs = userIDs
        self.itemIDs = itemIDs
        self.model = model
        self.userItems = userItems
        self.metrics = metrics
        self.metadata = metadata
        self.libraryVersion = Encore.version
        self.formatVersion = Encore.bundleFormatVersion
        self.createdAt = nil
    }

    // MARK: Validation

    /// Checks the parts agree with each other and can be stored: factor rows equal the id counts, factor columns
    /// equal `parameters.factors`, the CSR matrix is users x items, the parameters are valid, and no id, metric or
    /// metadata name or value holds a character HDF5 cannot store.
    ///
    /// - Parameter path: the file named in errors (the bundle being written).
    public func validate(path: String = "<in-memory bundle>") throws(BundleError) {
        let p = model.parameters
        do { try p.validate() } catch { throw .invalidData(path: path, object: BundleLayout.cf, reason: error.description) }
        let users = userIDs.count, items = itemIDs.count
        guard model.userFactors.rows == users, model.userFactors.cols == p.factors else {
            throw .shapeMismatch(
                path: path, object: BundleLayout.userFactors,
                reason: "user factors are \(model.userFactors.rows) x \(model.userFactors.cols), expected "
                    + "\(users) (user ids) x \(p.factors) (factors)")
        }
        guard model.itemFactors.rows == items, model.itemFactors.cols == p.factors else {
            throw .shapeMismatch(
                path: path, object: BundleLayout.itemFactors,
                reason: "item factors are \(model.itemFactors.rows) x \(model.itemFactors.cols), expected "
                    + "\(items) (item ids) x \(p.factors) (factors)")
        }
        guard userItems.rows == users, userItems.cols == items else {
            throw .shapeMismatch(
                path: path, object: BundleLayout.userItems,
                reason: "the matrix is \(userItems.rows) x \(userItems.cols), expected \(users) users x \(items) items")
        }
        for (object, ids) in [(BundleLayout.users, userIDs.ids), (BundleLayout.items, itemIDs.ids)] {
            if let bad = ids.firstIndex(where: { $0.utf8.contains(0) }) {
                throw .invalidData(path: path, object: object, reason: "id \(bad) contains a NUL character")
            }
        }
        for name in metrics.keys where !Self.isStorableName(name) {
            throw .invalidData(path: path, object: "\(BundleLayout.eval)@\(name)",
                               reason: "a metric name must be non-empty, not '.', and free of NUL characters")
        }
        try discoverWeekly?.validate(users: users, items: items, path: path)
        try dailyMixes?.validate(users: users, items: items, path: path)
        try catalog?.validate(items: items, path: path)
        try contentSpaces?.validate(items: items, path: path)
        if let confidence, case .bm25 = confidence.weighting, confidence.itemLengthNorms.count != items {
            throw .shapeMismatch(path: path, object: WeightingLayout.itemLengthNorm,
                                 reason: "\(confidence.itemLengthNorms.count) item norms for \(items) items")
        }
        for (key, value) in metadata {
            guard Self.isStorableName(key), !value.utf8.contains(0) else {
                throw .invalidData(path: path, object: "\(BundleLayout.meta)@\(key)",
                                   reason: "a metadata key must be non-empty and not '.', and neither key nor "
                                       + "value may contain a NUL character")
            }
        }
    }

    private static func isStorableName(_ name: String) -> Bool {
        !name.isEmpty && name != "." && !name.utf8.contains(0)
    }

    // MARK: Writing

    /// Writes the bundle to `path` atomically.
    ///
    /// Everything goes to `path + ".tmp-<pid>-<random>"` in the same directory, which is flushed, closed and
    /// `fsync`ed, then renamed over `path`; the directory is synced last. On failure the temporary file is removed
    /// and any previous file at `path` is left as it was.
    ///
    /// - Throws: ``BundleError`` naming the path and the object at fault: an inconsistent bundle (see
    ///   ``validate(path:)``), a missing or unwritable directory, or an HDF5 or file-system failure.
    public func write(to path: String) throws(BundleError) {
        try write(to: path, options: BundleWriteOptions())
    }

    /// ``write(to:)`` with layout options and a failure hook for tests.
    func write(to path: String, options: BundleWriteOptions) throws(BundleError) {
        guard !isUserShard else {
            throw .invalidData(path: path, object: BundleLayout.users,
                               reason: "this bundle holds one user shard's users (read with a shard part), not every user: it cannot be written as a bundle")
        }
        try validate(path: path)
        try AtomicFile.checkDirectory(for: path, operation: "write the bundle", as: BundleError.self)
        let temporary = AtomicFile.temporaryPath(for: path)
        do {
            try writeContents(to: temporary, reportingAs: path, options: options)
            try AtomicFile.sync(file: temporary, reportingAs: path, as: BundleError.self)
            try AtomicFile.rename(temporary, to: path, as: BundleError.self)
        } catch {
            AtomicFile.removeIfPresent(temporary)
            throw error
        }
        try AtomicFile.syncDirectory(of: path, as: BundleError.self)
    }

    /// Writes every object into a new HDF5 file at `temporary` and closes it.
    private func writeContents(to temporary: String, reportingAs path: String,
                               options: BundleWriteOptions) throws(BundleError) {
        var file: HDF5File
        do {
            file = try HDF5File.create(at: temporary)
        } catch {
            throw .io(path: path, operation: "create the temporary file \(temporary)", reason: error.description)
        }
        func step(_ object: String) throws(BundleError) {
            if options.failBefore == object {
                throw .io(path: path, operation: "write \(object)", reason: "injected failure (test)")
            }
        }
        let p = model.parameters
        let createdAt = metadata["created_at"] ?? Date().ISO8601Format()

        try step("/")
        try file.setAttribute("encore_version", string: Encore.version, on: "/")
        try file.setAttribute("encore_format_version", scalar: Int64(Encore.bundleFormatVersion), on: "/")
        try file.setAttribute("created_at", string: createdAt, on: "/")

        try step(BundleLayout.users)
        try file.write(strings: userIDs.ids, at: BundleLayout.users)
        try step(BundleLayout.items)
        try file.write(strings: itemIDs.ids, at: BundleLayout.items)

        try step(BundleLayout.cf)
        try file.createGroup(BundleLayout.cf)
        try file.setAttribute("factors", scalar: Int64(p.factors), on: BundleLayout.cf)
        try file.setAttribute("regularization", scalar: Double(p.regularization), on: BundleLayout.cf)
        try file.setAttribute("alpha", scalar: Double(p.alpha), on: BundleLayout.cf)
        try file.setAttribute("iterations", scalar: Int64(p.iterations), on: BundleLayout.cf)
        try file.setAttribute("solver", string: p.solver.rawValue, on: BundleLayout.cf)
        try file.setAttribute("cg_steps", scalar: Int64(p.cgSteps), on: BundleLayout.cf)
        try file.setAttribute("seed", scalar: p.seed, on: BundleLayout.cf)
        try file.setAttribute("threads", scalar: Int64(p.threads), on: BundleLayout.cf)
        try file.setAttribute("calculate_loss", scalar: UInt8(p.calculateLoss ? 1 : 0), on: BundleLayout.cf)
        try file.setAttribute("confidence_floor", scalar: Double(p.confidenceFloor), on: BundleLayout.cf)

        try step(BundleLayout.userFactors)
        try file.write(model.userFactors, at: BundleLayout.userFactors)
        try step(BundleLayout.itemFactors)
        try file.write(model.itemFactors, at: BundleLayout.itemFactors)

        try step(BundleLayout.userItems)
        try file.createGroup(BundleLayout.userItems)
        try file.setAttribute("shape", array: [Int64(userItems.rows), Int64(userItems.cols)], on: BundleLayout.userItems)
        try file.setAttribute("format", string: "csr", on: BundleLayout.userItems)
        func layout(_ count: Int) -> HDF5Compression {
            count >= options.compressionThreshold ? .deflate(level: options.compressionLevel, shuffle: true) : .none
        }
        try file.write(userItems.indptr.map { Int64($0) }, shape: [userItems.indptr.count], at: BundleLayout.indptr,
                       compression: layout(userItems.indptr.count))
        try file.write(userItems.indices, shape: [userItems.nnz], at: BundleLayout.indices,
                       compression: layout(userItems.nnz))
        try step(BundleLayout.data)
        try file.write(userItems.values, shape: [userItems.nnz], at: BundleLayout.data,
                       compression: layout(userItems.nnz))
        try step(BundleLayout.itemListeners)
        try file.write(itemListeners.map { Int32(clamping: $0) }, shape: [itemIDs.count], at: BundleLayout.itemListeners)

        try step(BundleLayout.eval)
        try file.createGroup(BundleLayout.eval)
        for (name, value) in metrics.sorted(by: { $0.key < $1.key }) {
            try file.setAttribute(name, scalar: value, on: BundleLayout.eval)
        }
        try step(BundleLayout.meta)
        try file.createGroup(BundleLayout.meta)
        for (key, value) in metadata.sorted(by: { $0.key < $1.key }) {
            try file.setAttribute(key, string: value, on: BundleLayout.meta)
        }
        if let confidence { try file.write(confidence) }
        if let discoverWeekly { try file.write(discoverWeekly) }
        if let dailyMixes { try file.write(dailyMixes) }
        if let catalog { try file.write(catalog) }
        if let contentSpaces {
            try step(ContentLayout.audio)
            try file.write(contentSpaces, itemIDs: itemIDs)
        }
        try step("close")
        try file.close()
    }

    // MARK: Reading

    /// Reads and validates the bundle at `path`.
    ///
    /// - Throws: ``BundleError``: ``BundleError/fileNotFound(path:)``; ``BundleError/notHDF5(path:)`` for a foreign
    ///   file; ``BundleError/unreadable(path:reason:)`` for a truncated or damaged HDF5 file;
    ///   ``BundleError/notABundle(path:reason:)`` for an HDF5 file without Encore's root attributes;
    ///   ``BundleError/unsupportedFormatVersion(path:found:supported:writtenBy:)`` for another format version;
    ///   ``BundleError/missingObject(path:object:)``, ``BundleError/wrongType(path:object:expected:found:)``,
    ///   ``BundleError/shapeMismatch(path:object:reason:)`` or ``BundleError/invalidData(path:object:reason:)`` for
    ///   an incomplete or inconsistent bundle.
    public static func read(from path: String) throws(BundleError) -> ModelBundle {
        var file = try BundleReader.open(path)
        let header = try BundleReader.header(file)
        let layout = try BundleReader.layout(file)

        let users = try BundleReader.idMap(file, BundleLayout.users)
        let items = try BundleReader.idMap(file, BundleLayout.items)
        let userFactors = try file.readMatrix(at: BundleLayout.userFactors)
        let itemFactors = try file.readMatrix(at: BundleLayout.itemFactors)
        let model: ImplicitALS
        do {
            model = try ImplicitALS(parameters: layout.parameters, userFactors: userFactors, itemFactors: itemFactors)
        } catch {
            throw .shapeMismatch(path: path, object: BundleLayout.cf, reason: error.description)
        }
        let userItems = try BundleReader.userItems(file, layout: layout)
        if let stored = try BundleReader.itemListeners(file, layout: layout) {
            let counted = ColdStartModel.listeners(userItems: userItems)
            if let i = stored.indices.first(where: { stored[$0] != counted[$0] }) {
                throw .invalidData(path: path, object: BundleLayout.itemListeners,
                                   reason: "item \(i) has \(stored[i]) listeners recorded, \(counted[i]) in \(BundleLayout.userItems)")
            }
        }
        let metrics = try BundleReader.metrics(file)
        let metadata = try BundleReader.metadata(file)
        let discoverWeekly = try file.readDiscoverWeekly()
        let dailyMixes = try file.readDailyMix()
        let catalog = try file.readCatalog(items: items.count)
        let confidence = try file.readConfidence(items: items.count)
        let contentSpaces = try file.readContentSpaces(itemIDs: items)
        try file.close()

        var bundle = ModelBundle(
            userIDs: users, itemIDs: items, model: model, userItems: userItems, metrics: metrics, metadata: metadata)
        bundle.discoverWeekly = discoverWeekly
        bundle.dailyMixes = dailyMixes
        bundle.catalog = catalog
        bundle.confidence = confidence
        bundle.contentSpaces = contentSpaces
        try discoverWeekly?.validate(users: users.count, items: items.count, path: path)
        try dailyMixes?.validate(users: users.count, items: items.count, path: path)
        bundle.libraryVersion = header.libraryVersion
        bundle.formatVersion = header.formatVersion
        bundle.createdAt = header.createdAt
        return bundle
    }

    /// The item side of the bundle at `path` with the user side of one shard's `part` (made from this bundle by
    /// `encore-train playlists --users-shard`): items, item factors, catalog, content spaces, weighting, metrics and
    /// metadata from the bundle; users, their factors, training rows and playlists from the part; and every item's
    /// listener count over all users (``itemListeners``) from `/cf/item_listeners` (or, for a bundle written before
    /// it was stored, counted from `/cf/user_items/indices` alone). The other users' ids, factors and training rows
    /// are never read, so a shard server's memory holds the item side and its own users.
    ///
    /// The part is trusted to come from this bundle: its `item_side_xxh64` is the file's checksum, which the caller
    /// checks (``ShardedBundle/open(shard:manifest:)``); the counts and the factor dimension are checked here.
    /// - Throws: ``BundleError`` as ``read(from:)``, and ``BundleError/shapeMismatch(path:object:reason:)`` when the
    ///   part's counts are not the bundle's.
    public static func read(from path: String, userShard part: UserShardPart) throws(BundleError) -> ModelBundle {
        var file = try BundleReader.open(path)
        let header = try BundleReader.header(file)
        let layout = try BundleReader.layout(file)
        guard layout.users == part.bundleUserCount, layout.items == part.itemCount, layout.parameters.factors == part.userFactors.cols else {
            throw .shapeMismatch(
                path: path, object: BundleLayout.cf,
                reason: "the user shard part \(part.shard) was made from a bundle of \(part.bundleUserCount) users, \(part.itemCount) items "
                    + "and \(part.userFactors.cols) factors, not this one (\(layout.users) users, \(layout.items) items, \(layout.parameters.factors) factors)")
        }
        let items = try BundleReader.idMap(file, BundleLayout.items)
        let itemFactors = try file.readMatrix(at: BundleLayout.itemFactors)
        let users: IDMap
        do { users = try IDMap(ids: part.userIDs) } catch {
            throw .invalidData(path: path, object: BundleLayout.users, reason: "the shard part's users: \(error)")
        }
        let model: ImplicitALS
        do {
            model = try ImplicitALS(parameters: layout.parameters, userFactors: part.userFactors, itemFactors: itemFactors)
        } catch {
            throw .shapeMismatch(path: path, object: BundleLayout.cf, reason: error.description)
        }
        let listeners: [Int]
        if let stored = try BundleReader.itemListeners(file, layout: layout) {
            listeners = stored
        } else {
            var counts = [Int](repeating: 0, count: layout.items)
            for i in try file.read(Int32.self, at: BundleLayout.indices).values {
                guard i >= 0, Int(i) < layout.items else {
                    throw .invalidData(path: path, object: BundleLayout.indices, reason: "column \(i) is outside 0..<\(layout.items)")
                }
                counts[Int(i)] += 1
            }
            listeners = counts
        }
        var bundle = ModelBundle(
            userIDs: users, itemIDs: items, model: model, userItems: part.userItems,
            metrics: try BundleReader.metrics(file), metadata: try BundleReader.metadata(file))
        bundle.catalog = try file.readCatalog(items: items.count)
        bundle.confidence = try file.readConfidence(items: items.count)
        bundle.contentSpaces = try file.readContentSpaces(itemIDs: items)
        try file.close()
        bundle.discoverWeekly = part.discoverWeekly
        bundle.dailyMixes = part.dailyMixes
        bundle.shardListeners = listeners
        bundle.libraryVersion = header.libraryVersion
        bundle.formatVersion = header.formatVersion
        bundle.createdAt = header.createdAt
        return bundle
    }

    /// A summary of the bundle at `path` (versions, counts, parameters, metrics, metadata) read without the factor
    /// matrices, the ids or the CSR arrays.
    ///
    /// It makes the same file, bundle, format-version and shape checks as ``read(from:)``, so a summary is only
    /// given for a bundle this library can read; the error of an unsupported one names both versions.
    public static func inspect(path: String) throws(BundleError) -> BundleSummary {
        var file = try BundleReader.open(path)
        let header = try BundleReader.header(file)
        let layout = try BundleReader.layout(file)
        let metrics = try BundleReader.metrics(file)
        let metadata = try BundleReader.metadata(file)
        try file.close()
        let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.intValue ?? 0
        return BundleSummary(
            path: path, formatVersion: header.formatVersion, libraryVersion: header.libraryVersion,
            createdAt: header.createdAt, userCount: layout.users, itemCount: layout.items,
            interactionCount: layout.nnz, parameters: layout.parameters, metrics: metrics, metadata: metadata,
            fileSize: size)
    }
}

extension ModelBundle: Equatable {
    /// Bundles are equal when every stored part is: ids, parameters, factors, the CSR matrix, metrics, metadata
    /// and versions. ``createdAt`` (a property of the file, not of the model) is not compared.
    public static func == (a: ModelBundle, b: ModelBundle) -> Bool {
        a.userIDs == b.userIDs && a.itemIDs == b.itemIDs && a.model.parameters == b.model.parameters
            && a.model.userFactors == b.model.userFactors && a.model.itemFactors == b.model.itemFactors
            && a.userItems == b.userItems && a.metrics == b.metrics && a.metadata == b.metadata
            && a.libraryVersion == b.libraryVersion && a.formatVersion == b.formatVersion
            && a.discoverWeekly == b.discoverWeekly && a.dailyMixes == b.dailyMixes && a.confidence == b.confidence
            && a.contentSpaces == b.contentSpaces
            && (a.catalog == nil) == (b.catalog == nil)
            && (a.catalog.map { x in b.catalog.map { x.sameContents(as: $0) } ?? false } ?? true)
    }
}

/// What ``ModelBundle/inspect(path:)`` reports about a bundle.
public struct BundleSummary: Sendable, Equatable, CustomStringConvertible {
    /// The file.
    public var path: String
    /// The bundle format version.
    public var formatVersion: Int32
    /// The Encore version that wrote the bundle.
    public var libraryVersion: String
    /// The root `created_at` attribute (ISO-8601), when present.
    public var createdAt: String?
    /// The number of users (rows of the user factors).
    public var userCount: Int
    /// The number of items (rows of the item factors).
    public var itemCount: Int
    /// The number of stored user-item pairs in the training matrix.
    public var interactionCount: Int
    /// The model's hyper-parameters.
    public var parameters: ALSParameters
    /// The evaluation metrics.
    public var metrics: [String: Double]
    /// The metadata.
    public var metadata: [String: String]
    /// The file size in bytes.
    public var fileSize: Int

    /// A multi-line, human-readable report.
    public var description: String {
        var lines = [
            "bundle \(path) (\(fileSize) bytes)",
            "  format \(formatVersion), written by Encore \(libraryVersion), created \(createdAt ?? "unknown")",
            "  \(userCount) users, \(itemCount) items, \(interactionCount) interactions",
            "  ALS: \(parameters.factors) factors, regularization \(parameters.regularization), alpha "
                + "\(parameters.alpha), confidence floor \(parameters.confidenceFloor), \(parameters.iterations) iterations, "
                + "solver \(parameters.solver.rawValue)",
        ]
        for (name, value) in metrics.sorted(by: { $0.key < $1.key }) { lines.append("  \(name) = \(value)") }
        for (key, value) in metadata.sorted(by: { $0.key < $1.key }) { lines.append("  \(key): \(value)") }
        return lines.joined(separator: "\n")
    }
}

/// Options of the bundle writer (internal: tests vary them).
struct BundleWriteOptions: Sendable {
    /// CSR arrays with at least this many values are chunked and compressed.
    var compressionThreshold = 1 << 16
    /// The gzip level of compressed arrays.
    var compressionLevel = 1
    /// Fails the write just before this object (a layout path, `"/"` or `"close"`): a test hook.
    var failBefore: String? = nil
}

/// The object paths of format version 1.
enum BundleLayout {
    static let users = "/ids/users"
    static let items = "/ids/items"
    static let cf = "/cf"
    static let userFactors = "/cf/user_factors"
    static let itemFactors = "/cf/item_factors"
    static let userItems = "/cf/user_items"
    static let indptr = "/cf/user_items/indptr"
    static let indices = "/cf/user_items/indices"
    static let data = "/cf/user_items/data"
    static let itemListeners = "/cf/item_listeners"
    static let eval = "/eval"
    static let meta = "/meta"
}

/// The weighting of the training confidences: `/cf/weighting` (attribute `scheme`, the CLI spelling such as
/// `bm25:k1=100,b=0.8`; for BM25 also attribute `item_count` and dataset `item_length_norm`, float32 per item).
enum WeightingLayout {
    static let group = "/cf/weighting"
    static let itemLengthNorm = "/cf/weighting/item_length_norm"
}

extension HDF5File {
    func write(_ c: ConfidenceContext) throws(BundleError) {
        try createGroup(WeightingLayout.group)
        try setAttribute("scheme", string: c.weighting.description, on: WeightingLayout.group)
        try setAttribute("item_count", scalar: Int64(c.itemCount), on: WeightingLayout.group)
        if !c.itemLengthNorms.isEmpty {
            try write(c.itemLengthNorms, shape: [c.itemLengthNorms.count], at: WeightingLayout.itemLengthNorm)
        }
    }

    func readConfidence(items: Int) throws(BundleError) -> ConfidenceContext? {
        let g = WeightingLayout.group
        guard exists(g) else { return nil }
        let scheme = try stringAttribute("scheme", on: g)
        let weighting: ConfidenceWeighting
        do { weighting = try ConfidenceWeighting(parsing: scheme) } catch {
            throw .invalidData(path: path, object: "\(g)@scheme", reason: error.description)
        }
        let count = try scalarAttribute(Int64.self, "item_count", on: g)
        guard count >= 0, count <= Int64(Int32.max) else {
            throw .invalidData(path: path, object: "\(g)@item_count", reason: "item count \(count) out of range")
        }
        var norms: [Float] = []
        if exists(WeightingLayout.itemLengthNorm) {
            norms = try read(Float.self, at: WeightingLayout.itemLengthNorm).values
            guard norms.count == items else {
                throw .shapeMismatch(path: path, object: WeightingLayout.itemLengthNorm,
                                     reason: "\(norms.count) values for \(items) items")
            }
            guard norms.allSatisfy({ $0.isFinite && $0 >= 0 }) else {
                throw .invalidData(path: path, object: WeightingLayout.itemLengthNorm, reason: "a norm is negative or not finite")
            }
        } else if case .bm25 = weighting {
            throw .missingObject(path: path, object: WeightingLayout.itemLengthNorm)
        }
        return ConfidenceContext(weighting: weighting, itemLengthNorms: norms, itemCount: Int(count))
    }
}

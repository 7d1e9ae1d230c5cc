import Foundation
import Logging
import EncoreCore
import EncoreFactorization
import EncoreIndex
import EncorePlaylists
import EncoreStorage

/// One loaded bundle, ready to answer queries: the model, the catalogue, the HNSW indexes written beside the bundle
/// (exact search when they are absent), the item space of "Because you played" and a popularity ranking for users
/// without a vector.
///
/// Immutable once made: any number of requests read one value at once, and a hot reload swaps in a new one while
/// requests in flight finish on the old.
public final class ServingModel: Sendable {
    /// The bundle file (empty for a bundle built in memory).
    public let path: String
    /// The bundle.
    public let bundle: ModelBundle
    /// The track catalogue: the bundle's when it has one, else a bare catalogue (no artist rules).
    public let catalog: TrackCatalog
    /// The inner-product index over the item factors used for recommendations, or `nil` (exact scoring).
    public let recommendationIndex: HNSWIndex?
    /// The catalogue, the cosine item space (with its index when present) and the model.
    public let environment: PlaylistEnvironment
    /// The "Because you played" row builder.
    public let becauseYouPlayed: BecauseYouPlayed
    /// Items by number of training listeners, most first (items nobody played are left out).
    public let popular: [Int32]
    /// The number of training listeners of each item.
    public let listenerCounts: [Int]
    /// A short identifier of the bundle: its `created_at` and the file's modification time.
    public let version: String
    /// The last event-log sequence the bundle was trained on (`/meta@event_log_through`), when recorded.
    public let eventLogThrough: UInt64?
    /// The bundle's creation time in Unix milliseconds (`created_at`), when known.
    public let createdAtMs: Int64?
    /// The identity of the bundle file when it was loaded (for change polling).
    public let fileIdentity: FileIdentity?
    /// When the model was loaded (Unix seconds).
    public let loadedAt: Double
    /// Which index files were found, by role (`items-ip`, `items-cosine`), for the logs and `/metrics`.
    public let indexFiles: [String: String]

    /// Reads the bundle at `path` and the index files beside it.
    ///
    /// Index files are named by the bundle's `/meta@index/<name>` keys (relative to the bundle's folder) or, by
    /// default, `<bundle without .h5>.items-ip.hnsw` and `.items-cosine.hnsw`. A missing or unreadable index is
    /// logged and replaced by exact search.
    /// - Throws: ``ServingError/bundle(_:)`` when the bundle cannot be read.
    public static func load(path: String, logger: Logger? = nil) throws(ServingError) -> ServingModel {
        let identity = FileIdentity.of(path)
        let bundle: ModelBundle
        do { bundle = try ModelBundle.read(from: path) } catch { throw .bundle(error) }
        var indexes: [String: HNSWIndex] = [:]
        var files: [String: String] = [:]
        let dir = (path as NSString).deletingLastPathComponent
        let base = path.hasSuffix(".h5") ? String(path.dropLast(3)) : path
        for role in ["items-ip", "items-cosine"] {
            let name = role + ".hnsw"
            let file = bundle.metadata["index/" + name].map { (dir as NSString).appendingPathComponent($0) } ?? base + "." + name
            guard FileManager.default.fileExists(atPath: file) else {
                logger?.info("index file absent: exact search", metadata: ["role": .string(role), "file": .string(file)])
                continue
            }
            do {
                let index = try HNSWIndex.load(from: file)
                guard index.dimension == bundle.model.parameters.factors, index.count == bundle.itemIDs.count else {
                    logger?.warning("index file does not match the bundle: exact search", metadata: [
                        "file": .string(file), "dimension": "\(index.dimension)", "count": "\(index.count)"])
                    continue
                }
                indexes[role] = index
                files[role] = file
            } catch {
                logger?.warning("index file unreadable: exact search", metadata: ["file": .string(file), "reason": .string(error.description)])
            }
        }
        return try ServingModel(bundle: bundle, path: path, catalog: nil, recommendationIndex: indexes["items-ip"],
                                similarityIndex: indexes["items-cosine"], fileIdentity: identity, indexFiles: files)
    }

    /// A serving model from a bundle in memory.
    ///
    /// - Parameters:
    ///   - catalog: the catalogue; `nil` takes the bundle's, or a bare one.
    ///   - recommendationIndex: an inner-product index over the item factors (ids = item indices), or `nil`.
    ///   - similarityIndex: a cosine index over the item factors, or `nil`.
    /// - Throws: ``ServingError/model(_:)`` when the parts disagree in size.
    public init(
        bundle: ModelBundle, path: String = "", catalog: TrackCatalog? = nil, recommendationIndex: HNSWIndex? = nil,
        similarityIndex: HNSWIndex? = nil, fileIdentity: FileIdentity? = nil, indexFiles: [String: String] = [:]
    ) throws(ServingError) {
        let items = bundle.itemIDs.count
        let catalog = catalog ?? Self.catalog(of: bundle)
        guard catalog.itemCount == items else {
            throw .model("the catalogue has \(catalog.itemCount) items, the bundle \(items)")
        }
        let now = Int64(Date().timeIntervalSince1970)
        do {
            let space = try ItemSpace.collaborative(bundle.model, userItems: bundle.userItems, index: similarityIndex)
            environment = try PlaylistEnvironment(catalog: catalog, space: space, model: bundle.model)
            becauseYouPlayed = try BecauseYouPlayed(
                environment: environment, configuration: .init(count: 10, poolSize: 50), referenceTime: now)
        } catch { throw .model(error.description) }
        var listeners = [Int](repeating: 0, count: items)
        for i in bundle.userItems.indices { listeners[Int(i)] += 1 }
        popular = bundle.userItems.popularityRanking(measure: .userCount)
            .filter { listeners[Int($0)] > 0 }
        listenerCounts = listeners
        self.path = path
        self.bundle = bundle
        self.catalog = catalog
        self.recommendationIndex = recommendationIndex
        self.fileIdentity = fileIdentity
        self.indexFiles = indexFiles
        self.loadedAt = Date().timeIntervalSince1970
        eventLogThrough = bundle.metadata["event_log_through"].flatMap { UInt64($0.trimmingCharacters(in: .whitespaces)) }
        let created = bundle.createdAt ?? bundle.metadata["created_at"]
        createdAtMs = created.flatMap(Timestamp.parseMilliseconds)
        let mtime = fileIdentity.map { "\($0.modifiedNs / 1_000_000)" } ?? "memory"
        version = "\(created ?? "unknown")/\(mtime)"
    }

    /// The bundle's catalogue, or a bare one when it has none.
    static func catalog(of bundle: ModelBundle) -> TrackCatalog {
        bundle.catalog ?? .bare(itemCount: bundle.itemIDs.count)
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
    /// The index of an external artist id in the catalogue.
    public func artist(_ id: String) -> Int32? { catalog.artistIDs.index(of: id) }
}

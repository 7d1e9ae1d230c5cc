import Foundation
import Logging
import EncoreCore
import EncoreIndex
import EncorePlaylists
import EncoreStorage

// Discover Weekly and Daily Mix for one user shard (`encore-train playlists --users-shard I/N`), made by the same
// functions as the weekly job's stages from the published model and the same inputs.
//
// What the playlist stages read and where the shard job takes it from:
// - the model, the training matrix, the catalog, the content spaces (audio, text, sequence, hybrid): the bundle;
// - the three HNSW indexes: the unit's index files (the ones published with the bundle);
// - the week, the neighbor-list size, the new-track share and the cold-track threshold: the bundle's `/meta`
//   (`week`, `playlists/neighbor_list_size`, `playlists/new_track_share`, `playlists/cold_max_listeners`);
// - the listening histories (timestamps, skips, recency) and the feedback (likes, dislikes, follows, with the event
//   log's): the play log, the catalog folder and the event log, read as the weekly job reads them (the bundle's
//   `/meta@input` and `@event_log_dir` name them; options override).
extension WeeklyJob {
    /// The `/meta` keys of the playlist settings the weekly job publishes, for the shard jobs to read back.
    enum PlaylistSettingKey {
        static let neighborListSize = "playlists/neighbor_list_size"
        static let newTrackShare = "playlists/new_track_share"
        static let coldMaxListeners = "playlists/cold_max_listeners"
        static let newReleaseDays = "playlists/new_release_days"
    }

    /// This job's playlist settings as bundle metadata.
    var playlistSettings: [String: String] {
        [PlaylistSettingKey.neighborListSize: "\(config.neighborListSize)",
         PlaylistSettingKey.newTrackShare: "\(config.content.newTrackShare)",
         PlaylistSettingKey.coldMaxListeners: "\(config.content.coldMaxListeners)",
         PlaylistSettingKey.newReleaseDays: "\(config.content.newReleaseDays)"]
    }

    /// `configuration` with the week and playlist settings recorded in `bundle`'s metadata (at `path`) applied.
    /// - Throws: ``WeeklyError`` naming a value that does not parse.
    static func applyingPlaylistSettings(of bundle: ModelBundle, at path: String, to configuration: WeeklyConfiguration) throws -> WeeklyConfiguration {
        var c = configuration
        let meta = bundle.metadata
        func value<T: LosslessStringConvertible>(_ key: String, _ type: T.Type) throws -> T? {
            guard let text = meta[key] else { return nil }
            guard let v = T(text) else { throw WeeklyError("\(path): /meta@\(key) is '\(text)', not a \(T.self)") }
            return v
        }
        if let week = meta["week"] { c.week = week }
        if let n = try value(PlaylistSettingKey.neighborListSize, Int.self) { c.neighborListSize = n }
        if let s = try value(PlaylistSettingKey.newTrackShare, Float.self) { c.content.newTrackShare = s }
        if let m = try value(PlaylistSettingKey.coldMaxListeners, Int.self) { c.content.coldMaxListeners = m }
        if let d = try value(PlaylistSettingKey.newReleaseDays, Int.self) { c.content.newReleaseDays = d }
        return c
    }

    /// Makes the part of `shard`: Discover Weekly and Daily Mix for the shard's users, equal to the rows the weekly
    /// job made (or would make) for them from the model published at `modelPath`, with their factors and training
    /// rows. `configuration` gives the inputs (play log, event log, catalog, input format) as for the weekly job.
    /// - Throws: ``WeeklyError`` when the inputs do not give the bundle's users and items, or an index is missing;
    ///   ``BundleError`` for an unreadable model.
    public static func userShardPart(
        configuration: WeeklyConfiguration, model modelPath: String, shard: UserShard, logger: Logger
    ) throws -> UserShardPart {
        let published = try PublishedModel.open(path: modelPath)
        let bundle = try published.readBundle()
        var c = try applyingPlaylistSettings(of: bundle, at: published.bundlePath, to: configuration)
        if c.events == nil && c.eventLog == nil {
            c.events = bundle.metadata["input"].flatMap { $0.isEmpty ? nil : $0 }
            c.eventLog = bundle.metadata["event_log_dir"]
            guard c.events != nil || c.eventLog != nil else {
                throw WeeklyError("\(published.bundlePath): the bundle names no play log (/meta@input); give --events")
            }
        }
        let job = try WeeklyJob(configuration: c, logger: logger)
        job.readsTasteTruth = false
        try job.load()
        guard job.plays.userIDs == bundle.userIDs else {
            throw WeeklyError("\(published.bundlePath): its \(bundle.userIDs.count) users are not the \(job.plays.userIDs.count) users of the inputs (\(c.events ?? c.eventLog ?? "")): give the play log, event log and input options the weekly job was run with")
        }
        guard job.plays.itemIDs == bundle.itemIDs else {
            throw WeeklyError("\(published.bundlePath): its \(bundle.itemIDs.count) items are not the \(job.plays.itemIDs.count) items of the inputs (catalog tracks without plays: \(job.catalogOnlyTracks)): give the catalog and the options the weekly job was run with")
        }
        job.fitted = bundle
        job.content = bundle.contentSpaces ?? ContentSpaces()
        let paths = published.presentIndexPaths
        func index(_ role: String) throws -> HNSWIndex {
            guard let p = paths[role] else {
                throw WeeklyError("\(modelPath): no \(role) index was published with the bundle (the weekly job publishes items-ip, items-cosine and users-cosine)")
            }
            return try HNSWIndex.load(from: p)
        }
        job.itemIP = try index("items-ip")
        job.itemCosine = try index("items-cosine")
        job.userCosine = try index("users-cosine")
        // Daily Mix's hybrid space: the published index when the weekly job made one, so every part draws new tracks
        // from the same graph.
        if let p = paths["hybrid-cosine"] { job.hybridCosine = try HNSWIndex.load(from: p) }
        let users = shard.rows(of: bundle.userIDs)
        logger.info("user shard", metadata: ["shard": .string(shard.description), "users": "\(users.count) of \(bundle.userIDs.count)"])
        let dw = try job.discoverWeeklyTable(users: users)
        let dm = try job.dailyMixTable(users: users)
        return try UserShardPart(shard: shard, bundle: bundle, itemSideChecksum: try ShardedBundle.checksum(of: published),
                                 discoverWeekly: dw, dailyMixes: dm)
    }
}

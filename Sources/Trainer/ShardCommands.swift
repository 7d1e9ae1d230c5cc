import ArgumentParser
import Foundation
import RecCore
import EncoreWeekly

/// `encore-train playlists`: Discover Weekly and Daily Mix for one user shard, as the weekly job makes them.
struct PlaylistsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "playlists",
        abstract: "Make Discover Weekly and Daily Mix for the users of one shard (--users-shard I/N) from a published model.",
        discussion: """
            A user belongs to shard I of N when the XXH64 (seed 0) of the UTF-8 bytes of its id is I modulo N \
            (shards are numbered from 0). The tables are the ones `encore-train weekly` makes for those users: the \
            same functions run on the same inputs. From the bundle: the model, the training matrix, the catalog, the \
            content spaces, the week and the playlist settings; from the unit: the HNSW indexes; from the play log \
            (default: the bundle's /meta@input), the catalog folder and the event log: the listening histories and \
            the feedback. The part (part-I.h5) also holds the users' factors and training rows, so a shard server \
            loads the item side and its part (`encore-train assemble-shards`, `encore-serve --users-shard`).
            """)

    @Option(help: "The published model (a unit from `weekly`, often with --no-playlists).")
    var bundle: String

    @Option(help: "The shard: I/N, I in 0..<N.")
    var usersShard: String

    @Option(help: "Where to write the part (e.g. part-I.h5).")
    var output: String

    @Option(help: "The play log the weekly job read (default: the bundle's /meta@input).")
    var events: String?

    @OptionGroup var inputFormat: InputFormatOptions

    @Option(help: "The event log folder the weekly job read (default: the bundle's /meta@event_log_dir when --events is not given).")
    var eventLog: String?

    @Option(help: "Folder with tracks.tsv, artists.tsv, likes.tsv, dislikes.tsv, follows.tsv (default: the play log's folder).")
    var catalog: String?

    @Flag(help: "Ignore catalog and feedback files even when present (as weekly --no-catalog).")
    var noCatalog = false

    @Flag(help: "As weekly --no-catalog-tracks.")
    var noCatalogTracks = false

    @Option(help: "Threads (0 = every core).") var threads: Int = 0

    func validate() throws {
        do { _ = try UserShard(parsing: usersShard) } catch { throw ValidationError(error.description) }
        guard threads >= 0 else { throw ValidationError("--threads must be >= 0 (got \(threads))") }
    }

    func run() throws {
        let logger = TrainerLogging.logger()
        let shard = try UserShard(parsing: usersShard)
        try BundleCheck.validate(bundle)
        var config = WeeklyConfiguration(output: output)
        config.events = events
        config.eventLog = eventLog
        config.catalog = catalog
        config.useCatalog = !noCatalog
        config.includeUnplayedCatalogTracks = !noCatalogTracks
        config.threads = threads
        config.evaluationUsers = 0
        try inputFormat.apply(to: &config, events: events)
        let part = try WeeklyJob.userShardPart(configuration: config, model: bundle, shard: shard, logger: logger)
        try part.write(to: output)
        print("shard \(shard): \(part.userIDs.count) users of \(part.bundleUserCount), \(part.discoverWeekly?.items.count ?? 0) Discover Weekly tracks, \(part.dailyMixes?.names.count ?? 0) Daily Mixes -> \(output)")
    }
}

/// `encore-train assemble-shards`: the manifest of a sharded bundle.
struct AssembleShardsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "assemble-shards",
        abstract: "Write a sharded bundle's manifest (JSON) naming the item side and every shard part made from it.",
        discussion: "The parts must be the shards 0..<N of one N, each once, all made from --item-side; their users must add up to the item side's. Layout: docs/scale.md.")

    @Option(help: "The item side: the published model the parts were made from.")
    var itemSide: String

    @Option(help: "Where to write the manifest (e.g. sharded.json); paths inside its folder are stored relative to it.")
    var output: String

    @Argument(help: "The part files (part-I.h5).")
    var parts: [String]

    func run() throws {
        do {
            let m = try ShardedBundle.assemble(itemSide: itemSide, parts: parts, output: output)
            print("\(output): \(m.shardCount) shards, \(m.itemSide.users) users, item side \(m.itemSide.path)")
        } catch let e as ShardError { throw TrainerError(e.description) }
    }
}

/// `encore-train inspect`: what a bundle, a unit, a shard part or a sharded bundle manifest holds.
struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Show a bundle's groups and counts, a shard part's shard and users, or a sharded bundle's shards.")

    @Argument(help: "A bundle (.h5), a published unit, a shard part or a sharded bundle manifest (.json).")
    var path: String

    func run() throws {
        print(try Self.describe(path), terminator: "")
    }

    static func describe(_ path: String) throws -> String {
        var out = ""
        func line(_ s: String) { out += s + "\n" }
        if ShardedBundle.isManifest(path) {
            let m: ShardedBundle
            do { m = try ShardedBundle.read(from: path) } catch { throw TrainerError(error.description) }
            line("sharded bundle \(path): \(m.shardCount) shards (\(m.userHash)), Encore \(m.encoreVersion)")
            line("  item side \(m.itemSide.path): \(m.itemSide.users) users, \(m.itemSide.items) items, bundle XXH64 \(m.itemSide.xxh64)")
            for s in m.shards {
                line("  shard \(s.index)/\(m.shardCount): \(s.path), \(s.users) users, \(s.size) bytes, XXH64 \(s.xxh64)")
            }
            return out
        }
        if let h = try? UserShardPart.header(of: path) {
            line("user shard part \(path): shard \(h.shard) (\(UserShard.hashName)), \(h.users) users of \(h.bundleUsers), item side XXH64 \(h.itemSideChecksum)")
            for l in try HDF5Outline.lines(of: path) { line("  " + l) }
            return out
        }
        let model = try PublishedModel.open(path: path)
        line(try ModelBundle.inspect(path: model.bundlePath).description)
        if let v = model.version { line("  unit version \(v)") }
        for index in model.indexes { line("  index \(index.role): \(index.path)\(index.present ? "" : " (absent)")") }
        for l in try HDF5Outline.lines(of: model.bundlePath) { line("  " + l) }
        return out
    }
}

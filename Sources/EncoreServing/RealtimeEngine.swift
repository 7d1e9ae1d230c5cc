import Foundation
import Logging
import EncoreCore
import EncoreData
import EncoreEventLog

/// The server's real-time engine: a loaded bundle plus what every user did since it was trained, kept durable by
/// the event log.
///
/// - Ingest: ``ingest(_:)`` drops events whose `event_id` was seen before (the seen set is rebuilt from the whole
///   log on start), writes the rest to the ``EventLog`` and applies them to the users' state under one lock (which
///   queries never take), then waits outside the lock for the `fsync`, shared by every ingest written meanwhile
///   (group commit): durable when it returns under the `always` fsync policy.
/// - Queries read one immutable ``ServingModel`` and the user's state under the lock of the user's shard (a copy is
///   taken and the lock released before any scoring), so no global lock is held during a query.
/// - Bounded memory: at most `maxUsers` users keep their state in memory; the least recently used are dropped and
///   rebuilt from the log records after the bundle's cut on their next request or event. The duplicate check
///   remembers the last `maxSeenEventIDs` event ids.
/// - Start: the state is rebuilt by replaying the log records after the bundle's cut: `event_log_through` when the
///   bundle records it, else the records appended after the bundle's `created_at`, else the whole log.
/// - Hot reload: ``reload(path:)`` reads a new bundle without any lock, then, under the ingest lock, re-derives the
///   state by replaying the log after the new bundle's cut and swaps the (model, state) generation atomically.
///   Requests in flight finish on the generation they started with.
public final class RealtimeEngine: Sendable {
    /// The state of all users against one model.
    ///
    /// At most ``perShardLimit`` users per shard keep their state in memory: past it, the least recently used user's
    /// state is dropped and a 64-bit hash of the user id remembered, and the state is rebuilt from the log records
    /// after the bundle's cut (through the same ``apply(_:sequence:evicting:rebuildBefore:)``) when the user comes back.
    final class Generation: Sendable {
        struct Entry {
            var state: UserRealtimeState
            var lastUsed: UInt64
        }

        struct Shard {
            var users: [String: Entry] = [:]
            /// Hashes of the users whose state was dropped (a collision only costs a needless rebuild).
            var evicted: Set<UInt64> = []
            var tick: UInt64 = 0

            mutating func touch(_ user: String) -> UserRealtimeState? {
                guard let i = users.index(forKey: user) else { return nil }
                tick += 1
                users.values[i].lastUsed = tick
                return users.values[i].state
            }
        }

        let model: ServingModel
        /// The tracks posted since the bundle (``LiveCatalog``), replayed from the track journal.
        let live: LiveCatalog
        let shards: [Locked<Shard>]
        /// The log records this generation's state is made of.
        let cut: Cut
        let logDirectory: String
        /// The most users with state in memory per shard.
        let perShardLimit: Int
        let counters: StateCounters
        let logger: Logger

        init(model: ServingModel, live: LiveCatalog, shardCount: Int, cut: Cut, logDirectory: String, maxUsers: Int,
             counters: StateCounters, logger: Logger) {
            self.model = model
            self.live = live
            let n = max(1, shardCount)
            self.shards = (0..<n).map { _ in Locked(Shard()) }
            self.cut = cut
            self.logDirectory = logDirectory
            self.perShardLimit = maxUsers <= 0 ? Int.max : max(1, maxUsers / n)
            self.counters = counters
            self.logger = logger
        }

        static func hash(_ user: String) -> UInt64 {
            var h: UInt64 = 1469598103934665603
            for b in user.utf8 { h = (h ^ UInt64(b)) &* 1099511628211 }
            return h
        }

        func shard(_ user: String) -> Locked<Shard> { shard(hash: Self.hash(user)) }

        /// The shard of the user whose ``hash(_:)`` is `h`.
        func shard(hash h: UInt64) -> Locked<Shard> { shards[Int(h % UInt64(shards.count))] }

        /// The user's state when it is in memory (marking it used), else `nil`.
        func resident(_ user: String) -> UserRealtimeState? {
            shard(user).withLock { $0.touch(user) }
        }

        /// Whether the user's state was dropped and must be rebuilt from the log.
        func wasEvicted(_ user: String, hash: UInt64? = nil) -> Bool {
            let h = hash ?? Self.hash(user)
            return shard(hash: h).withLock { $0.users[user] == nil && $0.evicted.contains(h) }
        }

        /// The user's state from the log records after the cut with a sequence below `before`, in log order.
        func rebuild(_ user: String, before: UInt64 = .max) -> UserRealtimeState {
            var state = UserRealtimeState()
            let rules = EventRules.standard
            let m = model
            let live = self.live
            do {
                try EventLog.read(directory: logDirectory, from: cut.afterSequence.map { $0 + 1 } ?? 1) { record in
                    guard record.sequence < before, cut.includes(record), record.event.user == user else { return }
                    let e = record.event
                    let (item, artist) = rules.lookUp(e.type, id: e.item, track: live.item, artist: m.artist)
                    state.apply(type: e.type, item: item, artist: artist, listened: rules.isListen(e),
                                timestamp: e.timestamp, sequence: record.sequence)
                }
            } catch {
                logger.error("rebuilding a user's real-time state from the log failed", metadata: [
                    "user": .string(user), "reason": .string("\(error)")])
            }
            counters.rebuilds.withLock { $0 += 1 }
            return state
        }

        /// Puts a rebuilt state in memory (unless another rebuild did meanwhile) and returns the user's state.
        func install(_ user: String, _ state: UserRealtimeState) -> UserRealtimeState {
            let h = Self.hash(user)
            return shard(hash: h).withLock { s in
                if let current = s.touch(user) { return current }
                s.evicted.remove(h)
                s.tick += 1
                s.users[user] = Entry(state: state, lastUsed: s.tick)
                trim(&s)
                return state
            }
        }

        /// A copy of the user's state in memory (empty for a user without events); an evicted user's state is not
        /// rebuilt here (``RealtimeEngine/userState(_:in:)`` does).
        func state(of user: String) -> UserRealtimeState {
            resident(user) ?? UserRealtimeState()
        }

        /// Applies one event. `evicting`: drop the least recently used states past the bound (not during a replay,
        /// whose users are trimmed once at its end). `rebuildBefore`: an evicted user's state is rebuilt first from
        /// the records before this sequence (the event itself may already be in the log).
        func apply(_ event: UserEvent, sequence: UInt64, evicting: Bool = true) {
            let m = model
            let rules = EventRules.standard
            // Posted tracks count too (their item numbers follow the bundle's), so a play of one excludes it.
            let (item, artist) = rules.lookUp(event.type, id: event.item, track: live.item, artist: m.artist)
            let user = event.user
            let h = Self.hash(user)
            let base: UserRealtimeState? = evicting && wasEvicted(user, hash: h) ? rebuild(user, before: sequence) : nil
            shard(hash: h).withLock { s in
                s.tick += 1
                if s.users[user] == nil {
                    s.users[user] = Entry(state: base ?? UserRealtimeState(), lastUsed: s.tick)
                    s.evicted.remove(h)
                }
                s.users[user]?.lastUsed = s.tick
                s.users[user]?.state.apply(
                    type: event.type, item: item, artist: artist, listened: rules.isListen(event),
                    timestamp: event.timestamp, sequence: sequence)
                if evicting { trim(&s) }
            }
        }

        /// Drops the least recently used states of a shard past the bound: one scan for a single excess user (an
        /// event or a rebuild), one sort for many (the end of a replay).
        func trim(_ s: inout Shard) {
            let excess = s.users.count - perShardLimit
            guard excess > 0 else { return }
            let oldest: [String] = excess == 1
                ? s.users.min(by: { $0.value.lastUsed < $1.value.lastUsed }).map { [$0.key] } ?? []
                : s.users.sorted(by: { $0.value.lastUsed < $1.value.lastUsed }).prefix(excess).map(\.key)
            for user in oldest {
                s.users.removeValue(forKey: user)
                s.evicted.insert(Self.hash(user))
            }
            counters.evictions.withLock { $0 += oldest.count }
        }

        /// Trims every shard to the bound (after a replay).
        func trimAll() {
            for shard in shards { shard.withLock { trim(&$0) } }
        }

        func storeVector(_ user: String, revision: UInt64, vector: [Float]?) {
            shard(user).withLock { s in
                if s.users[user]?.state.revision == revision { s.users[user]?.state.cachedVector = (revision, vector) }
            }
        }

        var userCount: Int { shards.reduce(0) { n, s in n + s.withLock { $0.users.count } } }
    }

    /// Evictions and rebuilds of users' state, over every generation.
    final class StateCounters: Sendable {
        let evictions = Locked(0)
        let rebuilds = Locked(0)
    }

    /// Counters for `/metrics`.
    public struct Statistics: Sendable, Equatable {
        /// Events accepted and applied since the process started (replayed ones included).
        public var eventsApplied = 0
        /// Events refused as duplicates of an earlier `event_id`.
        public var duplicates = 0
        /// Events replayed from the log into the current generation.
        public var replayed = 0
        /// Successful reloads.
        public var reloads = 0
        /// Failed reloads.
        public var reloadFailures = 0
        /// Users whose real-time state was dropped from memory (the bound ``RealtimeEngine/maxUsers``).
        public var userEvictions = 0
        /// Users whose real-time state was rebuilt from the log after an eviction.
        public var userRebuilds = 0
        /// Event ids forgotten by the duplicate check (its bound).
        public var seenEventIDsForgotten = 0
    }

    /// What ``ingest(_:)`` did.
    public struct IngestResult: Sendable, Equatable {
        /// Events appended and applied.
        public var accepted: Int
        /// Events whose `event_id` was already seen (no effect).
        public var duplicates: Int
        /// The log sequences given to the accepted events.
        public var sequences: ClosedRange<UInt64>?
    }

    /// The most recent event ids, at most `limit` (0: no bound), oldest forgotten first.
    struct SeenIDs {
        let limit: Int
        private(set) var ids = Set<ExactID>()
        private var order: [ExactID] = []
        private var head = 0
        private(set) var forgotten = 0

        init(limit: Int) { self.limit = limit }

        func contains(_ id: ExactID) -> Bool { ids.contains(id) }
        var count: Int { ids.count }

        mutating func insert(_ id: ExactID) {
            guard ids.insert(id).inserted, limit > 0 else { return }
            order.append(id)
            while ids.count > limit {
                ids.remove(order[head])
                head += 1
                forgotten += 1
            }
            if head > 1024 && head * 2 > order.count {
                order.removeFirst(head)
                head = 0
            }
        }
    }

    struct IngestState {
        var seen: SeenIDs
        /// Set when an fsync failed: every later ingest is refused.
        var failure: String? = nil
    }

    let log: EventLog
    /// The journal of posted tracks (`tracks.journal` in the event log's folder).
    let journal: TrackJournal
    /// Serializes track posts with the live catalog's rebuild on a reload (the count of posts).
    let trackLock = Locked(0)
    /// The event log's folder.
    public let logDirectory: String
    let logger: Logger
    let shardCount: Int
    let current: Locked<Generation>
    let ingestState: Locked<IngestState>
    let stats = Locked(Statistics())
    let reloading = Locked(false)
    let stateCounters = StateCounters()
    /// The most users whose real-time state is kept in memory (0: no bound).
    public let maxUsers: Int
    /// Checks a new model in a child process before this process reads it (``reload(path:)``), when set.
    public let validator: BundleValidator?

    /// Opens the event log in `logDirectory` (recovering a torn tail), rebuilds the seen set from the whole log and
    /// replays the records after `model`'s cut into the users' state.
    ///
    /// - Parameters:
    ///   - shards: the number of user shards (each with its own lock).
    ///   - validator: checks every model a reload reads in a child process first (see ``BundleValidator``).
    ///   - maxUsers: the most users whose real-time state stays in memory (0: no bound); past it the least recently
    ///     used users' state is dropped and rebuilt from the log on their next request or event.
    ///   - maxSeenEventIDs: the most recent `event_id`s remembered to refuse duplicates (0: no bound); an id older
    ///     than that many later accepted events is no longer recognized.
    ///   - newEventLog: start a new, empty log in `logDirectory` whose first sequence follows the bundle's
    ///     `event_log_through` (the folder must hold no segment). Without it, a log that does not reach the bundle's
    ///     `event_log_through`, or starts after it, is refused: acknowledged events would be missing and sequence
    ///     numbers reused.
    /// - Throws: ``ServingError/eventLog(_:)`` when the log cannot be opened or read, or does not match the bundle.
    public init(
        model: ServingModel, logDirectory: String, fsync: FsyncPolicy = .always, shards: Int = 64,
        validator: BundleValidator? = nil, maxUsers: Int = RealtimeEngine.defaultMaxUsers,
        maxSeenEventIDs: Int = RealtimeEngine.defaultMaxSeenEventIDs, newEventLog: Bool = false,
        logger: Logger = Logger(label: "encore.realtime")
    ) throws(ServingError) {
        self.validator = validator
        self.maxUsers = maxUsers
        do {
            log = try EventLog(directory: logDirectory, fsync: fsync, requiredThrough: model.eventLogThrough ?? 0,
                               newLogAfter: newEventLog ? (model.eventLogThrough ?? 0) : nil)
        } catch { throw .eventLog("\(error)") }
        self.logDirectory = logDirectory
        self.logger = logger
        self.shardCount = shards
        let opened = try TrackJournal.open(path: (logDirectory as NSString).appendingPathComponent(TrackJournal.fileName),
                                           sync: fsync != .never)
        journal = opened.journal
        let live = try Self.liveCatalog(model: model, records: opened.records, logger: logger)
        var seen = SeenIDs(limit: maxSeenEventIDs)
        let cut = Self.cut(of: model)
        let generation = Generation(model: model, live: live, shardCount: shards, cut: cut, logDirectory: logDirectory,
                                    maxUsers: maxUsers, counters: stateCounters, logger: logger)
        var replayed = 0
        do {
            try EventLog.read(directory: logDirectory, from: 1) { record in
                seen.insert(ExactID(record.event.eventID))
                if cut.includes(record) {
                    generation.apply(record.event, sequence: record.sequence, evicting: false)
                    replayed += 1
                }
            }
        } catch { throw .eventLog("replay: \(error)") }
        generation.trimAll()
        current = Locked(generation)
        ingestState = Locked(IngestState(seen: seen))
        stats.withLock {
            $0.replayed = replayed
            $0.eventsApplied = replayed
        }
        logger.info("real-time state rebuilt from the log", metadata: [
            "log_records": "\(seen.count)", "replayed": "\(replayed)", "cut": .string(cut.description),
            "bundle": .string(model.version)])
    }

    /// The live catalog of `model` with the journal's `records` replayed, except the tracks the bundle already
    /// has from records appended before it was made (it was trained knowing them).
    static func liveCatalog(model: ServingModel, records: [TrackJournalRecord], logger: Logger) throws(ServingError) -> LiveCatalog {
        let live = try LiveCatalog(model: model)
        let kept = records.filter { r in
            guard model.item(r.track.id) != nil else { return true }
            guard let created = model.createdAtMs else { return false }
            return r.appendedAtMs > created
        }
        var skipped = 0
        for r in kept {
            // A record the model cannot take any more (a new bundle with another embedding dimension) is skipped.
            do {
                try live.check([r.track])
                try live.apply([r])
            } catch {
                skipped += 1
                logger.warning("a journaled track does not fit the model and is not served", metadata: [
                    "track": .string(r.track.id), "sequence": "\(r.sequence)", "reason": .string("\(error)")])
            }
        }
        if !records.isEmpty {
            logger.info("posted tracks replayed from the journal", metadata: [
                "records": "\(records.count)", "replayed": "\(kept.count - skipped)", "skipped": "\(skipped)", "tracks": "\(live.count)",
                "new_tracks": "\(live.newTrackCount)"])
        }
        return live
    }

    /// Which log records postdate a bundle.
    struct Cut: CustomStringConvertible {
        var afterSequence: UInt64?
        var afterMs: Int64?

        func includes(_ r: EventLogRecord) -> Bool {
            if let s = afterSequence { return r.sequence > s }
            if let ms = afterMs { return r.appendedAtMs > ms }
            return true
        }

        var description: String {
            if let s = afterSequence { return "after sequence \(s)" }
            if let ms = afterMs { return "appended after \(ms) ms" }
            return "whole log"
        }
    }

    static func cut(of model: ServingModel) -> Cut {
        if let s = model.eventLogThrough { return Cut(afterSequence: s, afterMs: nil) }
        return Cut(afterSequence: nil, afterMs: model.createdAtMs)
    }

    /// The model the engine currently answers with.
    public var model: ServingModel { current.withLock { $0 }.model }

    /// The counters.
    public var statistics: Statistics {
        var s = stats.withLock { $0 }
        s.userEvictions = stateCounters.evictions.withLock { $0 }
        s.userRebuilds = stateCounters.rebuilds.withLock { $0 }
        s.seenEventIDsForgotten = ingestState.withLock { $0.seen.forgotten }
        return s
    }

    /// The number of fsyncs of appended events so far (one per group commit).
    public var eventLogFsyncs: Int { log.fsyncCount }

    /// The number of event ids the duplicate check remembers.
    public var seenEventIDs: Int { ingestState.withLock { $0.seen.count } }

    /// The default bound of users with real-time state in memory.
    public static let defaultMaxUsers = 100_000
    /// The default number of recent event ids remembered to refuse duplicates.
    public static let defaultMaxSeenEventIDs = 1_000_000

    /// The last sequence in the event log.
    public var lastSequence: UInt64 { log.lastSequence }

    /// The number of users with real-time state in memory.
    public var activeUsers: Int { current.withLock { $0 }.userCount }

    // MARK: Ingest

    /// Deduplicates `events` by `event_id` (against the log and within the batch), appends the new ones to the
    /// event log, then applies them.
    ///
    /// When it returns, the accepted events are in the log (durably under the `always` fsync policy) and visible to
    /// queries. When the write fails nothing is applied and the events are not marked seen, so a retry may succeed.
    /// When the `fsync` fails the events were already applied (they are visible to queries from the write on) and
    /// the engine refuses every later ingest, duplicates included, until it is reopened.
    /// - Throws: ``ServingError/eventLog(_:)``.
    public func ingest(_ events: [UserEvent]) throws(ServingError) -> IngestResult {
        // Under the lock: deduplicate, write (no fsync), mark seen, apply. Outside it: wait for the fsync, which every
        // request written meanwhile shares (group commit). A batch of duplicates only waits too, for the records
        // already written (its ids may be in a batch whose fsync is still running).
        let (result, durableThrough) = try ingestState.withLock {
            (state: inout IngestState) throws(ServingError) -> (IngestResult, UInt64) in
            if let failure = state.failure { throw .eventLog(failure) }
            var fresh: [UserEvent] = []
            var batch = Set<ExactID>()
            var duplicates = 0
            for e in events {
                let id = ExactID(e.eventID)
                if state.seen.contains(id) || !batch.insert(id).inserted {
                    duplicates += 1
                } else {
                    fresh.append(e)
                }
            }
            guard !fresh.isEmpty else {
                return (IngestResult(accepted: 0, duplicates: duplicates, sequences: nil), log.writtenThrough)
            }
            let range: ClosedRange<UInt64>
            do { range = try log.write(fresh) } catch { throw .eventLog("append: \(error)") }
            for id in batch { state.seen.insert(id) }
            let generation = current.withLock { $0 }
            var sequence = range.lowerBound
            for e in fresh {
                generation.apply(e, sequence: sequence)
                sequence += 1
            }
            return (IngestResult(accepted: fresh.count, duplicates: duplicates, sequences: range), range.upperBound)
        }
        do {
            try log.awaitDurability(through: durableThrough)
        } catch {
            // What is on disk is unknown now: the events were applied and marked seen, so refuse every later ingest
            // (a retry must not be answered as a duplicate) until the server is restarted and recovers from the log.
            let message = "fsync: \(error); restart to recover from the log"
            ingestState.withLock { $0.failure = $0.failure ?? message }
            throw .eventLog(message)
        }
        stats.withLock {
            $0.eventsApplied += result.accepted
            $0.duplicates += result.duplicates
        }
        return result
    }

    /// The user's real-time state in `g`: from memory, or rebuilt from the log when it was evicted (under the ingest
    /// lock, so no event of the user is written meanwhile), or empty for a user without events.
    func userState(_ user: String, in g: Generation) -> UserRealtimeState {
        if let s = g.resident(user) { return s }
        guard g.wasEvicted(user) else { return UserRealtimeState() }
        return ingestState.withLock { _ in
            if let s = g.resident(user) { return s }
            guard g.wasEvicted(user) else { return UserRealtimeState() }
            return g.install(user, g.rebuild(user))
        }
    }

    /// Whether an event id was seen (in the log).
    public func hasSeen(eventID: String) -> Bool { ingestState.withLock { $0.seen.contains(ExactID(eventID)) } }

    // MARK: Reload

    /// What a reload did.
    public struct ReloadResult: Sendable, Equatable {
        /// The previous model's version.
        public var previousVersion: String
        /// The new model's version.
        public var version: String
        /// Log records replayed into the new state.
        public var replayed: Int
    }

    /// Loads the bundle at `path` (default: the current bundle's path, re-read), re-derives the users' state
    /// against it and swaps it in.
    ///
    /// Only one reload runs at a time; a second caller waits for the first. Queries continue during the load;
    /// ingests wait only for the replay of the records after the new bundle's cut.
    /// - Throws: ``ServingError/bundle(_:)`` when the bundle cannot be read, ``ServingError/validation(_:)`` when the
    ///   engine's validator refuses it (the validating child crashed, timed out or found an error; the current model
    ///   stays),
    ///   ``ServingError/eventLog(_:)`` when the log cannot be read.
    @discardableResult
    public func reload(path: String? = nil) throws(ServingError) -> ReloadResult {
        let target = path ?? model.path
        do {
            return try reloading.withLock { (_: inout Bool) throws(ServingError) -> ReloadResult in
                let model = try ServingModel.load(path: target, shard: self.model.userShard, validator: validator, logger: logger)
                return try swap(to: model)
            }
        } catch {
            stats.withLock { $0.reloadFailures += 1 }
            logger.error("reload failed; the current model stays", metadata: ["path": .string(target), "reason": .string(error.description)])
            throw error
        }
    }

    /// Swaps in an already loaded model (re-deriving the state), as ``reload(path:)`` does after reading.
    /// - Throws: ``ServingError/eventLog(_:)``.
    @discardableResult
    public func swap(to model: ServingModel) throws(ServingError) -> ReloadResult {
        let cut = Self.cut(of: model)
        let result = try ingestState.withLock { (_: inout IngestState) throws(ServingError) -> ReloadResult in
          try trackLock.withLock { (_: inout Int) throws(ServingError) -> ReloadResult in
            if let through = model.eventLogThrough {
                let last = log.writtenThrough
                guard through <= last else {
                    throw .eventLog("\(logDirectory): the new bundle was trained on the event log through sequence \(through) "
                        + "but this log ends at \(last): it was trained on another log; the current model stays")
                }
            }
            let live = try Self.liveCatalog(model: model, records: try TrackJournal.read(path: journal.path), logger: logger)
            let generation = Generation(model: model, live: live, shardCount: shardCount, cut: cut, logDirectory: logDirectory,
                                        maxUsers: maxUsers, counters: stateCounters, logger: logger)
            var replayed = 0
            do {
                try log.sync()
                try EventLog.read(directory: logDirectory, from: cut.afterSequence.map { $0 + 1 } ?? 1) { record in
                    if cut.includes(record) {
                        generation.apply(record.event, sequence: record.sequence, evicting: false)
                        replayed += 1
                    }
                }
            } catch { throw .eventLog("replay: \(error)") }
            generation.trimAll()
            let previous = current.withLock { old in
                let v = old.model.version
                old = generation
                return v
            }
            return ReloadResult(previousVersion: previous, version: model.version, replayed: replayed)
          }
        }
        stats.withLock {
            $0.reloads += 1
            $0.replayed = result.replayed
        }
        logger.info("bundle reloaded", metadata: [
            "previous": .string(result.previousVersion), "version": .string(result.version),
            "replayed": "\(result.replayed)", "cut": .string(cut.description)])
        return result
    }

    // MARK: Tracks

    /// What ``postTracks(_:)`` did with one track.
    public struct PostedTrackResult: Sendable, Equatable {
        /// The track id.
        public var id: String
        /// Whether the track is new to the bundle.
        public var isNew: Bool
        /// Where its CF vector comes from (``LiveCatalog/Entry/provenance``).
        public var provenance: String
    }

    /// Adds or replaces catalogue tracks: checks them against the model, appends them to the track journal (durable
    /// when it returns, unless the engine was opened with the `never` fsync policy), then predicts each one's CF
    /// vector and puts it in the live indexes, so the next query can return it.
    /// - Throws: ``ServingError/invalidTrack(_:)`` (nothing was written), ``ServingError/eventLog(_:)`` when the
    ///   journal fails, ``ServingError/model(_:)``.
    public func postTracks(_ tracks: [PostedTrack]) throws(ServingError) -> [PostedTrackResult] {
        try trackLock.withLock { (posts: inout Int) throws(ServingError) -> [PostedTrackResult] in
            let g = generation
            do throws(TrackValidationError) { try g.live.check(tracks) } catch { throw .invalidTrack(error) }
            let records = try journal.append(tracks)
            try g.live.apply(records)
            posts += tracks.count
            return tracks.map { t in
                let e = g.live.item(t.id).flatMap { g.live.entry($0) }
                return PostedTrackResult(id: t.id, isNew: g.model.item(t.id) == nil, provenance: e?.provenance ?? "none")
            }
        }
    }

    /// The tracks posted since the bundle that the current generation serves.
    public var liveCatalog: LiveCatalog { generation.live }

    /// Flushes and closes the event log (at shutdown).
    /// - Throws: ``ServingError/eventLog(_:)``.
    public func close() throws(ServingError) {
        do { try log.close() } catch { throw .eventLog("close: \(error)") }
    }

    /// The generation queries read.
    var generation: Generation { current.withLock { $0 } }
}

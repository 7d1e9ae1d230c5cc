import Foundation
import Logging
import EncoreCore
import EncoreData
import EncorePlaylists
import EncoreEventLog

/// The weekly job's reading of the server's event log (`--event-log DIR`): plays and skips join the play log,
/// likes, dislikes and follows join the feedback, and the bundle records how far the log was read.
///
/// Rules:
/// - Records are read in sequence order; a repeated `event_id` (a client retry) counts once (the first).
/// - `play` of at least 30 s (or of unknown length) is a play at its timestamp; a shorter `play` or a `skip` is a
///   skip, exactly as the `plays.tsv` loader's `ms_played >= 30000` rule: with a play log of `ms_played` weights the
///   row's weight is `ms_played` (30 000 when unknown, 0 for a `skip`); with a log of play counts it is 1 for a play
///   and 0 for a skip. Users and items new to the play log are appended to its id maps.
/// - `like`/`unlike`, `dislike`/`undislike`, `follow_artist`/`unfollow_artist` are applied in log order on top of
///   the feedback files by ``EventRules`` (the server applies the same rules): a withdrawal cancels the earlier like,
///   dislike or follow (from the files or the log), a like withdraws a dislike of the track and the other way round,
///   an artist dislike withdraws a follow and the other way round. A `dislike` names a track; when the id is no
///   known track but a known artist, it is an artist dislike.
/// - `playlist_add` is kept by the server only (the trainer counts it, nothing more).
struct EventLogInput {
    /// The log folder.
    let directory: String
    /// The rules the events are read by (listens, feedback, the plausibility window).
    let rules: EventRules
    /// The distinct events in log order.
    private(set) var events: [UserEvent] = []
    /// The last sequence read (0 for an empty log); the server replays records after it.
    private(set) var through: UInt64 = 0
    /// Records read, including duplicates.
    private(set) var records = 0
    /// Records whose `event_id` was seen before.
    private(set) var duplicates = 0
    /// A torn tail the read stopped at.
    private(set) var tornTail: EventLogTornTail?

    /// What folding the events in did.
    struct Report: Equatable, CustomStringConvertible {
        var plays = 0, skips = 0, newUsers = 0, newItems = 0
        /// Events dated too far ahead of the job's clock (``EventRules/isPlausible(timestamp:now:)``), skipped.
        var implausible = 0
        var likes = 0, dislikes = 0, follows = 0, withdrawals = 0, playlistAdds = 0, unknownTargets = 0

        var description: String {
            "\(plays) plays, \(skips) skips (\(newUsers) new users, \(newItems) new items), \(likes) likes, \(dislikes) dislikes, "
                + "\(follows) follows, \(withdrawals) withdrawals, \(playlistAdds) playlist adds, \(unknownTargets) with an unknown track or artist"
                + (implausible > 0 ? ", \(implausible) skipped as dated in the future" : "")
        }
    }

    /// Reads every intact record of the log in `directory`.
    /// - Throws: ``EventLogError`` for a missing folder or a corrupt log.
    /// Events dated more than the rules' window ahead of `now`, left out of ``events`` (the first few are kept
    /// for the log).
    private(set) var implausible: [UserEvent] = []
    /// How many events were left out as implausible.
    private(set) var implausibleCount = 0

    /// Reads every intact record of the log in `directory`; events dated more than
    /// ``EventRules/maximumFutureSeconds`` after `now` (default: the clock) are counted and left out, so one wrong
    /// timestamp cannot move the week.
    init(directory: String, now: Int64? = nil, rules: EventRules = .standard) throws {
        self.directory = directory
        self.rules = rules
        let summary = try EventLog.verify(directory: directory)
        tornTail = summary.tornTail
        let clock = now ?? Int64(Date().timeIntervalSince1970)
        var seen = Set<ExactID>()
        try EventLog.read(directory: directory) { record in
            records += 1
            through = record.sequence
            if seen.insert(ExactID(record.event.eventID)).inserted {
                if rules.isPlausible(timestamp: record.event.timestamp, now: clock) {
                    events.append(record.event)
                } else {
                    implausibleCount += 1
                    if implausible.count < 5 { implausible.append(record.event) }
                }
            } else {
                duplicates += 1
            }
        }
    }

    /// Appends the plays and skips to `plays` (which must have timestamps, or be empty), interning new users and
    /// items.
    func foldPlays(into plays: inout Interactions, weighting: PlayWeighting, report: inout Report) {
        let usersBefore = plays.userIDs.count, itemsBefore = plays.itemIDs.count
        for e in events {
            guard let w = rules.rowWeight(of: e, weighting: weighting) else { continue }
            plays.append(user: e.user, item: e.item, weight: w, timestamp: e.timestamp)
            if rules.isListen(e) { report.plays += 1 } else { report.skips += 1 }
        }
        report.newUsers = plays.userIDs.count - usersBefore
        report.newItems = plays.itemIDs.count - itemsBefore
    }

    /// The feedback `base` with the log's likes, dislikes, follows and their withdrawals applied in log order.
    func applyFeedback(
        to base: FeedbackLog, userIDs: IDMap, itemIDs: IDMap, artistIDs: IDMap, report: inout Report
    ) -> FeedbackLog {
        struct Key: Hashable { var user: Int32, target: Int32 }
        // Ordered sets keyed by (user, target): the value keeps the timestamp, `order` the first-seen order.
        struct Table {
            var events: [Key: FeedbackLog.Event] = [:]
            var order: [Key] = []
            mutating func add(_ e: FeedbackLog.Event) {
                let k = Key(user: e.user, target: e.target)
                if events.updateValue(e, forKey: k) == nil { order.append(k) }
            }
            mutating func remove(_ user: Int32, _ target: Int32) -> Bool {
                events.removeValue(forKey: Key(user: user, target: target)) != nil
            }
            var list: [FeedbackLog.Event] { order.compactMap { events[$0] } }
        }
        struct Tables { var likes = Table(), dislikedTracks = Table(), dislikedArtists = Table(), follows = Table() }
        var tables = Tables()
        base.likes.forEach { tables.likes.add($0) }
        base.dislikedTracks.forEach { tables.dislikedTracks.add($0) }
        base.dislikedArtists.forEach { tables.dislikedArtists.add($0) }
        base.follows.forEach { tables.follows.add($0) }
        for e in events {
            guard e.type != .play, e.type != .skip else { continue }
            if e.type == .playlistAdd { report.playlistAdds += 1; continue }
            guard let u = userIDs.index(of: e.user) else { report.unknownTargets += 1; continue }
            let (track, artist) = rules.lookUp(e.type, id: e.item, track: itemIDs.index(of:), artist: artistIDs.index(of:))
            guard let target = rules.feedbackTarget(of: e.type, isKnownTrack: track != nil, isKnownArtist: artist != nil),
                  let id = target == .track ? track : artist
            else { report.unknownTargets += 1; continue }
            let effect = rules.feedbackEffect(of: e.type, on: target)
            func table(_ set: EventRules.FeedbackSet) -> WritableKeyPath<Tables, Table> {
                switch set {
                case .likedTracks: return \.likes
                case .dislikedTracks: return \.dislikedTracks
                case .dislikedArtists: return \.dislikedArtists
                case .followedArtists: return \.follows
                }
            }
            var withdrew = false
            for set in effect.removes { withdrew = tables[keyPath: table(set)].remove(u, id) || withdrew }
            if let set = effect.adds {
                tables[keyPath: table(set)].add(.init(user: u, target: id, timestamp: e.timestamp))
                switch set {
                case .likedTracks: report.likes += 1
                case .dislikedTracks, .dislikedArtists: report.dislikes += 1
                case .followedArtists: report.follows += 1
                }
            } else if withdrew {
                report.withdrawals += 1
            }
        }
        let likes = tables.likes, dislikedTracks = tables.dislikedTracks
        let dislikedArtists = tables.dislikedArtists, follows = tables.follows
        return FeedbackLog(likes: likes.list, dislikedTracks: dislikedTracks.list,
                           dislikedArtists: dislikedArtists.list, follows: follows.list)
    }

    /// The metadata the bundle records: `event_log_dir` and `event_log_through`.
    var metadata: [String: String] {
        ["event_log_dir": directory, "event_log_through": String(through)]
    }
}

extension WeeklyJob {
    /// Loads the play log (`--events`, optional when `--event-log` is given) and folds the event log's plays in.
    /// Returns the interactions, their weighting and the event log read (if any).
    func loadPlaysAndEventLog() throws -> (plays: Interactions, weighting: PlayWeighting, log: EventLogInput?) {
        var plays = Interactions()
        var weighting = PlayWeighting.encorePlays
        if let events = config.events {
            // Only the header line decides the format: read the first 4 KiB, not the whole log.
            let handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: events))
            let head = try handle.read(upToCount: 4096) ?? Data()
            try? handle.close()
            let header = String(decoding: head, as: UTF8.self).split(separator: "\n").first ?? ""
            let columns = header.split(separator: "\t").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
            var format: DelimitedFormat
            if config.detectsEncorePlays && columns.contains("ms_played") {
                format = .encorePlaysWithMsPlayed
                format.skipBadRows = config.skipBadRows
                weighting = config.rules.playWeighting
            } else {
                format = try config.playLogFormat ?? DelimitedFormat.guess(path: events)
                weighting = .counts
            }
            playsFormat = format
            let (log, report) = try DelimitedLoader.load(path: events, format: format)
            guard log.hasTimestamps || log.count == 0 else {
                throw WeeklyError("\(events): the weekly job needs timestamps (a 'timestamp' column, or --timestamp-column)")
            }
            plays = log
            logger.info("loaded play log", metadata: [
                "file": .string(events), "rows": "\(report.rowsKept)", "users": "\(log.userIDs.count)", "items": "\(log.itemIDs.count)"])
        }
        guard let dir = config.eventLog else { return (plays, weighting, nil) }
        let input = try EventLogInput(directory: dir, now: config.now, rules: config.rules)
        for e in input.implausible {
            logger.warning("event log: skipped an event dated in the future", metadata: [
                "event_id": .string(e.eventID), "timestamp": .string(Timestamp.isoString(timestamp: e.timestamp)),
                "window_s": "\(config.rules.maximumFutureSeconds)"])
        }
        if let torn = input.tornTail {
            logger.warning("event log: stopped at a torn tail", metadata: ["tail": .string(torn.description)])
        }
        var report = EventLogInput.Report()
        report.implausible = input.implausibleCount
        input.foldPlays(into: &plays, weighting: weighting, report: &report)
        eventLogReport = report
        logger.info("read event log", metadata: [
            "dir": .string(dir), "records": "\(input.records)", "duplicates": "\(input.duplicates)",
            "through": "\(input.through)", "folded": .string(report.description)])
        guard plays.count > 0 else {
            throw WeeklyError("no plays: \(config.events ?? "") \(dir) hold no play events")
        }
        return (plays, weighting, input)
    }
}

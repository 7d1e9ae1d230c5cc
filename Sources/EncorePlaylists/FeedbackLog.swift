import EncoreCore
import EncoreData

/// Explicit feedback beside the play log: likes of tracks, dislikes of tracks and artists, follows of artists, as
/// dense indices (users and items as in the model, artists as in the ``TrackCatalog``).
public struct FeedbackLog: Sendable, Equatable {
    /// One feedback event: a user, a target (a track or an artist, per the list it is in) and when.
    public struct Event: Sendable, Equatable, Hashable {
        /// The user index.
        public var user: Int32
        /// The item index (likes, track dislikes) or the artist index (artist dislikes, follows).
        public var target: Int32
        /// When, in Unix seconds (0 when unknown).
        public var timestamp: Int64

        /// An event.
        public init(user: Int32, target: Int32, timestamp: Int64 = 0) {
            self.user = user
            self.target = target
            self.timestamp = timestamp
        }
    }

    /// Likes of items.
    public var likes: [Event]
    /// Dislikes of items.
    public var dislikedTracks: [Event]
    /// Dislikes of artists.
    public var dislikedArtists: [Event]
    /// Follows of artists.
    public var follows: [Event]

    /// A log from its lists (empty by default: a bare play log has no feedback).
    public init(likes: [Event] = [], dislikedTracks: [Event] = [], dislikedArtists: [Event] = [], follows: [Event] = []) {
        self.likes = likes
        self.dislikedTracks = dislikedTracks
        self.dislikedArtists = dislikedArtists
        self.follows = follows
    }

    /// How many rows a ``load(likes:dislikes:follows:userIDs:itemIDs:artistIDs:)`` read and ignored.
    public struct LoadReport: Sendable, Equatable {
        /// Rows read from all files.
        public var rowsRead: Int
        /// Rows whose user, item or artist is not in the id maps (ignored).
        public var rowsUnknown: Int
    }

    /// Reads the synthetic world's feedback files: `likes.tsv` (`user`, `item`, `timestamp`), `dislikes.tsv`
    /// (`user`, `item_or_artist`, `kind` = `track`|`artist`, `timestamp`) and `follows.tsv` (`user`, `artist`,
    /// `timestamp`). Any file may be `nil`; the timestamp column is optional. Rows naming a user, item or artist not
    /// in the maps are counted and ignored.
    /// - Throws: ``PlaylistError/unreadable(file:reason:)``, ``PlaylistError/missingColumn(file:column:)`` or
    ///   ``PlaylistError/malformedRow(file:line:field:reason:)``.
    public static func load(
        likes: String? = nil, dislikes: String? = nil, follows: String? = nil,
        userIDs: IDMap, itemIDs: IDMap, artistIDs: IDMap
    ) throws(PlaylistError) -> (log: FeedbackLog, report: LoadReport) {
        var log = FeedbackLog()
        var report = LoadReport(rowsRead: 0, rowsUnknown: 0)
        if let likes {
            let t = try DelimitedTable(path: likes)
            log.likes = try read(t, targetColumn: ["item", "track"], userIDs: userIDs, targets: itemIDs, report: &report)
        }
        if let follows {
            let t = try DelimitedTable(path: follows)
            log.follows = try read(t, targetColumn: ["artist"], userIDs: userIDs, targets: artistIDs, report: &report)
        }
        if let dislikes {
            let t = try DelimitedTable(path: dislikes)
            let cUser = try t.requiredColumn("user")
            let cTarget = try t.requiredColumn("item_or_artist", "target")
            let cKind = try t.requiredColumn("kind")
            let cTime = t.column("timestamp")
            try t.forEachRow(minimumFields: max(cUser, cTarget, cKind, cTime ?? 0) + 1) { row throws(PlaylistError) in
                report.rowsRead += 1
                let kind = t.string(row, cKind)
                guard kind == "track" || kind == "artist" else {
                    throw t.malformed(row, cKind, "expected 'track' or 'artist', got '\(kind)'")
                }
                let time = try cTime.map { c throws(PlaylistError) in try t.timestamp(row, c) } ?? 0
                guard let u = userIDs.index(of: t.string(row, cUser)),
                      let target = (kind == "track" ? itemIDs : artistIDs).index(of: t.string(row, cTarget))
                else { report.rowsUnknown += 1; return }
                let e = Event(user: u, target: target, timestamp: time)
                if kind == "track" { log.dislikedTracks.append(e) } else { log.dislikedArtists.append(e) }
            }
        }
        return (log, report)
    }

    private static func read(
        _ t: DelimitedTable, targetColumn: [String], userIDs: IDMap, targets: IDMap, report: inout LoadReport
    ) throws(PlaylistError) -> [Event] {
        let cUser = try t.requiredColumn("user")
        guard let cTarget = targetColumn.lazy.compactMap({ t.column($0) }).first else {
            throw .missingColumn(file: t.file, column: targetColumn[0])
        }
        let cTime = t.column("timestamp")
        var out: [Event] = []
        var rep = report
        try t.forEachRow(minimumFields: max(cUser, cTarget, cTime ?? 0) + 1) { row throws(PlaylistError) in
            rep.rowsRead += 1
            let time = try cTime.map { c throws(PlaylistError) in try t.timestamp(row, c) } ?? 0
            guard let u = userIDs.index(of: t.string(row, cUser)), let target = targets.index(of: t.string(row, cTarget))
            else { rep.rowsUnknown += 1; return }
            out.append(Event(user: u, target: target, timestamp: time))
        }
        report = rep
        return out
    }
}

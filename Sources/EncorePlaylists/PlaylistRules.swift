import EncoreCore

/// What a playlist may suggest as a *new* track, and how many tracks one artist or album may have in it.
///
/// Always excluded from new suggestions: tracks the user ever played or skipped, disliked tracks and every track of
/// a disliked artist. Configurable: flagged tracks, tracks shorter than ``minDurationMs`` (unknown durations pass),
/// tracks not yet released at the playlist's reference time (unknown dates pass), and the caps per artist and per
/// album (tracks of an unknown artist or album are not capped).
public struct PlaylistRules: Sendable, Equatable, Codable {
    /// The most tracks of one artist in a playlist (0: no cap).
    public var maxPerArtist: Int
    /// The most tracks of one album in a playlist (0: no cap).
    public var maxPerAlbum: Int
    /// Tracks shorter than this many milliseconds (interludes, skits) are never suggested.
    public var minDurationMs: Int32
    /// Whether flagged tracks (``TrackCatalog/flagged``) are left out.
    public var excludeFlagged: Bool
    /// Whether tracks released after the reference time are left out.
    public var excludeUnreleased: Bool

    /// Rules with the given values (by default: 2 per artist and per album, at least 60 s, no flagged or unreleased
    /// tracks).
    public init(
        maxPerArtist: Int = 2, maxPerAlbum: Int = 2, minDurationMs: Int32 = 60_000, excludeFlagged: Bool = true,
        excludeUnreleased: Bool = true
    ) {
        self.maxPerArtist = maxPerArtist
        self.maxPerAlbum = maxPerAlbum
        self.minDurationMs = minDurationMs
        self.excludeFlagged = excludeFlagged
        self.excludeUnreleased = excludeUnreleased
    }

    /// Checks the values.
    /// - Throws: ``PlaylistError/invalidParameter(name:value:expected:)``.
    public func validate() throws(PlaylistError) {
        guard maxPerArtist >= 0 else {
            throw .invalidParameter(name: "maxPerArtist", value: "\(maxPerArtist)", expected: ">= 0 (0: no cap)")
        }
        guard maxPerAlbum >= 0 else {
            throw .invalidParameter(name: "maxPerAlbum", value: "\(maxPerAlbum)", expected: ">= 0 (0: no cap)")
        }
        guard minDurationMs >= 0 else {
            throw .invalidParameter(name: "minDurationMs", value: "\(minDurationMs)", expected: ">= 0")
        }
    }

    /// The items no user may be suggested at `referenceTime` (flagged, too short, unreleased): computed once per
    /// week or day and shared by every user's playlists.
    public func unavailableItems(in catalog: TrackCatalog, at referenceTime: Int64) -> IDBitset {
        var b = IDBitset(capacity: catalog.itemCount)
        for i in 0..<catalog.itemCount {
            let item = Int32(i)
            if excludeFlagged && catalog.flagged.contains(item) { b.insert(item); continue }
            let d = catalog.trackDurationMs[i]
            if d > 0 && d < minDurationMs { b.insert(item); continue }
            let r = catalog.trackRelease[i]
            if excludeUnreleased && r != TrackCatalog.unknownTime && r > referenceTime { b.insert(item) }
        }
        return b
    }

    /// The items a user may not be suggested as new: `unavailable` plus every item the user played or skipped, the
    /// disliked items and the items of disliked artists.
    public func excludedItems(for history: UserHistory, catalog: TrackCatalog, unavailable: IDBitset) -> IDBitset {
        var b = unavailable
        for i in history.items { b.insert(i) }
        for i in history.dislikedTracks { b.insert(i) }
        for a in history.dislikedArtists { for i in catalog.tracks(ofArtist: a) { b.insert(i) } }
        return b
    }

    /// Whether a familiar track (one the user played) may appear in a mix: not disliked (track or artist), not
    /// flagged or too short.
    public func allowsFamiliar(_ item: Int32, history: UserHistory, catalog: TrackCatalog) -> Bool {
        if history.dislikes(item, catalog: catalog) { return false }
        if excludeFlagged && catalog.flagged.contains(item) { return false }
        if item >= 0 && Int(item) < catalog.itemCount {
            let d = catalog.trackDurationMs[Int(item)]
            if d > 0 && d < minDurationMs { return false }
        }
        return true
    }
}

/// Counts tracks per artist and album while a playlist is filled, against the caps of ``PlaylistRules``.
public struct CapCounter: Sendable {
    /// The most tracks per artist (0: none).
    public let maxPerArtist: Int
    /// The most tracks per album (0: none).
    public let maxPerAlbum: Int
    private var artists: [Int32: Int] = [:]
    private var albums: [Int32: Int] = [:]

    /// An empty counter for the caps of `rules`.
    public init(rules: PlaylistRules) {
        maxPerArtist = rules.maxPerArtist
        maxPerAlbum = rules.maxPerAlbum
    }

    /// Whether `item` may be added without breaking a cap.
    public func admits(_ item: Int32, catalog: TrackCatalog) -> Bool {
        let a = catalog.artist(of: item), al = catalog.album(of: item)
        if maxPerArtist > 0 && a >= 0 && artists[a, default: 0] >= maxPerArtist { return false }
        if maxPerAlbum > 0 && al >= 0 && albums[al, default: 0] >= maxPerAlbum { return false }
        return true
    }

    /// Counts `item`.
    public mutating func add(_ item: Int32, catalog: TrackCatalog) {
        let a = catalog.artist(of: item), al = catalog.album(of: item)
        if a >= 0 { artists[a, default: 0] += 1 }
        if al >= 0 { albums[al, default: 0] += 1 }
    }
}

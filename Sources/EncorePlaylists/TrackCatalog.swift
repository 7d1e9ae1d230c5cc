import EncoreCore

/// Track metadata aligned to a model's item indices: artist, album, genre, release time, duration and a "flagged"
/// mark (explicit, unavailable in the market, reported) per item, and the artists' names.
///
/// A catalog may know nothing (``bare(itemCount:)``, for a bare play log): every field is then unknown and the
/// rules that need it (artist and album caps, release windows, minimum duration, artist dislikes and follows) simply
/// do not apply. Unknown values are ``unknown`` (-1) for indices, ``unknownTime`` for release times and 0 for
/// durations.
///
/// Tracks of each artist are listed newest release first (``tracks(ofArtist:)``), which is what the new-release
/// source reads.
public struct TrackCatalog: Sendable {
    /// An unknown artist, album or genre.
    public static let unknown: Int32 = -1
    /// An unknown release time.
    public static let unknownTime = Int64.min

    /// The number of items (tracks), equal to the model's item count.
    public let itemCount: Int
    /// The artist of each item, or ``unknown``.
    public let trackArtist: [Int32]
    /// The album of each item, or ``unknown``.
    public let trackAlbum: [Int32]
    /// The genre of each item, or ``unknown``.
    public let trackGenre: [Int32]
    /// The release time of each item (Unix seconds), or ``unknownTime``.
    public let trackRelease: [Int64]
    /// The duration of each item in milliseconds, or 0 when unknown.
    public let trackDurationMs: [Int32]
    /// Items that must never be suggested (explicit content filtered, unavailable, reported).
    public let flagged: IDBitset
    /// The external id of each artist (e.g. `a00042`); `artistIDs.count` is the number of artists.
    public let artistIDs: IDMap
    /// The display name of each artist.
    public let artistNames: [String]
    /// The number of albums (album indices are below it).
    public let albumCount: Int
    /// The genre names (genre indices are below their count).
    public let genreNames: [String]

    /// Artist `a`'s items are `artistItems[artistItemStart[a]..<artistItemStart[a + 1]]`, newest first.
    let artistItemStart: [Int]
    let artistItems: [Int32]

    /// A catalog from its columns (each with one value per item; empty means "all unknown").
    ///
    /// - Parameters:
    ///   - itemCount: the number of items.
    ///   - trackArtist, trackAlbum, trackGenre: indices or ``unknown``.
    ///   - trackRelease: release times or ``unknownTime``.
    ///   - trackDurationMs: durations or 0.
    ///   - flagged: items never to suggest.
    ///   - artistIDs: the artists' external ids (their count bounds `trackArtist`).
    ///   - artistNames: the artists' names (empty: the ids are used).
    ///   - albumCount: the number of albums (bounds `trackAlbum`).
    ///   - genreNames: the genres' names (their count bounds `trackGenre`).
    /// - Throws: ``PlaylistError/shapeMismatch(_:)`` for a column of the wrong length,
    ///   ``PlaylistError/unknownIndex(_:)`` for an index out of range.
    public init(
        itemCount: Int, trackArtist: [Int32] = [], trackAlbum: [Int32] = [], trackGenre: [Int32] = [],
        trackRelease: [Int64] = [], trackDurationMs: [Int32] = [], flagged: IDBitset = IDBitset(capacity: 0),
        artistIDs: IDMap = IDMap(), artistNames: [String] = [], albumCount: Int = 0, genreNames: [String] = []
    ) throws(PlaylistError) {
        guard itemCount >= 0, itemCount <= Int(Int32.max) else {
            throw .invalidParameter(name: "itemCount", value: "\(itemCount)", expected: "0...\(Int32.max)")
        }
        func column<T>(_ values: [T], _ name: String, _ fill: T) throws(PlaylistError) -> [T] {
            if values.isEmpty { return [T](repeating: fill, count: itemCount) }
            guard values.count == itemCount else {
                throw .shapeMismatch("\(name) has \(values.count) values for \(itemCount) items")
            }
            return values
        }
        let artists = try column(trackArtist, "trackArtist", Self.unknown)
        let albums = try column(trackAlbum, "trackAlbum", Self.unknown)
        let genres = try column(trackGenre, "trackGenre", Self.unknown)
        for (i, a) in artists.enumerated() where a < -1 || Int(a) >= artistIDs.count {
            throw .unknownIndex("item \(i) has artist \(a), the catalog has \(artistIDs.count) artists")
        }
        for (i, a) in albums.enumerated() where a < -1 || Int(a) >= albumCount {
            throw .unknownIndex("item \(i) has album \(a), the catalog has \(albumCount) albums")
        }
        for (i, g) in genres.enumerated() where g < -1 || Int(g) >= genreNames.count {
            throw .unknownIndex("item \(i) has genre \(g), the catalog has \(genreNames.count) genres")
        }
        guard artistNames.isEmpty || artistNames.count == artistIDs.count else {
            throw .shapeMismatch("\(artistNames.count) artist names for \(artistIDs.count) artists")
        }
        self.itemCount = itemCount
        self.trackArtist = artists
        self.trackAlbum = albums
        self.trackGenre = genres
        self.trackRelease = try column(trackRelease, "trackRelease", Self.unknownTime)
        self.trackDurationMs = try column(trackDurationMs, "trackDurationMs", 0)
        self.flagged = flagged
        self.artistIDs = artistIDs
        self.artistNames = artistNames.isEmpty ? artistIDs.ids : artistNames
        self.albumCount = albumCount
        self.genreNames = genreNames
        // Items per artist, newest release first (ties by index).
        let n = artistIDs.count
        var start = [Int](repeating: 0, count: n + 1)
        for a in artists where a >= 0 { start[Int(a) + 1] += 1 }
        for a in 0..<n { start[a + 1] += start[a] }
        var fill = start
        var list = [Int32](repeating: 0, count: start[n])
        for (i, a) in artists.enumerated() where a >= 0 {
            list[fill[Int(a)]] = Int32(i)
            fill[Int(a)] += 1
        }
        let release = self.trackRelease
        for a in 0..<n where start[a + 1] - start[a] > 1 {
            list[start[a]..<start[a + 1]].sort { release[Int($0)] != release[Int($1)] ? release[Int($0)] > release[Int($1)] : $0 < $1 }
        }
        artistItemStart = start
        artistItems = list
    }

    /// A catalog that knows only the number of items (a bare play log): no artists, albums, dates or durations.
    public static func bare(itemCount: Int) -> TrackCatalog {
        // Cannot fail: every column is empty.
        (try? TrackCatalog(itemCount: max(0, min(itemCount, Int(Int32.max))))) ?? TrackCatalog(emptyFallback: ())
    }

    private init(emptyFallback: Void) {
        itemCount = 0; trackArtist = []; trackAlbum = []; trackGenre = []; trackRelease = []; trackDurationMs = []
        flagged = IDBitset(capacity: 0); artistIDs = IDMap(); artistNames = []; albumCount = 0; genreNames = []
        artistItemStart = [0]; artistItems = []
    }

    /// Reads a catalog from `tracks.tsv` (and optionally `artists.tsv`) as the synthetic world writes them, aligned
    /// to a model's items.
    ///
    /// `tracks.tsv` needs the columns `item` and `artist`; `album`, `genre`, `release_date` (`YYYY-MM-DD` or Unix
    /// seconds), `duration_ms` and `flagged` (0/1, also spelled `explicit`) are read when present. `artists.tsv` gives
    /// the names (`artist`, `name`). Tracks not in `itemIDs` are ignored (the model cannot suggest them); items not
    /// in `tracks.tsv` stay unknown. Album and genre indices are numbered in order of first appearance.
    /// - Throws: ``PlaylistError/unreadable(file:reason:)``, ``PlaylistError/missingColumn(file:column:)`` or
    ///   ``PlaylistError/malformedRow(file:line:field:reason:)`` naming the file, line and field.
    public static func load(tracks: String, artists: String? = nil, itemIDs: IDMap) throws(PlaylistError) -> TrackCatalog {
        let t = try DelimitedTable(path: tracks)
        return try load(tracks: t, artists: artists.map { p throws(PlaylistError) in try DelimitedTable(path: p) },
                        itemIDs: itemIDs)
    }

    /// ``load(tracks:artists:itemIDs:)`` from the files' bytes; the names stand for the files in errors.
    public static func load(
        tracksBytes: [UInt8], tracksName: String = "tracks.tsv", artistsBytes: [UInt8]? = nil,
        artistsName: String = "artists.tsv", itemIDs: IDMap
    ) throws(PlaylistError) -> TrackCatalog {
        let t = try DelimitedTable(bytes: tracksBytes, name: tracksName)
        let a = try artistsBytes.map { b throws(PlaylistError) in try DelimitedTable(bytes: b, name: artistsName) }
        return try load(tracks: t, artists: a, itemIDs: itemIDs)
    }

    static func load(tracks t: DelimitedTable, artists a: DelimitedTable?, itemIDs: IDMap) throws(PlaylistError) -> TrackCatalog {
        let n = itemIDs.count
        let cItem = try t.requiredColumn("item", "track")
        let cArtist = try t.requiredColumn("artist")
        let cAlbum = t.column("album"), cGenre = t.column("genre")
        let cRelease = t.column("release_date", "release"), cDuration = t.column("duration_ms")
        let cFlag = t.column("flagged", "explicit")
        var artistIDs = IDMap(), albums = IDMap(), genres = IDMap()
        var names: [String] = []
        if let a {
            let cID = try a.requiredColumn("artist")
            let cName = a.column("name")
            try a.forEachRow(minimumFields: max(cID, cName ?? 0) + 1) { row throws(PlaylistError) in
                let id = a.string(row, cID)
                guard !id.isEmpty else { throw a.malformed(row, cID, "empty artist id") }
                let before = artistIDs.count
                artistIDs.intern(id)
                if artistIDs.count > before { names.append(cName.map { a.string(row, $0) } ?? id) }
            }
        }
        var artist = [Int32](repeating: unknown, count: n), album = artist, genre = artist
        var release = [Int64](repeating: unknownTime, count: n)
        var duration = [Int32](repeating: 0, count: n)
        var flagged = IDBitset(capacity: n)
        let needed = [cItem, cArtist, cAlbum ?? 0, cGenre ?? 0, cRelease ?? 0, cDuration ?? 0, cFlag ?? 0].max()! + 1
        try t.forEachRow(minimumFields: needed) { row throws(PlaylistError) in
            guard let i = itemIDs.index(of: t.string(row, cItem)) else { return }
            let ii = Int(i)
            if !t.isEmpty(row, cArtist) {
                let id = t.string(row, cArtist)
                let before = artistIDs.count
                artist[ii] = artistIDs.intern(id)
                if artistIDs.count > before { names.append(id) }
            }
            if let c = cAlbum, !t.isEmpty(row, c) { album[ii] = albums.intern(t.string(row, c)) }
            if let c = cGenre, !t.isEmpty(row, c) { genre[ii] = genres.intern(t.string(row, c)) }
            if let c = cRelease, !t.isEmpty(row, c) { release[ii] = try t.timestamp(row, c) }
            if let c = cDuration, !t.isEmpty(row, c) {
                let v = try t.integer(row, c)
                guard v >= 0, v <= Int64(Int32.max) else { throw t.malformed(row, c, "duration \(v) out of range") }
                duration[ii] = Int32(v)
            }
            if let c = cFlag, try t.boolean(row, c) { flagged.insert(i) }
        }
        return try TrackCatalog(
            itemCount: n, trackArtist: artist, trackAlbum: album, trackGenre: genre, trackRelease: release,
            trackDurationMs: duration, flagged: flagged, artistIDs: artistIDs, artistNames: names,
            albumCount: albums.count, genreNames: genres.ids)
    }

    // MARK: Queries

    /// The number of artists.
    public var artistCount: Int { artistIDs.count }
    /// Whether any item has a known artist (the artist rules apply).
    public var hasArtists: Bool { !artistItems.isEmpty }

    /// The artist of `item`, or ``unknown`` (also for an index outside the catalog).
    @inlinable
    public func artist(of item: Int32) -> Int32 {
        item >= 0 && Int(item) < trackArtist.count ? trackArtist[Int(item)] : Self.unknown
    }

    /// The album of `item`, or ``unknown``.
    @inlinable
    public func album(of item: Int32) -> Int32 {
        item >= 0 && Int(item) < trackAlbum.count ? trackAlbum[Int(item)] : Self.unknown
    }

    /// The release time of `item`, or ``unknownTime``.
    public func release(of item: Int32) -> Int64 {
        item >= 0 && Int(item) < trackRelease.count ? trackRelease[Int(item)] : Self.unknownTime
    }

    /// The items of artist `a`, newest release first (empty for an unknown artist).
    public func tracks(ofArtist a: Int32) -> ArraySlice<Int32> {
        guard a >= 0, Int(a) < artistItemStart.count - 1 else { return [] }
        return artistItems[artistItemStart[Int(a)]..<artistItemStart[Int(a) + 1]]
    }

    /// The display name of artist `a` (its id when it has no name; empty for an unknown artist).
    public func name(ofArtist a: Int32) -> String {
        a >= 0 && Int(a) < artistNames.count ? artistNames[Int(a)] : ""
    }
}

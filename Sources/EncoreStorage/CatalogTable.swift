import EncoreCore
import EncorePlaylists

/// Storage of a ``TrackCatalog`` in a bundle, under `/catalog` (optional; a bundle without it reads as before).
///
/// | object | kind | content |
/// |---|---|---|
/// | `/catalog` | group attributes | `album_count` (int64) |
/// | `/catalog/track_artist` | dataset `[items]` | int32 artist index or -1 |
/// | `/catalog/track_album` | dataset `[items]` | int32 album index or -1 |
/// | `/catalog/track_genre` | dataset `[items]` | int32 genre index or -1 |
/// | `/catalog/track_release` | dataset `[items]` | int64 Unix seconds, or -9223372036854775808 when unknown |
/// | `/catalog/track_duration_ms` | dataset `[items]` | int32, 0 when unknown |
/// | `/catalog/flagged` | dataset `[items]` | uint8, 1 for an item never to suggest |
/// | `/catalog/artist_ids` | dataset `[artists]` | strings: the external artist ids (`follow_artist` names these) |
/// | `/catalog/artist_names` | dataset `[artists]` | strings: display names |
/// | `/catalog/genre_names` | dataset `[genres]` | strings |
///
/// Items are the bundle's items (row order of the item factors).
enum CatalogLayout {
    static let group = "/catalog"
    static let trackArtist = "/catalog/track_artist"
    static let trackAlbum = "/catalog/track_album"
    static let trackGenre = "/catalog/track_genre"
    static let trackRelease = "/catalog/track_release"
    static let trackDuration = "/catalog/track_duration_ms"
    static let flagged = "/catalog/flagged"
    static let artistIDs = "/catalog/artist_ids"
    static let artistNames = "/catalog/artist_names"
    static let genreNames = "/catalog/genre_names"
}

extension TrackCatalog {
    /// Whether two catalogs hold the same columns, artists, albums and genres.
    public func sameContents(as other: TrackCatalog) -> Bool {
        itemCount == other.itemCount && trackArtist == other.trackArtist && trackAlbum == other.trackAlbum
            && trackGenre == other.trackGenre && trackRelease == other.trackRelease
            && trackDurationMs == other.trackDurationMs && flaggedItems == other.flaggedItems
            && artistIDs.ids == other.artistIDs.ids && artistNames == other.artistNames && albumCount == other.albumCount
            && genreNames == other.genreNames
    }

    /// The flagged items as one byte per item (1 = flagged).
    var flaggedItems: [UInt8] {
        (0..<itemCount).map { flagged.contains(Int32($0)) ? 1 : 0 }
    }

    /// Checks the catalog fits a bundle of `items` items and can be stored.
    func validate(items: Int, path: String) throws(BundleError) {
        guard itemCount == items else {
            throw .shapeMismatch(path: path, object: CatalogLayout.group,
                                 reason: "the catalog has \(itemCount) items, the bundle \(items)")
        }
        for (object, strings) in [(CatalogLayout.artistIDs, artistIDs.ids), (CatalogLayout.artistNames, artistNames),
                                  (CatalogLayout.genreNames, genreNames)] {
            if let bad = strings.firstIndex(where: { $0.utf8.contains(0) }) {
                throw .invalidData(path: path, object: object, reason: "string \(bad) contains a NUL character")
            }
        }
    }
}

extension HDF5File {
    func write(_ c: TrackCatalog) throws(BundleError) {
        let g = CatalogLayout.group
        let n = c.itemCount
        try createGroup(g)
        try setAttribute("album_count", scalar: Int64(c.albumCount), on: g)
        try write(c.trackArtist, shape: [n], at: CatalogLayout.trackArtist)
        try write(c.trackAlbum, shape: [n], at: CatalogLayout.trackAlbum)
        try write(c.trackGenre, shape: [n], at: CatalogLayout.trackGenre)
        try write(c.trackRelease, shape: [n], at: CatalogLayout.trackRelease)
        try write(c.trackDurationMs, shape: [n], at: CatalogLayout.trackDuration)
        try write(c.flaggedItems, shape: [n], at: CatalogLayout.flagged)
        try write(strings: c.artistIDs.ids, at: CatalogLayout.artistIDs)
        try write(strings: c.artistNames, at: CatalogLayout.artistNames)
        try write(strings: c.genreNames, at: CatalogLayout.genreNames)
    }

    /// Reads `/catalog` when present, checking every column has `items` values and every index is in range.
    func readCatalog(items: Int) throws(BundleError) -> TrackCatalog? {
        let g = CatalogLayout.group
        guard exists(g) else { return nil }
        func column<T: HDF5Scalar>(_ type: T.Type, _ object: String) throws(BundleError) -> [T] {
            let a = try read(T.self, at: object)
            guard a.values.count == items else {
                throw .shapeMismatch(path: path, object: object, reason: "\(a.values.count) values for \(items) items")
            }
            return a.values
        }
        let albumCount = try scalarAttribute(Int64.self, "album_count", on: g)
        guard albumCount >= 0, albumCount <= Int64(Int32.max) else {
            throw .invalidData(path: path, object: "\(g)@album_count", reason: "album count \(albumCount) out of range")
        }
        let artist = try column(Int32.self, CatalogLayout.trackArtist)
        let album = try column(Int32.self, CatalogLayout.trackAlbum)
        let genre = try column(Int32.self, CatalogLayout.trackGenre)
        let release = try column(Int64.self, CatalogLayout.trackRelease)
        let duration = try column(Int32.self, CatalogLayout.trackDuration)
        let flags = try column(UInt8.self, CatalogLayout.flagged)
        let artistIDs = try readStrings(at: CatalogLayout.artistIDs).values
        let artistNames = try readStrings(at: CatalogLayout.artistNames).values
        let genreNames = try readStrings(at: CatalogLayout.genreNames).values
        let ids: IDMap
        do {
            ids = try IDMap(ids: artistIDs)
        } catch {
            throw .invalidData(path: path, object: CatalogLayout.artistIDs, reason: "\(error)")
        }
        if let bad = duration.firstIndex(where: { $0 < 0 }) {
            throw .invalidData(path: path, object: CatalogLayout.trackDuration, reason: "item \(bad) has a negative duration")
        }
        var flagged = IDBitset(capacity: items)
        for (i, f) in flags.enumerated() where f != 0 { flagged.insert(Int32(i)) }
        do {
            return try TrackCatalog(
                itemCount: items, trackArtist: artist, trackAlbum: album, trackGenre: genre, trackRelease: release,
                trackDurationMs: duration, flagged: flagged, artistIDs: ids, artistNames: artistNames,
                albumCount: Int(albumCount), genreNames: genreNames)
        } catch {
            throw .invalidData(path: path, object: g, reason: error.description)
        }
    }
}

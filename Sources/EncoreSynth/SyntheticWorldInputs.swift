import EncoreCore
import EncoreData
import EncorePlaylists

// The synthetic world as the playlist stages' inputs: its catalog, feedback and listening histories.

extension TrackCatalog {
    /// The catalog of a synthetic world as it is published (the genres of `tracks.tsv`, missing or wrong for some
    /// albums; see ``SyntheticWorld/catalogLabels``); item `i` is the world's track `i` (as in
    /// ``SyntheticWorld/playInteractions(includingSkips:)``). Nothing is flagged.
    public init(world: SyntheticWorld) {
        let c = world.catalog
        let artistIDs = (try? IDMap(ids: (0..<Int32(c.artistCount)).map { world.ids.artist($0) })) ?? IDMap()
        // The world's columns are consistent by construction; the fallback is unreachable.
        self = (try? TrackCatalog(
            itemCount: c.trackCount, trackArtist: c.trackArtist, trackAlbum: c.trackAlbum,
            trackGenre: world.catalogLabels.trackGenre, trackRelease: c.trackRelease, trackDurationMs: c.trackDurationMs, artistIDs: artistIDs,
            artistNames: c.artistNames, albumCount: c.albumCount, genreNames: world.config.genres.map(\.name)))
            ?? .bare(itemCount: c.trackCount)
    }
}

extension FeedbackLog {
    /// The feedback of a synthetic world (users, tracks and artists keep the world's indices).
    public init(world: SyntheticWorld) {
        self.init(
            likes: world.likes.map { Event(user: $0.user, target: $0.track, timestamp: $0.timestamp) },
            dislikedTracks: world.dislikes.filter { $0.kind == .track }
                .map { Event(user: $0.user, target: $0.target, timestamp: $0.timestamp) },
            dislikedArtists: world.dislikes.filter { $0.kind == .artist }
                .map { Event(user: $0.user, target: $0.target, timestamp: $0.timestamp) },
            follows: world.follows.map { Event(user: $0.user, target: $0.artist, timestamp: $0.timestamp) })
    }
}

extension ListeningHistories {
    /// The histories of a synthetic world's users (skips recorded from `ms_played`, feedback included), with the
    /// world's indices.
    /// - Parameters: as ``build(plays:weighting:feedback:asOf:halfLifeDays:threads:)``.
    public init(world: SyntheticWorld, asOf: Int64? = nil, halfLifeDays: Double = 7, threads: Int = 0) throws(PlaylistError) {
        self = try Self.build(
            userKeys: world.userIDList, itemCount: world.catalog.trackCount, users: world.plays.users,
            items: world.plays.tracks, timestamps: world.plays.timestamps, weights: world.plays.msPlayed.map { Float($0) },
            weighting: .encorePlays, feedback: FeedbackLog(world: world), asOf: asOf, halfLifeDays: halfLifeDays,
            threads: threads)
    }
}

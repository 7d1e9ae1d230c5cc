import EncoreCore

extension SyntheticWorld {
    /// The genre labels a published catalog carries: what `tracks.tsv` and `artists.tsv` say, not the truth.
    ///
    /// Each album (and each artist) is labeled with probability ``SyntheticWorldConfig/catalogGenreCoverage``; a label
    /// is wrong with probability ``SyntheticWorldConfig/catalogGenreErrorRate``, naming half the time another genre of
    /// the same family and otherwise any other genre. Decisions come from a stream of their own, so the play log and
    /// everything else are the same whatever the coverage.
    public struct CatalogLabels: Sendable, Equatable {
        /// Each track's published genre, or -1 when it has none.
        public let trackGenre: [Int32]
        /// Each artist's published genre, or -1 when it has none.
        public let artistGenre: [Int32]
    }

    /// The published genre labels of this world's catalog.
    public var catalogLabels: CatalogLabels {
        let c = catalog
        let genres = config.genres
        let coverage = config.catalogGenreCoverage, errorRate = config.catalogGenreErrorRate
        let seed = config.seed
        // Index offset so an artist's draw never shares a sub-stream with an album's.
        let artistOffset = UInt64(c.albumCount)
        func label(_ truth: Int32, _ rng: inout SplitMix64) -> Int32 {
            guard rng.nextDouble() < coverage else { return -1 }
            guard rng.nextDouble() < errorRate, genres.count > 1 else { return truth }
            let family = genres[Int(truth)].family
            let sameFamily = genres.indices.filter { $0 != Int(truth) && genres[$0].family == family }
            if !sameFamily.isEmpty && rng.nextDouble() < 0.5 {
                return Int32(sameFamily[rng.below(sameFamily.count)])
            }
            let other = rng.below(genres.count - 1)
            return Int32(other >= Int(truth) ? other + 1 : other)
        }
        // One decision per album, applied to its tracks (labels come with releases).
        var albumDraw = [UInt64](repeating: 0, count: c.albumCount)
        for a in 0..<c.albumCount {
            var rng = SyntheticWorld.rng(seed: seed, stream: .catalogLabels, index: UInt64(a))
            albumDraw[a] = rng.next()
        }
        let tracks = (0..<c.trackCount).map { t -> Int32 in
            var rng = SplitMix64(seed: albumDraw[Int(c.trackAlbum[t])])
            return label(c.trackGenre[t], &rng)
        }
        let artists = (0..<c.artistCount).map { a -> Int32 in
            var rng = SyntheticWorld.rng(seed: seed, stream: .catalogLabels, index: artistOffset + UInt64(a))
            return label(c.artistGenre[a], &rng)
        }
        return CatalogLabels(trackGenre: tracks, artistGenre: artists)
    }
}

import Foundation
import EncoreCore

extension SyntheticWorld {
    /// The catalog of a synthetic world: genres, artists, albums and tracks, as flat arrays indexed by dense `Int32`
    /// indices (the id of artist `a` is ``SyntheticIDFormat/artist(_:)``).
    ///
    /// Tracks are contiguous per artist (``artistTrackStart``) and per album, albums are in release order within their
    /// artist. Popularities are the ground truth of the sampling model.
    public struct Catalog: Sendable {
        /// Each genre's share of taste draws (Zipf over the configured order), summing to 1.
        public let genreWeights: [Double]
        /// The genre of each artist.
        public let artistGenre: [Int32]
        /// The display name of each artist.
        public let artistNames: [String]
        /// Each artist's share of its genre's draws (Zipf over a random rank), summing to 1 within a genre.
        public let artistShare: [Float]
        /// The tracks of artist `a` are `artistTrackStart[a]..<artistTrackStart[a + 1]` (`artists + 1` entries).
        public let artistTrackStart: [Int32]
        /// The artist of each album.
        public let albumArtist: [Int32]
        /// The release time of each album (midnight UTC, Unix seconds).
        public let albumRelease: [Int64]
        /// The artist of each track.
        public let trackArtist: [Int32]
        /// The album of each track.
        public let trackAlbum: [Int32]
        /// The genre of each track (its artist's genre).
        public let trackGenre: [Int32]
        /// The release time of each track (its album's release; midnight UTC, Unix seconds).
        public let trackRelease: [Int64]
        /// The duration of each track in milliseconds (at least 45 s).
        public let trackDurationMs: [Int32]
        /// Each track's share of its artist's draws (Zipf over a random rank, new releases boosted).
        public let trackShare: [Float]
        /// The first second of the new-release window: tracks released at or after it are new releases.
        public let newReleaseStart: Int64

        // Samplers: artists of genre g are genreArtists[genreArtistStart[g]..<genreArtistStart[g+1]].
        let genreCDF: [Double]
        let genreArtistStart: [Int]
        let genreArtists: [Int32]
        let genreArtistCDF: [Double]
        let trackCDF: [Double]

        /// The number of genres.
        public var genreCount: Int { genreWeights.count }
        /// The number of artists.
        public var artistCount: Int { artistGenre.count }
        /// The number of albums.
        public var albumCount: Int { albumArtist.count }
        /// The number of tracks.
        public var trackCount: Int { trackArtist.count }

        /// The expected share of taste-driven draws that pick track `t`:
        /// genre weight x artist share within the genre x track share within the artist.
        public func popularity(ofTrack t: Int32) -> Double {
            let ti = Int(t)
            let a = Int(trackArtist[ti])
            return genreWeights[Int(artistGenre[a])] * Double(artistShare[a]) * Double(trackShare[ti])
        }

        /// The tracks of artist `a`.
        public func tracks(ofArtist a: Int32) -> Range<Int32> {
            artistTrackStart[Int(a)]..<artistTrackStart[Int(a) + 1]
        }

        /// Draws the catalog of a (validated) configuration from the catalog and name streams.
        init(config c: SyntheticWorldConfig) {
            var rng = SyntheticWorld.rng(seed: c.seed, stream: .catalog)
            let g = c.genres.count

            // Genres: Zipf over the configured order.
            var gw = (0..<g).map { 1 / Foundation.pow(Double($0 + 1), c.genreZipfExponent) }
            let gTotal = gw.reduce(0, +)
            gw = gw.map { $0 / gTotal }
            genreWeights = gw
            var gcdf = gw
            CDF.accumulate(&gcdf, 0..<g)
            genreCDF = gcdf

            // Artists: every genre gets one, the rest are spread in proportion to sqrt(genre weight), so small genres
            // keep some variety.
            var artistCDFOverGenres = gw.map { $0.squareRoot() }
            CDF.accumulate(&artistCDFOverGenres, 0..<g)
            var aGenre = [Int32](repeating: 0, count: c.artists)
            artistCDFOverGenres.withUnsafeBufferPointer { cdf in
                for a in 0..<c.artists {
                    aGenre[a] = a < g ? Int32(a) : Int32(CDF.sample(cdf, 0..<g, rng.nextDouble()))
                }
            }
            artistGenre = aGenre

            // Group artists by genre (in index order), then give each a random Zipf rank within its genre.
            var start = [Int](repeating: 0, count: g + 1)
            for x in aGenre { start[Int(x) + 1] += 1 }
            for i in 0..<g { start[i + 1] += start[i] }
            var members = [Int32](repeating: 0, count: c.artists)
            var fill = start
            for a in 0..<c.artists {
                let x = Int(aGenre[a])
                members[fill[x]] = Int32(a)
                fill[x] += 1
            }
            var share = [Float](repeating: 0, count: c.artists)
            var acdf = [Double](repeating: 0, count: c.artists)
            for x in 0..<g {
                let n = start[x + 1] - start[x]
                var ranks = Array(0..<n)
                Self.shuffle(&ranks, &rng)
                var total = 0.0
                for k in 0..<n {
                    let w = 1 / Foundation.pow(Double(ranks[k] + 1), c.artistZipfExponent)
                    acdf[start[x] + k] = w
                    total += w
                }
                for k in 0..<n { share[Int(members[start[x] + k])] = Float(acdf[start[x] + k] / total) }
                CDF.accumulate(&acdf, start[x]..<start[x + 1])
            }
            genreArtistStart = start
            genreArtists = members
            genreArtistCDF = acdf
            artistShare = share

            // Tracks per artist: one each, the rest spread by a log-normal weight that grows with popularity.
            // Largest-remainder rounding of a running sum keeps the total exact.
            let extra = c.tracks - c.artists
            var tw = [Double](repeating: 0, count: c.artists)
            var twTotal = 0.0
            for a in 0..<c.artists {
                let genreSize = Double(start[Int(aGenre[a]) + 1] - start[Int(aGenre[a])])
                let w = Foundation.exp(0.7 * rng.nextGaussian()) * Foundation.pow(Double(share[a]) * genreSize, 0.3)
                tw[a] = w
                twTotal += w
            }
            var trackStart = [Int32](repeating: 0, count: c.artists + 1)
            var acc = 0.0
            var assigned = 0
            for a in 0..<c.artists {
                acc += tw[a]
                let upTo = a == c.artists - 1 ? extra : min(extra, Int((acc / twTotal * Double(extra)).rounded(.down)))
                let mine = 1 + max(0, upTo - assigned)
                assigned = max(assigned, upTo)
                trackStart[a + 1] = trackStart[a] + Int32(mine)
            }
            artistTrackStart = trackStart

            // Albums and release dates. New releases fall in the last `newReleaseWeeks` weeks (whole days, so they
            // are never after the end of the log); the back catalog is older, skewed toward recent years.
            let endDay = Timestamp.floorDiv(c.endTimestamp, Timestamp.secondsPerDay)
            let newDays = Int64(c.newReleaseWeeks) * 7
            let catalogDays = max(newDays + 1, Int64(c.catalogYears) * 365)
            var alArtist = [Int32]()
            var alRelease = [Int64]()
            var tAlbum = [Int32](repeating: 0, count: c.tracks)
            var tArtist = [Int32](repeating: 0, count: c.tracks)
            var tGenre = [Int32](repeating: 0, count: c.tracks)
            var tRelease = [Int64](repeating: 0, count: c.tracks)
            var tDuration = [Int32](repeating: 0, count: c.tracks)
            var tShare = [Float](repeating: 0, count: c.tracks)
            var tcdf = [Double](repeating: 0, count: c.tracks)
            alArtist.reserveCapacity(c.tracks / max(1, c.tracksPerAlbum) + c.artists)
            alRelease.reserveCapacity(alArtist.capacity)
            for a in 0..<c.artists {
                let lo = Int(trackStart[a]), hi = Int(trackStart[a + 1])
                let n = hi - lo
                let albums = max(1, min(n, Int((Double(n) / Double(c.tracksPerAlbum)).rounded())))
                var ages = [Int64](repeating: 0, count: albums)
                for j in 0..<albums {
                    if rng.nextDouble() < c.newReleaseFraction {
                        ages[j] = rng.upTo(newDays - 1)
                    } else {
                        let u = Foundation.pow(rng.nextDouble(), 1.7)
                        ages[j] = newDays + Int64(u * Double(catalogDays - newDays))
                    }
                }
                ages.sort(by: >)  // oldest album first
                let genre = c.genres[Int(aGenre[a])]
                let mu = Foundation.log(genre.medianDurationSeconds * 1000)
                var ranks = Array(0..<n)
                Self.shuffle(&ranks, &rng)
                var total = 0.0
                for j in 0..<albums {
                    let album = Int32(alArtist.count)
                    let release = (endDay - ages[j]) * Timestamp.secondsPerDay
                    alArtist.append(Int32(a))
                    alRelease.append(release)
                    for t in (lo + n * j / albums)..<(lo + n * (j + 1) / albums) {
                        tAlbum[t] = album
                        tArtist[t] = Int32(a)
                        tGenre[t] = aGenre[a]
                        tRelease[t] = release
                        let ms = Foundation.exp(mu + 0.25 * rng.nextGaussian())
                        tDuration[t] = Int32(min(1_800_000, max(45_000, ms.rounded())))
                        var w = 1 / Foundation.pow(Double(ranks[t - lo] + 1), c.trackZipfExponent)
                        if ages[j] < newDays { w *= c.newReleaseBoost }
                        tcdf[t] = w
                        total += w
                    }
                }
                for t in lo..<hi { tShare[t] = Float(tcdf[t] / total) }
                CDF.accumulate(&tcdf, lo..<hi)
            }
            albumArtist = alArtist
            albumRelease = alRelease
            trackAlbum = tAlbum
            trackArtist = tArtist
            trackGenre = tGenre
            trackRelease = tRelease
            trackDurationMs = tDuration
            trackShare = tShare
            trackCDF = tcdf
            newReleaseStart = (endDay - newDays + 1) * Timestamp.secondsPerDay

            artistNames = (0..<c.artists).map { Self.artistName(seed: c.seed, index: $0) }
        }

        /// Fisher-Yates with the world's generator (deterministic, unlike `shuffle(using:)` whose algorithm the
        /// standard library does not promise).
        static func shuffle<T>(_ a: inout [T], _ rng: inout SplitMix64) {
            guard a.count > 1 else { return }
            for i in stride(from: a.count - 1, to: 0, by: -1) {
                a.swapAt(i, rng.below(i + 1))
            }
        }

        private static let onsets = ["b", "br", "c", "ch", "d", "dr", "f", "g", "gr", "h", "j", "k", "l", "m", "n",
                                     "p", "pr", "r", "s", "sh", "st", "t", "tr", "v", "w", "z"]
        private static let vowels = ["a", "e", "i", "o", "u", "ai", "ea", "io", "ou", "y"]
        private static let codas = ["", "", "", "n", "r", "l", "s", "x", "th", "nd", "m", "k"]
        private static let nouns = ["Harbors", "Echoes", "Wolves", "Lanterns", "Rivers", "Satellites", "Ghosts",
                                    "Tides", "Machines", "Sparrows", "Comets", "Orchards", "Mirrors", "Saints",
                                    "Embers", "Cartographers"]
        private static let adjectives = ["Velvet", "Silver", "Neon", "Hollow", "Golden", "Electric", "Quiet",
                                         "Crimson", "Paper", "Wild", "Midnight", "Northern"]

        /// A pronounceable artist name from the name stream (so changing names never changes the play log).
        static func artistName(seed: UInt64, index: Int) -> String {
            var r = SyntheticWorld.rng(seed: seed, stream: .names, index: UInt64(index))
            func word() -> String {
                var s = ""
                for _ in 0..<(2 + r.below(2)) { s += onsets[r.below(onsets.count)] + vowels[r.below(vowels.count)] }
                s += codas[r.below(codas.count)]
                return s.prefix(1).uppercased() + s.dropFirst()
            }
            switch r.below(6) {
            case 0: return "The " + adjectives[r.below(adjectives.count)] + " " + nouns[r.below(nouns.count)]
            case 1: return "DJ " + word()
            case 2: return word()
            default: return word() + " " + word()
            }
        }
    }
}

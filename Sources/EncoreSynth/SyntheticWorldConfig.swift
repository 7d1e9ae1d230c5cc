import Foundation
import EncoreCore

/// A genre of the synthetic world, with the latent traits later generators (synthetic audio, descriptive text) draw
/// from.
///
/// Only ``name`` and ``family`` shape the play log (users' second and third tastes prefer the family of their first);
/// the other traits are ground truth for the audio and text stages, which draw from their own random streams
/// (``SyntheticWorld/Stream``), so changing them never changes the play log of a seed.
public struct GenreSpec: Sendable, Codable, Equatable {
    /// The genre's name as written in the files (lowercase, no tabs or spaces).
    public var name: String
    /// A coarse family (`rock`, `electronic`, ...). A user's secondary tastes are drawn from the family of the first
    /// with probability ``SyntheticWorldConfig/sameFamilyProbability``.
    public var family: String
    /// The lowest typical tempo, in beats per minute.
    public var tempoMin: Double
    /// The highest typical tempo, in beats per minute.
    public var tempoMax: Double
    /// The probability that a track of this genre is in a major key.
    public var majorModeProbability: Double
    /// Typical energy in `[0, 1]` (loudness and density of the timbre).
    public var energy: Double
    /// Typical acousticness in `[0, 1]` (acoustic instruments versus synthesised or amplified sound).
    public var acousticness: Double
    /// The median track duration in seconds; durations are log-normal around it. This trait does shape the play log
    /// (through `ms_played`).
    public var medianDurationSeconds: Double
    /// Words used to describe the genre's artists and tracks (tags, bios).
    public var tags: [String]

    /// A genre with the given traits.
    public init(
        name: String, family: String, tempoMin: Double, tempoMax: Double, majorModeProbability: Double,
        energy: Double, acousticness: Double, medianDurationSeconds: Double, tags: [String]
    ) {
        self.name = name
        self.family = family
        self.tempoMin = tempoMin
        self.tempoMax = tempoMax
        self.majorModeProbability = majorModeProbability
        self.energy = energy
        self.acousticness = acousticness
        self.medianDurationSeconds = medianDurationSeconds
        self.tags = tags
    }

    /// Decodes a genre; `name` and `family` are required, a missing trait takes a neutral value (so files written
    /// before a trait was added still load).
    public init(from decoder: any Decoder) throws {
        let k = try decoder.container(keyedBy: CodingKeys.self)
        name = try k.decode(String.self, forKey: .name)
        family = try k.decode(String.self, forKey: .family)
        tempoMin = try k.decodeIfPresent(Double.self, forKey: .tempoMin) ?? 90
        tempoMax = try k.decodeIfPresent(Double.self, forKey: .tempoMax) ?? 130
        majorModeProbability = try k.decodeIfPresent(Double.self, forKey: .majorModeProbability) ?? 0.5
        energy = try k.decodeIfPresent(Double.self, forKey: .energy) ?? 0.5
        acousticness = try k.decodeIfPresent(Double.self, forKey: .acousticness) ?? 0.5
        medianDurationSeconds = try k.decodeIfPresent(Double.self, forKey: .medianDurationSeconds) ?? 230
        tags = try k.decodeIfPresent([String].self, forKey: .tags) ?? []
    }

    /// Twenty named genres, most popular first (genre popularity is Zipf over this order).
    public static let defaultGenres: [GenreSpec] = [
        GenreSpec(name: "pop", family: "pop", tempoMin: 95, tempoMax: 130, majorModeProbability: 0.75, energy: 0.65,
                  acousticness: 0.25, medianDurationSeconds: 205,
                  tags: ["catchy", "upbeat", "chart", "vocal", "radio", "synth", "summer", "love", "bright", "hooks"]),
        GenreSpec(name: "rock", family: "rock", tempoMin: 100, tempoMax: 150, majorModeProbability: 0.6, energy: 0.75,
                  acousticness: 0.2, medianDurationSeconds: 235,
                  tags: ["guitar", "riffs", "drums", "anthem", "live", "classic", "loud", "band", "stadium", "raw"]),
        GenreSpec(name: "hip-hop", family: "urban", tempoMin: 80, tempoMax: 105, majorModeProbability: 0.35,
                  energy: 0.65, acousticness: 0.1, medianDurationSeconds: 215,
                  tags: ["rap", "beats", "flow", "bars", "street", "sample", "boom-bap", "trap", "808", "verses"]),
        GenreSpec(name: "electronic", family: "electronic", tempoMin: 118, tempoMax: 135,
                  majorModeProbability: 0.5, energy: 0.75, acousticness: 0.05, medianDurationSeconds: 260,
                  tags: ["synth", "beats", "club", "producer", "bass", "drop", "edm", "festival", "remix", "pulse"]),
        GenreSpec(name: "rnb", family: "urban", tempoMin: 65, tempoMax: 100, majorModeProbability: 0.45,
                  energy: 0.5, acousticness: 0.2, medianDurationSeconds: 220,
                  tags: ["smooth", "vocal", "groove", "sensual", "slow-jam", "soulful", "harmony", "late-night",
                         "silky", "love"]),
        GenreSpec(name: "indie", family: "rock", tempoMin: 95, tempoMax: 140, majorModeProbability: 0.55,
                  energy: 0.55, acousticness: 0.35, medianDurationSeconds: 225,
                  tags: ["lo-fi", "jangly", "dreamy", "guitar", "bedroom", "alternative", "quirky", "shoegaze",
                         "underground", "hazy"]),
        GenreSpec(name: "latin", family: "world", tempoMin: 90, tempoMax: 130, majorModeProbability: 0.6,
                  energy: 0.7, acousticness: 0.25, medianDurationSeconds: 210,
                  tags: ["reggaeton", "dance", "salsa", "spanish", "percussion", "tropical", "party", "rhythm",
                         "bachata", "caliente"]),
        GenreSpec(name: "country", family: "roots", tempoMin: 80, tempoMax: 130, majorModeProbability: 0.8,
                  energy: 0.55, acousticness: 0.6, medianDurationSeconds: 200,
                  tags: ["twang", "nashville", "storytelling", "steel-guitar", "fiddle", "heartland", "truck",
                         "honky-tonk", "americana", "ballad"]),
        GenreSpec(name: "metal", family: "rock", tempoMin: 100, tempoMax: 190, majorModeProbability: 0.25,
                  energy: 0.95, acousticness: 0.05, medianDurationSeconds: 290,
                  tags: ["heavy", "distortion", "double-kick", "shred", "growl", "riffs", "dark", "thrash",
                         "breakdown", "loud"]),
        GenreSpec(name: "house", family: "electronic", tempoMin: 120, tempoMax: 128, majorModeProbability: 0.5,
                  energy: 0.75, acousticness: 0.05, medianDurationSeconds: 330,
                  tags: ["four-on-the-floor", "club", "deep", "groove", "dj", "dance", "disco", "chicago", "vocal",
                         "piano"]),
        GenreSpec(name: "jazz", family: "jazz", tempoMin: 70, tempoMax: 180, majorModeProbability: 0.55,
                  energy: 0.4, acousticness: 0.85, medianDurationSeconds: 320,
                  tags: ["swing", "improvisation", "saxophone", "trumpet", "bebop", "standards", "trio", "smoky",
                         "brushes", "upright-bass"]),
        GenreSpec(name: "soul", family: "urban", tempoMin: 70, tempoMax: 115, majorModeProbability: 0.55,
                  energy: 0.5, acousticness: 0.55, medianDurationSeconds: 210,
                  tags: ["motown", "gospel", "horns", "soulful", "vocal", "vintage", "groove", "heartfelt",
                         "organ", "classic"]),
        GenreSpec(name: "folk", family: "roots", tempoMin: 70, tempoMax: 120, majorModeProbability: 0.65,
                  energy: 0.3, acousticness: 0.9, medianDurationSeconds: 230,
                  tags: ["acoustic", "singer-songwriter", "storytelling", "banjo", "harmonies", "traditional",
                         "intimate", "fingerpicking", "pastoral", "campfire"]),
        GenreSpec(name: "punk", family: "rock", tempoMin: 150, tempoMax: 200, majorModeProbability: 0.65,
                  energy: 0.95, acousticness: 0.1, medianDurationSeconds: 150,
                  tags: ["fast", "diy", "raw", "power-chords", "rebellious", "shouted", "short", "garage",
                         "hardcore", "loud"]),
        GenreSpec(name: "techno", family: "electronic", tempoMin: 125, tempoMax: 145, majorModeProbability: 0.35,
                  energy: 0.85, acousticness: 0.02, medianDurationSeconds: 380,
                  tags: ["minimal", "industrial", "warehouse", "hypnotic", "detroit", "berlin", "machines",
                         "repetitive", "dark", "rave"]),
        GenreSpec(name: "classical", family: "classical", tempoMin: 50, tempoMax: 140, majorModeProbability: 0.55,
                  energy: 0.25, acousticness: 0.98, medianDurationSeconds: 420,
                  tags: ["orchestra", "symphony", "piano", "strings", "baroque", "romantic", "chamber", "concerto",
                         "opera", "composer"]),
        GenreSpec(name: "reggae", family: "world", tempoMin: 60, tempoMax: 90, majorModeProbability: 0.7,
                  energy: 0.45, acousticness: 0.5, medianDurationSeconds: 240,
                  tags: ["offbeat", "dub", "roots", "jamaica", "bassline", "skank", "riddim", "island", "laid-back",
                         "conscious"]),
        GenreSpec(name: "blues", family: "roots", tempoMin: 60, tempoMax: 120, majorModeProbability: 0.4,
                  energy: 0.45, acousticness: 0.7, medianDurationSeconds: 260,
                  tags: ["twelve-bar", "slide-guitar", "delta", "harmonica", "soulful", "chicago", "gritty",
                         "shuffle", "lament", "electric"]),
        GenreSpec(name: "funk", family: "urban", tempoMin: 95, tempoMax: 120, majorModeProbability: 0.5,
                  energy: 0.7, acousticness: 0.3, medianDurationSeconds: 250,
                  tags: ["groove", "slap-bass", "horns", "syncopated", "dance", "wah-wah", "tight", "brass",
                         "party", "rhythm"]),
        GenreSpec(name: "ambient", family: "electronic", tempoMin: 60, tempoMax: 100, majorModeProbability: 0.5,
                  energy: 0.1, acousticness: 0.5, medianDurationSeconds: 360,
                  tags: ["atmospheric", "drone", "calm", "texture", "soundscape", "meditative", "pads", "slow",
                         "spacious", "chill"]),
    ]
}

/// The named presets of ``SyntheticWorldConfig``.
public enum SyntheticWorldPreset: String, Sendable, Codable, CaseIterable {
    /// A few hundred users and tracks: for unit tests, generated in milliseconds.
    case tiny
    /// About 2 000 users, 5 000 tracks and 100 000 plays: for trying things by hand, a couple of seconds in debug.
    case sample
    /// The shape of the Last.fm 360K data set: 360 000 users, 300 000 tracks, about 17.5 million distinct
    /// user-track pairs (about 34 million plays). Generation time: see docs/benchmarks.md.
    case lastfm360k
}

/// Everything that determines a synthetic world. The same configuration (including ``seed``) always gives the same
/// world, byte for byte, whatever the number of threads. (Draws go through the C library's `log`, `exp` and `pow`, so
/// another platform's maths library could, rarely, round a draw differently.)
///
/// Popularity is Zipf-like at three levels: genres (by their order in ``genres``), artists within a genre, tracks
/// within an artist. Users mix one to three genre tastes, have a few favorite artists, and a heavy-tailed
/// (log-normal) number of distinct tracks.
public struct SyntheticWorldConfig: Sendable, Codable, Equatable {
    // MARK: Size and seed

    /// The seed of every random stream.
    public var seed: UInt64
    /// The number of users.
    public var users: Int
    /// The number of tracks.
    public var tracks: Int
    /// The number of artists (at least the number of genres; every artist has at least one track).
    public var artists: Int
    /// The genres, most popular first.
    public var genres: [GenreSpec]

    // MARK: Time

    /// The length of the play log in weeks.
    public var weeks: Int
    /// The last second of the play log (Unix seconds, UTC). Default 2026-11-15T23:59:59Z.
    public var endTimestamp: Int64
    /// How many years back the catalog's release dates reach.
    public var catalogYears: Int
    /// The fraction of albums released in the last ``newReleaseWeeks`` weeks ("new releases").
    public var newReleaseFraction: Double
    /// The window of new releases, in weeks before ``endTimestamp``.
    public var newReleaseWeeks: Int
    /// The popularity multiplier of a new release's tracks (release hype).
    public var newReleaseBoost: Double

    // MARK: Published metadata

    /// The share of albums whose tracks carry a genre label in `tracks.tsv` (and of artists in `artists.tsv`); the
    /// rest have an empty genre, as in a real catalog. 0 withholds genres. The truth stays in `truth_tracks.tsv`.
    public var catalogGenreCoverage: Double
    /// The share of labeled albums (and artists) whose label names another genre: half the time one of the same
    /// family, otherwise any other genre.
    public var catalogGenreErrorRate: Double

    // MARK: Catalog shape

    /// Zipf exponent of genre popularity over the order of ``genres``.
    public var genreZipfExponent: Double
    /// Zipf exponent of artist popularity within a genre.
    public var artistZipfExponent: Double
    /// Zipf exponent of track popularity within an artist.
    public var trackZipfExponent: Double
    /// The typical number of tracks on an album.
    public var tracksPerAlbum: Int

    // MARK: Users

    /// The mean number of distinct tracks a user plays (before clamping to the min and max below).
    public var meanTracksPerUser: Double
    /// The log-normal sigma of the number of distinct tracks per user (larger means a heavier tail).
    public var activitySigma: Double
    /// The fewest distinct tracks a user plays.
    public var minTracksPerUser: Int
    /// The most distinct tracks a user plays (also capped at a quarter of the catalog).
    public var maxTracksPerUser: Int
    /// The probabilities of having 1, 2, 3, ... genre tastes (normalized; its length is the largest number of tastes).
    public var tasteCountProbabilities: [Double]
    /// The probability that a secondary taste is drawn from the first taste's family.
    public var sameFamilyProbability: Double
    /// The fewest favorite artists per user.
    public var favouriteArtistsMin: Int
    /// The most favorite artists per user.
    public var favouriteArtistsMax: Int
    /// The probability that a user's next track comes from one of their favorite artists.
    public var favouriteShare: Double
    /// The probability that a user's next track comes from a genre drawn by global popularity instead of their
    /// tastes (often off-taste).
    public var explorationRate: Double

    // MARK: Plays

    /// The mean of the geometric number of extra plays of an on-taste (user, track) pair (each pair has 1 + extra).
    public var extraPlaysMean: Double
    /// The multiplier of ``extraPlaysMean`` for off-taste pairs.
    public var offTasteRepeatFactor: Double
    /// The probability that a play of an on-taste track is a skip (under 30 s).
    public var skipProbabilityOnTaste: Double
    /// The probability that a play of an off-taste track is a skip.
    public var skipProbabilityOffTaste: Double
    /// The probability that a non-skipped play runs the whole track (otherwise it stops somewhere after 30 s).
    public var fullPlayProbability: Double

    // MARK: Feedback

    /// The fewest plays of a pair before the user may like it.
    public var likeMinPlays: Int
    /// The probability that a user likes an on-taste pair with at least ``likeMinPlays`` plays.
    public var likeProbability: Double
    /// The probability that a user follows each favorite artist.
    public var followProbability: Double
    /// The probability that a user dislikes an off-taste track all of whose plays were skips.
    public var dislikeTrackProbability: Double
    /// The probability that a user dislikes the artist of such a track (when they played nothing else by it).
    public var dislikeArtistProbability: Double

    /// A configuration with the `sample` preset's values, changed by the given arguments.
    public init(
        seed: UInt64 = 42, users: Int = 2_000, tracks: Int = 5_000, artists: Int = 600,
        genres: [GenreSpec] = GenreSpec.defaultGenres, weeks: Int = 12, endTimestamp: Int64 = 1_794_787_199,
        catalogYears: Int = 40, newReleaseFraction: Double = 0.03, newReleaseWeeks: Int = 4,
        newReleaseBoost: Double = 2.0, catalogGenreCoverage: Double = 0.7, catalogGenreErrorRate: Double = 0.1,
        genreZipfExponent: Double = 0.8, artistZipfExponent: Double = 1.0,
        trackZipfExponent: Double = 0.9, tracksPerAlbum: Int = 10, meanTracksPerUser: Double = 25,
        activitySigma: Double = 1.0, minTracksPerUser: Int = 2, maxTracksPerUser: Int = 5_000,
        tasteCountProbabilities: [Double] = [0.35, 0.4, 0.25], sameFamilyProbability: Double = 0.6,
        favouriteArtistsMin: Int = 1, favouriteArtistsMax: Int = 5, favouriteShare: Double = 0.2,
        explorationRate: Double = 0.08, extraPlaysMean: Double = 1.0, offTasteRepeatFactor: Double = 0.3,
        skipProbabilityOnTaste: Double = 0.08, skipProbabilityOffTaste: Double = 0.45,
        fullPlayProbability: Double = 0.75, likeMinPlays: Int = 3, likeProbability: Double = 0.3,
        followProbability: Double = 0.5, dislikeTrackProbability: Double = 0.15,
        dislikeArtistProbability: Double = 0.05
    ) {
        self.seed = seed
        self.users = users
        self.tracks = tracks
        self.artists = artists
        self.genres = genres
        self.weeks = weeks
        self.endTimestamp = endTimestamp
        self.catalogYears = catalogYears
        self.newReleaseFraction = newReleaseFraction
        self.newReleaseWeeks = newReleaseWeeks
        self.newReleaseBoost = newReleaseBoost
        self.catalogGenreCoverage = catalogGenreCoverage
        self.catalogGenreErrorRate = catalogGenreErrorRate
        self.genreZipfExponent = genreZipfExponent
        self.artistZipfExponent = artistZipfExponent
        self.trackZipfExponent = trackZipfExponent
        self.tracksPerAlbum = tracksPerAlbum
        self.meanTracksPerUser = meanTracksPerUser
        self.activitySigma = activitySigma
        self.minTracksPerUser = minTracksPerUser
        self.maxTracksPerUser = maxTracksPerUser
        self.tasteCountProbabilities = tasteCountProbabilities
        self.sameFamilyProbability = sameFamilyProbability
        self.favouriteArtistsMin = favouriteArtistsMin
        self.favouriteArtistsMax = favouriteArtistsMax
        self.favouriteShare = favouriteShare
        self.explorationRate = explorationRate
        self.extraPlaysMean = extraPlaysMean
        self.offTasteRepeatFactor = offTasteRepeatFactor
        self.skipProbabilityOnTaste = skipProbabilityOnTaste
        self.skipProbabilityOffTaste = skipProbabilityOffTaste
        self.fullPlayProbability = fullPlayProbability
        self.likeMinPlays = likeMinPlays
        self.likeProbability = likeProbability
        self.followProbability = followProbability
        self.dislikeTrackProbability = dislikeTrackProbability
        self.dislikeArtistProbability = dislikeArtistProbability
    }

    /// The configuration of a preset.
    public static func preset(_ preset: SyntheticWorldPreset) -> SyntheticWorldConfig {
        switch preset {
        case .tiny: return .tiny
        case .sample: return .sample
        case .lastfm360k: return .lastfm360k
        }
    }

    /// 300 users, 800 tracks, 80 artists, about 20 distinct tracks a user: for unit tests.
    public static var tiny: SyntheticWorldConfig {
        SyntheticWorldConfig(users: 300, tracks: 800, artists: 80, meanTracksPerUser: 20, maxTracksPerUser: 150)
    }

    /// 2 000 users, 5 000 tracks, 600 artists, 25 distinct tracks a user on average: about 50 000 pairs and
    /// 100 000 plays.
    public static var sample: SyntheticWorldConfig { SyntheticWorldConfig() }

    /// The shape of Last.fm 360K: 360 000 users, 300 000 tracks, 40 000 artists, 48.6 distinct tracks a user on
    /// average (about 17.5 million pairs, about 34 million plays).
    public static var lastfm360k: SyntheticWorldConfig {
        SyntheticWorldConfig(users: 360_000, tracks: 300_000, artists: 40_000, meanTracksPerUser: 48.6)
    }

    /// The first second of the play log: `weeks` weeks before ``endTimestamp``, inclusive.
    public var startTimestamp: Int64 { endTimestamp - Int64(weeks) * Timestamp.secondsPerWeek + 1 }

    /// Checks every field is in range.
    /// - Throws: ``SyntheticWorldError/invalidConfig(_:)`` naming the first field out of range.
    public func validate() throws(SyntheticWorldError) {
        func check(_ ok: Bool, _ message: @autoclosure () -> String) throws(SyntheticWorldError) {
            if !ok { throw .invalidConfig(message()) }
        }
        func probability(_ p: Double, _ name: String) throws(SyntheticWorldError) {
            try check(p >= 0 && p <= 1, "\(name) must be in [0, 1], got \(p)")
        }
        func nonNegative(_ x: Double, _ name: String) throws(SyntheticWorldError) {
            try check(x >= 0 && x.isFinite, "\(name) must be finite and >= 0, got \(x)")
        }
        try check(users >= 1 && users <= Int(Int32.max), "users must be in 1...\(Int32.max), got \(users)")
        try check(!genres.isEmpty, "genres must not be empty")
        try check(genres.count <= Int(Int16.max), "at most \(Int16.max) genres, got \(genres.count)")
        try check(artists >= genres.count, "artists (\(artists)) must be at least the number of genres (\(genres.count))")
        try check(tracks >= artists, "tracks (\(tracks)) must be at least artists (\(artists)): every artist has a track")
        try check(tracks <= Int(Int32.max) / 2, "tracks must be at most \(Int32.max / 2), got \(tracks)")
        for (i, g) in genres.enumerated() {
            try check(!g.name.isEmpty && !g.name.utf8.contains(where: { $0 <= 32 || $0 == UInt8(ascii: ";") || $0 == UInt8(ascii: ":") }),
                      "genre \(i) name '\(g.name)' must be non-empty without whitespace, ';' or ':'")
            try check(!genres[..<i].contains(where: { $0.name == g.name }), "genre name '\(g.name)' appears twice")
            try check(g.medianDurationSeconds >= 31 && g.medianDurationSeconds <= 3_600,
                      "genre '\(g.name)' medianDurationSeconds must be in 31...3600, got \(g.medianDurationSeconds)")
        }
        try check(weeks >= 1 && weeks <= 520, "weeks must be in 1...520, got \(weeks)")
        try check(endTimestamp > Int64(weeks) * Timestamp.secondsPerWeek && endTimestamp < 253_402_300_800,
                  "endTimestamp must be after 1970 + weeks and before year 10000, got \(endTimestamp)")
        try check(catalogYears >= 1 && catalogYears <= 200, "catalogYears must be in 1...200, got \(catalogYears)")
        try check(Int64(catalogYears) * 366 * Timestamp.secondsPerDay < endTimestamp,
                  "catalogYears (\(catalogYears)) reaches before 1970")
        try probability(newReleaseFraction, "newReleaseFraction")
        try check(newReleaseWeeks >= 1 && newReleaseWeeks <= weeks,
                  "newReleaseWeeks must be in 1...weeks (\(weeks)), got \(newReleaseWeeks)")
        try check(newReleaseBoost > 0 && newReleaseBoost.isFinite, "newReleaseBoost must be > 0, got \(newReleaseBoost)")
        try nonNegative(genreZipfExponent, "genreZipfExponent")
        try nonNegative(artistZipfExponent, "artistZipfExponent")
        try nonNegative(trackZipfExponent, "trackZipfExponent")
        try check(tracksPerAlbum >= 1, "tracksPerAlbum must be >= 1, got \(tracksPerAlbum)")
        try check(meanTracksPerUser >= 1 && meanTracksPerUser.isFinite,
                  "meanTracksPerUser must be >= 1, got \(meanTracksPerUser)")
        try check(activitySigma >= 0 && activitySigma <= 4, "activitySigma must be in 0...4, got \(activitySigma)")
        try check(minTracksPerUser >= 1, "minTracksPerUser must be >= 1, got \(minTracksPerUser)")
        try check(maxTracksPerUser >= minTracksPerUser,
                  "maxTracksPerUser (\(maxTracksPerUser)) must be >= minTracksPerUser (\(minTracksPerUser))")
        try check(!tasteCountProbabilities.isEmpty && tasteCountProbabilities.count <= genres.count
                    && tasteCountProbabilities.allSatisfy({ $0 >= 0 && $0.isFinite })
                    && tasteCountProbabilities.reduce(0, +) > 0,
                  "tasteCountProbabilities must be 1...\(genres.count) non-negative weights with a positive sum")
        try probability(sameFamilyProbability, "sameFamilyProbability")
        try check(favouriteArtistsMin >= 0 && favouriteArtistsMax >= favouriteArtistsMin && favouriteArtistsMax <= 100,
                  "favourite artists need 0 <= min <= max <= 100, got \(favouriteArtistsMin)...\(favouriteArtistsMax)")
        try probability(favouriteShare, "favouriteShare")
        try probability(explorationRate, "explorationRate")
        try check(favouriteShare + explorationRate <= 1, "favouriteShare + explorationRate must be <= 1")
        try check(extraPlaysMean >= 0 && extraPlaysMean <= 100, "extraPlaysMean must be in 0...100, got \(extraPlaysMean)")
        try nonNegative(offTasteRepeatFactor, "offTasteRepeatFactor")
        try probability(skipProbabilityOnTaste, "skipProbabilityOnTaste")
        try probability(skipProbabilityOffTaste, "skipProbabilityOffTaste")
        try probability(fullPlayProbability, "fullPlayProbability")
        try check(likeMinPlays >= 1, "likeMinPlays must be >= 1, got \(likeMinPlays)")
        try probability(likeProbability, "likeProbability")
        try probability(followProbability, "followProbability")
        try probability(dislikeTrackProbability, "dislikeTrackProbability")
        try probability(dislikeArtistProbability, "dislikeArtistProbability")
        try probability(catalogGenreCoverage, "catalogGenreCoverage")
        try probability(catalogGenreErrorRate, "catalogGenreErrorRate")
    }
}

extension SyntheticWorldConfig {
    /// Decodes a configuration; a missing field takes the `sample` preset's value, so files written before a field
    /// was added still load.
    public init(from decoder: any Decoder) throws {
        let k = try decoder.container(keyedBy: CodingKeys.self)
        let d = SyntheticWorldConfig()
        seed = try k.decodeIfPresent(type(of: d.seed), forKey: .seed) ?? d.seed
        users = try k.decodeIfPresent(type(of: d.users), forKey: .users) ?? d.users
        tracks = try k.decodeIfPresent(type(of: d.tracks), forKey: .tracks) ?? d.tracks
        artists = try k.decodeIfPresent(type(of: d.artists), forKey: .artists) ?? d.artists
        genres = try k.decodeIfPresent(type(of: d.genres), forKey: .genres) ?? d.genres
        weeks = try k.decodeIfPresent(type(of: d.weeks), forKey: .weeks) ?? d.weeks
        endTimestamp = try k.decodeIfPresent(type(of: d.endTimestamp), forKey: .endTimestamp) ?? d.endTimestamp
        catalogYears = try k.decodeIfPresent(type(of: d.catalogYears), forKey: .catalogYears) ?? d.catalogYears
        newReleaseFraction = try k.decodeIfPresent(type(of: d.newReleaseFraction), forKey: .newReleaseFraction) ?? d.newReleaseFraction
        newReleaseWeeks = try k.decodeIfPresent(type(of: d.newReleaseWeeks), forKey: .newReleaseWeeks) ?? d.newReleaseWeeks
        newReleaseBoost = try k.decodeIfPresent(type(of: d.newReleaseBoost), forKey: .newReleaseBoost) ?? d.newReleaseBoost
        catalogGenreCoverage = try k.decodeIfPresent(type(of: d.catalogGenreCoverage), forKey: .catalogGenreCoverage) ?? d.catalogGenreCoverage
        catalogGenreErrorRate = try k.decodeIfPresent(type(of: d.catalogGenreErrorRate), forKey: .catalogGenreErrorRate) ?? d.catalogGenreErrorRate
        genreZipfExponent = try k.decodeIfPresent(type(of: d.genreZipfExponent), forKey: .genreZipfExponent) ?? d.genreZipfExponent
        artistZipfExponent = try k.decodeIfPresent(type(of: d.artistZipfExponent), forKey: .artistZipfExponent) ?? d.artistZipfExponent
        trackZipfExponent = try k.decodeIfPresent(type(of: d.trackZipfExponent), forKey: .trackZipfExponent) ?? d.trackZipfExponent
        tracksPerAlbum = try k.decodeIfPresent(type(of: d.tracksPerAlbum), forKey: .tracksPerAlbum) ?? d.tracksPerAlbum
        meanTracksPerUser = try k.decodeIfPresent(type(of: d.meanTracksPerUser), forKey: .meanTracksPerUser) ?? d.meanTracksPerUser
        activitySigma = try k.decodeIfPresent(type(of: d.activitySigma), forKey: .activitySigma) ?? d.activitySigma
        minTracksPerUser = try k.decodeIfPresent(type(of: d.minTracksPerUser), forKey: .minTracksPerUser) ?? d.minTracksPerUser
        maxTracksPerUser = try k.decodeIfPresent(type(of: d.maxTracksPerUser), forKey: .maxTracksPerUser) ?? d.maxTracksPerUser
        tasteCountProbabilities = try k.decodeIfPresent(type(of: d.tasteCountProbabilities), forKey: .tasteCountProbabilities) ?? d.tasteCountProbabilities
        sameFamilyProbability = try k.decodeIfPresent(type(of: d.sameFamilyProbability), forKey: .sameFamilyProbability) ?? d.sameFamilyProbability
        favouriteArtistsMin = try k.decodeIfPresent(type(of: d.favouriteArtistsMin), forKey: .favouriteArtistsMin) ?? d.favouriteArtistsMin
        favouriteArtistsMax = try k.decodeIfPresent(type(of: d.favouriteArtistsMax), forKey: .favouriteArtistsMax) ?? d.favouriteArtistsMax
        favouriteShare = try k.decodeIfPresent(type(of: d.favouriteShare), forKey: .favouriteShare) ?? d.favouriteShare
        explorationRate = try k.decodeIfPresent(type(of: d.explorationRate), forKey: .explorationRate) ?? d.explorationRate
        extraPlaysMean = try k.decodeIfPresent(type(of: d.extraPlaysMean), forKey: .extraPlaysMean) ?? d.extraPlaysMean
        offTasteRepeatFactor = try k.decodeIfPresent(type(of: d.offTasteRepeatFactor), forKey: .offTasteRepeatFactor) ?? d.offTasteRepeatFactor
        skipProbabilityOnTaste = try k.decodeIfPresent(type(of: d.skipProbabilityOnTaste), forKey: .skipProbabilityOnTaste) ?? d.skipProbabilityOnTaste
        skipProbabilityOffTaste = try k.decodeIfPresent(type(of: d.skipProbabilityOffTaste), forKey: .skipProbabilityOffTaste) ?? d.skipProbabilityOffTaste
        fullPlayProbability = try k.decodeIfPresent(type(of: d.fullPlayProbability), forKey: .fullPlayProbability) ?? d.fullPlayProbability
        likeMinPlays = try k.decodeIfPresent(type(of: d.likeMinPlays), forKey: .likeMinPlays) ?? d.likeMinPlays
        likeProbability = try k.decodeIfPresent(type(of: d.likeProbability), forKey: .likeProbability) ?? d.likeProbability
        followProbability = try k.decodeIfPresent(type(of: d.followProbability), forKey: .followProbability) ?? d.followProbability
        dislikeTrackProbability = try k.decodeIfPresent(type(of: d.dislikeTrackProbability), forKey: .dislikeTrackProbability) ?? d.dislikeTrackProbability
        dislikeArtistProbability = try k.decodeIfPresent(type(of: d.dislikeArtistProbability), forKey: .dislikeArtistProbability) ?? d.dislikeArtistProbability
    }
}

extension SyntheticWorldConfig {
    /// This configuration with the fields of a JSON object replaced, e.g. `{"users": 1000, "skipProbabilityOffTaste":
    /// 0.5}`; fields the object does not name keep their values. Field names are those of `world.json`'s `config`.
    ///
    /// - Throws: ``SyntheticWorldError/invalidConfig(_:)`` when the JSON is not an object, names an unknown field or
    ///   has a value of the wrong type.
    public func overriding(json: Data) throws(SyntheticWorldError) -> SyntheticWorldConfig {
        let base: [String: Any]
        let patch: [String: Any]
        do {
            guard let b = try JSONSerialization.jsonObject(with: JSONEncoder().encode(self)) as? [String: Any] else {
                throw SyntheticWorldError.invalidConfig("cannot encode the configuration")
            }
            base = b
        } catch {
            throw .invalidConfig("cannot encode the configuration: \(error)")
        }
        do {
            guard let p = try JSONSerialization.jsonObject(with: json) as? [String: Any] else {
                throw SyntheticWorldError.invalidConfig("the overrides must be a JSON object")
            }
            patch = p
        } catch let e as SyntheticWorldError {
            throw e
        } catch {
            throw .invalidConfig("the overrides are not valid JSON: \(error.localizedDescription)")
        }
        var merged = base
        for key in patch.keys.sorted() {
            guard base[key] != nil else {
                throw .invalidConfig("unknown field '\(key)'; known fields: \(base.keys.sorted().joined(separator: ", "))")
            }
            merged[key] = patch[key]
        }
        do {
            let data = try JSONSerialization.data(withJSONObject: merged)
            return try JSONDecoder().decode(SyntheticWorldConfig.self, from: data)
        } catch let DecodingError.typeMismatch(_, context) {
            throw .invalidConfig("field '\(context.codingPath.map(\.stringValue).joined(separator: "."))': "
                + context.debugDescription)
        } catch let DecodingError.dataCorrupted(context) {
            throw .invalidConfig("field '\(context.codingPath.map(\.stringValue).joined(separator: "."))': "
                + context.debugDescription)
        } catch {
            throw .invalidConfig("cannot apply the overrides: \(error)")
        }
    }
}

/// Errors from generating or writing a synthetic world.
public enum SyntheticWorldError: Error, Equatable, CustomStringConvertible {
    /// A configuration field is out of range.
    case invalidConfig(String)
    /// The output directory could not be created or is not a directory.
    case cannotCreateDirectory(path: String, reason: String)
    /// A file could not be opened or written.
    case cannotWrite(path: String, reason: String)
    /// A file could not be read back (a missing or malformed `world.json`).
    case cannotRead(path: String, reason: String)

    public var description: String {
        switch self {
        case .invalidConfig(let s): return "invalid synthetic world configuration: \(s)"
        case .cannotCreateDirectory(let p, let r): return "\(p): cannot create output directory: \(r)"
        case .cannotWrite(let p, let r): return "\(p): cannot write: \(r)"
        case .cannotRead(let p, let r): return "\(p): cannot read: \(r)"
        }
    }
}

import Foundation
import Hummingbird

// The JSON bodies of the API (field names as in docs/openapi.yaml).

struct ItemScoreJSON: Codable, Sendable {
    var item: String
    var score: Double
}

struct RecommendationsJSON: ResponseEncodable, Codable, Sendable {
    var user: String
    var known: Bool
    var source: String
    var bundleVersion: String
    var items: [ItemScoreJSON]
    enum CodingKeys: String, CodingKey { case user, known, source, bundleVersion = "bundle_version", items }
}

struct DiscoverWeeklyJSON: ResponseEncodable, Codable, Sendable {
    struct Track: Codable, Sendable {
        var item: String
        var score: Double
        var source: String
    }
    var user: String
    var week: String
    var items: [Track]
}

struct DailyMixesJSON: ResponseEncodable, Codable, Sendable {
    struct Track: Codable, Sendable {
        var item: String
        var familiar: Bool
    }
    struct Mix: Codable, Sendable {
        var name: String
        var cover: String
        var items: [Track]
    }
    var user: String
    var day: String
    var mixes: [Mix]
}

struct BecauseYouPlayedJSON: ResponseEncodable, Codable, Sendable {
    struct Track: Codable, Sendable {
        var item: String
        var similarity: Double
        var score: Double
        var seedShare: Double?
        enum CodingKeys: String, CodingKey { case item, similarity, score, seedShare = "seed_share" }
    }
    struct Row: Codable, Sendable {
        var seed: String
        var playedAt: Int64?
        var items: [Track]
        enum CodingKeys: String, CodingKey { case seed, playedAt = "played_at", items }
    }
    var user: String
    var rows: [Row]
}

struct ExplainJSON: ResponseEncodable, Codable, Sendable {
    struct Contribution: Codable, Sendable {
        var item: String
        var score: Double
        var share: Double
    }
    var user: String
    var item: String
    var score: Double
    var contributions: [Contribution]
}

struct SimilarJSON: ResponseEncodable, Codable, Sendable {
    struct Neighbor: Codable, Sendable {
        var item: String
        var similarity: Double
    }
    var item: String
    var space: String
    var items: [Neighbor]
}

struct FeaturesJSON: ResponseEncodable, Codable, Sendable {
    /// What was posted of the track (no content vectors), and where its CF vector comes from.
    struct Track: Codable, Sendable {
        var artist: String?
        var album: String?
        var releaseDate: String?
        var durationMs: Int64?
        var explicit: Bool?
        var flagged: Bool?
        var provenance: String
        enum CodingKeys: String, CodingKey {
            case artist, album, explicit, flagged, provenance
            case releaseDate = "release_date", durationMs = "duration_ms"
        }
    }
    var item: String
    var source: String
    var descriptors: [String: Double]
    var posted: Track?
}

struct TracksJSON: ResponseEncodable, Codable, Sendable {
    struct Track: Codable, Sendable {
        var item: String
        var new: Bool
        var provenance: String
    }
    var accepted: Int
    var newTracks: Int
    var tracks: [Track]
    enum CodingKeys: String, CodingKey { case accepted, newTracks = "new_tracks", tracks }
}

struct EventsJSON: ResponseEncodable, Codable, Sendable {
    var accepted: Int
    var duplicates: Int
    var firstSequence: UInt64?
    var lastSequence: UInt64?
    enum CodingKeys: String, CodingKey {
        case accepted, duplicates, firstSequence = "first_sequence", lastSequence = "last_sequence"
    }
}

struct UserStateJSON: ResponseEncodable, Codable, Sendable {
    var user: String
    var known: Bool
    var eventsApplied: Int
    var played: [String]
    var likes: [String]
    var dislikedTracks: [String]
    var dislikedArtists: [String]
    var followedArtists: [String]
    enum CodingKeys: String, CodingKey {
        case user, known, eventsApplied = "events_applied", played, likes, dislikedTracks = "disliked_tracks"
        case dislikedArtists = "disliked_artists", followedArtists = "followed_artists"
    }
}

struct HealthJSON: ResponseEncodable, Codable, Sendable {
    var status: String
}

struct ReadyJSON: ResponseEncodable, Codable, Sendable {
    var status: String
    var bundleVersion: String
    var publishedVersion: String?
    var users: Int
    var items: Int
    var eventLogLastSequence: UInt64
    var indexes: [IndexJSON]
    var warnings: [String]
    enum CodingKeys: String, CodingKey {
        case status, bundleVersion = "bundle_version", publishedVersion = "published_version", users, items
        case eventLogLastSequence = "event_log_last_sequence", indexes, warnings
    }

    struct IndexJSON: Codable, Sendable {
        var role: String
        var status: String
        var file: String
        var detail: String?
    }

    // Encodes `published_version` as null for a plain bundle (the synthesized encoder would leave it out).
    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(status, forKey: .status)
        try c.encode(bundleVersion, forKey: .bundleVersion)
        try c.encode(publishedVersion, forKey: .publishedVersion)
        try c.encode(users, forKey: .users)
        try c.encode(items, forKey: .items)
        try c.encode(eventLogLastSequence, forKey: .eventLogLastSequence)
        try c.encode(indexes, forKey: .indexes)
        try c.encode(warnings, forKey: .warnings)
    }
}

struct ReloadJSON: ResponseEncodable, Codable, Sendable {
    var previousVersion: String
    var version: String
    var replayed: Int
    enum CodingKeys: String, CodingKey { case previousVersion = "previous_version", version, replayed }
}

/// A finite `Double` of a score (JSON has no NaN or infinity).
@inline(__always)
func finite(_ x: Float) -> Double { x.isFinite ? Double(x) : 0 }

import Foundation
import EncoreData
import EncorePlaylists

/// What the server learned about one user since the bundle was trained: plays and skips with their times, likes,
/// dislikes (tracks and artists), follows, and a cached folded-in user vector.
///
/// Events for items or artists the bundle does not know are logged but leave no trace here (there is nothing to
/// score them with until the next training).
public struct UserRealtimeState: Sendable, Equatable {
    /// One play or skip of a known item.
    public struct Play: Sendable, Equatable {
        /// The item.
        public var item: Int32
        /// When (Unix seconds, the client's timestamp).
        public var timestamp: Int64
        /// The log sequence of the event (orders events of equal timestamps).
        public var sequence: UInt64
        /// Whether it counts as a listened play (30 s or more); a skip otherwise.
        public var listened: Bool
    }

    /// Plays and skips in the order they were applied (at most ``maxPlays``, oldest dropped).
    public internal(set) var plays: [Play] = []
    /// Listened plays of each item since the bundle.
    public internal(set) var listenCounts: [Int32: Int] = [:]
    /// Items played or skipped since the bundle (never forgotten, unlike ``plays``).
    public internal(set) var touched: Set<Int32> = []
    /// Liked items.
    public internal(set) var likes: Set<Int32> = []
    /// Items added to a playlist.
    public internal(set) var playlistAdds: Set<Int32> = []
    /// Disliked items.
    public internal(set) var dislikedTracks: Set<Int32> = []
    /// Disliked artists.
    public internal(set) var dislikedArtists: Set<Int32> = []
    /// Followed artists.
    public internal(set) var followedArtists: Set<Int32> = []
    /// Events applied (known items or not).
    public internal(set) var eventsApplied: Int = 0
    /// Bumped whenever the user's vector may change (a listened play, a like, a dislike, a playlist add).
    public internal(set) var revision: UInt64 = 0
    /// The last folded-in vector and the revision it was computed at.
    var cachedVector: (revision: UInt64, vector: [Float]?)? = nil

    /// The most plays kept for "Because you played" seeds.
    public static let maxPlays = 200

    /// An empty state.
    public init() {}

    public static func == (a: UserRealtimeState, b: UserRealtimeState) -> Bool {
        a.plays == b.plays && a.listenCounts == b.listenCounts && a.touched == b.touched && a.likes == b.likes
            && a.playlistAdds == b.playlistAdds && a.dislikedTracks == b.dislikedTracks
            && a.dislikedArtists == b.dislikedArtists && a.followedArtists == b.followedArtists
    }

    /// Whether the state changes nothing about the user's vector (the bundle's row, or none, still applies).
    public var hasVectorChanges: Bool { !listenCounts.isEmpty || !likes.isEmpty || !playlistAdds.isEmpty || !dislikedTracks.isEmpty }

    /// Applies one event already resolved against a model.
    ///
    /// - Parameters:
    ///   - type: the event type.
    ///   - item: the item index for item events (`nil` when the bundle does not know the item).
    ///   - artist: the artist index for artist events and artist dislikes (`nil` when unknown).
    mutating func apply(
        type: EventType, item: Int32?, artist: Int32?, listened: Bool, timestamp: Int64, sequence: UInt64
    ) {
        eventsApplied += 1
        switch type {
        case .play, .skip:
            guard let item else { return }
            let counted = type == .play && listened
            plays.append(Play(item: item, timestamp: timestamp, sequence: sequence, listened: counted))
            if plays.count > Self.maxPlays { plays.removeFirst(plays.count - Self.maxPlays) }
            touched.insert(item)
            if counted {
                listenCounts[item, default: 0] += 1
                revision &+= 1
            }
        case .like, .unlike, .dislike, .undislike, .followArtist, .unfollowArtist:
            let rules = EventRules.standard
            guard let target = rules.feedbackTarget(of: type, isKnownTrack: item != nil, isKnownArtist: artist != nil),
                  let id = target == .track ? item : artist
            else { return }
            let effect = rules.feedbackEffect(of: type, on: target)
            var changed = false
            for set in effect.removes { changed = update(set) { $0.remove(id) != nil } || changed }
            if let set = effect.adds { changed = update(set) { $0.insert(id).inserted } || changed }
            // Track feedback moves the user's vector (likes weigh in, dislikes are left out); artist feedback only
            // filters.
            if changed && target == .track { revision &+= 1 }
        case .playlistAdd:
            if let item, playlistAdds.insert(item).inserted { revision &+= 1 }
        }
    }

    /// Applies `change` to one feedback set; returns its result.
    private mutating func update(_ set: EventRules.FeedbackSet, _ change: (inout Set<Int32>) -> Bool) -> Bool {
        switch set {
        case .likedTracks: return change(&likes)
        case .dislikedTracks: return change(&dislikedTracks)
        case .dislikedArtists: return change(&dislikedArtists)
        case .followedArtists: return change(&followedArtists)
        }
    }

    /// Whether the user disliked `item` or its artist.
    public func dislikes(_ item: Int32, catalog: TrackCatalog) -> Bool {
        if dislikedTracks.contains(item) { return true }
        let a = catalog.artist(of: item)
        return a >= 0 && dislikedArtists.contains(a)
    }

    /// Listened plays newest first (by the event's timestamp, then its log sequence), one per item (its latest
    /// play), at most `limit`.
    public func recentListens(limit: Int) -> [Play] {
        var latest: [Int32: Play] = [:]
        for p in plays where p.listened {
            if let q = latest[p.item], (q.timestamp, q.sequence) > (p.timestamp, p.sequence) { continue }
            latest[p.item] = p
        }
        let sorted = latest.values.sorted { ($0.timestamp, $0.sequence, $0.item) > ($1.timestamp, $1.sequence, $1.item) }
        return Array(sorted.prefix(max(0, limit)))
    }
}

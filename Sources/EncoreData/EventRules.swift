import EncoreCore

/// The rules every reader of listening events shares: what counts as a listen and what as a skip, how a play-log
/// row turns into listens, and what likes, dislikes, follows and their withdrawals do. The loaders, the weekly job,
/// the evaluation and the server all ask these rules, so an event means the same thing everywhere.
///
/// - A `play` of at least ``minimumListenMs`` (or of unknown length) is a listen; a shorter `play` or a `skip` is a
///   skip.
/// - A like withdraws a dislike of the same track and a dislike withdraws a like; an artist dislike withdraws a
///   follow of the artist and a follow withdraws an artist dislike. `unlike`, `undislike` and `unfollow_artist`
///   withdraw their event.
/// - A `dislike` or `undislike` names a track; when the id is no known track but a known artist, it is about the
///   artist. `follow_artist` and `unfollow_artist` always name an artist.
public struct EventRules: Sendable, Equatable, Codable {
    /// The shortest play that counts as a listen, in milliseconds; shorter plays are skips.
    public var minimumListenMs: Int64
    /// How far ahead of the reader's clock an event's timestamp may be, in seconds; later events are implausible
    /// (a wrong clock or a typed-in date) and are refused by the server and skipped by the weekly job.
    public var maximumFutureSeconds: Int64

    /// Rules with a listen threshold (30 s by default, the threshold streaming services report plays at) and a
    /// plausibility window (a day ahead of the clock by default).
    public init(minimumListenMs: Int64 = 30_000, maximumFutureSeconds: Int64 = 86_400) {
        self.minimumListenMs = minimumListenMs
        self.maximumFutureSeconds = maximumFutureSeconds
    }

    /// Whether an event at `timestamp` is plausible for a reader whose clock reads `now` (both Unix seconds): not
    /// more than ``maximumFutureSeconds`` ahead.
    public func isPlausible(timestamp: Int64, now: Int64) -> Bool {
        timestamp <= now &+ maximumFutureSeconds
    }

    /// Encore's rules: plays of 30 s or more are listens.
    public static let standard = EventRules()

    // MARK: Listens and skips

    /// Whether a play of `msPlayed` milliseconds (`nil`: unknown length) is a listen.
    @inlinable
    public func isListen(msPlayed: Int64?) -> Bool { (msPlayed ?? minimumListenMs) >= minimumListenMs }

    /// Whether `event` is a listen: a `play` of at least ``minimumListenMs`` or of unknown length.
    public func isListen(_ event: UserEvent) -> Bool { event.type == .play && isListen(msPlayed: event.msPlayed) }

    /// Whether `event` is a skip: a `skip`, or a `play` shorter than ``minimumListenMs``.
    public func isSkip(_ event: UserEvent) -> Bool { event.type == .skip || (event.type == .play && !isListen(event)) }

    /// How a play log stores plays under these rules when its weights are milliseconds played.
    public var playWeighting: PlayWeighting { .milliseconds(skipBelowMs: Float(minimumListenMs)) }

    /// The play-log weight of a play or skip event under `weighting`, or `nil` for other events: with
    /// milliseconds the play's length (``minimumListenMs`` when unknown, 0 for a `skip`); with counts 1 for a
    /// listen and 0 for a skip.
    public func rowWeight(of event: UserEvent, weighting: PlayWeighting) -> Float? {
        guard event.type == .play || event.type == .skip else { return nil }
        switch weighting {
        case .counts: return isListen(event) ? 1 : 0
        case .milliseconds: return event.type == .skip ? 0 : Float(event.msPlayed ?? minimumListenMs)
        }
    }

    // MARK: Feedback

    /// What a feedback event is about.
    public enum FeedbackTarget: Sendable, Equatable {
        /// A track.
        case track
        /// An artist.
        case artist
    }

    /// The sets of a user's feedback that events change.
    public enum FeedbackSet: Sendable, Equatable, CaseIterable {
        /// Liked tracks.
        case likedTracks
        /// Disliked tracks.
        case dislikedTracks
        /// Disliked artists.
        case dislikedArtists
        /// Followed artists.
        case followedArtists
    }

    /// What one feedback event does: the set its target joins (if any) and the sets it leaves.
    public struct FeedbackEffect: Sendable, Equatable {
        /// The set the target is added to.
        public var adds: FeedbackSet?
        /// The sets the target is removed from.
        public var removes: [FeedbackSet]
    }

    /// What `type` is about, given whether its id is a known track and a known artist; `nil` when it names nothing
    /// known (the event is logged but changes nothing) or is no feedback event.
    public func feedbackTarget(of type: EventType, isKnownTrack: Bool, isKnownArtist: Bool) -> FeedbackTarget? {
        switch type {
        case .like, .unlike: return isKnownTrack ? .track : nil
        case .dislike, .undislike: return isKnownTrack ? .track : (isKnownArtist ? .artist : nil)
        case .followArtist, .unfollowArtist: return isKnownArtist ? .artist : nil
        case .play, .skip, .playlistAdd: return nil
        }
    }

    /// Whether the id of a `type` event should be looked up among artists: always for follows, and for dislikes
    /// whose id is no known track.
    public func looksUpArtist(_ type: EventType, isKnownTrack: Bool) -> Bool {
        type.targetsArtist || ((type == .dislike || type == .undislike) && !isKnownTrack)
    }

    /// The known track and artist an event's `id` names: a track lookup unless the event names an artist, and an
    /// artist lookup for follows and for dislikes whose id is no known track (``looksUpArtist(_:isKnownTrack:)``).
    public func lookUp(
        _ type: EventType, id: String, track: (String) -> Int32?, artist: (String) -> Int32?
    ) -> (track: Int32?, artist: Int32?) {
        let t = type.targetsArtist ? nil : track(id)
        return (t, looksUpArtist(type, isKnownTrack: t != nil) ? artist(id) : nil)
    }

    /// The effect of a feedback event on its target (no effect for plays, skips and playlist adds).
    public func feedbackEffect(of type: EventType, on target: FeedbackTarget) -> FeedbackEffect {
        switch (type, target) {
        case (.like, .track): return FeedbackEffect(adds: .likedTracks, removes: [.dislikedTracks])
        case (.unlike, .track): return FeedbackEffect(adds: nil, removes: [.likedTracks])
        case (.dislike, .track): return FeedbackEffect(adds: .dislikedTracks, removes: [.likedTracks])
        case (.undislike, .track): return FeedbackEffect(adds: nil, removes: [.dislikedTracks])
        case (.dislike, .artist): return FeedbackEffect(adds: .dislikedArtists, removes: [.followedArtists])
        case (.undislike, .artist): return FeedbackEffect(adds: nil, removes: [.dislikedArtists])
        case (.followArtist, .artist): return FeedbackEffect(adds: .followedArtists, removes: [.dislikedArtists])
        case (.unfollowArtist, .artist): return FeedbackEffect(adds: nil, removes: [.followedArtists])
        default: return FeedbackEffect(adds: nil, removes: [])
        }
    }
}

/// How the weight of a play-log row is read: as a number of listens, or as the milliseconds of one play.
public enum PlayWeighting: Sendable, Equatable {
    /// Each row's weight is a number of listened plays (a bare log of `user, item, weight`); a row of weight 0 is a
    /// touch without a listen (counted as a skip).
    case counts
    /// Each row is one play whose weight is the milliseconds played; a play shorter than `skipBelowMs` is a skip, any
    /// other counts as one listened play. Load Encore's `plays.tsv` with
    /// ``DelimitedFormat/encorePlaysWithMsPlayed`` for this.
    case milliseconds(skipBelowMs: Float)

    /// One play per row, skips under 30 s (``EventRules/standard``).
    public static let encorePlays = EventRules.standard.playWeighting

    /// The listens a row of weight `w` stands for: the count itself (never negative), or 1 for a listen and 0 for a
    /// skip.
    @inlinable
    public func listens(rowWeight w: Float) -> Float {
        switch self {
        case .counts: return max(0, w)
        case .milliseconds(let threshold): return w >= threshold ? 1 : 0
        }
    }

    /// Whether a row of weight `w` is a skip (a touch without a listen).
    @inlinable
    public func isSkip(rowWeight w: Float) -> Bool {
        switch self {
        case .counts: return w <= 0
        case .milliseconds(let threshold): return w < threshold
        }
    }
}

extension DelimitedFormat {
    /// Encore's `plays.tsv` with every row kept and `ms_played` as the weight, read with
    /// ``PlayWeighting/encorePlays`` (skips are recorded, not dropped).
    public static let encorePlaysWithMsPlayed = DelimitedFormat(
        separator: "\t", hasHeader: true, user: .name("user"), item: .name("item"), weight: .name("ms_played"),
        timestamp: .name("timestamp"))
}

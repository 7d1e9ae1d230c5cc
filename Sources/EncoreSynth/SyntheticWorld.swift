import Foundation
import EncoreCore
import EncoreData

/// A deterministic synthetic music world: a catalog, users with known tastes, and their play log, likes, follows
/// and dislikes, with the ground truth beside it.
///
/// The world has structure collaborative filtering can learn: users mix one to three genre tastes (preferring related
/// genres) and have favorite artists; within a genre, artists and tracks are drawn by Zipf-like popularity; repeat
/// plays and skips depend on whether a track is on the user's taste. Some albums are released in the last weeks of the
/// log (new releases), and no play precedes its track's release.
///
/// ```swift
/// let world = try SyntheticWorld.generate(.sample)
/// let interactions = try world.playInteractions()
/// try world.write(to: "/tmp/sample")
/// ```
///
/// Generation is parallel over blocks of users, each user drawing from its own stream seeded by the world seed and
/// its index (``Stream``), so the world is identical for any thread count. The arrays are flat (`Int32`, `Int64`,
/// `Float`), about 20 bytes a play, so the `lastfm360k` preset (34 million plays) peaks at about 1.8 GB.
public struct SyntheticWorld: Sendable {
    /// The configuration the world was generated from.
    public let config: SyntheticWorldConfig
    /// Genres, artists, albums and tracks.
    public let catalog: Catalog
    /// The users' ground truth: tastes, favorite artists, activity.
    public let users: UserTruth
    /// Every listening event, sorted by timestamp.
    public let plays: PlayLog
    /// Likes of tracks, sorted by timestamp.
    public let likes: [Like]
    /// Follows of artists, sorted by timestamp.
    public let follows: [Follow]
    /// Dislikes of tracks and artists, sorted by timestamp.
    public let dislikes: [Dislike]
    /// How ids are spelled in files and ``Interactions``.
    public let ids: SyntheticIDFormat

    /// A user's like of a track.
    public struct Like: Sendable, Equatable {
        /// The user index.
        public var user: Int32
        /// The track index.
        public var track: Int32
        /// When, in Unix seconds.
        public var timestamp: Int64
    }

    /// A user's follow of an artist.
    public struct Follow: Sendable, Equatable {
        /// The user index.
        public var user: Int32
        /// The artist index.
        public var artist: Int32
        /// When, in Unix seconds.
        public var timestamp: Int64
    }

    /// A user's dislike of a track or an artist.
    public struct Dislike: Sendable, Equatable {
        /// What a dislike is about.
        public enum Kind: String, Sendable, Codable {
            /// ``Dislike/target`` is a track index.
            case track
            /// ``Dislike/target`` is an artist index.
            case artist
        }
        /// The user index.
        public var user: Int32
        /// The track or artist index, per ``kind``.
        public var target: Int32
        /// Whether ``target`` is a track or an artist.
        public var kind: Kind
        /// When, in Unix seconds.
        public var timestamp: Int64
    }

    /// The listening events as parallel columns, sorted by timestamp (ties in user order).
    public struct PlayLog: Sendable, Equatable {
        /// The user index of each play.
        public var users: [Int32]
        /// The track index of each play.
        public var tracks: [Int32]
        /// The time of each play (Unix seconds, UTC).
        public var timestamps: [Int64]
        /// The milliseconds played; under 30 000 is a skip.
        public var msPlayed: [Int32]

        /// The number of plays.
        public var count: Int { users.count }

        /// Whether play `i` is a skip (under 30 s).
        public func isSkip(_ i: Int) -> Bool { msPlayed[i] < SyntheticWorld.skipThresholdMs }
    }

    /// The users' ground truth, as flat arrays.
    public struct UserTruth: Sendable, Equatable {
        /// The most tastes a user has; ``tasteGenres`` and ``tasteWeights`` have this many entries a user.
        public let maxTastes: Int
        /// User `u`'s genres are `tasteGenres[u * maxTastes ..< (u + 1) * maxTastes]`, padded with -1.
        public let tasteGenres: [Int32]
        /// The weight of each taste (summing to 1 per user, 0 for padding), heaviest first.
        public let tasteWeights: [Float]
        /// User `u`'s favorite artists are `favorites[favoriteStart[u]..<favoriteStart[u + 1]]`.
        public let favouriteStart: [Int]
        /// The favorite artists of all users.
        public let favourites: [Int32]
        /// The number of distinct tracks each user was meant to play (the log-normal draw, clamped).
        public let targetTracks: [Int32]
        /// The number of distinct tracks each user played.
        public let distinctTracks: [Int32]

        /// The number of users.
        public var count: Int { targetTracks.count }

        /// The tastes of user `u`: genre indices and weights, heaviest first.
        public func tastes(ofUser u: Int32) -> [(genre: Int32, weight: Float)] {
            let base = Int(u) * maxTastes
            return (base..<(base + maxTastes)).compactMap { i in
                tasteGenres[i] >= 0 ? (tasteGenres[i], tasteWeights[i]) : nil
            }
        }

        /// Whether `genre` is one of user `u`'s tastes.
        public func hasTaste(user u: Int32, genre: Int32) -> Bool {
            let base = Int(u) * maxTastes
            return tasteGenres[base..<(base + maxTastes)].contains(genre)
        }

        /// The favorite artists of user `u`.
        public func favouriteArtists(ofUser u: Int32) -> ArraySlice<Int32> {
            favourites[favouriteStart[Int(u)]..<favouriteStart[Int(u) + 1]]
        }
    }

    /// Counts written to `world.json`.
    public struct Counts: Sendable, Codable, Equatable {
        /// Users.
        public var users: Int
        /// Tracks.
        public var tracks: Int
        /// Artists.
        public var artists: Int
        /// Albums.
        public var albums: Int
        /// Genres.
        public var genres: Int
        /// Listening events (rows of `plays.tsv`).
        public var plays: Int
        /// Plays under 30 s.
        public var skips: Int
        /// Distinct (user, track) pairs.
        public var distinctPairs: Int
        /// Tracks with at least one play.
        public var playedTracks: Int
        /// Tracks released in the new-release window.
        public var newReleaseTracks: Int
        /// Likes.
        public var likes: Int
        /// Follows.
        public var follows: Int
        /// Dislikes of tracks.
        public var trackDislikes: Int
        /// Dislikes of artists.
        public var artistDislikes: Int
    }

    /// What a generation or write step has done so far, for progress display.
    public struct Progress: Sendable {
        /// A step of the work.
        public enum Phase: String, Sendable {
            /// Drawing the catalog.
            case catalog
            /// Drawing users and their events (`completed` counts users).
            case users
            /// Sorting the play log by time (`completed` counts passes).
            case sorting
            /// Writing files (`completed` counts rows).
            case writing
            /// Composing and rendering the world's music (`completed` counts tracks).
            case audio
        }
        /// The current step.
        public var phase: Phase
        /// Units done in this step.
        public var completed: Int
        /// Units in this step.
        public var total: Int
    }

    /// A callback receiving progress; it may be called from several threads at once.
    public typealias ProgressHandler = @Sendable (Progress) -> Void

    /// Plays shorter than this many milliseconds are skips.
    public static let skipThresholdMs = Int32(EventRules.standard.minimumListenMs)

    /// The user-block size of parallel generation. It is part of no output: any size gives the same world.
    static let usersPerBlock = 1_024

    /// Generates the world of `config`.
    ///
    /// - Parameters:
    ///   - threads: worker threads; 0 uses every core. The result does not depend on it.
    ///   - progress: called as users are generated (possibly from several threads).
    /// - Throws: ``SyntheticWorldError/invalidConfig(_:)`` when the configuration does not validate.
    public static func generate(
        _ config: SyntheticWorldConfig, threads: Int = 0, progress: ProgressHandler? = nil
    ) throws(SyntheticWorldError) -> SyntheticWorld {
        try generate(config, threads: threads, usersPerBlock: usersPerBlock, progress: progress)
    }

    /// ``generate(_:threads:progress:)`` with a chosen block size (tests check it changes nothing).
    static func generate(
        _ config: SyntheticWorldConfig, threads: Int, usersPerBlock: Int, progress: ProgressHandler?
    ) throws(SyntheticWorldError) -> SyntheticWorld {
        try config.validate()
        let usersPerBlock = max(1, usersPerBlock)
        let threads = threads > 0 ? threads : Parallel.coreCount
        progress?(Progress(phase: .catalog, completed: 0, total: 1))
        let catalog = Catalog(config: config)
        progress?(Progress(phase: .catalog, completed: 1, total: 1))

        // Users, in blocks. Each block is stored in its own slot and read back in order.
        let maxTastes = config.tasteCountProbabilities.count
        let blockCount = (config.users + usersPerBlock - 1) / usersPerBlock
        let slots = OrderedSlots<UserBlock>(count: blockCount)
        let done = AtomicCounter()
        progress?(Progress(phase: .users, completed: 0, total: config.users))
        Parallel.forEach(blockCount, threads: threads) { b in
            let range = (b * usersPerBlock)..<min(config.users, (b + 1) * usersPerBlock)
            slots.set(b, generateUsers(range, config: config, catalog: catalog, maxTastes: maxTastes))
            let finished = done.add(range.count) + range.count
            progress?(Progress(phase: .users, completed: finished, total: config.users))
        }
        var blocks = slots.take()

        // Truth and feedback, concatenated in user order.
        var tasteGenres = [Int32](), tasteWeights = [Float](), favouriteCounts = [Int32](), favourites = [Int32]()
        var targets = [Int32](), distinct = [Int32]()
        var likes = [Like](), follows = [Follow](), dislikes = [Dislike]()
        tasteGenres.reserveCapacity(config.users * maxTastes)
        tasteWeights.reserveCapacity(config.users * maxTastes)
        targets.reserveCapacity(config.users)
        distinct.reserveCapacity(config.users)
        favouriteCounts.reserveCapacity(config.users)
        for b in blocks.indices {
            tasteGenres += blocks[b].tasteGenres
            tasteWeights += blocks[b].tasteWeights
            favouriteCounts += blocks[b].favouriteCounts
            favourites += blocks[b].favourites
            targets += blocks[b].targetTracks
            distinct += blocks[b].distinctTracks
            likes += blocks[b].likes
            follows += blocks[b].follows
            dislikes += blocks[b].dislikes
            blocks[b].tasteGenres = []; blocks[b].tasteWeights = []; blocks[b].favourites = []
            blocks[b].likes = []; blocks[b].follows = []; blocks[b].dislikes = []
        }
        var favouriteStart = [Int](repeating: 0, count: config.users + 1)
        for u in 0..<config.users { favouriteStart[u + 1] = favouriteStart[u] + Int(favouriteCounts[u]) }
        likes.sort { ($0.timestamp, $0.user, $0.track) < ($1.timestamp, $1.user, $1.track) }
        follows.sort { ($0.timestamp, $0.user, $0.artist) < ($1.timestamp, $1.user, $1.artist) }
        dislikes.sort {
            ($0.timestamp, $0.user, $0.kind == .track ? 0 : 1, $0.target)
                < ($1.timestamp, $1.user, $1.kind == .track ? 0 : 1, $1.target)
        }

        // Plays: a stable radix sort by time, so ties keep user order.
        let playLog = sortPlays(&blocks, start: config.startTimestamp,
                                span: config.endTimestamp - config.startTimestamp, progress: progress)
        let users = UserTruth(
            maxTastes: maxTastes, tasteGenres: tasteGenres, tasteWeights: tasteWeights,
            favouriteStart: favouriteStart, favourites: favourites, targetTracks: targets, distinctTracks: distinct)
        return SyntheticWorld(
            config: config, catalog: catalog, users: users, plays: playLog, likes: likes, follows: follows,
            dislikes: dislikes,
            ids: SyntheticIDFormat(users: config.users, tracks: config.tracks, artists: config.artists,
                                   albums: catalog.albumCount))
    }

    /// Sorts the blocks' plays by time offset with a least-significant-digit radix sort (stable; digits of at most 12 bits) and
    /// returns them as columns. The blocks' play arrays are released as soon as they are read.
    static func sortPlays(
        _ blocks: inout [UserBlock], start: Int64, span: Int64, progress: ProgressHandler?
    ) -> PlayLog {
        let n = blocks.reduce(0) { $0 + $1.plays.count }
        let bits = max(1, 64 - UInt64(max(0, span)).leadingZeroBitCount)
        let passes = (bits + 11) / 12
        let digitBits = (bits + passes - 1) / passes
        let radix = 1 << digitBits
        let mask = UInt32(radix - 1)
        progress?(Progress(phase: .sorting, completed: 0, total: passes))

        // Pass 0 reads the blocks in order; later passes ping-pong between two buffers.
        var src = [RawPlay]()
        var dst = [RawPlay](repeating: RawPlay(offset: 0, user: 0, track: 0, msPlayed: 0), count: n)
        for pass in 0..<passes {
            let shift = UInt32(pass * digitBits)
            var next = [Int](repeating: 0, count: radix + 1)
            if pass == 0 {
                for b in blocks.indices { for p in blocks[b].plays { next[Int((p.offset >> shift) & mask) + 1] += 1 } }
            } else {
                for p in src { next[Int((p.offset >> shift) & mask) + 1] += 1 }
            }
            for d in 0..<radix { next[d + 1] += next[d] }
            dst.withUnsafeMutableBufferPointer { out in
                if pass == 0 {
                    for b in blocks.indices {
                        for p in blocks[b].plays {
                            let d = Int((p.offset >> shift) & mask)
                            out[next[d]] = p
                            next[d] += 1
                        }
                        blocks[b].plays = []
                    }
                } else {
                    for p in src {
                        let d = Int((p.offset >> shift) & mask)
                        out[next[d]] = p
                        next[d] += 1
                    }
                }
            }
            if pass == 0 {
                src = [RawPlay](repeating: RawPlay(offset: 0, user: 0, track: 0, msPlayed: 0), count: passes > 1 ? n : 0)
            }
            swap(&src, &dst)
            progress?(Progress(phase: .sorting, completed: pass + 1, total: passes))
        }
        dst = []
        var log = PlayLog(users: [], tracks: [], timestamps: [], msPlayed: [])
        log.users = src.map(\.user)
        log.tracks = src.map(\.track)
        log.timestamps = src.map { start + Int64($0.offset) }
        log.msPlayed = src.map(\.msPlayed)
        return log
    }

    /// The counts of this world.
    public var counts: Counts {
        var skips = 0
        for ms in plays.msPlayed where ms < Self.skipThresholdMs { skips += 1 }
        var played = [Bool](repeating: false, count: catalog.trackCount)
        for t in plays.tracks { played[Int(t)] = true }
        var newTracks = 0
        for r in catalog.trackRelease where r >= catalog.newReleaseStart { newTracks += 1 }
        return Counts(
            users: users.count, tracks: catalog.trackCount, artists: catalog.artistCount, albums: catalog.albumCount,
            genres: catalog.genreCount, plays: plays.count, skips: skips,
            distinctPairs: users.distinctTracks.reduce(0) { $0 + Int($1) },
            playedTracks: played.reduce(0) { $0 + ($1 ? 1 : 0) }, newReleaseTracks: newTracks, likes: likes.count,
            follows: follows.count, trackDislikes: dislikes.reduce(0) { $0 + ($1.kind == .track ? 1 : 0) },
            artistDislikes: dislikes.reduce(0) { $0 + ($1.kind == .artist ? 1 : 0) })
    }

    // MARK: Interactions

    /// Every user id, in index order.
    public var userIDList: [String] { (0..<Int32(users.count)).map { ids.user($0) } }
    /// Every track id, in index order.
    public var trackIDList: [String] { (0..<Int32(catalog.trackCount)).map { ids.track($0) } }

    /// The play log as ``Interactions``: one interaction of weight 1 per play, with its timestamp, in time order.
    /// User and item indices are the world's indices (every user and track is in the id maps, played or not).
    ///
    /// - Parameter includingSkips: whether plays under 30 s are included.
    public func playInteractions(includingSkips: Bool = true) throws(DataError) -> Interactions {
        let userMap = try IDMap(ids: userIDList)
        let itemMap = try IDMap(ids: trackIDList)
        if includingSkips {
            return try Interactions(
                userIDs: userMap, itemIDs: itemMap, users: plays.users, items: plays.tracks,
                weights: [Float](repeating: 1, count: plays.count), timestamps: plays.timestamps)
        }
        var u = [Int32](), t = [Int32](), ts = [Int64]()
        for i in 0..<plays.count where !plays.isSkip(i) {
            u.append(plays.users[i]); t.append(plays.tracks[i]); ts.append(plays.timestamps[i])
        }
        return try Interactions(
            userIDs: userMap, itemIDs: itemMap, users: u, items: t, weights: [Float](repeating: 1, count: u.count),
            timestamps: ts)
    }

    /// The play log aggregated per (user, track) pair: weight = number of plays (skips included), timestamp = the
    /// first play. Rows are ordered by user, then track.
    public func pairInteractions() throws(DataError) -> Interactions {
        let m = CSRMatrix(
            validTriples: users.count, cols: catalog.trackCount, rowIndices: plays.users, colIndices: plays.tracks,
            values: [Float](repeating: 1, count: plays.count))
        // First play per pair: plays are in time order, so the first one seen for a pair is the earliest.
        var first = [Int64](repeating: Int64.max, count: m.nnz)
        for i in 0..<plays.count {
            let r = Int(plays.users[i])
            var lo = m.indptr[r], hi = m.indptr[r + 1]
            let c = plays.tracks[i]
            while lo < hi {
                let mid = (lo + hi) / 2
                if m.indices[mid] < c { lo = mid + 1 } else { hi = mid }
            }
            if first[lo] == Int64.max { first[lo] = plays.timestamps[i] }
        }
        var rowsOf = [Int32](repeating: 0, count: m.nnz)
        for r in 0..<users.count { for p in m.indptr[r]..<m.indptr[r + 1] { rowsOf[p] = Int32(r) } }
        return try Interactions(
            userIDs: IDMap(ids: userIDList), itemIDs: IDMap(ids: trackIDList), users: rowsOf, items: m.indices,
            weights: m.values, timestamps: first)
    }
}

/// Every user's Discover Weekly of one week, as stored in a bundle: ragged rows aligned with the bundle's users.
///
/// Layout under `/playlists/discover_weekly` (attribute `week`, `YYYY-MM-DD`): `indptr` (int64 `[users + 1]`;
/// user `u`'s tracks are `indptr[u]..<indptr[u+1]`), `items` (int32 item indices, in playlist order), `scores`
/// (float32), `sources` (uint8 indices into `source_names`), `source_names` (strings, e.g. `"cf"`).
public struct DiscoverWeeklyTable: Sendable, Equatable {
    /// The Monday the playlists are for, `YYYY-MM-DD`.
    public var week: String
    /// Row offsets, one more than the number of users.
    public var indptr: [Int]
    /// Item indices in playlist order.
    public var items: [Int32]
    /// The ranking score of each track.
    public var scores: [Float]
    /// The candidate source of each track, an index into ``sourceNames``.
    public var sources: [UInt8]
    /// The names of the candidate sources.
    public var sourceNames: [String]

    /// An empty table for `users` users.
    public init(week: String, users: Int, sourceNames: [String]) {
        self.week = week
        indptr = [Int](repeating: 0, count: users + 1)
        items = []
        scores = []
        sources = []
        self.sourceNames = sourceNames
    }

    /// A table from its arrays; ``validate(users:items:)`` checks them.
    public init(week: String, indptr: [Int], items: [Int32], scores: [Float], sources: [UInt8], sourceNames: [String]) {
        self.week = week
        self.indptr = indptr
        self.items = items
        self.scores = scores
        self.sources = sources
        self.sourceNames = sourceNames
    }

    /// The number of users (rows).
    public var userCount: Int { max(0, indptr.count - 1) }

    /// User `u`'s tracks: `(item, score, source name)` in playlist order.
    public func tracks(ofUser u: Int) -> [(item: Int32, score: Float, source: String)] {
        guard u >= 0, u < userCount else { return [] }
        return (indptr[u]..<indptr[u + 1]).map { (items[$0], scores[$0], sourceNames[Int(sources[$0])]) }
    }

    /// The most distinct source labels a table holds (its codes are one byte each).
    public static let maxSourceLabels = 256

    /// Sets the rows from per-user playlists (the arrays are rebuilt; `rows[u]` is user `u`'s).
    /// - Throws: ``PlaylistError/invalidParameter(name:value:expected:)`` when the rows hold more than
    ///   ``maxSourceLabels`` distinct source labels.
    public init(week: String, rows: [[(item: Int32, score: Float, source: String)]]) throws(PlaylistError) {
        var names: [String] = []
        var codes: [String: UInt8] = [:]
        var ptr = [0], items: [Int32] = [], scores: [Float] = [], sources: [UInt8] = []
        for row in rows {
            for t in row {
                let code: UInt8
                if let c = codes[t.source] { code = c } else {
                    guard names.count < Self.maxSourceLabels else {
                        throw .invalidParameter(
                            name: "Discover Weekly source labels", value: "more than \(Self.maxSourceLabels) (the next: '\(t.source)')",
                            expected: "at most \(Self.maxSourceLabels) distinct labels (combinations of sources) in one table")
                    }
                    code = UInt8(names.count)
                    codes[t.source] = code
                    names.append(t.source)
                }
                items.append(t.item); scores.append(t.score); sources.append(code)
            }
            ptr.append(items.count)
        }
        self.init(week: week, indptr: ptr, items: items, scores: scores, sources: sources, sourceNames: names)
    }
}

/// Every user's Daily Mixes of one day, as stored in a bundle.
///
/// Layout under `/playlists/daily_mix` (attribute `day`, `YYYY-MM-DD`): `user_indptr` (int64 `[users + 1]`: user
/// `u`'s mixes are `user_indptr[u]..<user_indptr[u+1]`), `names` (strings, one per mix), `covers` (int32 item, one
/// per mix), `mix_indptr` (int64 `[mixes + 1]`), `items` (int32), `familiar` (uint8: 1 when the user played it).
public struct DailyMixTable: Sendable, Equatable {
    /// One mix as stored.
    public struct Mix: Sendable, Equatable {
        /// The mix's name ("Artist A, Artist B and more").
        public var name: String
        /// The item shown as its cover.
        public var cover: Int32
        /// The tracks in order, with whether each is familiar (played before) or new.
        public var tracks: [(item: Int32, familiar: Bool)]

        /// A mix.
        public init(name: String, cover: Int32, tracks: [(item: Int32, familiar: Bool)]) {
            self.name = name
            self.cover = cover
            self.tracks = tracks
        }

        public static func == (a: Mix, b: Mix) -> Bool {
            a.name == b.name && a.cover == b.cover && a.tracks.map(\.item) == b.tracks.map(\.item)
                && a.tracks.map(\.familiar) == b.tracks.map(\.familiar)
        }
    }

    /// The day the mixes are for, `YYYY-MM-DD`.
    public var day: String
    /// Mix offsets per user, one more than the number of users.
    public var userIndptr: [Int]
    /// The mix names.
    public var names: [String]
    /// The cover item of each mix.
    public var covers: [Int32]
    /// Track offsets per mix, one more than the number of mixes.
    public var mixIndptr: [Int]
    /// The tracks of all mixes, in order.
    public var items: [Int32]
    /// 1 for a familiar track, 0 for a new one.
    public var familiar: [UInt8]

    /// A table from per-user lists of mixes (`rows[u]` is user `u`'s).
    public init(day: String, rows: [[Mix]]) {
        self.day = day
        userIndptr = [0]; names = []; covers = []; mixIndptr = [0]; items = []; familiar = []
        for mixes in rows {
            for mix in mixes {
                names.append(mix.name)
                covers.append(mix.cover)
                for t in mix.tracks { items.append(t.item); familiar.append(t.familiar ? 1 : 0) }
                mixIndptr.append(items.count)
            }
            userIndptr.append(names.count)
        }
    }

    /// A table from its arrays; ``validate(users:items:path:)`` checks them.
    public init(day: String, userIndptr: [Int], names: [String], covers: [Int32], mixIndptr: [Int], items: [Int32],
                familiar: [UInt8]) {
        self.day = day
        self.userIndptr = userIndptr
        self.names = names
        self.covers = covers
        self.mixIndptr = mixIndptr
        self.items = items
        self.familiar = familiar
    }

    /// The number of users (rows).
    public var userCount: Int { max(0, userIndptr.count - 1) }

    /// User `u`'s mixes.
    public func mixes(ofUser u: Int) -> [Mix] {
        guard u >= 0, u < userCount else { return [] }
        return (userIndptr[u]..<userIndptr[u + 1]).map { m in
            Mix(name: names[m], cover: covers[m],
                tracks: (mixIndptr[m]..<mixIndptr[m + 1]).map { (items[$0], familiar[$0] != 0) })
        }
    }
}

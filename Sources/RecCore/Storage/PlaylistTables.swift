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

    /// Sets the rows from per-user playlists (the arrays are rebuilt; `rows[u]` is user `u`'s).
    public init(week: String, rows: [[(item: Int32, score: Float, source: String)]]) {
        var names: [String] = []
        var codes: [String: UInt8] = [:]
        var ptr = [0], items: [Int32] = [], scores: [Float] = [], sources: [UInt8] = []
        for row in rows {
            for t in row {
                let code: UInt8
                if let c = codes[t.source] { code = c } else {
                    code = UInt8(truncatingIfNeeded: names.count)
                    codes[t.source] = code
                    names.append(t.source)
                }
                items.append(t.item); scores.append(t.score); sources.append(code)
            }
            ptr.append(items.count)
        }
        self.init(week: week, indptr: ptr, items: items, scores: scores, sources: sources, sourceNames: names)
    }

    /// Checks the arrays agree with each other and with the bundle's counts.
    public func validate(users: Int, items itemCount: Int, path: String = "<in-memory bundle>") throws(BundleError) {
        let object = PlaylistLayout.discoverWeekly
        guard indptr.count == users + 1, indptr.first == 0, indptr.last == items.count else {
            throw .shapeMismatch(path: path, object: object, reason: "indptr has \(indptr.count) entries for \(users) users")
        }
        guard scores.count == items.count, sources.count == items.count else {
            throw .shapeMismatch(path: path, object: object, reason: "items, scores and sources differ in length")
        }
        guard zip(indptr, indptr.dropFirst()).allSatisfy({ $0 <= $1 }) else {
            throw .invalidData(path: path, object: object, reason: "indptr decreases")
        }
        if let bad = items.first(where: { $0 < 0 || Int($0) >= itemCount }) {
            throw .invalidData(path: path, object: object, reason: "item \(bad) is outside 0..<\(itemCount)")
        }
        if let bad = sources.first(where: { Int($0) >= sourceNames.count }) {
            throw .invalidData(path: path, object: object, reason: "source code \(bad) has no name")
        }
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

    /// Checks the arrays agree with each other and with the bundle's counts.
    public func validate(users: Int, items itemCount: Int, path: String = "<in-memory bundle>") throws(BundleError) {
        let object = PlaylistLayout.dailyMix
        let mixes = names.count
        guard userIndptr.count == users + 1, userIndptr.first == 0, userIndptr.last == mixes else {
            throw .shapeMismatch(path: path, object: object, reason: "user_indptr has \(userIndptr.count) entries for \(users) users and \(mixes) mixes")
        }
        guard covers.count == mixes, mixIndptr.count == mixes + 1, mixIndptr.first == 0,
              mixIndptr.last == items.count, familiar.count == items.count
        else { throw .shapeMismatch(path: path, object: object, reason: "mix arrays differ in length") }
        guard zip(userIndptr, userIndptr.dropFirst()).allSatisfy({ $0 <= $1 }),
              zip(mixIndptr, mixIndptr.dropFirst()).allSatisfy({ $0 <= $1 })
        else { throw .invalidData(path: path, object: object, reason: "an offset array decreases") }
        if let bad = (items + covers).first(where: { $0 < 0 || Int($0) >= itemCount }) {
            throw .invalidData(path: path, object: object, reason: "item \(bad) is outside 0..<\(itemCount)")
        }
    }
}

/// Object paths of the playlist groups.
enum PlaylistLayout {
    static let discoverWeekly = "/playlists/discover_weekly"
    static let dailyMix = "/playlists/daily_mix"
}

extension HDF5File {
    func write(_ t: DiscoverWeeklyTable) throws(BundleError) {
        let g = PlaylistLayout.discoverWeekly
        try createGroup(g)
        try setAttribute("week", string: t.week, on: g)
        try write(t.indptr.map { Int64($0) }, shape: [t.indptr.count], at: "\(g)/indptr")
        try write(t.items, shape: [t.items.count], at: "\(g)/items")
        try write(t.scores, shape: [t.scores.count], at: "\(g)/scores")
        try write(t.sources, shape: [t.sources.count], at: "\(g)/sources")
        try write(strings: t.sourceNames, at: "\(g)/source_names")
    }

    func readDiscoverWeekly() throws(BundleError) -> DiscoverWeeklyTable? {
        let g = PlaylistLayout.discoverWeekly
        guard exists(g) else { return nil }
        return DiscoverWeeklyTable(
            week: try stringAttribute("week", on: g),
            indptr: try read(Int64.self, at: "\(g)/indptr").values.map { Int($0) },
            items: try read(Int32.self, at: "\(g)/items").values,
            scores: try read(Float.self, at: "\(g)/scores").values,
            sources: try read(UInt8.self, at: "\(g)/sources").values,
            sourceNames: try readStrings(at: "\(g)/source_names").values)
    }

    func write(_ t: DailyMixTable) throws(BundleError) {
        let g = PlaylistLayout.dailyMix
        try createGroup(g)
        try setAttribute("day", string: t.day, on: g)
        try write(t.userIndptr.map { Int64($0) }, shape: [t.userIndptr.count], at: "\(g)/user_indptr")
        try write(strings: t.names, at: "\(g)/names")
        try write(t.covers, shape: [t.covers.count], at: "\(g)/covers")
        try write(t.mixIndptr.map { Int64($0) }, shape: [t.mixIndptr.count], at: "\(g)/mix_indptr")
        try write(t.items, shape: [t.items.count], at: "\(g)/items")
        try write(t.familiar, shape: [t.familiar.count], at: "\(g)/familiar")
    }

    func readDailyMix() throws(BundleError) -> DailyMixTable? {
        let g = PlaylistLayout.dailyMix
        guard exists(g) else { return nil }
        return DailyMixTable(
            day: try stringAttribute("day", on: g),
            userIndptr: try read(Int64.self, at: "\(g)/user_indptr").values.map { Int($0) },
            names: try readStrings(at: "\(g)/names").values,
            covers: try read(Int32.self, at: "\(g)/covers").values,
            mixIndptr: try read(Int64.self, at: "\(g)/mix_indptr").values.map { Int($0) },
            items: try read(Int32.self, at: "\(g)/items").values,
            familiar: try read(UInt8.self, at: "\(g)/familiar").values)
    }
}

// MARK: Standalone files

extension DiscoverWeeklyTable {
    /// Writes the table alone into an HDF5 file (same layout as in a bundle), atomically. The weekly job keeps its
    /// finished stages in such files so it can resume.
    public func write(to path: String) throws(BundleError) {
        try PlaylistTableFile.write(to: path) { (f: borrowing HDF5File) throws(BundleError) in try f.write(self) }
    }

    /// Reads a table written by ``write(to:)``.
    public init(contentsOf path: String) throws(BundleError) {
        var file = try BundleReader.open(path)
        guard let table = try file.readDiscoverWeekly() else {
            throw .missingObject(path: path, object: PlaylistLayout.discoverWeekly)
        }
        try file.close()
        self = table
    }
}

extension DailyMixTable {
    /// Writes the table alone into an HDF5 file (same layout as in a bundle), atomically.
    public func write(to path: String) throws(BundleError) {
        try PlaylistTableFile.write(to: path) { (f: borrowing HDF5File) throws(BundleError) in try f.write(self) }
    }

    /// Reads a table written by ``write(to:)``.
    public init(contentsOf path: String) throws(BundleError) {
        var file = try BundleReader.open(path)
        guard let table = try file.readDailyMix() else { throw .missingObject(path: path, object: PlaylistLayout.dailyMix) }
        try file.close()
        self = table
    }
}

enum PlaylistTableFile {
    static func write(to path: String, _ body: (borrowing HDF5File) throws(BundleError) -> Void) throws(BundleError) {
        try AtomicFile.checkDirectory(for: path)
        let temporary = AtomicFile.temporaryPath(for: path)
        do throws(BundleError) {
            var file = try HDF5File.create(at: temporary)
            try file.setAttribute("encore_version", string: Encore.version, on: "/")
            try body(file)
            try file.close()
            try AtomicFile.sync(file: temporary, reportingAs: path)
            try AtomicFile.rename(temporary, to: path)
        } catch {
            AtomicFile.removeIfPresent(temporary)
            throw error
        }
    }
}

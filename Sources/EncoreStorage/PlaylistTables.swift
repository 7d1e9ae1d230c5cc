import EncoreCore
import EncorePlaylists

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
        try AtomicFile.checkDirectory(for: path, operation: "write the bundle", as: BundleError.self)
        let temporary = AtomicFile.temporaryPath(for: path)
        do throws(BundleError) {
            var file = try HDF5File.create(at: temporary)
            try file.setAttribute("encore_version", string: Encore.version, on: "/")
            try body(file)
            try file.close()
            try AtomicFile.sync(file: temporary, reportingAs: path, as: BundleError.self)
            try AtomicFile.rename(temporary, to: path, as: BundleError.self)
        } catch {
            AtomicFile.removeIfPresent(temporary)
            throw error
        }
    }
}

extension DiscoverWeeklyTable {
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

extension DailyMixTable {
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

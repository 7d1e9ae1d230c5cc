import EncoreCore
import EncoreData
import EncoreFactorization
import EncorePlaylists

/// One method's result in the Discover Weekly offline test.
public struct WeeklyHitRate: Sendable, Codable, Equatable {
    /// The method (`discover-weekly`, `popularity`, `als-top`).
    public var method: String
    /// Total hits over `users x listLength`: the share of the list's places holding a track the user played for the
    /// first time in the test week (a short list counts its empty places as misses).
    public var share: Double
    /// The share of users with at least one hit.
    public var usersWithHit: Double
    /// The mean list length.
    public var meanLength: Double
    /// The total number of hits.
    public var hits: Int
}

/// The offline Discover Weekly test: hit rates of Discover Weekly and of two baselines on the same users.
public struct WeeklyHitRates: Sendable, Codable, Equatable {
    /// The test week (a Monday).
    public var week: String
    /// The list length (Discover Weekly's size).
    public var listLength: Int
    /// Users evaluated: those with listened plays before the week and a first play in it.
    public var users: Int
    /// Discover Weekly.
    public var discoverWeekly: WeeklyHitRate
    /// The most popular tracks (distinct listeners before the week) the user never played.
    public var popularity: WeeklyHitRate
    /// The model's top tracks by `x·yᵢ` the user never played (plain ALS, no rules, no diversity).
    public var alsTop: WeeklyHitRate
}

/// How well Daily Mix clusters follow the users' true tastes (a synthetic world's ground truth).
///
/// A mix's *label* is the true label (genre) most common among its familiar tracks.
public struct TasteDominance: Sendable, Codable, Equatable {
    /// The number of mixes scored.
    public var mixes: Int
    /// The number of users with at least one mix.
    public var users: Int
    /// The mean over mixes of the share of the mix's familiar tracks carrying the mix's label.
    public var meanPurity: Double
    /// The share of mixes whose label is one of the user's tastes and holds at least `threshold` of its familiar
    /// tracks.
    public var dominatedShare: Double
    /// The threshold of ``dominatedShare``.
    public var threshold: Double
    /// The mean over mixes of the share of all the mix's tracks (familiar and new) carrying the mix's label.
    public var meanTrackShare: Double
    /// The mean over mixes with new tracks of the share of those new tracks carrying the mix's label.
    public var meanNewTrackShare: Double
    /// The mean over users with a known taste of the share of their first mix's tracks (the mix of the largest share
    /// of their listening) from their heaviest true taste.
    public var firstMixTopTasteShare: Double
    /// The mean number of mixes of the users with each number of tastes.
    public var mixesByTasteCount: [Breadth]

    /// Users with `tastes` tastes and their mean number of mixes.
    public struct Breadth: Sendable, Codable, Equatable {
        /// The number of tastes.
        public var tastes: Int
        /// Users with that many tastes (and at least one mix).
        public var users: Int
        /// Their mean number of mixes.
        public var meanMixes: Double
    }
}

/// Offline evaluation of the playlists, for the tests and the weekly job's report.
public enum PlaylistEvaluation {
    /// Hit rates of Discover Weekly, popularity and plain ALS top-`size` lists against the first plays of a test week.
    ///
    /// Every method leaves out the tracks the user played or skipped before the week (``UserHistory/items``); a hit is
    /// a track in the user's row of `test`.
    ///
    /// - Parameters:
    ///   - builder: Discover Weekly for the test week, over a model trained before it.
    ///   - histories: the users' histories before the week.
    ///   - test: users x items, the (user, track) pairs first played in the test week.
    ///   - users: the users to evaluate (default: every user with a test pair and a listened play before the week).
    ///   - threads: worker threads; 0 uses every core.
    /// - Throws: ``PlaylistError/shapeMismatch(_:)`` when `test` does not match the histories, or as the builder.
    public static func discoverWeeklyHitRates(
        builder: DiscoverWeekly, histories: ListeningHistories, test: CSRMatrix, users: [Int32]? = nil, threads: Int = 0
    ) throws(PlaylistError) -> WeeklyHitRates {
        guard test.rows == histories.userCount, test.cols == histories.itemCount else {
            throw .shapeMismatch("test is \(test.rows) x \(test.cols), histories \(histories.userCount) x \(histories.itemCount)")
        }
        let list = users ?? (0..<Int32(histories.userCount)).filter { u in
            test.count(ofRow: Int(u)) > 0 && histories.plays(of: u).contains { $0 > 0 }
        }
        let size = builder.configuration.size
        let popularity = PopularTracks(histories: histories).ranking
        let model = builder.environment.model
        let lists = try PlaylistBatch.run(list, threads: threads, progress: nil) { (u: Int32) throws(PlaylistError) -> [[Int32]] in
            let h = try histories.history(of: u)
            let dw = try builder.build(for: h).items
            let b = try baselines(h, user: u, popularity: popularity, model: model, size: size)
            return [dw, b.popularity, b.als]
        }
        return WeeklyHitRates(
            week: builder.week.description, listLength: size, users: list.count,
            discoverWeekly: hitRate(method: "discover-weekly", lists: lists.map { $0[0] }, users: list, test: test, size: size),
            popularity: hitRate(method: "popularity", lists: lists.map { $0[1] }, users: list, test: test, size: size),
            alsTop: hitRate(method: "als-top", lists: lists.map { $0[2] }, users: list, test: test, size: size))
    }

    /// The baselines' lists of one user: the most popular tracks and the model's top tracks the user never played.
    static func baselines(
        _ h: UserHistory, user u: Int32, popularity: [Int32], model: ImplicitALS?, size: Int
    ) throws(PlaylistError) -> (popularity: [Int32], als: [Int32]) {
        var pop: [Int32] = []
        for i in popularity where !h.hasPlayed(i) {
            pop.append(i)
            if pop.count >= size { break }
        }
        var als: [Int32] = []
        if let model, Int(u) < model.userCount {
            do throws(FactorizationError) {
                als = try model.recommend(vector: model.userFactors.row(Int(u)), k: size, exclude: Set(h.items)).items
            } catch { throw .model(error) }
        }
        return (pop, als)
    }

    /// The baselines' lists of every user of a test set.
    static func baselineLists(
        set: WeeklyTestSet, model: ImplicitALS, size: Int, threads: Int
    ) throws(PlaylistError) -> [(popularity: [Int32], als: [Int32])] {
        let popularity = PopularTracks(histories: set.histories).ranking
        return try PlaylistBatch.run(set.users, threads: threads, progress: nil) {
            (u: Int32) throws(PlaylistError) -> (popularity: [Int32], als: [Int32]) in
            try baselines(try set.histories.history(of: u), user: u, popularity: popularity, model: model, size: size)
        }
    }

    /// The hit rate of one method's lists (`lists[k]` is `users[k]`'s): hits over `users x size`, the share of users
    /// with a hit, the mean length.
    static func hitRate(method: String, lists: [[Int32]], users: [Int32], test: CSRMatrix, size: Int) -> WeeklyHitRate {
        var hits = 0, withHit = 0, length = 0
        for (k, u) in users.enumerated() {
            let row = test.columns(ofRow: Int(u))
            let h = lists[k].reduce(0) { $0 + (UserHistory.search(row, $1) != nil ? 1 : 0) }
            hits += h
            if h > 0 { withHit += 1 }
            length += lists[k].count
        }
        let n = Double(max(1, users.count))
        return WeeklyHitRate(
            method: method, share: Double(hits) / (n * Double(size)), usersWithHit: Double(withHit) / n,
            meanLength: Double(length) / n, hits: hits)
    }

    /// The data of the temporal-split test: the histories as of the test week's Monday, the training matrix (every
    /// listened play before it, as counts), the test matrix (the pairs first listened to in the week and never
    /// touched before) and the users to evaluate.
    public struct WeeklyTestSet: Sendable {
        /// The test week.
        public var week: PlaylistDate
        /// The histories as of the week's Monday.
        public var histories: ListeningHistories
        /// Users x items: listened plays before the week.
        public var train: CSRMatrix
        /// Users x items: pairs first listened to in the week, never played or skipped before it.
        public var test: CSRMatrix
        /// The users with a listened play before the week and a test pair (a seeded sample when asked), ascending.
        public var users: [Int32]
    }

    /// Prepares the temporal-split test of a play log: train on the weeks before `testWeek`, test on the pairs first
    /// played (listened) in it.
    ///
    /// - Parameters:
    ///   - plays: the play log with timestamps (see `weighting`).
    ///   - testWeek: the test week; default: the last whole week of the log.
    ///   - sampleUsers: evaluate a seeded sample of this many users (all when `nil`).
    /// - Throws: ``PlaylistError/invalidParameter(name:value:expected:)`` for a log without timestamps or a week
    ///   without training data.
    public static func weeklyTestSet(
        plays: Interactions, weighting: PlayWeighting = .counts, feedback: FeedbackLog = FeedbackLog(),
        testWeek: PlaylistDate? = nil, sampleUsers: Int? = nil, sampleSeed: UInt64 = 0, threads: Int = 0
    ) throws(PlaylistError) -> WeeklyTestSet {
        guard plays.hasTimestamps, let latest = plays.timestamps.max(), let earliest = plays.timestamps.min() else {
            throw .invalidParameter(name: "plays", value: "a log without timestamps", expected: "timestamped plays")
        }
        let week = testWeek ?? PlaylistDate.mondayAfter(latest).adding(days: -7)
        guard week.isMonday else { throw .invalidDate(week.description, reason: "a week is named by its Monday") }
        guard earliest < week.timestamp else {
            throw .invalidParameter(name: "testWeek", value: week.description, expected: "a week after the first play")
        }
        let cutoff = week.timestamp, end = cutoff + 7 * Timestamp.secondsPerDay
        let histories = try ListeningHistories.build(
            plays: plays, weighting: weighting, feedback: feedback, asOf: cutoff, threads: threads)
        // Listened rows only.
        var listened: [Int] = []
        for r in 0..<plays.count {
            let w = plays.weights[r]
            switch weighting {
            case .counts: if w > 0 { listened.append(r) }
            case .milliseconds(let threshold): if w >= threshold { listened.append(r) }
            }
        }
        var log = plays.subset(listened)
        if case .milliseconds = weighting { log.weights = [Float](repeating: 1, count: log.count) }
        let split: TrainTestSplit
        do { split = try TrainTestSplit.temporal(log, cutoff: cutoff, end: end) } catch {
            throw .invalidParameter(name: "plays", value: "\(error)", expected: "a log the temporal split accepts")
        }
        // Test pairs not touched (skipped) before the week.
        let raw = split.test.matrix()
        var rows: [Int32] = [], cols: [Int32] = []
        for u in 0..<raw.rows {
            let touched = histories.items(of: Int32(u))
            for i in raw.columns(ofRow: u) where UserHistory.search(touched, i) == nil {
                rows.append(Int32(u)); cols.append(i)
            }
        }
        let test: CSRMatrix
        do {
            test = try CSRMatrix(rows: raw.rows, cols: raw.cols, rowIndices: rows, colIndices: cols,
                                 values: [Float](repeating: 1, count: rows.count))
        } catch { throw .shapeMismatch("test matrix: \(error)") }
        var users = (0..<Int32(histories.userCount)).filter { u in
            test.count(ofRow: Int(u)) > 0 && histories.plays(of: u).contains { $0 > 0 }
        }
        if let sampleUsers, sampleUsers < users.count {
            var rng = SplitMix64(seed: sampleSeed)
            for i in 0..<sampleUsers { users.swapAt(i, i + TrainTestSplit.uniformIndex(users.count - i, &rng)) }
            users = users.prefix(sampleUsers).sorted()
        }
        return WeeklyTestSet(week: week, histories: histories, train: split.train.matrix(), test: test, users: users)
    }

    /// The whole temporal-split test from a play log (``weeklyTestSet(plays:weighting:feedback:testWeek:sampleUsers:sampleSeed:threads:)``):
    ///
    /// 1. ALS is fitted on the training matrix weighted by `confidence`;
    /// 2. Discover Weekly for the week is built with `configure`'s configuration (default:
    ///    ``DiscoverWeekly/Configuration/standard(histories:model:catalog:itemIndex:userIndex:)`` with exact scans) over the
    ///    collaborative space of the model (items with training plays only);
    /// 3. ``discoverWeeklyHitRates(builder:histories:test:users:threads:)`` on the test set's users.
    ///
    /// - Returns: the hit rates and the fitted model.
    /// - Throws: as ``weeklyTestSet(plays:weighting:feedback:testWeek:sampleUsers:sampleSeed:threads:)``,
    ///   ``PlaylistError/model(_:)`` when the fit fails, or as the builder.
    public static func temporalSplit(
        plays: Interactions, weighting: PlayWeighting = .counts, feedback: FeedbackLog = FeedbackLog(),
        catalog: TrackCatalog, testWeek: PlaylistDate? = nil, parameters: ALSParameters,
        confidence: ConfidenceWeighting = .bm25Default, sampleUsers: Int? = nil, sampleSeed: UInt64 = 0,
        threads: Int = 0,
        configure: (ListeningHistories, PlaylistEnvironment) throws(PlaylistError) -> DiscoverWeekly.Configuration = {
            (h: ListeningHistories, e: PlaylistEnvironment) throws(PlaylistError) -> DiscoverWeekly.Configuration in
            guard let m = e.model else { throw .invalidParameter(name: "model", value: "nil", expected: "a model") }
            return try .standard(histories: h, model: m, catalog: e.catalog)
        }
    ) throws(PlaylistError) -> (rates: WeeklyHitRates, model: ImplicitALS) {
        let set = try weeklyTestSet(
            plays: plays, weighting: weighting, feedback: feedback, testWeek: testWeek, sampleUsers: sampleUsers,
            sampleSeed: sampleSeed, threads: threads)
        var model = ImplicitALS(parameters: parameters)
        do { try model.fit(confidence.apply(toUserItems: set.train)) } catch { throw .model(error) }
        let space = try ItemSpace.collaborative(model, userItems: set.train)
        let environment = try PlaylistEnvironment(catalog: catalog, space: space, model: model)
        let builder = try DiscoverWeekly(
            environment: environment, configuration: configure(set.histories, environment), week: set.week)
        let rates = try discoverWeeklyHitRates(
            builder: builder, histories: set.histories, test: set.test, users: set.users, threads: threads)
        return (rates, model)
    }

    /// How well each Daily Mix is dominated by one of its user's tastes.
    ///
    /// - Parameters:
    ///   - mixes: users' mixes (with their user indices).
    ///   - itemLabel: the true label of each item (a genre), negative when unknown.
    ///   - userTastes: the true tastes (labels) of a user, heaviest first.
    ///   - threshold: the share of a mix's familiar tracks its label must hold to dominate it.
    public static func tasteDominance(
        mixes: [DailyMix.Mixes], itemLabel: [Int32], userTastes: (Int32) -> [Int32], threshold: Double = 0.5
    ) -> TasteDominance {
        tasteDominance(
            familiarTracks: mixes.map { m in (m.user, m.mixes.map { Array(zip($0.items, $0.isFamiliar)) }) },
            itemLabel: itemLabel, userTastes: userTastes, threshold: threshold)
    }

    /// ``tasteDominance(mixes:itemLabel:userTastes:threshold:)`` of the mixes stored in a bundle's table (row `u` is
    /// user `u`) against a ``TasteTruth``.
    public static func tasteDominance(table: DailyMixTable, truth: TasteTruth, threshold: Double = 0.5) -> TasteDominance {
        tasteDominance(
            familiarTracks: (0..<table.userCount).map { u in (Int32(u), table.mixes(ofUser: u).map(\.tracks)) },
            itemLabel: truth.itemLabel,
            userTastes: { u in Int(u) < truth.userTastes.count ? truth.userTastes[Int(u)] : [] }, threshold: threshold)
    }

    /// The measure itself, over each user's mixes as `(item, familiar)` lists, the mixes of a user by decreasing
    /// share of the listening.
    public static func tasteDominance(
        familiarTracks users: [(user: Int32?, mixes: [[(item: Int32, familiar: Bool)]])], itemLabel: [Int32],
        userTastes: (Int32) -> [Int32], threshold: Double = 0.5
    ) -> TasteDominance {
        func label(_ i: Int32) -> Int32 { i >= 0 && Int(i) < itemLabel.count ? itemLabel[Int(i)] : -1 }
        var count = 0, dominated = 0, userCount = 0, withNew = 0, firstUsers = 0
        var purity = 0.0, trackShare = 0.0, newShare = 0.0, firstShare = 0.0
        var byTastes: [Int: (users: Int, mixes: Int)] = [:]
        for (user, mixes) in users where !mixes.isEmpty {
            userCount += 1
            let tastes = user.map(userTastes) ?? []
            byTastes[tastes.count, default: (0, 0)].users += 1
            byTastes[tastes.count, default: (0, 0)].mixes += mixes.count
            if let top = tastes.first, let first = mixes.first, !first.isEmpty {
                firstShare += Double(first.filter { label($0.item) == top }.count) / Double(first.count)
                firstUsers += 1
            }
            for mix in mixes {
                var counts: [Int32: Int] = [:]
                var total = 0
                for t in mix where t.familiar && label(t.item) >= 0 {
                    counts[label(t.item), default: 0] += 1
                    total += 1
                }
                guard total > 0 else { continue }
                let top = counts.max { $0.value != $1.value ? $0.value < $1.value : $0.key > $1.key }!
                let share = Double(top.value) / Double(total)
                count += 1
                purity += share
                if share >= threshold && tastes.contains(top.key) { dominated += 1 }
                trackShare += Double(mix.filter { label($0.item) == top.key }.count) / Double(mix.count)
                let fresh = mix.filter { !$0.familiar }
                if !fresh.isEmpty {
                    newShare += Double(fresh.filter { label($0.item) == top.key }.count) / Double(fresh.count)
                    withNew += 1
                }
            }
        }
        return TasteDominance(
            mixes: count, users: userCount, meanPurity: count > 0 ? purity / Double(count) : 0,
            dominatedShare: count > 0 ? Double(dominated) / Double(count) : 0, threshold: threshold,
            meanTrackShare: count > 0 ? trackShare / Double(count) : 0,
            meanNewTrackShare: withNew > 0 ? newShare / Double(withNew) : 0,
            firstMixTopTasteShare: firstUsers > 0 ? firstShare / Double(firstUsers) : 0,
            mixesByTasteCount: byTastes.keys.sorted().map { t in
                TasteDominance.Breadth(tastes: t, users: byTastes[t]!.users,
                                       meanMixes: Double(byTastes[t]!.mixes) / Double(byTastes[t]!.users))
            })
    }
}

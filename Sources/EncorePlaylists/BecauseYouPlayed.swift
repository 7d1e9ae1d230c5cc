import EncoreCore
import EncoreFactorization
import EncoreIndex

/// "Because you played X": for a track X the user played, tracks similar to X that the user has not played,
/// re-ranked by the user's vector, each with why: its cosine to X and X's contribution to its score.
///
/// A row costs one neighbor query in the item space (``ItemSpace/neighbors(of:k:filter:)``, through its index) and
/// a re-rank of ``Configuration/poolSize`` tracks by `x·yᵢ`, which is what the server recomputes after each play. The
/// explanation follows Hu, Koren and Volinsky (2008, section 5), as ``ImplicitALS/explain(item:items:values:)`` does:
/// with `W = (YᵀCY + λI)⁻¹` built from the user's history, history item `j` contributes `cⱼ · yᵢᵀ W yⱼ` to the
/// score of `i`. The row factorises `W` once and solves once for X (`v = W y_X`), so each track's contribution of X
/// is one dot product `c_X · yᵢ · v`; its share is that over the track's total explained score `yᵢ · W Σ cⱼ yⱼ`.
///
/// A seed without a vector in the item space (a track with no CF history: a new release, a track the model never
/// saw played) takes its neighbors from the content spaces (``contentSpaces``: audio, text, ...) by cosine instead:
/// from the first space in which the seed has a vector, then the next ones while the row is short. Those neighbors
/// keep their content cosine as score (a new neighbor has no CF vector to rank it by) and carry the space's name
/// (``Item/space``, ``Row/space``); they have no explanation.
public struct BecauseYouPlayed: Sendable {
    /// How rows are made.
    public struct Configuration: Sendable, Equatable {
        /// Tracks per row.
        public var count: Int
        /// Neighbors of X asked from the item space, re-ranked by the user's vector.
        public var poolSize: Int
        /// New-track rules and caps per row.
        public var rules: PlaylistRules
        /// Whether to compute X's contributions (needs the model).
        public var explain: Bool

        /// A configuration.
        public init(count: Int = 10, poolSize: Int = 50, rules: PlaylistRules = PlaylistRules(), explain: Bool = true) {
            self.count = count
            self.poolSize = poolSize
            self.rules = rules
            self.explain = explain
        }

        /// Checks every value.
        /// - Throws: ``PlaylistError/invalidParameter(name:value:expected:)``.
        public func validate() throws(PlaylistError) {
            guard count >= 1 else { throw .invalidParameter(name: "count", value: "\(count)", expected: ">= 1") }
            guard poolSize >= count else {
                throw .invalidParameter(name: "poolSize", value: "\(poolSize)", expected: ">= count (\(count))")
            }
            try rules.validate()
        }
    }

    /// One track of a row.
    public struct Item: Sendable, Equatable {
        /// The track.
        public var item: Int32
        /// Its cosine to X in the item space.
        public var similarity: Float
        /// The model's score `x·yᵢ` for the user (the re-ranking key; the similarity without a user vector).
        public var score: Float
        /// X's contribution `c_X · yᵢᵀ W y_X` to the track's explained score, or `nil` (no model, explanations off,
        /// or X not in the history).
        public var seedContribution: Float?
        /// X's contribution over the track's explained score `yᵢ · W Σ cⱼ yⱼ`, or `nil`.
        public var seedShare: Float?
        /// The space whose cosine found the track (`cf`, `audio`, `text`, ...).
        public var space: String
    }

    /// One row.
    public struct Row: Sendable, Equatable {
        /// The track X.
        public var seed: Int32
        /// The tracks, best first.
        public var items: [Item]
        /// The space the neighbors came from: the item space's name, or the first content space used for a seed
        /// without a vector in it (empty when no space has a vector for the seed).
        public var space: String
    }

    /// The catalog, item space and model.
    public let environment: PlaylistEnvironment
    /// The configuration.
    public let configuration: Configuration
    /// The reference time (tracks released later are left out).
    public let referenceTime: Int64
    /// Items nobody may be suggested at the reference time.
    public let unavailable: IDBitset
    /// The spaces asked, in order, for a seed without a vector in the item space (audio, then text, ...).
    public let contentSpaces: [ItemSpace]

    /// A builder for rows at `referenceTime` (the server makes one a day).
    ///
    /// - Parameters:
    ///   - contentSpaces: spaces for seeds without a CF vector, in the order they are asked (audio, text).
    /// - Throws: as ``Configuration/validate()``; ``PlaylistError/shapeMismatch(_:)`` when a content space does not
    ///   have the catalog's items.
    public init(
        environment: PlaylistEnvironment, configuration: Configuration = Configuration(), referenceTime: Int64,
        contentSpaces: [ItemSpace] = []
    ) throws(PlaylistError) {
        try configuration.validate()
        for space in contentSpaces where space.itemCount != environment.catalog.itemCount {
            throw .shapeMismatch(
                "the content space '\(space.name)' has \(space.itemCount) items, the catalog \(environment.catalog.itemCount)")
        }
        self.environment = environment
        self.configuration = configuration
        self.referenceTime = referenceTime
        self.unavailable = configuration.rules.unavailableItems(in: environment.catalog, at: referenceTime)
        self.contentSpaces = contentSpaces
    }

    /// The row for track `seed`.
    ///
    /// - Parameters:
    ///   - history: the user's history (the played tracks are left out of the row).
    ///   - seed: the track X.
    ///   - userVector: the user's vector; by default the model's row or a fold-in.
    ///   - confidence: the user's history as the model was trained on it (items and weighted values, e.g.
    ///     ``ImplicitALS/history(of:in:)`` of the weighted training matrix), for exact explanations; by default the
    ///     history's listened plays.
    /// - Throws: ``PlaylistError/unknownIndex(_:)`` for a seed outside the catalog, ``PlaylistError/index(_:)``
    ///   or ``PlaylistError/model(_:)`` when the index or the model fails.
    public func row(
        for history: UserHistory, seed: Int32, userVector: [Float]? = nil,
        confidence: (items: [Int32], values: [Float])? = nil
    ) throws(PlaylistError) -> Row {
        try rows(for: history, seeds: [seed], userVector: userVector, confidence: confidence)[0]
    }

    /// The rows for several tracks, sharing one factorisation of the explanation.
    /// - Throws: as ``row(for:seed:userVector:confidence:)``.
    public func rows(
        for history: UserHistory, seeds: [Int32], userVector: [Float]? = nil,
        confidence: (items: [Int32], values: [Float])? = nil
    ) throws(PlaylistError) -> [Row] {
        let catalog = environment.catalog, space = environment.space
        for s in seeds where s < 0 || Int(s) >= catalog.itemCount {
            throw .unknownIndex("item \(s) of \(catalog.itemCount)")
        }
        var vector = userVector
        if vector == nil { vector = try environment.userVector(for: history) }
        var explainer: SeedExplainer? = nil
        if configuration.explain, let model = environment.model {
            let (items, values) = confidence ?? history.playedItemsAndCounts
            if !items.isEmpty { explainer = try SeedExplainer(model: model, items: items, values: values) }
        }
        let unavailable = self.unavailable
        let h = history
        // A predicate instead of a per-user bitset: no O(catalog) work per row.
        let filter = SearchFilter.predicate { i in
            !unavailable.contains(i) && !h.hasPlayed(i) && !h.dislikes(i, catalog: catalog)
        }
        var rows: [Row] = []
        for seed in seeds {
            if !space.hasVector.contains(seed) {
                rows.append(try contentRow(seed: seed, filter: filter))
                continue
            }
            let near = try space.neighbors(ofItem: seed, k: configuration.poolSize, filter: filter)
            var items = near.map { n -> Item in
                Item(item: n.item, similarity: n.similarity,
                     score: vector.map { environment.score(n.item, vector: $0) } ?? n.similarity,
                     seedContribution: nil, seedShare: nil, space: space.name)
            }
            if vector != nil, environment.model == nil {
                for i in items.indices { items[i].score = items[i].similarity }
            }
            items.sort { $0.score != $1.score ? $0.score > $1.score : $0.item < $1.item }
            var caps = CapCounter(rules: configuration.rules)
            var kept: [Item] = []
            let solved = explainer?.solve(seed)
            for var it in items where kept.count < configuration.count && caps.admits(it.item, catalog: catalog) {
                caps.add(it.item, catalog: catalog)
                if let e = explainer, let solved {
                    let (contribution, share) = e.contribution(solved, to: it.item)
                    it.seedContribution = contribution
                    it.seedShare = share
                }
                kept.append(it)
            }
            rows.append(Row(seed: seed, items: kept, space: space.name))
        }
        return rows
    }

    /// The row of a seed without a vector in the item space: its nearest tracks by cosine in the first content
    /// space that has a vector for it, then in the next ones while the row is short, under the caps.
    func contentRow(seed: Int32, filter: SearchFilter) throws(PlaylistError) -> Row {
        let catalog = environment.catalog
        var caps = CapCounter(rules: configuration.rules)
        var kept: [Item] = []
        var taken = Set<Int32>()
        var first = ""
        for space in contentSpaces where space.hasVector.contains(seed) && kept.count < configuration.count {
            if first.isEmpty { first = space.name }
            let near = try space.neighbors(ofItem: seed, k: configuration.poolSize, filter: filter)
            for n in near where kept.count < configuration.count && !taken.contains(n.item) && caps.admits(n.item, catalog: catalog) {
                caps.add(n.item, catalog: catalog)
                taken.insert(n.item)
                kept.append(Item(item: n.item, similarity: n.similarity, score: n.similarity, seedContribution: nil,
                                 seedShare: nil, space: space.name))
            }
        }
        return Row(seed: seed, items: kept, space: first)
    }
}

/// The factorised `A = YᵀCY + λI` of one history, for the contribution of one history item to other items' scores.
struct SeedExplainer {
    let model: ImplicitALS
    let f: Int
    /// The upper Cholesky factor of `A`.
    let factor: [Float]
    /// `x = A⁻¹ Σ cⱼ yⱼ`, the exactly solved user vector.
    let x: [Float]
    /// The history's items and confidences (alpha applied).
    let items: [Int32]
    let confidences: [Float]

    init(model: ImplicitALS, items: [Int32], values: [Float]) throws(PlaylistError) {
        let cols: [Int32], vals: [Float]
        do { (cols, vals) = try model.history(items: items, values: values) } catch { throw .model(error) }
        let f = model.parameters.factors
        let gram = model.regularizedItemGram()
        let scratch = ALSSolvers.Scratch(factors: f)
        var b = [Float](repeating: 0, count: f)
        model.itemFactors.storage.withUnsafeBufferPointer { ys in
            gram.storage.withUnsafeBufferPointer { g in
                cols.withUnsafeBufferPointer { c in
                    vals.withUnsafeBufferPointer { v in
                        b.withUnsafeMutableBufferPointer { bb in
                            ALSSolvers.normalEquations(
                                a: scratch.a, b: bb.baseAddress!, f: f, gram: g.baseAddress!, y: ys.baseAddress!,
                                cols: c.baseAddress!, vals: v.baseAddress!, count: cols.count,
                                gathered: &scratch.gathered)
                        }
                    }
                }
            }
        }
        var a = Array(UnsafeBufferPointer(start: scratch.a, count: f * f))
        do {
            try a.withUnsafeMutableBufferPointer { ab throws(LinalgError) in try BLAS.choleskyFactor(ab.baseAddress!, n: f) }
            try a.withUnsafeBufferPointer { ab throws(LinalgError) in
                try b.withUnsafeMutableBufferPointer { bb throws(LinalgError) in
                    try BLAS.choleskySolveFactored(ab.baseAddress!, n: f, bb.baseAddress!)
                }
            }
        } catch { throw .model(.solveFailed("explanation: \(error)")) }
        self.model = model
        self.f = f
        self.factor = a
        self.x = b
        self.items = cols
        self.confidences = vals
    }

    /// `(c_X, W y_X)` for a seed in the history, or `nil` when X is not in it (or the solve fails).
    func solve(_ seed: Int32) -> (confidence: Float, v: [Float])? {
        guard let p = UserHistory.search(items[...], seed), confidences[p] > 0 else { return nil }
        var v = model.itemFactors.row(Int(seed))
        let ok: Bool = factor.withUnsafeBufferPointer { ab in
            v.withUnsafeMutableBufferPointer { vb in
                (try? BLAS.choleskySolveFactored(ab.baseAddress!, n: f, vb.baseAddress!)) != nil
            }
        }
        return ok ? (confidences[p], v) : nil
    }

    /// X's contribution `c_X · yᵢ · W y_X` to `item`'s explained score `yᵢ · x`, and its share of it.
    func contribution(_ solved: (confidence: Float, v: [Float]), to item: Int32) -> (Float, Float) {
        let d = f
        let (c, total): (Float, Float) = model.itemFactors.storage.withUnsafeBufferPointer { ys in
            solved.v.withUnsafeBufferPointer { vb in
                x.withUnsafeBufferPointer { xb in
                    let yi = ys.baseAddress! + Int(item) * d
                    return (Kernels.dot(yi, vb.baseAddress!, d), Kernels.dot(yi, xb.baseAddress!, d))
                }
            }
        }
        let contribution = solved.confidence * c
        return (contribution, total != 0 ? contribution / total : 0)
    }
}

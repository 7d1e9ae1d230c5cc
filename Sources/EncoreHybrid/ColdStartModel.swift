import EncoreCore

/// The options of ``ColdStartModel`` and of the evidence blend.
public struct ColdStartOptions: Sendable, Equatable {
    /// A track is warm (its CF vector is trusted as a regression target) with at least this many listeners.
    public var minListeners: Int
    /// The share of warm tracks held out to choose the ridge penalties and fit the combination weights.
    public var validationShare: Double
    /// The seed of the fit/validation split.
    public var seed: UInt64
    /// The ridge penalty grid, relative: a content space's penalty is `γ · tr(XᵀX) / d` for each `γ` here (so the
    /// grid means the same for unit-length text vectors and for raw embeddings); the `γ` with the lowest validation
    /// error is kept.
    public var ridgeGrid: [Float]
    /// Whether the artist prior (the mean CF vector of the artist's warm tracks) is a source.
    public var artistPrior: Bool
    /// The `k` of the evidence blend: the predicted vector weighs as much as `k` listeners' evidence
    /// (see ``EvidenceBlend``).
    public var priorListeners: Double

    /// Options with their defaults unless given.
    public init(
        minListeners: Int = 5, validationShare: Double = 0.2, seed: UInt64 = 0,
        ridgeGrid: [Float] = [0.001, 0.01, 0.1, 1, 10], artistPrior: Bool = true, priorListeners: Double = 10
    ) {
        self.minListeners = minListeners
        self.validationShare = validationShare
        self.seed = seed
        self.ridgeGrid = ridgeGrid
        self.artistPrior = artistPrior
        self.priorListeners = priorListeners
    }

    /// Checks every option is in range.
    public func validate() throws(HybridError) {
        guard minListeners >= 1 else {
            throw .invalidParameter(name: "minListeners", value: "\(minListeners)", expected: "an integer >= 1")
        }
        guard validationShare > 0, validationShare < 1 else {
            throw .invalidParameter(name: "validationShare", value: "\(validationShare)", expected: "a value in (0, 1)")
        }
        guard !ridgeGrid.isEmpty, ridgeGrid.allSatisfy({ $0 > 0 && $0.isFinite }) else {
            throw .invalidParameter(
                name: "ridgeGrid", value: "\(ridgeGrid)", expected: "one or more finite penalties > 0")
        }
        guard priorListeners >= 0, priorListeners.isFinite else {
            throw .invalidParameter(name: "priorListeners", value: "\(priorListeners)", expected: "a finite value >= 0")
        }
    }
}

/// What one source of the cold-start model did in its fit.
public struct ColdStartSource: Sendable, Equatable, Codable {
    /// The source's name: a content space's name, or `artist` for the artist prior.
    public let name: String
    /// Warm fit tracks with this source (a ridge's training rows; tracks of the prior's artists).
    public var fitTracks: Int
    /// Validation tracks with this source.
    public var validationTracks: Int
    /// The relative ridge penalty `γ` chosen on the validation tracks (content spaces only).
    public var relativeLambda: Float?
    /// The absolute penalty of the final ridge (refitted on every warm track).
    public var lambda: Float?
    /// The mean squared error (summed over factors) of this source alone on its validation tracks.
    public var validationError: Double?
    /// The same error of the warm tracks' mean vector on those tracks, for comparison.
    public var meanVectorError: Double?
    /// The combination weight (0 when the source does not help, or is unusable).
    public var weight: Float
    /// Why the source is unused, when it is.
    public var note: String?
}

/// Predicted CF vectors for tracks, with the sources that made each.
public struct ColdStartPrediction: Sendable, Equatable {
    /// One predicted CF vector per track; a zero row where no source applied.
    public var vectors: Matrix
    /// A bit per source (index into ``sourceNames``): the sources that contributed to each track's vector.
    public var sources: [UInt32]
    /// The model's source names.
    public let sourceNames: [String]

    /// The names of the sources behind track `i`'s predicted vector (empty: none).
    public func sourceNames(of i: Int) -> [String] { Self.names(sources[i], sourceNames) }

    /// Whether track `i` has a predicted vector.
    public func hasPrediction(_ i: Int) -> Bool { sources[i] != 0 }

    static func names(_ bits: UInt32, _ all: [String]) -> [String] {
        all.indices.filter { bits & (UInt32(1) << UInt32($0)) != 0 }.map { all[$0] }
    }
}

/// Predicts a track's collaborative-filtering vector from its content and its artist, for tracks with too few plays.
///
/// Fitting (``fit(itemFactors:listeners:artists:spaces:options:)``):
/// 1. Warm tracks have at least ``ColdStartOptions/minListeners`` listeners; their CF vectors `y` are the targets.
///    They are split at random (seeded) into fit and validation tracks (``ColdStartOptions/validationShare``).
/// 2. Per content space, a ``RidgeRegression`` from the space's vectors to `y` on the fit tracks that have a vector;
///    the penalty is chosen from ``ColdStartOptions/ridgeGrid`` by the squared error on the validation tracks.
/// 3. The artist prior of a track is the mean `y` of its artist's warm tracks (the track itself left out).
/// 4. Combination: with `μ` the fit tracks' mean vector and `d_s(t) = p_s(t) - μ` the deviation of source `s`'s
///    prediction for validation track `t` (`0` when `t` lacks the source), the weights `w ≥ 0` minimise
///    `Σ_t ‖μ + Σ_s w_s d_s(t) - y_t‖²`: non-negative least squares on the stacked predictions, solved exactly by
///    trying every subset of sources (there are only a few).
/// 5. The ridges and the prior are refitted on every warm track (same relative penalties).
///
/// Prediction: `p(t) = μ + Σ_{s ∈ S(t)} w_s (p_s(t) - μ)` over the sources `S(t)` the track has with `w_s > 0`. A
/// missing source contributes its intercept (`μ`), exactly as in the fit, so the prediction shrinks toward the mean
/// when less is known. A track with no contributing source gets no prediction (a zero vector, provenance `none`).
public struct ColdStartModel: Sendable {
    /// The options the model was fitted with.
    public let options: ColdStartOptions
    /// The sources: the content spaces in the order given, then `artist` when the prior is used.
    public let sourceNames: [String]
    /// What each source did (same order as ``sourceNames``).
    public let sourceReports: [ColdStartSource]
    /// The combination weight of each source.
    public var weights: [Float] { sourceReports.map(\.weight) }
    /// The mean CF vector `μ` of the warm tracks.
    public let mean: [Float]
    /// The final ridge of each content source that is used (keyed by space name).
    public let ridges: [String: RidgeRegression]
    /// The number of warm tracks, of fit tracks and of validation tracks.
    public let warmTracks: Int, fitTracks: Int, validationTracks: Int
    /// The mean squared error (summed over factors) on the validation tracks of the fit tracks' mean vector alone.
    public let validationErrorOfMean: Double
    /// The same error of the weighted combination (before the refit); at most ``validationErrorOfMean``.
    public let validationErrorCombined: Double

    /// Warm flags and targets of the fitted catalogue, so a warm track's own vector is left out of its artist prior.
    let warm: [Bool]
    let targets: Matrix
    let artistSums: Matrix
    let artistCounts: [Int]
    let contentSources: [String]

    /// The number of CF factors.
    public var factors: Int { mean.count }

    /// Fits the model; see the type's documentation.
    /// - Parameters:
    ///   - itemFactors: the learned CF item vectors, one row per track.
    ///   - listeners: the number of distinct listeners of each track.
    ///   - artists: each track's artist index (`-1`: unknown), or `nil` for no artist prior.
    ///   - spaces: the content spaces, each with one row per track.
    /// - Throws: ``HybridError`` for misaligned inputs, bad options, or fewer than 3 warm tracks.
    public static func fit(
        itemFactors: Matrix, listeners: [Int], artists: [Int32]?, spaces: [ContentSpace],
        options: ColdStartOptions = ColdStartOptions()
    ) throws(HybridError) -> ColdStartModel {
        try options.validate()
        let n = itemFactors.rows, f = itemFactors.cols
        try checkInputs(n: n, listeners: listeners, artists: artists, spaces: spaces)
        let warmRows = (0..<n).filter { listeners[$0] >= options.minListeners }
        guard warmRows.count >= 3 else {
            throw .notEnoughWarmTracks(warm: warmRows.count, minListeners: options.minListeners, needed: 3)
        }
        // Fit/validation split of the warm tracks (partial Fisher-Yates, seeded).
        var order = warmRows
        var rng = SplitMix64(seed: options.seed)
        let validationCount = min(warmRows.count - 2, max(1, Int((options.validationShare * Double(warmRows.count)).rounded())))
        for i in 0..<validationCount {
            let j = i + Int(rng.next() % UInt64(order.count - i))
            order.swapAt(i, j)
        }
        let validation = order[0..<validationCount].sorted()
        let fitRows = order[validationCount...].sorted()
        let mu = RidgeSystem.columnMeans(itemFactors, rows: fitRows)
        let useArtists = options.artistPrior ? artists : nil
        let artistCount = Int((useArtists ?? []).max() ?? -1) + 1

        var reports: [ColdStartSource] = []
        var deviations: [[Float]?] = []  // per source: validationCount x f, zero rows where absent
        var chosen: [Float?] = []  // per content source: relative penalty
        func meanError(_ rows: [Int]) -> Double {
            rows.reduce(0.0) { $0 + squaredDistance(mu, itemFactors, $1) } / Double(max(1, rows.count))
        }

        for space in spaces {
            let fr = fitRows.filter { space.present[$0] }, vr = validation.filter { space.present[$0] }
            var report = ColdStartSource(name: space.name, fitTracks: fr.count, validationTracks: vr.count, weight: 0)
            guard fr.count >= 2, !vr.isEmpty else {
                report.note = "too few warm tracks with a vector (\(fr.count) fit, \(vr.count) validation)"
                reports.append(report); deviations.append(nil); chosen.append(nil)
                continue
            }
            let system = try RidgeSystem(x: space.vectors, y: itemFactors, rows: fr)
            let scale = system.meanDiagonal > 0 ? system.meanDiagonal : 1
            let xv = rowsOf(space.vectors, vr)
            var best: (gamma: Float, error: Double, prediction: Matrix)?
            for gamma in options.ridgeGrid {
                guard let ridge = try? system.solve(lambda: gamma * scale) else { continue }
                let p = try ridge.predict(xv)
                var e = 0.0
                for (j, t) in vr.enumerated() { e += squaredDistance(p.row(j), itemFactors, t) }
                e /= Double(vr.count)
                if best == nil || e < best!.error { best = (gamma, e, p) }
            }
            guard let best else {
                report.note = "every ridge penalty of the grid failed to solve"
                reports.append(report); deviations.append(nil); chosen.append(nil)
                continue
            }
            report.relativeLambda = best.gamma
            report.validationError = best.error
            report.meanVectorError = meanError(vr)
            var dev = [Float](repeating: 0, count: validationCount * f)
            var position = [Int: Int]()
            for (j, t) in validation.enumerated() { position[t] = j }
            for (j, t) in vr.enumerated() {
                let row = position[t]!
                for c in 0..<f { dev[row * f + c] = best.prediction[j, c] - mu[c] }
            }
            reports.append(report); deviations.append(dev); chosen.append(best.gamma)
        }

        if let useArtists {
            let (sums, counts) = artistTotals(itemFactors, rows: fitRows, artists: useArtists, artistCount: artistCount)
            var report = ColdStartSource(name: "artist", fitTracks: 0, validationTracks: 0, weight: 0)
            report.fitTracks = fitRows.filter { useArtists[$0] >= 0 && counts[Int(useArtists[$0])] > 0 }.count
            var dev = [Float](repeating: 0, count: validationCount * f)
            var covered: [Int] = []
            var e = 0.0
            for (j, t) in validation.enumerated() {
                let a = Int(useArtists[t])
                guard a >= 0, counts[a] > 0 else { continue }
                covered.append(t)
                var prior = [Float](repeating: 0, count: f)
                for c in 0..<f { prior[c] = sums[a, c] / Float(counts[a]); dev[j * f + c] = prior[c] - mu[c] }
                e += squaredDistance(prior, itemFactors, t)
            }
            report.validationTracks = covered.count
            if covered.isEmpty {
                report.note = "no validation track's artist has a warm fit track"
                deviations.append(nil)
            } else {
                report.validationError = e / Double(covered.count)
                report.meanVectorError = meanError(covered)
                deviations.append(dev)
            }
            reports.append(report)
        }

        // Combination weights: exact non-negative least squares over the usable sources.
        let usable = deviations.indices.filter { deviations[$0] != nil }
        var residual = [Float](repeating: 0, count: validationCount * f)
        for (j, t) in validation.enumerated() { for c in 0..<f { residual[j * f + c] = itemFactors[t, c] - mu[c] } }
        let s = usable.count
        var gramS = [Double](repeating: 0, count: s * s), rhs = [Double](repeating: 0, count: s)
        for (a, sa) in usable.enumerated() {
            rhs[a] = dot(deviations[sa]!, residual)
            for (b, sb) in usable.enumerated() where b >= a {
                let v = dot(deviations[sa]!, deviations[sb]!)
                gramS[a * s + b] = v; gramS[b * s + a] = v
            }
        }
        let w = nonNegativeLeastSquares(gram: gramS, rhs: rhs, size: s)
        for (a, sa) in usable.enumerated() { reports[sa].weight = Float(w[a]) }
        // The combination's validation error: ‖r - Σ w_s d_s‖² per track.
        var combined = 0.0
        for j in 0..<(validationCount * f) {
            var r = Double(residual[j])
            for (a, sa) in usable.enumerated() where w[a] > 0 { r -= w[a] * Double(deviations[sa]![j]) }
            combined += r * r
        }
        let meanOnly = residual.reduce(0.0) { $0 + Double($1) * Double($1) }

        // Refit on every warm track with the chosen relative penalties.
        let muAll = RidgeSystem.columnMeans(itemFactors, rows: warmRows)
        var ridges: [String: RidgeRegression] = [:]
        for (i, space) in spaces.enumerated() {
            guard let gamma = chosen[i], reports[i].weight > 0 else { continue }
            let rows = warmRows.filter { space.present[$0] }
            let system = try RidgeSystem(x: space.vectors, y: itemFactors, rows: rows)
            let ridge = try system.solve(lambda: gamma * (system.meanDiagonal > 0 ? system.meanDiagonal : 1))
            ridges[space.name] = ridge
            reports[i].lambda = ridge.lambda
        }
        var isWarm = [Bool](repeating: false, count: n)
        for t in warmRows { isWarm[t] = true }
        let (sums, counts) = useArtists.map { artistTotals(itemFactors, rows: warmRows, artists: $0, artistCount: artistCount) }
            ?? (Matrix(rows: 0, cols: f), [])
        return ColdStartModel(
            options: options, sourceNames: reports.map(\.name), sourceReports: reports, mean: muAll, ridges: ridges,
            warmTracks: warmRows.count, fitTracks: fitRows.count, validationTracks: validationCount,
            validationErrorOfMean: meanOnly / Double(validationCount),
            validationErrorCombined: combined / Double(validationCount),
            warm: isWarm, targets: itemFactors, artistSums: sums, artistCounts: counts,
            contentSources: spaces.map(\.name))
    }

    /// Predicts every track's CF vector from its content and artist, with the sources used.
    ///
    /// `spaces` must hold the content sources the model was fitted with (by name; extra spaces are ignored), aligned
    /// with `artists`. When the catalogue is the fitted one (or extends it), a warm track's own vector is left out
    /// of its artist prior, so a prediction never uses the track's own plays.
    /// - Throws: ``HybridError/shapeMismatch(_:)`` for misaligned inputs or a space of another dimension.
    public func predict(artists: [Int32]?, spaces: [ContentSpace]) throws(HybridError) -> ColdStartPrediction {
        let n = artists?.count ?? spaces.first?.count ?? 0
        try Self.checkInputs(n: n, listeners: nil, artists: artists, spaces: spaces)
        let f = factors
        var deviation = Matrix(rows: n, cols: f)
        var bits = [UInt32](repeating: 0, count: n)
        for (s, name) in sourceNames.enumerated() where weights[s] > 0 {
            let w = weights[s]
            if name == "artist" {
                guard let artists else { continue }
                for t in 0..<n {
                    let a = Int(artists[t])
                    guard a >= 0, a < artistCounts.count else { continue }
                    let own = t < warm.count && warm[t]
                    let count = artistCounts[a] - (own ? 1 : 0)
                    guard count > 0 else { continue }
                    for c in 0..<f {
                        let sum = artistSums[a, c] - (own ? targets[t, c] : 0)
                        deviation.storage[t * f + c] += w * (sum / Float(count) - mean[c])
                    }
                    bits[t] |= UInt32(1) << UInt32(s)
                }
                continue
            }
            guard let ridge = ridges[name] else { continue }
            guard let space = spaces.first(where: { $0.name == name }) else {
                throw .shapeMismatch("the model uses the content space '\(name)', which is not given")
            }
            let rows = (0..<n).filter { space.present[$0] }
            guard !rows.isEmpty else { continue }
            let p = try ridge.predict(Self.rowsOf(space.vectors, rows))
            for (j, t) in rows.enumerated() {
                for c in 0..<f { deviation.storage[t * f + c] += w * (p[j, c] - mean[c]) }
                bits[t] |= UInt32(1) << UInt32(s)
            }
        }
        var vectors = Matrix(rows: n, cols: f)
        for t in 0..<n where bits[t] != 0 { for c in 0..<f { vectors.storage[t * f + c] = mean[c] + deviation[t, c] } }
        return ColdStartPrediction(vectors: vectors, sources: bits, sourceNames: sourceNames)
    }

    /// Predicts one new track's CF vector from its content vectors (keyed by space name) and its artist index.
    /// - Returns: the vector and the names of the sources used, or `nil` when no source applies.
    /// - Throws: ``HybridError/shapeMismatch(_:)`` when a content vector has another dimension than its space's.
    public func predict(content: [String: [Float]], artist: Int32?) throws(HybridError) -> (vector: [Float], sources: [String])? {
        var v = mean
        var used: [String] = []
        for (s, name) in sourceNames.enumerated() where weights[s] > 0 {
            let w = weights[s]
            var p: [Float]
            if let ridge = ridges[name] {
                guard let x = content[name] else { continue }
                guard x.count == ridge.inputMean.count else {
                    throw .shapeMismatch("space '\(name)' has \(ridge.inputMean.count) dimensions, the vector \(x.count)")
                }
                p = try ridge.predict(vector: x)
            } else if name == "artist", let artist, artist >= 0, Int(artist) < artistCounts.count, artistCounts[Int(artist)] > 0 {
                p = artistSums.row(Int(artist)).map { $0 / Float(artistCounts[Int(artist)]) }
            } else {
                continue
            }
            for c in 0..<factors { v[c] += w * (p[c] - mean[c]) }
            used.append(name)
        }
        return used.isEmpty ? nil : (v, used)
    }

    // MARK: - Helpers

    static func checkInputs(n: Int, listeners: [Int]?, artists: [Int32]?, spaces: [ContentSpace]) throws(HybridError) {
        if let listeners, listeners.count != n {
            throw .shapeMismatch("\(listeners.count) listener counts for \(n) tracks")
        }
        if let listeners, let bad = listeners.firstIndex(where: { $0 < 0 }) {
            throw .invalidParameter(name: "listeners[\(bad)]", value: "\(listeners[bad])", expected: "a count >= 0")
        }
        if let artists, artists.count != n { throw .shapeMismatch("\(artists.count) artist indices for \(n) tracks") }
        guard spaces.count <= 31 else {
            throw .invalidParameter(name: "spaces", value: "\(spaces.count)", expected: "at most 31 content spaces")
        }
        var names = Set<String>()
        for s in spaces {
            guard s.count == n else { throw .shapeMismatch("space '\(s.name)' has \(s.count) rows for \(n) tracks") }
            guard s.name != "artist" else {
                throw .invalidParameter(name: "space name", value: "artist", expected: "a name other than 'artist' (the artist prior's)")
            }
            guard names.insert(s.name).inserted else {
                throw .invalidParameter(name: "space name", value: s.name, expected: "a name given once")
            }
        }
    }

    static func rowsOf(_ m: Matrix, _ rows: [Int]) -> Matrix {
        var out = Matrix(rows: rows.count, cols: m.cols)
        for (j, r) in rows.enumerated() {
            out.storage.replaceSubrange((j * m.cols)..<((j + 1) * m.cols), with: m.storage[(r * m.cols)..<((r + 1) * m.cols)])
        }
        return out
    }

    static func artistTotals(_ y: Matrix, rows: some Sequence<Int>, artists: [Int32], artistCount: Int) -> (Matrix, [Int]) {
        var sums = Matrix(rows: artistCount, cols: y.cols)
        var counts = [Int](repeating: 0, count: artistCount)
        for t in rows {
            let a = Int(artists[t])
            guard a >= 0 else { continue }
            counts[a] += 1
            for c in 0..<y.cols { sums.storage[a * y.cols + c] += y[t, c] }
        }
        return (sums, counts)
    }
}

/// `‖p - y_t‖²` for a vector `p` and row `t` of `y`.
func squaredDistance(_ p: [Float], _ y: Matrix, _ t: Int) -> Double {
    var s = 0.0
    for c in 0..<y.cols { let d = Double(p[c]) - Double(y[t, c]); s += d * d }
    return s
}

func dot(_ a: [Float], _ b: [Float]) -> Double {
    var s = 0.0
    for i in a.indices { s += Double(a[i]) * Double(b[i]) }
    return s
}

/// The exact solution of `min ‖A w - y‖²` subject to `w ≥ 0`, given the normal equations `G = AᵀA` (`size x size`,
/// row-major) and `h = Aᵀy`: the best over every subset of unconstrained least-squares solutions that are
/// non-negative (the KKT solution is among them). Meant for a handful of columns (2^size subsets).
func nonNegativeLeastSquares(gram: [Double], rhs: [Double], size: Int) -> [Double] {
    var best = [Double](repeating: 0, count: size)
    var bestObjective = 0.0  // the empty subset: w = 0
    guard size > 0 else { return best }
    for mask in 1..<(1 << size) {
        let cols = (0..<size).filter { mask & (1 << $0) != 0 }
        let k = cols.count
        var a = [Double](repeating: 0, count: k * k), b = [Double](repeating: 0, count: k)
        for (i, ci) in cols.enumerated() {
            b[i] = rhs[ci]
            for (j, cj) in cols.enumerated() { a[i * k + j] = gram[ci * size + cj] }
        }
        guard let w = solveSmall(&a, &b, k), w.allSatisfy({ $0 >= 0 }) else { continue }
        // Objective up to a constant: wᵀGw - 2hᵀw = -hᵀw at the subset's optimum.
        var objective = 0.0
        for (i, ci) in cols.enumerated() { objective -= rhs[ci] * w[i] }
        if objective < bestObjective - 1e-12 * max(1, abs(bestObjective)) {
            bestObjective = objective
            best = [Double](repeating: 0, count: size)
            for (i, ci) in cols.enumerated() { best[ci] = w[i] }
        }
    }
    return best
}

/// Gaussian elimination with partial pivoting on a small dense system; `nil` when it is (numerically) singular.
func solveSmall(_ a: inout [Double], _ b: inout [Double], _ n: Int) -> [Double]? {
    let scale = (0..<n).map { abs(a[$0 * n + $0]) }.max() ?? 0
    guard scale > 0 else { return nil }
    for col in 0..<n {
        var pivot = col
        for r in (col + 1)..<max(col + 1, n) where abs(a[r * n + col]) > abs(a[pivot * n + col]) { pivot = r }
        guard abs(a[pivot * n + col]) > 1e-12 * scale else { return nil }
        if pivot != col {
            for c in 0..<n { a.swapAt(col * n + c, pivot * n + c) }
            b.swapAt(col, pivot)
        }
        for r in (col + 1)..<max(col + 1, n) {
            let factor = a[r * n + col] / a[col * n + col]
            guard factor != 0 else { continue }
            for c in col..<n { a[r * n + c] -= factor * a[col * n + c] }
            b[r] -= factor * b[col]
        }
    }
    var x = [Double](repeating: 0, count: n)
    for r in stride(from: n - 1, through: 0, by: -1) {
        var s = b[r]
        for c in (r + 1)..<max(r + 1, n) { s -= a[r * n + c] * x[c] }
        x[r] = s / a[r * n + r]
    }
    return x
}

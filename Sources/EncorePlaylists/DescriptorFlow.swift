import Foundation
import EncoreCore

/// Per-track musical descriptors for ordering a mix: tempo, key (pitch class and mode) and energy, each optional per
/// track (an audio analysis may not cover every track, and may fail on some).
///
/// Values are aligned to the catalog's items. Unknown values: a tempo of NaN or 0, a key or mode of -1, an energy of
/// NaN. A key needs its mode (the Camelot position depends on both).
public struct TrackDescriptors: Sendable, Equatable {
    /// One track's descriptors (`nil`: unknown).
    public struct Track: Sendable, Equatable {
        /// Tempo in beats per minute.
        public var tempoBPM: Float?
        /// Tonic pitch class, 0 (C) to 11 (B).
        public var key: Int?
        /// 1 major, 0 minor.
        public var mode: Int?
        /// Energy, any non-negative scale shared by the catalog (the audio analysis gives the RMS level).
        public var energy: Float?

        /// A track's descriptors.
        public init(tempoBPM: Float? = nil, key: Int? = nil, mode: Int? = nil, energy: Float? = nil) {
            self.tempoBPM = tempoBPM
            self.key = key
            self.mode = mode
            self.energy = energy
        }
    }

    /// The number of items.
    public let itemCount: Int
    /// Each item's tempo in BPM, NaN when unknown.
    public let tempoBPM: [Float]
    /// Each item's tonic pitch class 0-11, -1 when unknown.
    public let key: [Int8]
    /// Each item's mode (1 major, 0 minor), -1 when unknown.
    public let mode: [Int8]
    /// Each item's energy, NaN when unknown.
    public let energy: [Float]

    /// Descriptors from columns (each one value per item, or empty for "all unknown").
    ///
    /// - Throws: ``PlaylistError/shapeMismatch(_:)`` for a column of another length,
    ///   ``PlaylistError/invalidParameter(name:value:expected:)`` naming the column and item of a value out of range
    ///   (a negative or infinite tempo or energy, a key outside 0-11, a mode other than 0 or 1, a key without a mode).
    public init(
        itemCount: Int, tempoBPM: [Float] = [], key: [Int] = [], mode: [Int] = [], energy: [Float] = []
    ) throws(PlaylistError) {
        func column<T>(_ values: [T], _ name: String, _ fill: T) throws(PlaylistError) -> [T] {
            if values.isEmpty { return [T](repeating: fill, count: itemCount) }
            guard values.count == itemCount else {
                throw .shapeMismatch("descriptor column \(name) has \(values.count) values for \(itemCount) items")
            }
            return values
        }
        var tempo = try column(tempoBPM, "tempoBPM", .nan)
        let keys = try column(key, "key", -1)
        let modes = try column(mode, "mode", -1)
        let energies = try column(energy, "energy", .nan)
        for i in 0..<itemCount {
            let t = tempo[i]
            if t == 0 { tempo[i] = .nan } else if !t.isNaN && !(t > 0 && t.isFinite) {
                throw .invalidParameter(name: "tempoBPM[\(i)]", value: "\(t)", expected: "a tempo > 0 (NaN or 0: unknown)")
            }
            guard (-1...11).contains(keys[i]) else {
                throw .invalidParameter(name: "key[\(i)]", value: "\(keys[i])", expected: "a pitch class 0-11 (-1: unknown)")
            }
            guard (-1...1).contains(modes[i]) else {
                throw .invalidParameter(name: "mode[\(i)]", value: "\(modes[i])", expected: "1 (major), 0 (minor) or -1 (unknown)")
            }
            if keys[i] >= 0 && modes[i] < 0 {
                throw .invalidParameter(name: "mode[\(i)]", value: "-1", expected: "the mode of key \(keys[i]) (0 or 1)")
            }
            let e = energies[i]
            if !e.isNaN && !(e >= 0 && e.isFinite) {
                throw .invalidParameter(name: "energy[\(i)]", value: "\(e)", expected: "an energy >= 0 (NaN: unknown)")
            }
        }
        self.itemCount = itemCount
        self.tempoBPM = tempo
        self.key = keys.map { Int8($0) }
        self.mode = modes.map { Int8($0) }
        self.energy = energies
    }

    /// Descriptors for the listed items (the others unknown).
    /// - Throws: ``PlaylistError/unknownIndex(_:)`` for an item outside `0..<itemCount`, or as
    ///   ``init(itemCount:tempoBPM:key:mode:energy:)``.
    public init(itemCount: Int, tracks: [Int32: Track]) throws(PlaylistError) {
        var tempo = [Float](repeating: .nan, count: itemCount), energy = tempo
        var key = [Int](repeating: -1, count: itemCount), mode = key
        for (i, t) in tracks {
            guard i >= 0, Int(i) < itemCount else { throw .unknownIndex("descriptors for item \(i) of \(itemCount)") }
            tempo[Int(i)] = t.tempoBPM ?? .nan
            key[Int(i)] = t.key ?? -1
            mode[Int(i)] = t.mode ?? -1
            energy[Int(i)] = t.energy ?? .nan
        }
        try self.init(itemCount: itemCount, tempoBPM: tempo, key: key, mode: mode, energy: energy)
    }

    /// Item `i`'s descriptors.
    public func track(_ i: Int32) -> Track {
        guard i >= 0, Int(i) < itemCount else { return Track() }
        let p = Int(i)
        return Track(tempoBPM: tempoBPM[p].isNaN ? nil : tempoBPM[p], key: key[p] >= 0 ? Int(key[p]) : nil,
                     mode: mode[p] >= 0 ? Int(mode[p]) : nil, energy: energy[p].isNaN ? nil : energy[p])
    }

    /// The position of a key on the circle of fifths, 0-11, with a minor key at its relative major's place (C major
    /// and A minor 0, G major and E minor 1, ... F major and D minor 11).
    public static func fifthsPosition(key: Int, mode: Int) -> Int {
        let tonic = ((key % 12) + 12) % 12
        let major = mode == 1 ? tonic : (tonic + 3) % 12
        return (major * 7) % 12
    }

    /// The Camelot wheel code of a key: the number 1-12 (8 for C major and A minor) and `B` for major, `A` for minor.
    public static func camelot(key: Int, mode: Int) -> String {
        "\((fifthsPosition(key: key, mode: mode) + 7) % 12 + 1)\(mode == 1 ? "B" : "A")"
    }

    /// The distance of two keys on the Camelot wheel (the circle of fifths, a minor key at its relative major),
    /// 0 to 6 steps: C major and A minor 0, C and G 1, C and F♯ 6.
    public static func keyDistance(key a: Int, mode ma: Int, key b: Int, mode mb: Int) -> Int {
        let d = abs(fifthsPosition(key: a, mode: ma) - fifthsPosition(key: b, mode: mb))
        return min(d, 12 - d)
    }

    /// The tempo distance in octaves, forgiving octave errors of tempo estimation (a track read at double or half
    /// its tempo): `min over r in {1/2, 1, 2} of |log2(r · b / a)|`.
    public static func tempoDistance(_ a: Float, _ b: Float) -> Float {
        let d = Foundation.log2(max(a, b) / min(a, b))   // ordered, so the distance is exactly symmetric
        return min(d, abs(d - 1))
    }
}

/// Orders a mix so it flows from one track to the next: small tempo steps, harmonically close keys, smooth energy,
/// and no artist twice in a row, by minimizing the summed cost of consecutive tracks.
///
/// The cost of playing `b` after `a` (symmetric):
///
///     cost(a, b) = tempoWeight · T + keyWeight · K + energyWeight · E + artistWeight · A
///
/// - `T`: ``TrackDescriptors/tempoDistance(_:_:)``, in octaves, octave errors forgiven (a 9 % change is 0.124, a
///   track at double the tempo 0);
/// - `K`: ``TrackDescriptors/keyDistance(key:mode:key:mode:)``, steps on the Camelot wheel (0 to 6; relative major
///   and minor 0, a fifth 1);
/// - `E`: `|e_a − e_b| / max(e_a, e_b)`, the relative change of energy (0 to 1; 0 when both are 0);
/// - `A`: 1 when both tracks have the same (known) artist.
///
/// A term whose value is unknown for either track counts ``unknownCost`` instead (when its weight is above 0), so a
/// track without descriptors goes where a step costs most anyway. The defaults make one step of each kind cost about
/// 1: a 9 % tempo change (the pitch range of a DJ's deck), a fifth on the wheel, energy changing by half, and an
/// artist repeat costs 4.
///
/// The order is exact (Held-Karp dynamic programming over subsets) up to ``exactLimit`` tracks; beyond it, the best
/// greedy nearest-neighbor path over every start (and the input order), improved by 2-opt (segment reversals),
/// swaps and single-track moves until no step lowers the cost, so the result never costs more than the input order. An optional pattern fixes the kind of track at each position (Daily Mix
/// keeps its familiar and new tracks evenly spread), and only orders that keep it are considered.
public struct DescriptorFlow: Sendable, Equatable, Codable {
    /// Cost per octave of tempo change.
    public var tempoWeight: Float
    /// Cost per step on the Camelot wheel.
    public var keyWeight: Float
    /// Cost per unit of relative energy change.
    public var energyWeight: Float
    /// Cost of two tracks of one artist in a row.
    public var artistWeight: Float
    /// Cost of a term whose value is unknown on either side.
    public var unknownCost: Float
    /// Mixes of at most this many tracks are ordered exactly (cost `2^n · n²`; at most 16).
    public var exactLimit: Int
    /// The most improvement passes over a larger mix.
    public var maxPasses: Int

    /// An ordering.
    public init(
        tempoWeight: Float = 8, keyWeight: Float = 1, energyWeight: Float = 2, artistWeight: Float = 4,
        unknownCost: Float = 1, exactLimit: Int = 10, maxPasses: Int = 20
    ) {
        self.tempoWeight = tempoWeight
        self.keyWeight = keyWeight
        self.energyWeight = energyWeight
        self.artistWeight = artistWeight
        self.unknownCost = unknownCost
        self.exactLimit = exactLimit
        self.maxPasses = maxPasses
    }

    /// Checks every value.
    /// - Throws: ``PlaylistError/invalidParameter(name:value:expected:)`` naming the field.
    public func validate() throws(PlaylistError) {
        for (name, w) in [("tempoWeight", tempoWeight), ("keyWeight", keyWeight), ("energyWeight", energyWeight),
                          ("artistWeight", artistWeight), ("unknownCost", unknownCost)] where !(w >= 0 && w.isFinite) {
            throw .invalidParameter(name: "flow.\(name)", value: "\(w)", expected: "a finite value >= 0")
        }
        guard (0...16).contains(exactLimit) else {
            throw .invalidParameter(name: "flow.exactLimit", value: "\(exactLimit)", expected: "0...16 tracks")
        }
        guard maxPasses >= 0 else {
            throw .invalidParameter(name: "flow.maxPasses", value: "\(maxPasses)", expected: ">= 0")
        }
    }

    /// The cost of playing `b` right after `a` (or `a` after `b`).
    public func cost(_ a: Int32, _ b: Int32, descriptors d: TrackDescriptors, catalog: TrackCatalog) -> Float {
        var c: Float = 0
        let x = d.track(a), y = d.track(b)
        if tempoWeight > 0 {
            if let ta = x.tempoBPM, let tb = y.tempoBPM {
                c += tempoWeight * TrackDescriptors.tempoDistance(ta, tb)
            } else { c += unknownCost }
        }
        if keyWeight > 0 {
            if let ka = x.key, let ma = x.mode, let kb = y.key, let mb = y.mode {
                c += keyWeight * Float(TrackDescriptors.keyDistance(key: ka, mode: ma, key: kb, mode: mb))
            } else { c += unknownCost }
        }
        if energyWeight > 0 {
            if let ea = x.energy, let eb = y.energy {
                let m = max(ea, eb)
                c += m > 0 ? energyWeight * abs(ea - eb) / m : 0
            } else { c += unknownCost }
        }
        if artistWeight > 0 {
            let aa = catalog.artist(of: a)
            if aa >= 0 && aa == catalog.artist(of: b) { c += artistWeight }
        }
        return c
    }

    /// The summed cost of consecutive tracks of `items` in this order.
    public func pathCost(_ items: [Int32], descriptors: TrackDescriptors, catalog: TrackCatalog) -> Float {
        guard items.count > 1 else { return 0 }
        var total: Float = 0
        for j in 1..<items.count { total += cost(items[j - 1], items[j], descriptors: descriptors, catalog: catalog) }
        return total
    }

    /// A permutation of `0..<items.count`, the playing order of least total cost found.
    ///
    /// - Parameters:
    ///   - items: the mix's tracks.
    ///   - kinds: each track's kind (e.g. 1 familiar, 0 new), or `nil` for one kind.
    ///   - pattern: the kind at each position (as many of each kind as `kinds` has), or `nil` for any order.
    /// - Throws: ``PlaylistError/shapeMismatch(_:)`` when `kinds` or `pattern` do not fit the tracks.
    public func order(
        _ items: [Int32], kinds: [Int]? = nil, pattern: [Int]? = nil, descriptors: TrackDescriptors, catalog: TrackCatalog
    ) throws(PlaylistError) -> [Int] {
        let n = items.count
        let kind = kinds ?? [Int](repeating: 0, count: n)
        let slots = pattern ?? [Int](repeating: 0, count: n)
        guard kind.count == n, slots.count == n else {
            throw .shapeMismatch("\(n) tracks, \(kind.count) kinds and a pattern of \(slots.count) positions")
        }
        guard kind.sorted() == slots.sorted() else {
            throw .shapeMismatch("the pattern's kinds do not match the tracks' kinds")
        }
        guard n > 1 else { return Array(0..<n) }
        var c = [Float](repeating: 0, count: n * n)
        for i in 0..<n { for j in (i + 1)..<n {
            let v = cost(items[i], items[j], descriptors: descriptors, catalog: catalog)
            c[i * n + j] = v
            c[j * n + i] = v
        } }
        if n <= exactLimit { return Self.exact(n: n, cost: c, kind: kind, pattern: slots) }
        return Self.heuristic(n: n, cost: c, kind: kind, pattern: slots, maxPasses: maxPasses)
    }

    /// Held-Karp over subsets: the open path of least cost keeping the pattern (ties: the lower end, then the lower
    /// predecessor).
    static func exact(n: Int, cost c: [Float], kind: [Int], pattern: [Int]) -> [Int] {
        let full = (1 << n) - 1
        var dp = [Float](repeating: .infinity, count: (1 << n) * n)
        var parent = [Int8](repeating: -1, count: (1 << n) * n)
        for j in 0..<n where kind[j] == pattern[0] { dp[(1 << j) * n + j] = 0 }
        for s in 1...full {
            let size = s.nonzeroBitCount
            guard size < n else { continue }
            for j in 0..<n where s & (1 << j) != 0 {
                let v = dp[s * n + j]
                guard v.isFinite else { continue }
                for k in 0..<n where s & (1 << k) == 0 && kind[k] == pattern[size] {
                    let t = s | (1 << k)
                    let w = v + c[j * n + k]
                    if w < dp[t * n + k] { dp[t * n + k] = w; parent[t * n + k] = Int8(j) }
                }
            }
        }
        var end = -1
        var best = Float.infinity
        for j in 0..<n where dp[full * n + j] < best { best = dp[full * n + j]; end = j }
        var out: [Int] = []
        var s = full, j = end
        while j >= 0 {
            out.append(j)
            let p = Int(parent[s * n + j])
            s &= ~(1 << j)
            j = p
        }
        return out.reversed()
    }

    /// The best greedy path over every start, then 2-opt, swaps and moves until none lowers the cost.
    static func heuristic(n: Int, cost c: [Float], kind: [Int], pattern: [Int], maxPasses: Int) -> [Int] {
        func total(_ p: [Int]) -> Float {
            var t: Float = 0
            for j in 1..<p.count { t += c[p[j - 1] * n + p[j]] }
            return t
        }
        var best: [Int] = []
        var bestCost = Float.infinity
        for start in 0..<n where kind[start] == pattern[0] {
            var used = [Bool](repeating: false, count: n)
            var path = [start]
            used[start] = true
            var ok = true
            for t in 1..<n {
                var next = -1
                var v = Float.infinity
                for k in 0..<n where !used[k] && kind[k] == pattern[t] && c[path[t - 1] * n + k] < v {
                    v = c[path[t - 1] * n + k]
                    next = k
                }
                guard next >= 0 else { ok = false; break }
                used[next] = true
                path.append(next)
            }
            guard ok else { continue }
            let tc = total(path)
            if tc < bestCost { bestCost = tc; best = path }
        }
        // The input order, when it keeps the pattern, is a candidate too: the result never costs more than it.
        let identity = Array(0..<n)
        if identity.allSatisfy({ kind[$0] == pattern[$0] }) && total(identity) < bestCost {
            bestCost = total(identity)
            best = identity
        }
        var p = best
        let eps: Float = 1e-6
        @inline(__always) func edge(_ i: Int, _ j: Int) -> Float {
            i < 0 || j >= n ? 0 : c[p[i] * n + p[j]]
        }
        let uniform = Set(pattern).count == 1
        var pass = 0
        var improved = true
        while improved && pass < maxPasses {
            improved = false
            pass += 1
            // 2-opt: reverse p[i...j] when the pattern reads the same both ways over it.
            for i in 0..<(n - 1) {
                for j in (i + 1)..<n {
                    var symmetric = true
                    var a = i, b = j
                    while a < b { if pattern[a] != pattern[b] { symmetric = false; break }; a += 1; b -= 1 }
                    guard symmetric else { continue }
                    let before = edge(i - 1, i) + edge(j, j + 1)
                    let after = (i > 0 ? c[p[i - 1] * n + p[j]] : 0) + (j < n - 1 ? c[p[i] * n + p[j + 1]] : 0)
                    if after < before - eps {
                        p[i...j].reverse()
                        improved = true
                    }
                }
            }
            // Swaps of two tracks of one kind: the edges touching places i and j change.
            for i in 0..<(n - 1) {
                for j in (i + 1)..<n where pattern[i] == pattern[j] {
                    // Edges (e, e + 1) for e in {i - 1, i, j - 1, j}, each once (i and j - 1 coincide for neighbors).
                    func around() -> Float {
                        var t = edge(i - 1, i) + edge(j, j + 1)
                        t += j == i + 1 ? edge(i, j) : edge(i, i + 1) + edge(j - 1, j)
                        return t
                    }
                    let before = around()
                    p.swapAt(i, j)
                    if around() < before - eps { improved = true } else { p.swapAt(i, j) }
                }
            }
            // Moves of one track to another place (any order is allowed only without a pattern): the best one.
            if uniform {
                @inline(__always) func cc(_ a: Int, _ b: Int) -> Float { a < 0 || b < 0 ? 0 : c[a * n + b] }
                var bestMove: (from: Int, to: Int, delta: Float)? = nil
                for i in 0..<n {
                    let x = p[i]
                    let prev = i > 0 ? p[i - 1] : -1, next = i < n - 1 ? p[i + 1] : -1
                    let saved = cc(prev, x) + cc(x, next) - cc(prev, next)
                    // The path without x is q[k] = p[k < i ? k : k + 1], k < n - 1; x goes before q[j].
                    for j in 0..<n where j != i {
                        let a = j > 0 ? p[j - 1 < i ? j - 1 : j] : -1
                        let b = j < n - 1 ? p[j < i ? j : j + 1] : -1
                        let delta = cc(a, x) + cc(x, b) - cc(a, b) - saved
                        if delta < -eps && delta < (bestMove?.delta ?? .infinity) { bestMove = (i, j, delta) }
                    }
                }
                if let m = bestMove {
                    let x = p.remove(at: m.from)
                    p.insert(x, at: m.to)
                    improved = true
                }
            }
        }
        return p
    }
}

import Foundation
import EncoreCore

// Random streams, sampling, calendar arithmetic and id formatting for the synthetic world.

extension SyntheticWorld {
    /// The independent random streams of a world. Each part of the world draws only from its own stream, so adding a
    /// part (synthetic audio, descriptive text) or changing how one part is drawn leaves the others, and in particular
    /// the play log, unchanged for the same seed.
    public enum Stream: UInt64, Sendable, CaseIterable {
        /// The catalog: artists' genres and popularity, albums, release dates, tracks, durations.
        case catalog = 1
        /// One stream per user: tastes, favorite artists, activity, plays, likes, follows, dislikes.
        case users = 2
        /// Artist names (one stream per artist).
        case names = 3
        /// Reserved for per-track synthetic audio parameters (tempo, key, mode, timbre).
        case audio = 4
        /// Reserved for descriptive text (tags, bios).
        case text = 5
        /// The genre labels the published catalog carries (missing or wrong for some albums), one stream per album.
        case catalogLabels = 6
    }

    /// The generator of stream `stream`, sub-stream `index` (a user, an artist, a track) for a world seed.
    ///
    /// Seeds are mixed with the SplitMix64 finalizer, so neighboring indices and seeds give unrelated sequences.
    public static func rng(seed: UInt64, stream: Stream, index: UInt64 = 0) -> SplitMix64 {
        let s = mix64(seed ^ mix64(stream.rawValue &* 0xD1B5_4A32_D192_ED03))
        return SplitMix64(seed: mix64(s &+ (index &+ 1) &* 0x9E37_79B9_7F4A_7C15))
    }

    static func mix64(_ value: UInt64) -> UInt64 {
        var z = value
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

// MARK: Sampling helpers

extension SplitMix64 {
    /// A uniform integer in `0..<n` (`n > 0`), by multiply-shift (bias below 2^-32 for the sizes used here).
    @inlinable
    package mutating func below(_ n: Int) -> Int {
        Int((UInt64(UInt32(truncatingIfNeeded: next() >> 32)) &* UInt64(n)) >> 32)
    }

    /// A uniform integer in `0...n` for `n >= 0` up to 2^62.
    @inlinable
    mutating func upTo(_ n: Int64) -> Int64 {
        n <= 0 ? 0 : Int64(next() % UInt64(n + 1))
    }

    /// A geometric count of failures before the first success with the given mean (`mean >= 0`), capped.
    mutating func geometric(mean: Double, cap: Int) -> Int {
        guard mean > 0 else { return 0 }
        let q = mean / (1 + mean)  // failure probability
        var u = nextDouble()
        if u < 1e-300 { u = 1e-300 }
        let k = Foundation.log(u) / Foundation.log(q)
        return k >= Double(cap) ? cap : Int(k)
    }
}

/// Cumulative-distribution sampling over segments of one flat array.
enum CDF {
    /// Turns `weights[range]` into a cumulative distribution in place (the last value is exactly 1).
    /// An all-zero segment becomes uniform.
    static func accumulate(_ weights: inout [Double], _ range: Range<Int>) {
        guard !range.isEmpty else { return }
        var total = 0.0
        for i in range { total += weights[i] }
        if !(total > 0) {
            for i in range { weights[i] = 1 }
            total = Double(range.count)
        }
        var acc = 0.0
        for i in range {
            acc += weights[i]
            weights[i] = acc / total
        }
        weights[range.upperBound - 1] = 1
    }

    /// The first index `i` in `range` with `cdf[i] > u`, for `u` in `[0, 1)`.
    @inlinable
    static func sample(_ cdf: UnsafeBufferPointer<Double>, _ range: Range<Int>, _ u: Double) -> Int {
        var lo = range.lowerBound, hi = range.upperBound - 1
        while lo < hi {
            let mid = (lo + hi) >> 1
            if cdf[mid] > u { hi = mid } else { lo = mid + 1 }
        }
        return lo
    }
}

// MARK: Id formatting

/// How the ids of a world are spelled: a prefix and a zero-padded index.
public struct SyntheticIDFormat: Sendable, Equatable {
    /// Digits of user ids (`u` + digits); at least 6.
    public let userDigits: Int
    /// Digits of track ids (`t` + digits); at least 7.
    public let trackDigits: Int
    /// Digits of artist ids (`a` + digits); at least 5.
    public let artistDigits: Int
    /// Digits of album ids (`al` + digits); at least 6.
    public let albumDigits: Int

    /// The format for worlds of the given sizes: the default widths, widened when a count needs more digits.
    public init(users: Int, tracks: Int, artists: Int, albums: Int) {
        func digits(_ n: Int, _ minimum: Int) -> Int { max(minimum, String(max(0, n - 1)).count) }
        userDigits = digits(users, 6)
        trackDigits = digits(tracks, 7)
        artistDigits = digits(artists, 5)
        albumDigits = digits(albums, 6)
    }

    /// The id of user `index`, e.g. `u000123`.
    public func user(_ index: Int32) -> String { "u" + Timestamp.pad(Int64(index), userDigits) }
    /// The id of track `index`, e.g. `t0004567`.
    public func track(_ index: Int32) -> String { "t" + Timestamp.pad(Int64(index), trackDigits) }
    /// The id of artist `index`, e.g. `a00045`.
    public func artist(_ index: Int32) -> String { "a" + Timestamp.pad(Int64(index), artistDigits) }
    /// The id of album `index`, e.g. `al000045`.
    public func album(_ index: Int32) -> String { "al" + Timestamp.pad(Int64(index), albumDigits) }
}

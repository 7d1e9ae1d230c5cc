import EncoreCore

/// A calendar day (UTC) that a playlist is made for: a Discover Weekly week (a Monday) or a Daily Mix day.
///
/// A date is a day number (days since 1970-01-01); its ``timestamp`` is midnight UTC of that day, which is the
/// reference time of the playlist: only events before it belong to the history it is made from, and a track must be
/// released at or before it.
public struct PlaylistDate: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// Days since 1970-01-01 (UTC).
    public let dayNumber: Int64

    /// The day `dayNumber` days after 1970-01-01.
    public init(dayNumber: Int64) { self.dayNumber = dayNumber }

    /// The day of a `YYYY-MM-DD` date.
    /// - Throws: ``PlaylistError/invalidDate(_:reason:)`` when the text is not such a date.
    public init(_ text: String) throws(PlaylistError) {
        guard text.utf8.count == 10, let t = Timestamp.parse(text) else {
            throw .invalidDate(text, reason: "expected a calendar date YYYY-MM-DD")
        }
        dayNumber = t / Timestamp.secondsPerDay
    }

    /// The day holding a Unix timestamp (UTC).
    public init(containing timestamp: Int64) {
        dayNumber = Timestamp.floorDiv(timestamp, Timestamp.secondsPerDay)
    }

    /// The Monday of a `YYYY-MM-DD` week date.
    /// - Throws: ``PlaylistError/invalidDate(_:reason:)`` when the text is not a date or not a Monday.
    public static func week(_ text: String) throws(PlaylistError) -> PlaylistDate {
        let d = try PlaylistDate(text)
        guard d.isMonday else { throw .invalidDate(text, reason: "a week is named by its Monday, this is a \(d.weekdayName)") }
        return d
    }

    /// The first Monday strictly after the day of `timestamp`: the default Discover Weekly week for a log whose
    /// latest event is at `timestamp`.
    public static func mondayAfter(_ timestamp: Int64) -> PlaylistDate {
        let day = PlaylistDate(containing: timestamp)
        return PlaylistDate(dayNumber: day.dayNumber + 7 - day.weekday)
    }

    /// Midnight UTC of the day, in Unix seconds.
    public var timestamp: Int64 { dayNumber * Timestamp.secondsPerDay }

    /// The day as `YYYY-MM-DD`.
    public var description: String { Timestamp.dateString(timestamp: timestamp) }

    /// The weekday, 0 for Monday through 6 for Sunday.
    public var weekday: Int64 {
        // 1970-01-01 was a Thursday (weekday 3).
        let w = (dayNumber + 3) % 7
        return w < 0 ? w + 7 : w
    }

    /// Whether the day is a Monday.
    public var isMonday: Bool { weekday == 0 }

    /// The Monday of the week holding this day.
    public var monday: PlaylistDate { PlaylistDate(dayNumber: dayNumber - weekday) }

    /// The day `days` days later (earlier when negative).
    public func adding(days: Int64) -> PlaylistDate { PlaylistDate(dayNumber: dayNumber + days) }

    var weekdayName: String {
        ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"][Int(weekday)]
    }

    public static func < (a: PlaylistDate, b: PlaylistDate) -> Bool { a.dayNumber < b.dayNumber }
}

/// Stable seeds for the playlists' random choices: FNV-1a over the UTF-8 bytes of the key parts, finished by the
/// SplitMix64 mixer. Unlike Swift's `Hasher`, the value is the same in every process and on every platform, so a
/// (user, week) or (user, day) always gets the same playlist.
public enum StableSeed {
    /// The 64-bit FNV-1a hash of `bytes`.
    public static func fnv1a64<S: Sequence>(_ bytes: S) -> UInt64 where S.Element == UInt8 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for b in bytes {
            h ^= UInt64(b)
            h = h &* 0x0000_0100_0000_01B3
        }
        return h
    }

    /// A seed for the given parts (joined with a unit separator, so `("ab", "c")` and `("a", "bc")` differ), mixed with
    /// `salt`.
    public static func make(_ parts: [String], salt: UInt64 = 0) -> UInt64 {
        var bytes: [UInt8] = []
        for (i, p) in parts.enumerated() {
            if i > 0 { bytes.append(0x1F) }
            bytes.append(contentsOf: p.utf8)
        }
        return mix(fnv1a64(bytes) ^ mix(salt &+ 0x9E37_79B9_7F4A_7C15))
    }

    /// The SplitMix64 finalizer: a bijective mix of 64 bits.
    public static func mix(_ value: UInt64) -> UInt64 {
        var z = value
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A sub-seed of `seed` for a numbered part (a cluster, a source), independent of the others.
    public static func derive(_ seed: UInt64, _ part: UInt64) -> UInt64 {
        mix(seed ^ mix(part &* 0xD1B5_4A32_D192_ED03 &+ 1))
    }
}

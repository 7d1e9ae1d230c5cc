/// Calendar arithmetic (proleptic Gregorian, UTC) and the one timestamp parser every reader uses: play logs,
/// catalogs, feedback files, events posted to the server and bundle metadata.
///
/// Day numbers count days since 1970-01-01; civil-date conversions follow H. Hinnant's algorithms, so they hold for
/// every year, including years before 1970.
public enum Timestamp {
    /// Seconds in a day.
    public static let secondsPerDay: Int64 = 86_400
    /// Seconds in a week.
    public static let secondsPerWeek: Int64 = 7 * 86_400

    /// `a / b` rounded toward negative infinity (`b > 0`).
    @inlinable
    public static func floorDiv(_ a: Int64, _ b: Int64) -> Int64 { a >= 0 ? a / b : -((-a + b - 1) / b) }

    /// The day number (days since 1970-01-01) of a civil date.
    public static func days(year: Int64, month: Int64, day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    /// The civil date of a day number (days since 1970-01-01).
    public static func civil(days: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d)
    }

    /// The number of days in a month (1-12) of a year.
    public static func daysInMonth(year: Int64, month: Int64) -> Int64 {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// The UTC date of a Unix timestamp as `YYYY-MM-DD`.
    public static func dateString(timestamp: Int64) -> String {
        let c = civil(days: floorDiv(timestamp, secondsPerDay))
        return pad(c.year, 4) + "-" + pad(c.month, 2) + "-" + pad(c.day, 2)
    }

    /// The UTC time of a Unix timestamp as `YYYY-MM-DDThh:mm:ssZ`.
    public static func isoString(timestamp: Int64) -> String {
        let secs = timestamp - floorDiv(timestamp, secondsPerDay) * secondsPerDay
        return dateString(timestamp: timestamp) + "T" + pad(secs / 3600, 2) + ":" + pad(secs / 60 % 60, 2) + ":"
            + pad(secs % 60, 2) + "Z"
    }

    package static func pad(_ v: Int64, _ width: Int) -> String {
        let s = String(v)
        return s.count >= width ? s : String(repeating: "0", count: width - s.count) + s
    }

    /// Seconds since the epoch of a timestamp text: integer seconds, `YYYY-MM-DD` (midnight UTC), or
    /// `YYYY-MM-DD[T ]HH:MM:SS[.fff][Z|+HH:MM|-HH:MM|+HHMM|-HHMM]` (no zone means UTC; a fraction rounds down).
    /// Spaces around the text are allowed. `nil` when the text is none of these.
    public static func parse(_ text: String) -> Int64? {
        var text = text
        return text.withUTF8 { b in
            guard let base = b.baseAddress, !b.isEmpty else { return nil }
            return parse(base, start: 0, end: b.count)
        }
    }

    /// Milliseconds since the epoch of the forms ``parse(_:)`` reads, keeping up to three fraction digits.
    public static func parseMilliseconds(_ text: String) -> Int64? {
        var text = text
        return text.withUTF8 { b in
            guard let base = b.baseAddress, !b.isEmpty else { return nil }
            return parseMilliseconds(base, start: 0, end: b.count)
        }
    }

    /// ``parse(_:)`` over the bytes `p[start..<end]`.
    @inline(__always)
    public static func parse(_ p: UnsafePointer<UInt8>, start: Int, end: Int) -> Int64? {
        parseMilliseconds(p, start: start, end: end).map { floorDiv($0, 1000) }
    }

    /// ``parseMilliseconds(_:)`` over the bytes `p[start..<end]`.
    public static func parseMilliseconds(_ p: UnsafePointer<UInt8>, start: Int, end: Int) -> Int64? {
        var s = start, e = end
        while s < e && p[s] == 0x20 { s += 1 }
        while e > s && p[e - 1] == 0x20 { e -= 1 }
        if s == e { return nil }
        // Integer seconds.
        var i = s
        let negative = p[i] == UInt8(ascii: "-")
        if negative || p[i] == UInt8(ascii: "+") { i += 1 }
        if i < e && e - i <= 15 {
            let (v, j) = ASCIIDigits.prefix(p, from: i, to: e)
            if j == e { return (negative ? -v : v) * 1000 }
        }
        return isoMilliseconds(p, start: s, end: e)
    }

    /// The ISO-8601 forms of ``parseMilliseconds(_:start:end:)``.
    static func isoMilliseconds(_ p: UnsafePointer<UInt8>, start s: Int, end e: Int) -> Int64? {
        func digits(_ at: Int, _ n: Int) -> Int64? {
            guard at + n <= e else { return nil }
            var v: Int64 = 0
            for k in at..<(at + n) {
                let d = p[k] &- 0x30
                if d > 9 { return nil }
                v = v * 10 + Int64(d)
            }
            return v
        }
        func byte(_ at: Int) -> UInt8 { at < e ? p[at] : 0 }
        guard let year = digits(s, 4), byte(s + 4) == UInt8(ascii: "-"), let month = digits(s + 5, 2),
              byte(s + 7) == UInt8(ascii: "-"), let day = digits(s + 8, 2),
              (1...12).contains(month), day >= 1, day <= daysInMonth(year: year, month: month)
        else { return nil }
        var ms = days(year: year, month: month, day: day) * secondsPerDay * 1000
        var i = s + 10
        if i == e { return ms }
        guard byte(i) == UInt8(ascii: "T") || byte(i) == UInt8(ascii: " "),
              let hour = digits(i + 1, 2), byte(i + 3) == UInt8(ascii: ":"), let minute = digits(i + 4, 2),
              byte(i + 6) == UInt8(ascii: ":"), let second = digits(i + 7, 2),
              hour <= 23, minute <= 59, second <= 60
        else { return nil }
        ms += (hour * 3600 + minute * 60 + second) * 1000
        i += 9
        if byte(i) == UInt8(ascii: ".") || byte(i) == UInt8(ascii: ",") {
            i += 1
            let fractionStart = i
            var scale: Int64 = 100
            while i < e && p[i] &- 0x30 <= 9 {
                ms += Int64(p[i] &- 0x30) * scale
                scale /= 10
                i += 1
            }
            if i == fractionStart { return nil }
        }
        if i == e { return ms }
        if byte(i) == UInt8(ascii: "Z") || byte(i) == UInt8(ascii: "z") { return i + 1 == e ? ms : nil }
        guard byte(i) == UInt8(ascii: "+") || byte(i) == UInt8(ascii: "-"), let oh = digits(i + 1, 2), oh <= 23
        else { return nil }
        var om: Int64 = 0
        if i + 3 == e {
            om = 0
        } else if byte(i + 3) == UInt8(ascii: ":"), let m = digits(i + 4, 2), i + 6 == e {
            om = m
        } else if let m = digits(i + 3, 2), i + 5 == e {
            om = m
        } else {
            return nil
        }
        guard om <= 59 else { return nil }
        let offset = (oh * 3600 + om * 60) * 1000
        // Local time = UTC + offset, so UTC = local - offset.
        return p[i] == UInt8(ascii: "+") ? ms - offset : ms + offset
    }
}

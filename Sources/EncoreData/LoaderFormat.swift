import EncoreCore

/// How a delimited text file of interactions is laid out: its separator, whether it starts with a header, and which
/// columns hold the user, the item, the weight and the timestamp.
///
/// ``DelimitedLoader`` reads files in this format. Presets cover the public data sets Encore is evaluated on
/// (``movieLens100K``, ``movieLensDat``, ``movieLensCSV``, ``lastFM360K``) and Encore's own play log
/// (``encorePlays``); ``guess(path:)`` picks one from a file name.
///
/// Rules the loader applies to every format:
/// - Lines end in `\n` or `\r\n`; the last line may lack its newline. Empty lines are skipped.
/// - Ids are taken byte for byte (no trimming) and must be valid UTF-8 to round-trip; an empty id is a malformed row.
/// - Numbers (weight, timestamp, the ``minimum`` column) may have spaces around them.
/// - A weight must be a finite, non-negative decimal number. Without a weight column every row weighs 1.
/// - A timestamp is an integer number of seconds since the epoch, an ISO-8601 date `YYYY-MM-DD` (midnight UTC), or an
///   ISO-8601 date-time `YYYY-MM-DDTHH:MM:SS` with an optional fraction (dropped) and a zone (`Z` or `+HH:MM`;
///   none means UTC).
/// - Extra columns are ignored.
public struct DelimitedFormat: Sendable, Equatable, CustomStringConvertible {
    /// A column of the file, chosen by its name in the header or by its 0-based position.
    ///
    /// String and integer literals convert: `"userId"` is `.name("userId")`, `2` is `.index(2)`.
    public enum ColumnRef: Sendable, Hashable, CustomStringConvertible, ExpressibleByStringLiteral,
        ExpressibleByIntegerLiteral
    {
        /// The column whose header cell is exactly this name (the format must have a header).
        case name(String)
        /// The column at this 0-based position.
        case index(Int)

        /// A column by header name.
        public init(stringLiteral value: String) { self = .name(value) }

        /// A column by 0-based position.
        public init(integerLiteral value: Int) { self = .index(value) }

        /// `name` for a named column, `column N` for a positional one.
        public var description: String {
            switch self {
            case .name(let n): return n
            case .index(let i): return "column \(i)"
            }
        }
    }

    /// A row filter: rows whose numeric `column` is below `value` are dropped (and counted in
    /// ``LoadReport/rowsFiltered``). Encore's play log uses it to drop skips (`ms_played < 30000`).
    public struct Minimum: Sendable, Equatable {
        /// The column compared; it must hold a number in every row (a row where it does not is malformed).
        public var column: ColumnRef
        /// The smallest value kept.
        public var value: Double

        /// Keeps rows whose `column` is at least `value`.
        public init(column: ColumnRef, value: Double) {
            self.column = column
            self.value = value
        }
    }

    /// The field separator: one byte such as `"\t"` or `","`, or several such as `"::"` (MovieLens `ratings.dat`).
    public var separator: String
    /// Whether the first non-empty line is a header naming the columns (it is not read as data).
    public var hasHeader: Bool
    /// The column of the user id.
    public var user: ColumnRef
    /// The column of the item id.
    public var item: ColumnRef
    /// The column of the weight (a rating or a play count); `nil` gives every row weight 1.
    public var weight: ColumnRef?
    /// The column of the timestamp; `nil` leaves ``Interactions/timestamps`` empty.
    public var timestamp: ColumnRef?
    /// An optional filter that drops rows whose numeric column is below a value.
    public var minimum: Minimum?
    /// Whether fields may be quoted CSV-style (`"a,b"`, with `""` for a quote inside). A quoted field must not span
    /// lines. On by default for a comma separator.
    public var quoted: Bool
    /// Whether a malformed row is skipped and counted in the ``LoadReport`` (`true`) or stops the load with
    /// ``DataError/malformedRow(file:line:field:reason:)`` (`false`).
    public var skipBadRows: Bool

    /// A format. `quoted` defaults to `true` exactly when the separator is a comma.
    public init(
        separator: String = "\t", hasHeader: Bool = true, user: ColumnRef, item: ColumnRef,
        weight: ColumnRef? = nil, timestamp: ColumnRef? = nil, minimum: Minimum? = nil, quoted: Bool? = nil,
        skipBadRows: Bool = false
    ) {
        self.separator = separator
        self.hasHeader = hasHeader
        self.user = user
        self.item = item
        self.weight = weight
        self.timestamp = timestamp
        self.minimum = minimum
        self.quoted = quoted ?? (separator == ",")
        self.skipBadRows = skipBadRows
    }

    /// A one-line summary, e.g. `separator "\t", header, user user, item item, ...`.
    public var description: String {
        var parts = ["separator \(separator.debugDescription)", hasHeader ? "header" : "no header",
                     "user \(user)", "item \(item)"]
        if let weight { parts.append("weight \(weight)") }
        if let timestamp { parts.append("timestamp \(timestamp)") }
        if let minimum { parts.append("keep \(minimum.column) >= \(minimum.value)") }
        if quoted { parts.append("quoted") }
        if skipBadRows { parts.append("skip bad rows") }
        return parts.joined(separator: ", ")
    }

    // MARK: Presets

    /// MovieLens 100K `u.data`: tab-separated, no header, `user item rating timestamp`; the rating is the weight.
    public static let movieLens100K = DelimitedFormat(
        separator: "\t", hasHeader: false, user: .index(0), item: .index(1), weight: .index(2), timestamp: .index(3))

    /// MovieLens 1M and 10M `ratings.dat`: `user::item::rating::timestamp`, no header; the rating is the weight.
    public static let movieLensDat = DelimitedFormat(
        separator: "::", hasHeader: false, user: .index(0), item: .index(1), weight: .index(2), timestamp: .index(3))

    /// MovieLens 1M `ratings.dat` (the same layout as ``movieLensDat``).
    public static let movieLens1M = movieLensDat

    /// MovieLens 10M `ratings.dat` (the same layout as ``movieLensDat``).
    public static let movieLens10M = movieLensDat

    /// MovieLens `ratings.csv` (20M, 25M, 32M, latest): comma-separated with the header
    /// `userId,movieId,rating,timestamp`; the rating is the weight.
    public static let movieLensCSV = DelimitedFormat(
        separator: ",", hasHeader: true, user: .name("userId"), item: .name("movieId"), weight: .name("rating"),
        timestamp: .name("timestamp"))

    /// Last.fm 360K `usersha1-artmbid-artname-plays.tsv`: tab-separated, no header, columns user-sha1,
    /// artist-mbid (often empty), artist-name, plays. As in Python `implicit`'s `get_lastfm`, the item is the artist
    /// *name* and the play count is the weight. Fields are not quoted (names may contain `"`).
    public static let lastFM360K = DelimitedFormat(
        separator: "\t", hasHeader: false, user: .index(0), item: .index(2), weight: .index(3), quoted: false)

    /// Encore's own play log `plays.tsv`: tab-separated with a header holding (at least) `user`, `item`,
    /// `timestamp` and `ms_played`. Every play weighs 1; plays shorter than 30 s (`ms_played < 30000`) are skips
    /// and are filtered out. Set ``minimum`` to `nil` to keep them.
    public static let encorePlays = DelimitedFormat(
        separator: "\t", hasHeader: true, user: .name("user"), item: .name("item"), weight: nil,
        timestamp: .name("timestamp"), minimum: Minimum(column: .name("ms_played"), value: Double(EventRules.standard.minimumListenMs)))

    /// The header names ``guess(path:)`` looks for (compared without regard to case), by role.
    static let guessNames: (user: [String], item: [String], weight: [String], timestamp: [String]) = (
        ["user", "user_id", "userid"], ["item", "item_id", "itemid"],
        ["weight", "plays", "count", "rating"], ["timestamp", "time", "ts"]
    )

    /// The preset for a well-known file name, or `nil`: `u.data` (``movieLens100K``), `ratings.dat`
    /// (``movieLensDat``), `ratings.csv` (``movieLensCSV``), `usersha1-artmbid-artname-plays.tsv` (``lastFM360K``),
    /// `plays.tsv` (``encorePlays``).
    public static func preset(forFileName name: String) -> DelimitedFormat? {
        let base = name.split(separator: "/", omittingEmptySubsequences: false).last.map(String.init) ?? name
        switch base {
        case "u.data": return .movieLens100K
        case "ratings.dat": return .movieLensDat
        case "ratings.csv": return .movieLensCSV
        case "usersha1-artmbid-artname-plays.tsv": return .lastFM360K
        case "plays.tsv": return .encorePlays
        default: return nil
        }
    }

    /// Picks a format for `path`: the preset for a well-known file name (see ``preset(forFileName:)``), otherwise a
    /// headed file (comma-separated when the name ends in `.csv`, else tab-separated) whose header names the user
    /// (`user`, `user_id`, `userid`) and item (`item`, `item_id`, `itemid`) columns, and optionally a weight
    /// (`weight`, `plays`, `count`, `rating`) and a timestamp (`timestamp`, `time`, `ts`), matched without regard
    /// to case.
    ///
    /// A file whose first row names neither a user nor an item column and has a number as its third field (where a
    /// header would have a name) has no header: its columns are user, item, weight and, when the fourth field of
    /// the first row is a timestamp, timestamp.
    /// - Throws: ``DataError/unreadable(file:reason:)`` when the header cannot be read,
    ///   ``DataError/empty(file:)`` for an empty file, ``DataError/missingColumn(file:column:)`` when no user or
    ///   item column is found.
    public static func guess(path: String) throws(DataError) -> DelimitedFormat {
        if let preset = preset(forFileName: path) { return preset }
        let separator = path.lowercased().hasSuffix(".csv") ? "," : "\t"
        var format = DelimitedFormat(separator: separator, hasHeader: true, user: .index(0), item: .index(1))
        let header = try LoaderBytes.readHeader(path: path, separator: Array(separator.utf8), quoted: format.quoted)
        func find(_ names: [String]) -> ColumnRef? {
            for cell in header where names.contains(cell.lowercased()) { return .name(cell) }
            return nil
        }
        let user = find(guessNames.user), item = find(guessNames.item)
        if user == nil && item == nil && header.count >= 3 && LoaderBytes.isWeight(header[2]) {
            format.hasHeader = false
            format.weight = .index(2)
            format.timestamp = header.count >= 4 && LoaderBytes.isTimestamp(header[3]) ? .index(3) : nil
            return format
        }
        guard let user else { throw .missingColumn(file: path, column: "user") }
        guard let item else { throw .missingColumn(file: path, column: "item") }
        format.user = user
        format.item = item
        format.weight = find(guessNames.weight)
        format.timestamp = find(guessNames.timestamp)
        return format
    }
}

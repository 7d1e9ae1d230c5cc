import Foundation
import Testing
@testable import EncoreCore
@testable import EncoreData


// MARK: - Fixtures

/// Writes `contents` to a file called `name` in a fresh temporary directory, runs `body` with its path, and removes
/// the directory.
private func withLoaderFile<R>(
    _ name: String = "data.tsv", _ contents: String, _ body: (String) throws -> R
) throws -> R {
    try withLoaderFile(name, Array(contents.utf8), body)
}

/// Byte variant of ``withLoaderFile(_:_:_:)``.
private func withLoaderFile<R>(_ name: String, _ bytes: [UInt8], _ body: (String) throws -> R) throws -> R {
    let dir = FileManager.default.temporaryDirectory
        .appendingPathComponent("encore-loader-tests-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let path = dir + "/" + name
    try Data(bytes).write(to: URL(fileURLWithPath: path))
    return try body(path)
}

/// Loads `contents` written to a file `name` with `format`.
private func loadText(
    _ contents: String, name: String = "data.tsv", format: DelimitedFormat, threads: Int = 1
) throws -> (interactions: Interactions, report: LoadReport, path: String) {
    try withLoaderFile(name, contents) { path in
        let (x, r) = try DelimitedLoader.load(path: path, format: format, threads: threads)
        return (x, r, path)
    }
}

/// The error thrown by loading `contents`, or `nil` when it loads.
private func loadError(
    _ contents: String, name: String = "data.tsv", format: DelimitedFormat, threads: Int = 1
) throws -> (error: DataError?, path: String) {
    try withLoaderFile(name, contents) { path in
        do throws(DataError) {
            _ = try DelimitedLoader.load(path: path, format: format, threads: threads)
            return (nil, path)
        } catch {
            return (error, path)
        }
    }
}

/// The (file, line, field, reason) of a malformed-row error.
private func malformed(_ e: DataError?) -> (file: String, line: Int, field: String, reason: String)? {
    if case .malformedRow(let f, let l, let field, let r)? = e { return (f, l, field, r) }
    return nil
}

/// The external user and item id of every interaction, in order.
private func pairs(_ x: Interactions) -> [String] {
    (0..<x.count).map { x.userIDs.id(at: x.users[$0]) + "|" + x.itemIDs.id(at: x.items[$0]) }
}

/// A headed TSV format `user item weight timestamp` (by name).
private let headedTSV = DelimitedFormat(
    separator: "\t", hasHeader: true, user: "user", item: "item", weight: "weight", timestamp: "timestamp")

// MARK: - Presets

@Suite("DelimitedLoader presets")
struct LoaderPresetTests {
    @Test("MovieLens 100K u.data: tab, no header, rating weight, timestamps")
    func movieLens100K() throws {
        let text = "196\t242\t3\t881250949\n186\t302\t3\t891717742\n196\t377\t1\t878887116\n"
        let (x, r, _) = try loadText(text, name: "u.data", format: .movieLens100K)
        #expect(x.userIDs.ids == ["196", "186"])
        #expect(x.itemIDs.ids == ["242", "302", "377"])
        #expect(x.users == [0, 1, 0])
        #expect(x.items == [0, 1, 2])
        #expect(x.weights == [3, 3, 1])
        #expect(x.timestamps == [881_250_949, 891_717_742, 878_887_116])
        #expect(r.rowsRead == 3 && r.rowsKept == 3 && r.rowsSkipped == 0 && r.rowsFiltered == 0)
    }

    @Test("MovieLens 1M ratings.dat: '::' separator, no trailing newline, half stars")
    func movieLensDat() throws {
        let text = "1::1193::5::978300760\n1::661::3::978302109\n2::1193::4.5::978301968"
        let (x, r, _) = try loadText(text, name: "ratings.dat", format: .movieLens1M)
        #expect(x.userIDs.ids == ["1", "2"])
        #expect(x.itemIDs.ids == ["1193", "661"])
        #expect(x.users == [0, 0, 1])
        #expect(x.items == [0, 1, 0])
        #expect(x.weights == [5, 3, 4.5])
        #expect(x.timestamps == [978_300_760, 978_302_109, 978_301_968])
        #expect(r.rowsKept == 3)
        #expect(DelimitedFormat.movieLens10M == DelimitedFormat.movieLensDat)
    }

    @Test("MovieLens ratings.csv: header by name, CRLF line ends")
    func movieLensCSV() throws {
        let text = "userId,movieId,rating,timestamp\r\n1,1,4.0,964982703\r\n1,3,4.0,964981247\r\n2,1,2.5,1445714835\r\n"
        let (x, r, _) = try loadText(text, name: "ratings.csv", format: .movieLensCSV)
        #expect(x.userIDs.ids == ["1", "2"])
        #expect(x.itemIDs.ids == ["1", "3"])
        #expect(x.users == [0, 0, 1])
        #expect(x.items == [0, 1, 0])
        #expect(x.weights == [4, 4, 2.5])
        #expect(x.timestamps == [964_982_703, 964_981_247, 1_445_714_835])
        #expect(r.rowsRead == 3)
    }

    @Test("Last.fm 360K: item is the artist name, empty mbid allowed, UTF-8 names, plays as weight")
    func lastFM() throws {
        let u1 = "00000c289a1829a808ac09c00daf10bc3c4e223b", u2 = "00001411dc427966b17297bf4d69e7e193135d89"
        let text = """
            \(u1)\t3bd73256-3905-4f3a-97e2-8b341527f805\tbetty blowtorch\t2137
            \(u1)\t\tdie Ärzte\t1099
            \(u2)\t\tdie Ärzte\t33
            \(u2)\tf2fb0ff0-5679-42ec-a55c-15109ce6e320\t"weird" al\t7

            """
        let (x, r, _) = try loadText(text, name: "usersha1-artmbid-artname-plays.tsv", format: .lastFM360K)
        #expect(x.userIDs.ids == [u1, u2])
        #expect(x.itemIDs.ids == ["betty blowtorch", "die Ärzte", "\"weird\" al"])
        #expect(x.users == [0, 0, 1, 1])
        #expect(x.items == [0, 1, 1, 2])
        #expect(x.weights == [2137, 1099, 33, 7])
        #expect(x.timestamps.isEmpty)
        #expect(r.rowsKept == 4)
    }

    @Test("Encore plays.tsv: weight 1 per play, skips under 30 s filtered, ISO timestamps")
    func encorePlays() throws {
        let text = """
            user\titem\ttimestamp\tms_played\tcontext
            u1\tt1\t2024-01-02T03:04:05Z\t180000\tradio
            u1\tt2\t2024-01-02\t29999\tradio
            u2\tt1\t1704153600\t30000\tsearch
            u3\tt3\t2024-01-02T03:04:05+02:00\t5000\tsearch
            u2\tt1\t2024-01-02T03:04:05Z\t200000\tsearch
            """
        let (x, r, _) = try loadText(text, name: "plays.tsv", format: .encorePlays)
        #expect(x.userIDs.ids == ["u1", "u2"])  // u3's only play was a skip: no id
        #expect(x.itemIDs.ids == ["t1"])  // t2 and t3 appear only in skips
        #expect(x.users == [0, 1, 1])
        #expect(x.items == [0, 0, 0])
        #expect(x.weights == [1, 1, 1])
        #expect(x.timestamps == [1_704_164_645, 1_704_153_600, 1_704_164_645])
        #expect(r.rowsRead == 5 && r.rowsKept == 3 && r.rowsFiltered == 2 && r.rowsSkipped == 0)
        // Duplicates stay separate rows; the matrix sums them.
        #expect(x.matrix().value(row: 1, col: 0) == 2)
    }

    @Test("guess picks presets by file name and reads the header otherwise")
    func guess() throws {
        #expect(try DelimitedFormat.guess(path: "/x/u.data") == .movieLens100K)
        #expect(try DelimitedFormat.guess(path: "ml-1m/ratings.dat") == .movieLensDat)
        #expect(try DelimitedFormat.guess(path: "ratings.csv") == .movieLensCSV)
        #expect(try DelimitedFormat.guess(path: "usersha1-artmbid-artname-plays.tsv") == .lastFM360K)
        #expect(try DelimitedFormat.guess(path: "/var/encore/plays.tsv") == .encorePlays)

        let f = try withLoaderFile("log.tsv", "ts\tUser_ID\titem\tplays\n5\ta\tb\t2\n") { path in
            try DelimitedFormat.guess(path: path)
        }
        #expect(f == DelimitedFormat(separator: "\t", hasHeader: true, user: "User_ID", item: "item",
                                     weight: "plays", timestamp: "ts"))
        let c = try withLoaderFile("log.csv", "user,item\na,b\n") { path in try DelimitedFormat.guess(path: path) }
        #expect(c.separator == "," && c.quoted && c.weight == nil && c.timestamp == nil)
        _ = try withLoaderFile("log.tsv", "who\twhat\n") { path in
            #expect(throws: DataError.missingColumn(file: path, column: "user")) { try DelimitedFormat.guess(path: path) }
        }
    }

    @Test("guess reads a headerless user, item, weight[, timestamp] file as data, and a real header as names")
    func guessHeaderless() throws {
        // Last.fm's and MovieLens's shape: no header, the third field a number.
        let (x, r, format) = try withLoaderFile("listens.tsv", "alice\tsong a\t3\nbob\tsong b\t1.5\nalice\tsong b\t2\n") { path in
            let f = try DelimitedFormat.guess(path: path)
            let (x, r) = try DelimitedLoader.load(path: path, format: f, threads: 1)
            return (x, r, f)
        }
        #expect(format == DelimitedFormat(separator: "\t", hasHeader: false, user: 0, item: 1, weight: 2))
        #expect(x.userIDs.ids == ["alice", "bob"] && x.itemIDs.ids == ["song a", "song b"])
        #expect(x.users == [0, 1, 0] && x.items == [0, 1, 1] && x.weights == [3, 1.5, 2])
        #expect(x.timestamps.isEmpty && r.rowsRead == 3 && r.rowsKept == 3)

        // A fourth field that is a timestamp is read as one (epoch seconds or ISO-8601), in CSV too.
        let (y, csv) = try withLoaderFile("ratings-export.csv", "1,31,2.5,1260759144\n1,1029,3,2009-12-14\n") { path in
            let f = try DelimitedFormat.guess(path: path)
            return (try DelimitedLoader.load(path: path, format: f, threads: 1).interactions, f)
        }
        #expect(csv == DelimitedFormat(separator: ",", hasHeader: false, user: 0, item: 1, weight: 2, timestamp: 3))
        #expect(y.userIDs.ids == ["1"] && y.itemIDs.ids == ["31", "1029"] && y.weights == [2.5, 3])
        #expect(y.timestamps == [1_260_759_144, 1_260_748_800])

        // A fourth field that is not a timestamp is an extra column, ignored.
        let extra = try withLoaderFile("log.tsv", "u1\ti1\t4\tradio\n") { path in try DelimitedFormat.guess(path: path) }
        #expect(extra == DelimitedFormat(separator: "\t", hasHeader: false, user: 0, item: 1, weight: 2))

        // A real header still names the columns, even when its data rows have a numeric third field.
        let headed = try withLoaderFile("log.tsv", "user\titem\tplays\nu1\ti1\t4\n") { path in
            try DelimitedFormat.guess(path: path)
        }
        #expect(headed == DelimitedFormat(separator: "\t", hasHeader: true, user: "user", item: "item", weight: "plays"))
        // A first row of names that are not the known ones is still refused, naming the missing column.
        _ = try withLoaderFile("log.tsv", "who\twhat\thow_many\nu1\ti1\t4\n") { path in
            #expect(throws: DataError.missingColumn(file: path, column: "user")) { try DelimitedFormat.guess(path: path) }
        }
    }
}

// MARK: - Layout

@Suite("DelimitedLoader layout")
struct LoaderLayoutTests {
    @Test("columns by header name and by index give the same result")
    func nameAndIndex() throws {
        let text = "when,track,score,listener\n100,t1,2,alice\n200,t2,3.5,bob\n300,t1,1,alice\n"
        let byName = DelimitedFormat(separator: ",", user: "listener", item: "track", weight: "score", timestamp: "when")
        let byIndex = DelimitedFormat(separator: ",", user: 3, item: 1, weight: 2, timestamp: 0)
        let a = try loadText(text, format: byName).interactions
        let b = try loadText(text, format: byIndex).interactions
        #expect(a == b)
        #expect(a.userIDs.ids == ["alice", "bob"])
        #expect(a.itemIDs.ids == ["t1", "t2"])
        #expect(a.weights == [2, 3.5, 1])
        #expect(a.timestamps == [100, 200, 300])
    }

    @Test("no weight column: weight 1 per row; no timestamp column: no timestamps")
    func defaults() throws {
        let x = try loadText("a\tb\na\tc\n", format: DelimitedFormat(hasHeader: false, user: 0, item: 1)).interactions
        #expect(x.weights == [1, 1])
        #expect(!x.hasTimestamps)
    }

    @Test("quoted CSV fields: separators and doubled quotes inside quotes")
    func quotedCSV() throws {
        let text = "user,item,weight\n\"a,b\",\"say \"\"hi\"\"\",2\n\"plain\",x,\" 1 \"\nc,\"\",3\n"
        let f = DelimitedFormat(separator: ",", user: "user", item: "item", weight: "weight", skipBadRows: true)
        let (x, r, path) = try loadText(text, format: f)
        #expect(x.userIDs.ids == ["a,b", "plain"])
        #expect(x.itemIDs.ids == ["say \"hi\"", "x"])
        #expect(x.weights == [2, 1])
        // The last row's item is an empty quoted field.
        #expect(r.skipReasons == [.malformedRow(file: path, line: 4, field: "item", reason: "empty id")])
    }

    @Test("broken quotes are malformed rows")
    func brokenQuotes() throws {
        let f = DelimitedFormat(separator: ",", hasHeader: false, user: 0, item: 1)
        let (e1, _) = try loadError("a,b\n\"c,d\n", format: f)
        #expect(malformed(e1)?.line == 2)
        #expect(malformed(e1)?.field == "user")
        #expect(malformed(e1)?.reason.contains("unterminated") == true)
        let (e2, _) = try loadError("a,\"b\"x\n", format: f)
        #expect(malformed(e2)?.line == 1)
        #expect(malformed(e2)?.field == "item")
    }

    @Test("CRLF, blank lines and a missing final newline")
    func lineEnds() throws {
        let text = "\r\nuser\titem\r\n\r\na\tb\r\n\n\nc\td"
        let f = DelimitedFormat(user: "user", item: "item")
        let (x, r, _) = try loadText(text, format: f)
        #expect(pairs(x) == ["a|b", "c|d"])
        #expect(r.rowsRead == 2 && r.blankLines == 3)
        // Line numbers count every line, blank or not.
        let (e, _) = try loadError(text + "\n\nbad\n", format: f)
        #expect(malformed(e)?.line == 9)
    }

    @Test("duplicates are kept as separate rows")
    func duplicates() throws {
        let x = try loadText("u\ti\t2\nu\ti\t3\n", format: .movieLens100K.with(timestamp: nil)).interactions
        #expect(x.count == 2)
        #expect(x.users == [0, 0] && x.items == [0, 0])
        #expect(x.matrix().value(row: 0, col: 0) == 5)
    }

    @Test("UTF-8 ids, a byte-order mark, and canonically equivalent spellings")
    func unicode() throws {
        let bom: [UInt8] = [0xEF, 0xBB, 0xBF]
        let text = "user\titem\nzoë\tcafé\nзвук\tcafe\u{301}\n"  // "é" precomposed, then decomposed
        let x = try withLoaderFile("u.tsv", bom + Array(text.utf8)) { path in
            try DelimitedLoader.load(path: path, format: DelimitedFormat(user: "user", item: "item")).interactions
        }
        #expect(x.userIDs.ids == ["zoë", "звук"])
        #expect(x.itemIDs.count == 1)
        #expect(x.items == [0, 0])
    }

    @Test("numbers: decimals, exponents and surrounding spaces")
    func numbers() throws {
        let text = "a\tb\t4.5\nc\td\t 3 \ne\tf\t1e2\ng\th\t.25\ni\tj\t0\n"
        let x = try loadText(text, format: DelimitedFormat(hasHeader: false, user: 0, item: 1, weight: 2)).interactions
        #expect(x.weights == [4.5, 3, 100, 0.25, 0])
    }

    @Test("ISO-8601 and integer timestamps")
    func timestamps() throws {
        let text = """
            a\tb\t2024-01-02
            a\tb\t2024-01-02T03:04:05Z
            a\tb\t2024-01-02T03:04:05.250Z
            a\tb\t2024-01-02T03:04:05+02:00
            a\tb\t2024-01-02 03:04:05
            a\tb\t2000-02-29T12:00:00Z
            a\tb\t-1
            a\tb\t1969-12-31T23:59:59Z
            """
        let f = DelimitedFormat(hasHeader: false, user: 0, item: 1, timestamp: 2)
        let x = try loadText(text, format: f).interactions
        // 2024-01-02 is 19724 days after 1970-01-01; 03:04:05 is 11045 s.
        let day: Int64 = 19_724 * 86_400
        let time: Int64 = day + 11_045
        let expected: [Int64] = [day, time, time, time - 7_200, time, 951_825_600, -1, -1]
        #expect(x.timestamps == expected)
    }

    @Test("load(bytes:) equals loading the same file; several threads equal one")
    func bytesAndThreads() throws {
        // About 1.3 MB so the file is cut into chunks; ids appear first in every part of the file.
        var lines: [String] = ["user\titem\tweight"]
        var rng = SplitMix64(seed: 11)
        for r in 0..<40_000 {
            let u = r / 7
            let i = Int(rng.next() % 5_000)
            lines.append("user-\(u)-\(String(repeating: "x", count: u % 5))\titem \(i) é\t\(rng.next() % 100)")
        }
        let text = lines.joined(separator: "\n") + "\n"
        #expect(text.utf8.count > 1 << 20)
        let f = DelimitedFormat(user: "user", item: "item", weight: "weight")
        let one = try loadText(text, format: f, threads: 1)
        let four = try loadText(text, format: f, threads: 4)
        let mem = try DelimitedLoader.load(bytes: Array(text.utf8), name: "mem", format: f, threads: 3)
        #expect(one.interactions == four.interactions)
        #expect(one.interactions == mem.interactions)
        #expect(one.interactions.count == 40_000)
        // First-appearance order, checked independently.
        var seen = Set<String>(), order: [String] = []
        for line in lines.dropFirst() {
            let item = String(line.split(separator: "\t")[1])
            if seen.insert(item).inserted { order.append(item) }
        }
        #expect(one.interactions.itemIDs.ids == order)

        // Chunks that keep no rows (everything after the first quarter is filtered out).
        let filtered = DelimitedFormat(
            user: "user", item: "item", timestamp: "weight", minimum: .init(column: "weight", value: 0))
        var tail = lines
        for k in 10_000..<tail.count { tail[k] = "u\ti\t-1" }
        let a = try loadText(tail.joined(separator: "\n"), format: filtered, threads: 1)
        let b = try loadText(tail.joined(separator: "\n"), format: filtered, threads: 4)
        #expect(a.interactions == b.interactions)
        #expect(a.interactions.count == 9_999 && a.report.rowsFiltered == 30_001)
        #expect(a.interactions.timestamps.allSatisfy { $0 >= 0 })

        // A bad row deep in a later chunk is reported with its line in the file.
        var bad = lines
        bad[35_000] = "oops"
        let (e, _) = try loadError(bad.joined(separator: "\n"), format: f, threads: 4)
        #expect(malformed(e)?.line == 35_001)
        #expect(malformed(e)?.field == "item")
    }
}

// MARK: - Errors

@Suite("DelimitedLoader errors")
struct LoaderErrorTests {
    private let ratings = DelimitedFormat(
        separator: ",", user: "userId", item: "movieId", weight: "rating", timestamp: "timestamp")
    private let header = "userId,movieId,rating,timestamp\n"

    /// Loads `header + rows` and returns (line, field, reason) of the malformed-row error.
    private func failure(_ rows: String) throws -> (line: Int, field: String, reason: String)? {
        let (e, path) = try loadError(header + rows, name: "ratings.csv", format: ratings)
        guard let m = malformed(e) else { return nil }
        #expect(m.file == path)
        return (m.line, m.field, m.reason)
    }

    @Test("a missing field names the first missing column")
    func missingField() throws {
        let m = try failure("1,2,3,4\n1,2\n")
        #expect(m?.line == 3)
        #expect(m?.field == "rating")
        #expect(m?.reason == "missing field (the row has 2 fields)")
    }

    @Test("bad weights: text, NaN, negative, infinite, overflow, empty")
    func badWeights() throws {
        for (value, reason) in [
            ("abc", "not a number"), ("NaN", "NaN is not allowed"), ("-1", "negative, expected a value >= 0"),
            ("inf", "infinite or out of range"), ("1e39", "infinite or out of range"),
            ("", "empty, expected a number"), ("1.5.2", "not a number"), ("0x10", "not a number"),
        ] {
            let m = try failure("1,2,3,4\n5,6,\(value),7\n")
            #expect(m?.line == 3, "\(value)")
            #expect(m?.field == "rating", "\(value)")
            #expect(m?.reason == reason, "\(value)")
        }
    }

    @Test("bad timestamps: words, impossible dates, bad zones, fractions of seconds")
    func badTimestamps() throws {
        for value in ["yesterday", "2023-02-29", "2024-13-01", "2024-01-02T25:00:00Z", "2024-01-02T03:04:05X",
                      "1700000000.5", "2024-01-02T03:04"] {
            let m = try failure("1,2,3,\(value)\n")
            #expect(m?.line == 2, "\(value)")
            #expect(m?.field == "timestamp", "\(value)")
        }
        #expect(try failure("1,2,3,\n")?.reason == "empty, expected a timestamp")
    }

    @Test("an empty user or item id is malformed")
    func emptyIDs() throws {
        #expect(try failure(",2,3,4\n")?.field == "userId")
        #expect(try failure("1,,3,4\n")?.field == "movieId")
    }

    @Test("without a header, fields are named by role")
    func roleNames() throws {
        let (e, path) = try loadError("1\t2\t3\t4\n1\t2\tx\t4\n", name: "u.data", format: .movieLens100K)
        #expect(e == .malformedRow(file: path, line: 2, field: "weight", reason: "not a number"))
        var f = DelimitedFormat.movieLens100K
        f.minimum = .init(column: 2, value: 1)
        let (e2, _) = try loadError("1\t2\t3\t4\n1\t2\t\t4\n", name: "u.data", format: f)
        #expect(malformed(e2)?.field == "weight")
        f.weight = nil
        let (e3, _) = try loadError("1\t2\tfoo\t4\n", name: "u.data", format: f)
        #expect(malformed(e3)?.field == "column 2")
    }

    @Test("skipBadRows skips, counts and reports the first reasons with their lines")
    func skipBadRows() throws {
        var f = ratings
        f.skipBadRows = true
        var rows = "1,10,4,100\n1,11,x,100\n2,10,3,when\n\n3,12\n"
        for k in 0..<12 { rows += "9,\(k),-1,1\n" }
        rows += "2,11,5,200\n"
        let (x, r, path) = try loadText(header + rows, name: "ratings.csv", format: f)
        #expect(pairs(x) == ["1|10", "2|11"])
        #expect(x.userIDs.ids == ["1", "2"])  // users of skipped rows get no id
        #expect(r.rowsRead == 17 && r.rowsKept == 2 && r.rowsSkipped == 15 && r.rowsFiltered == 0)
        #expect(r.blankLines == 1)
        #expect(r.skipReasons.count == DelimitedLoader.maxProblems)
        #expect(r.skipReasons[0] == .malformedRow(file: path, line: 3, field: "rating", reason: "not a number"))
        #expect(malformed(r.skipReasons[1])?.line == 4)
        #expect(malformed(r.skipReasons[1])?.field == "timestamp")
        #expect(r.skipReasons[2] == .malformedRow(
            file: path, line: 6, field: "rating", reason: "missing field (the row has 2 fields)"))
        #expect(malformed(r.skipReasons[3])?.line == 7)
        #expect(r.description.contains("17 rows read, 2 kept, 15 skipped, 0 filtered"))
    }

    @Test("the minimum filter drops rows below the value and counts them")
    func filter() throws {
        let text = "user\titem\tms\nA\tx\t29999\nA\ty\t30000\nB\tz\t12\nB\tx\t31000.5\n"
        let f = DelimitedFormat(user: "user", item: "item", minimum: .init(column: "ms", value: 30_000))
        let (x, r, _) = try loadText(text, format: f)
        #expect(pairs(x) == ["A|y", "B|x"])
        #expect(x.itemIDs.ids == ["y", "x"])
        #expect(r.rowsFiltered == 2 && r.rowsKept == 2)
        let (e, _) = try loadError(text + "C\tw\tlong\n", format: f)
        #expect(malformed(e)?.field == "ms")
        #expect(malformed(e)?.line == 6)
    }

    @Test("a named column missing from the header, or named without a header")
    func missingColumn() throws {
        let (e, path) = try loadError("userId,movieId,timestamp\n1,2,3\n", name: "r.csv", format: ratings)
        #expect(e == .missingColumn(file: path, column: "rating"))
        let noHeader = DelimitedFormat(hasHeader: false, user: "user", item: 1)
        let (e2, path2) = try loadError("a\tb\n", format: noHeader)
        #expect(e2 == .missingColumn(file: path2, column: "user"))
        let (e3, path3) = try loadError("user\titem\na\tb\n", format: DelimitedFormat(user: "user", item: 5))
        #expect(e3 == .missingColumn(file: path3, column: "item (column 5)"))
    }

    @Test("unreadable paths")
    func unreadable() throws {
        let missing = "/nonexistent-encore-dir/none.tsv"
        let e = #expect(throws: DataError.self) { try DelimitedLoader.load(path: missing, format: .movieLens100K) }
        if case .unreadable(let f, let reason)? = e {
            #expect(f == missing)
            #expect(reason.contains("No such file"))
        } else {
            Issue.record("expected unreadable, got \(String(describing: e))")
        }
        let dir = FileManager.default.temporaryDirectory.path
        #expect(throws: DataError.unreadable(file: dir, reason: "is a directory")) {
            try DelimitedLoader.load(path: dir, format: .movieLens100K)
        }
    }

    @Test("no rows: empty file, header only, blank lines only, everything filtered")
    func empty() throws {
        for (text, format) in [
            ("", DelimitedFormat.movieLens100K), ("userId,movieId,rating,timestamp\n", ratings),
            ("\n\r\n\n", DelimitedFormat.movieLens100K), ("\n", ratings),
            ("user\titem\tms_played\ttimestamp\na\tb\t10\t1\n", DelimitedFormat.encorePlays),
        ] {
            let (e, path) = try loadError(text, format: format)
            #expect(e == .empty(file: path), "\(text.debugDescription)")
        }
    }

    @Test("invalid formats")
    func invalidFormats() throws {
        let (e, _) = try loadError("a\tb\n", format: DelimitedFormat(separator: "", hasHeader: false, user: 0, item: 1))
        #expect(e == .invalidArgument("the separator is empty"))
        let (e2, _) = try loadError("a\tb\n", format: DelimitedFormat(hasHeader: false, user: -1, item: 1))
        #expect(e2 == .invalidArgument("user column index -1 is negative"))
    }
}

extension DelimitedFormat {
    /// A copy with another timestamp column (a test convenience).
    fileprivate func with(timestamp: ColumnRef?) -> DelimitedFormat {
        var f = self
        f.timestamp = timestamp
        return f
    }
}

import Foundation
import EncoreCore

/// A small reader of headed, tab-separated metadata files (`tracks.tsv`, `artists.tsv`, `likes.tsv`, ...): the rows
/// are visited one at a time with their fields as byte ranges, so a file of millions of rows makes no `String` per
/// field unless asked.
package struct DelimitedTable {
    let file: String
    let bytes: [UInt8]
    let header: [String]

    /// Reads `path` whole and parses its header line.
    package init(path: String) throws(PlaylistError) {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw .unreadable(file: path, reason: (error as NSError).localizedDescription)
        }
        try self.init(bytes: [UInt8](data), name: path)
    }

    /// Parses bytes already in memory; `name` stands for the file in errors.
    package init(bytes: [UInt8], name: String) throws(PlaylistError) {
        file = name
        var b = bytes
        if b.count >= 3, b[0] == 0xEF, b[1] == 0xBB, b[2] == 0xBF { b.removeFirst(3) }
        self.bytes = b
        let end = b.firstIndex(of: 10) ?? b.count
        var line = b[0..<end]
        if line.last == 13 { line = line.dropLast() }
        guard !line.isEmpty else { throw .malformedRow(file: name, line: 1, field: "header", reason: "empty header") }
        header = line.split(separator: 9, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
    }

    /// The position of a named column, or the first of several spellings.
    func column(_ names: String...) -> Int? {
        for n in names { if let i = header.firstIndex(of: n) { return i } }
        return nil
    }

    /// The position of a named column.
    /// - Throws: ``PlaylistError/missingColumn(file:column:)``.
    package func requiredColumn(_ names: String...) throws(PlaylistError) -> Int {
        for n in names { if let i = header.firstIndex(of: n) { return i } }
        throw .missingColumn(file: file, column: names.first ?? "")
    }

    /// One data row: its 1-based line number and the byte range of each field.
    package struct Row {
        package let line: Int
        package let fields: [Range<Int>]
    }

    /// Calls `body` for every non-empty data line. A row with fewer fields than `minimumFields` is an error.
    package func forEachRow(
        minimumFields: Int, _ body: (Row) throws(PlaylistError) -> Void
    ) throws(PlaylistError) {
        var lineNumber = 1
        var start = (bytes.firstIndex(of: 10) ?? bytes.count) + 1
        var fields: [Range<Int>] = []
        while start < bytes.count {
            lineNumber += 1
            var end = start
            while end < bytes.count && bytes[end] != 10 { end += 1 }
            var stop = end
            if stop > start && bytes[stop - 1] == 13 { stop -= 1 }
            if stop > start {
                fields.removeAll(keepingCapacity: true)
                var f = start
                for i in start..<stop where bytes[i] == 9 {
                    fields.append(f..<i)
                    f = i + 1
                }
                fields.append(f..<stop)
                guard fields.count >= minimumFields else {
                    throw .malformedRow(
                        file: file, line: lineNumber, field: header[min(fields.count, header.count - 1)],
                        reason: "the row has \(fields.count) fields, the header \(header.count)")
                }
                try body(Row(line: lineNumber, fields: fields))
            }
            start = end + 1
        }
    }

    /// A field as a string.
    package func string(_ row: Row, _ column: Int) -> String {
        String(decoding: bytes[row.fields[column]], as: UTF8.self)
    }

    /// Whether a field is empty.
    package func isEmpty(_ row: Row, _ column: Int) -> Bool { row.fields[column].isEmpty }

    /// A field as an integer.
    func integer(_ row: Row, _ column: Int) throws(PlaylistError) -> Int64 {
        let r = row.fields[column]
        var v: Int64 = 0
        var negative = false
        var i = r.lowerBound
        if i < r.upperBound && bytes[i] == UInt8(ascii: "-") { negative = true; i += 1 }
        guard i < r.upperBound else { throw malformed(row, column, "expected an integer, the field is empty") }
        while i < r.upperBound {
            let b = bytes[i]
            guard b >= 48 && b <= 57, v < Int64.max / 10 - 10 else {
                throw malformed(row, column, "expected an integer, got '\(string(row, column))'")
            }
            v = v * 10 + Int64(b - 48)
            i += 1
        }
        return negative ? -v : v
    }

    /// A field as a timestamp: Unix seconds, `YYYY-MM-DD` or `YYYY-MM-DDThh:mm:ssZ`.
    func timestamp(_ row: Row, _ column: Int) throws(PlaylistError) -> Int64 {
        let r = row.fields[column]
        if r.count >= 10, bytes[r.lowerBound + 4] == UInt8(ascii: "-") {
            guard let t = Timestamp.parse(string(row, column)) else {
                throw malformed(row, column, "expected a date YYYY-MM-DD, got '\(string(row, column))'")
            }
            return t
        }
        return try integer(row, column)
    }

    /// A field as a boolean: `1`/`0`, `true`/`false`, `yes`/`no` (any case); empty is false.
    func boolean(_ row: Row, _ column: Int) throws(PlaylistError) -> Bool {
        switch string(row, column).lowercased() {
        case "1", "true", "yes", "y", "t": return true
        case "0", "false", "no", "n", "f", "": return false
        default: throw malformed(row, column, "expected 0/1 or true/false, got '\(string(row, column))'")
        }
    }

    package func malformed(_ row: Row, _ column: Int, _ reason: String) -> PlaylistError {
        .malformedRow(file: file, line: row.line, field: column < header.count ? header[column] : "column \(column)",
                      reason: reason)
    }
}

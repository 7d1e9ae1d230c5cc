import EncoreCore
import Foundation

/// Documents read from a file: one id and one text per row (several rows may share an id).
public struct TextCorpus: Sendable, Equatable {
    /// The id of each document (a track or an artist).
    public var ids: [String]
    /// The text of each document.
    public var texts: [String]
    /// The `kind` column when the file has one (bio, review, tags), else empty.
    public var kinds: [String]

    /// The number of documents.
    public var count: Int { ids.count }

    /// The file formats ``read(path:idColumn:textColumn:format:)`` accepts.
    public enum Format: String, Sendable, CaseIterable {
        /// Chosen from the extension (`.jsonl`/`.ndjson`, `.csv`, else tab-separated).
        case auto
        /// Tab-separated with a header; fields may be quoted with `"` (a doubled `""` inside is one quote).
        case tsv
        /// Comma-separated with a header, quoted fields as RFC 4180.
        case csv
        /// One JSON object per line with the id and text members.
        case jsonl
    }

    /// Reads a corpus from `path`: TSV or CSV with a header naming `idColumn` and `textColumn` (quoted fields allowed,
    /// also across lines), or JSON Lines with members of those names. Blank lines are skipped.
    ///
    /// - Throws: ``TextError/unreadable(file:reason:)``, ``TextError/missingColumn(file:column:header:)``,
    ///   ``TextError/malformedRow(file:line:field:reason:)`` (naming the file, line and field),
    ///   ``TextError/emptyCorpus(_:)`` when no row remains.
    public static func read(path: String, idColumn: String = "id", textColumn: String = "text",
                            format: Format = .auto) throws(TextError) -> TextCorpus {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            let reason = FileManager.default.fileExists(atPath: path) ? "\(error.localizedDescription)" : "No such file or directory"
            throw .unreadable(file: path, reason: reason)
        }
        var f = format
        if f == .auto {
            let lower = path.lowercased()
            f = lower.hasSuffix(".jsonl") || lower.hasSuffix(".ndjson") ? .jsonl : lower.hasSuffix(".csv") ? .csv : .tsv
        }
        let corpus: TextCorpus
        switch f {
        case .jsonl: corpus = try readJSONLines(data, path: path, idColumn: idColumn, textColumn: textColumn)
        case .csv: corpus = try readDelimited(data, separator: UInt8(ascii: ","), path: path, idColumn: idColumn, textColumn: textColumn)
        case .tsv, .auto: corpus = try readDelimited(data, separator: 9, path: path, idColumn: idColumn, textColumn: textColumn)
        }
        guard corpus.count > 0 else { throw .emptyCorpus("\(path) has no documents") }
        return corpus
    }

    static func readJSONLines(_ data: Data, path: String, idColumn: String, textColumn: String) throws(TextError) -> TextCorpus {
        var out = TextCorpus(ids: [], texts: [], kinds: [])
        let bytes = [UInt8](data)
        var line = 0
        var start = 0
        while start < bytes.count {
            line += 1
            var end = start
            while end < bytes.count && bytes[end] != 10 { end += 1 }
            defer { start = end + 1 }
            let slice = bytes[start..<end]
            if slice.allSatisfy({ $0 == 32 || $0 == 9 || $0 == 13 }) { continue }
            let object: Any
            do {
                object = try JSONSerialization.jsonObject(with: Data(slice))
            } catch {
                throw .malformedRow(file: path, line: line, field: "json", reason: "not a JSON object: \(error.localizedDescription)")
            }
            guard let dict = object as? [String: Any] else {
                throw .malformedRow(file: path, line: line, field: "json", reason: "not a JSON object")
            }
            func member(_ name: String, number: Bool) throws(TextError) -> String {
                guard let v = dict[name], !(v is NSNull) else {
                    throw .malformedRow(file: path, line: line, field: name, reason: "missing")
                }
                if let s = v as? String { return s }
                if number, !(v is Bool), let n = v as? NSNumber, let i = Int64(exactly: n.doubleValue) { return String(i) }
                throw .malformedRow(file: path, line: line, field: name, reason: "not a string")
            }
            let id = try member(idColumn, number: true)
            guard !id.isEmpty else { throw .malformedRow(file: path, line: line, field: idColumn, reason: "empty id") }
            out.ids.append(id)
            out.texts.append(try member(textColumn, number: false))
            out.kinds.append((dict["kind"] as? String) ?? "")
        }
        if out.kinds.allSatisfy(\.isEmpty) { out.kinds = [] }
        return out
    }

    static func readDelimited(_ data: Data, separator: UInt8, path: String, idColumn: String,
                              textColumn: String) throws(TextError) -> TextCorpus {
        var reader = DelimitedRecords(bytes: [UInt8](data), separator: separator, path: path)
        guard let (_, header) = try reader.next() else { throw .emptyCorpus("\(path) is empty (no header)") }
        var names = header
        if let first = names.first, first.hasPrefix("\u{FEFF}") { names[0] = String(first.dropFirst()) }
        guard let idIndex = names.firstIndex(of: idColumn) else {
            throw .missingColumn(file: path, column: idColumn, header: names)
        }
        guard let textIndex = names.firstIndex(of: textColumn) else {
            throw .missingColumn(file: path, column: textColumn, header: names)
        }
        let kindIndex = names.firstIndex(of: "kind")
        var out = TextCorpus(ids: [], texts: [], kinds: [])
        /// The next record, with a field number in an error replaced by the header's name.
        func nextRecord() throws(TextError) -> (Int, [String])? {
            do {
                return try reader.next()
            } catch .malformedRow(let file, let line, let field, let reason) where field.hasPrefix("#") {
                let k = (Int(field.dropFirst()) ?? 0) - 1
                throw .malformedRow(file: file, line: line, field: k >= 0 && k < names.count ? names[k] : field, reason: reason)
            }
        }
        while let (line, fields) = try nextRecord() {
            if fields.count == 1 && fields[0].isEmpty { continue }
            guard fields.count == names.count else {
                let missing = fields.count < names.count ? names[fields.count] : "(extra field \(names.count + 1))"
                throw .malformedRow(file: path, line: line, field: missing,
                                    reason: "the row has \(fields.count) fields, the header \(names.count)")
            }
            guard !fields[idIndex].isEmpty else {
                throw .malformedRow(file: path, line: line, field: idColumn, reason: "empty id")
            }
            out.ids.append(fields[idIndex])
            out.texts.append(fields[textIndex])
            if let kindIndex { out.kinds.append(fields[kindIndex]) }
        }
        return out
    }
}

/// Records of a delimited file with optional `"`-quoted fields (which may hold separators, newlines and `""`).
struct DelimitedRecords {
    let bytes: [UInt8]
    let separator: UInt8
    let path: String
    var position = 0
    var line = 1

    init(bytes: [UInt8], separator: UInt8, path: String) {
        self.bytes = bytes
        self.separator = separator
        self.path = path
    }

    /// The next record and the line it starts on, or nil at the end.
    ///
    /// A field without doubled quotes becomes a string straight from its bytes (no copy into a field buffer).
    mutating func next() throws(TextError) -> (Int, [String])? {
        guard position < bytes.count else { return nil }
        let startLine = line
        let quote = UInt8(ascii: "\"")
        var fields: [String] = []
        func string(_ start: Int, _ end: Int, _ fields: [String]) throws(TextError) -> String {
            guard let s = String(validating: bytes[start..<end], as: UTF8.self) else {
                throw .malformedRow(file: path, line: startLine, field: "#\(fields.count + 1)", reason: "not valid UTF-8")
            }
            return s
        }
        while true {
            // At the start of a field.
            if position < bytes.count && bytes[position] == quote {
                // A quoted field.
                position += 1
                let start = position
                var closed = false, doubled = false
                while position < bytes.count {
                    let c = bytes[position]
                    if c == quote {
                        if position + 1 < bytes.count && bytes[position + 1] == quote {
                            doubled = true
                            position += 2
                            continue
                        }
                        closed = true
                        break
                    }
                    if c == 10 { line += 1 }
                    position += 1
                }
                guard closed else {
                    throw .malformedRow(file: path, line: startLine, field: "#\(fields.count + 1)",
                                        reason: "a quoted field is not closed before the end of the file")
                }
                let end = position
                position += 1
                if doubled {
                    var field: [UInt8] = []
                    field.reserveCapacity(end - start)
                    var i = start
                    while i < end {
                        field.append(bytes[i])
                        i += bytes[i] == quote ? 2 : 1
                    }
                    guard let s = String(validating: field, as: UTF8.self) else {
                        throw .malformedRow(file: path, line: startLine, field: "#\(fields.count + 1)", reason: "not valid UTF-8")
                    }
                    fields.append(s)
                } else {
                    fields.append(try string(start, end, fields))
                }
                if position < bytes.count && bytes[position] != separator && bytes[position] != 10 && bytes[position] != 13 {
                    throw .malformedRow(file: path, line: line, field: "#\(fields.count)",
                                        reason: "unexpected character after a closing quote")
                }
            } else {
                let start = position
                while position < bytes.count {
                    let c = bytes[position]
                    if c == separator || c == 10 || c == 13 { break }
                    position += 1
                }
                fields.append(try string(start, position, fields))
            }
            // At a separator, a line end or the end of the file.
            guard position < bytes.count else { return (startLine, fields) }
            let c = bytes[position]
            position += 1
            if c == separator { continue }
            if c == 13 && position < bytes.count && bytes[position] == 10 { position += 1 }
            line += 1
            return (startLine, fields)
        }
    }
}

import EncoreCore

/// What a load did: how many rows it read, kept, skipped as malformed and dropped by the filter.
///
/// `rowsRead == rowsKept + rowsSkipped + rowsFiltered`. Empty lines and the header are not rows.
public struct LoadReport: Sendable, Equatable, CustomStringConvertible {
    /// The file loaded.
    public var file: String
    /// Non-empty data lines read (the header excluded).
    public var rowsRead: Int
    /// Rows that became interactions.
    public var rowsKept: Int
    /// Malformed rows skipped (only with ``DelimitedFormat/skipBadRows``).
    public var rowsSkipped: Int
    /// Rows dropped by ``DelimitedFormat/minimum``.
    public var rowsFiltered: Int
    /// Empty lines passed over.
    public var blankLines: Int
    /// The first few skipped rows' errors (at most ``DelimitedLoader/maxProblems``), in file order, each a
    /// ``DataError/malformedRow(file:line:field:reason:)``.
    public var skipReasons: [DataError]

    /// A report.
    public init(
        file: String, rowsRead: Int, rowsKept: Int, rowsSkipped: Int, rowsFiltered: Int, blankLines: Int,
        skipReasons: [DataError]
    ) {
        self.file = file
        self.rowsRead = rowsRead
        self.rowsKept = rowsKept
        self.rowsSkipped = rowsSkipped
        self.rowsFiltered = rowsFiltered
        self.blankLines = blankLines
        self.skipReasons = skipReasons
    }

    /// A summary such as `ratings.csv: 100836 rows read, 100836 kept, 0 skipped, 0 filtered`, followed by the
    /// first skip reasons, one a line.
    public var description: String {
        var s = "\(file): \(rowsRead) rows read, \(rowsKept) kept, \(rowsSkipped) skipped, \(rowsFiltered) filtered"
        for r in skipReasons { s += "\n  skipped \(r)" }
        if rowsSkipped > skipReasons.count { s += "\n  ... and \(rowsSkipped - skipReasons.count) more" }
        return s
    }
}

/// Reads interaction logs from delimited text (TSV, CSV, MovieLens `::`) into ``Interactions``.
///
/// The loader works on bytes: it maps the file, splits lines and fields by scanning for the separator, parses
/// numbers by hand, and interns ids through its own hash table keyed by the raw bytes, making a `String` once per
/// distinct id. Large files are cut at line breaks into chunks parsed in parallel; the per-chunk id tables are then
/// merged so ids are numbered in order of first appearance in the file, exactly as a sequential read would number
/// them. Ids that are equal as Swift `String`s but spelled with different bytes (Unicode canonical equivalents) are
/// one id, spelled as it first appeared.
///
/// Errors name the file, the 1-based line and the field. The field is the column's header name when the file has a
/// header, else the role (`user`, `item`, `weight`, `timestamp`) or `column N` for the filter column.
public enum DelimitedLoader {
    /// The most skipped rows whose errors a ``LoadReport`` lists (the rest are only counted).
    public static let maxProblems = 10

    /// Loads `path` in `format` on up to `threads` threads.
    ///
    /// - Returns: the interactions (timestamps present exactly when the format has a timestamp column; weights 1
    ///   without a weight column) and a ``LoadReport``.
    /// - Throws: ``DataError/unreadable(file:reason:)`` when the file cannot be read;
    ///   ``DataError/missingColumn(file:column:)`` when a named column is not in the header (or the format names a
    ///   column but has no header); ``DataError/malformedRow(file:line:field:reason:)`` for the first bad row unless
    ///   ``DelimitedFormat/skipBadRows`` is set; ``DataError/empty(file:)`` when no row is kept;
    ///   ``DataError/invalidArgument(_:)`` for an unusable format (empty separator, negative column).
    public static func load(
        path: String, format: DelimitedFormat, threads: Int = Parallel.coreCount
    ) throws(DataError) -> (interactions: Interactions, report: LoadReport) {
        let file = try LoaderFileBytes(path: path)
        guard let base = file.base else { throw .empty(file: path) }
        return try withExtendedLifetime(file) { () throws(DataError) in
            try parse(base, count: file.count, file: path, format: format, threads: threads)
        }
    }

    /// Loads interactions from bytes already in memory; `name` stands for the file in errors and the report.
    ///
    /// Behaves as ``load(path:format:threads:)`` on a file holding `bytes`.
    public static func load(
        bytes: [UInt8], name: String, format: DelimitedFormat, threads: Int = Parallel.coreCount
    ) throws(DataError) -> (interactions: Interactions, report: LoadReport) {
        guard !bytes.isEmpty else { throw .empty(file: name) }
        var result: Result<(interactions: Interactions, report: LoadReport), DataError> = .failure(.empty(file: name))
        bytes.withUnsafeBufferPointer { b in
            do throws(DataError) {
                result = .success(try parse(b.baseAddress!, count: b.count, file: name, format: format, threads: threads))
            } catch {
                result = .failure(error)
            }
        }
        return try result.get()
    }

    /// Resolves `format` against the header (if any) and returns the plan and the offset and line count of the
    /// first data line.
    static func plan(
        _ p: UnsafePointer<UInt8>, count: Int, file: String, format: DelimitedFormat
    ) throws(DataError) -> (plan: LoaderPlan, dataStart: Int, linesBefore: Int) {
        let sep = Array(format.separator.utf8)
        guard !sep.isEmpty else { throw .invalidArgument("the separator is empty") }
        guard !sep.contains(UInt8(ascii: "\n")), !sep.contains(UInt8(ascii: "\r")) else {
            throw .invalidArgument("the separator contains a line break")
        }
        if format.quoted && sep.contains(UInt8(ascii: "\"")) {
            throw .invalidArgument("the separator contains the quote character of a quoted format")
        }
        var plan = LoaderPlan(separator: sep, quoted: format.quoted)
        plan.skipBadRows = format.skipBadRows
        var start = LoaderBytes.skipBOM(p, count)
        var linesBefore = 0
        var header: [String] = []
        if format.hasHeader {
            let h = LoaderBytes.headerCells(p, count: count, from: start, sep: sep, quoted: format.quoted)
            if let problem = h.problem {
                throw .malformedRow(file: file, line: problem.line, field: "header", reason: problem.reason)
            }
            guard let cells = h.cells else { throw .empty(file: file) }
            header = cells
            start = h.after.offset
            linesBefore = h.after.lines
        }
        func resolve(_ ref: DelimitedFormat.ColumnRef, role: String) throws(DataError) -> (Int, String) {
            switch ref {
            case .index(let i):
                guard i >= 0 else { throw .invalidArgument("\(role) column index \(i) is negative") }
                if format.hasHeader {
                    guard i < header.count else { throw .missingColumn(file: file, column: "\(role) (column \(i))") }
                    return (i, header[i].isEmpty ? role : header[i])
                }
                return (i, role)
            case .name(let name):
                guard format.hasHeader, let i = header.firstIndex(of: name) else {
                    throw .missingColumn(file: file, column: name)
                }
                return (i, name)
            }
        }
        (plan.user, plan.userName) = try resolve(format.user, role: "user")
        (plan.item, plan.itemName) = try resolve(format.item, role: "item")
        if let w = format.weight { (plan.weight, plan.weightName) = try resolve(w, role: "weight") }
        if let t = format.timestamp { (plan.timestamp, plan.timestampName) = try resolve(t, role: "timestamp") }
        if let m = format.minimum {
            guard !m.value.isNaN else { throw .invalidArgument("the filter minimum is NaN") }
            var role = "filter"
            if case .index(let i) = m.column { role = "column \(i)" }
            (plan.filter, plan.filterName) = try resolve(m.column, role: role)
            plan.filterMinimum = m.value
        }
        return (plan, start, linesBefore)
    }

    /// Parses a whole buffer.
    static func parse(
        _ p: UnsafePointer<UInt8>, count: Int, file: String, format: DelimitedFormat, threads: Int
    ) throws(DataError) -> (interactions: Interactions, report: LoadReport) {
        let (plan, dataStart, linesBefore) = try self.plan(p, count: count, file: file, format: format)

        // Cut the data into chunks at line breaks.
        let dataBytes = count - dataStart
        let threadCount = max(1, threads)
        var chunkCount = 1
        if threadCount > 1 && dataBytes >= 1 << 20 {
            chunkCount = min(threadCount * 4, max(threadCount, dataBytes / (4 << 20)))
        }
        var bounds = [dataStart]
        for k in 1..<max(chunkCount, 1) {
            let target = max(bounds.last!, dataStart + Int((Double(dataBytes) * Double(k) / Double(chunkCount))))
            let nl = LoaderBytes.find(UInt8(ascii: "\n"), p, from: target, to: count)
            let b = min(count, nl + 1)
            if b > bounds.last! && b < count { bounds.append(b) }
        }
        bounds.append(count)
        let chunks = bounds.count - 1

        // Estimate rows per byte from a sample, to reserve arrays once.
        let sampleEnd = min(count, dataStart + (1 << 16))
        var sampleLines = 0
        var s = dataStart
        while s < sampleEnd {
            let nl = LoaderBytes.find(UInt8(ascii: "\n"), p, from: s, to: sampleEnd)
            if nl < sampleEnd { sampleLines += 1 }
            s = nl + 1
        }
        let bytesPerLine = Double(max(1, sampleEnd - dataStart)) / Double(max(1, sampleLines))

        var parsed = [LoaderChunkResult?](repeating: nil, count: chunks)
        let pp = UncheckedSendable(p)
        parsed.withUnsafeMutableBufferPointer { slots in
            let out = UncheckedSendable(slots.baseAddress!)
            Parallel.forEach(chunks, threads: threadCount) { k in
                let bytes = bounds[k + 1] - bounds[k]
                let expected = Int(Double(bytes) / bytesPerLine * 1.05) + 16
                out.value[k] = parseChunk(pp.value, start: bounds[k], end: bounds[k + 1], plan: plan,
                                          expectedRows: expected)
            }
        }
        let results = parsed.map { $0! }

        // Line numbers: chunk k starts after the header and the lines of chunks before it.
        var lineOffset = [Int](repeating: linesBefore, count: chunks)
        for k in 1..<max(1, chunks) { lineOffset[k] = lineOffset[k - 1] + results[k - 1].lines }
        func error(_ pr: LoaderProblem, chunk k: Int) -> DataError {
            .malformedRow(file: file, line: lineOffset[k] + pr.line, field: pr.field, reason: pr.reason)
        }
        for k in 0..<chunks {
            if let e = results[k].error { throw error(e, chunk: k) }
        }
        var report = LoadReport(file: file, rowsRead: 0, rowsKept: 0, rowsSkipped: 0, rowsFiltered: 0,
                                blankLines: 0, skipReasons: [])
        for (k, r) in results.enumerated() {
            report.rowsRead += r.rowsRead
            report.rowsKept += r.users.count
            report.rowsSkipped += r.rowsSkipped
            report.rowsFiltered += r.rowsFiltered
            report.blankLines += r.blankLines
            for pr in r.problems where report.skipReasons.count < maxProblems {
                report.skipReasons.append(error(pr, chunk: k))
            }
        }
        guard report.rowsKept > 0 else { throw .empty(file: file) }

        // Merge the id tables (users and items in parallel).
        var merged = [(map: IDMap, remap: [[Int32]])?](repeating: nil, count: 2)
        merged.withUnsafeMutableBufferPointer { slots in
            let out = UncheckedSendable(slots.baseAddress!)
            let tables = UncheckedSendable(results)
            Parallel.forEach(2, threads: min(2, threadCount)) { kind in
                out.value[kind] = mergeIDs(tables.value, kind: kind)
            }
        }
        let (userIDs, userRemap) = merged[0]!
        let (itemIDs, itemRemap) = merged[1]!

        // Write the final columns, chunk by chunk in parallel.
        let total = report.rowsKept
        var offsets = [0]
        for r in results { offsets.append(offsets.last! + r.users.count) }
        let hasWeight = plan.weight >= 0, hasTime = plan.timestamp >= 0
        var users = [Int32](repeating: 0, count: total)
        var items = [Int32](repeating: 0, count: total)
        var weights = hasWeight ? [Float](repeating: 0, count: total) : [Float](repeating: 1, count: total)
        var timestamps = hasTime ? [Int64](repeating: 0, count: total) : []
        users.withUnsafeMutableBufferPointer { u in
            items.withUnsafeMutableBufferPointer { i in
                weights.withUnsafeMutableBufferPointer { w in
                    timestamps.withUnsafeMutableBufferPointer { t in
                        let dst = UncheckedSendable((u.baseAddress!, i.baseAddress!, w.baseAddress!, t.baseAddress))
                        let src = UncheckedSendable(results)
                        Parallel.forEach(chunks, threads: threadCount) { k in
                            let r = src.value[k]
                            let at = offsets[k]
                            copy(r.users, remap: userRemap[k], to: dst.value.0 + at)
                            copy(r.items, remap: itemRemap[k], to: dst.value.1 + at)
                            if hasWeight {
                                r.weights.withUnsafeBufferPointer { src in
                                    if let s = src.baseAddress { (dst.value.2 + at).update(from: s, count: src.count) }
                                }
                            }
                            if hasTime, let tp = dst.value.3 {
                                r.timestamps.withUnsafeBufferPointer { src in
                                    if let s = src.baseAddress { (tp + at).update(from: s, count: src.count) }
                                }
                            }
                            // Each chunk is touched by one thread only; free its columns as soon as they are copied.
                            r.users = []; r.items = []; r.weights = []; r.timestamps = []
                        }
                    }
                }
            }
        }
        let interactions = try Interactions(
            userIDs: userIDs, itemIDs: itemIDs, users: users, items: items, weights: weights, timestamps: timestamps)
        return (interactions, report)
    }

    /// Copies chunk-local ids to `dst`, through `remap` unless it is empty (the identity).
    private static func copy(_ ids: [Int32], remap: [Int32], to dst: UnsafeMutablePointer<Int32>) {
        ids.withUnsafeBufferPointer { src in
            guard let s = src.baseAddress else { return }
            if remap.isEmpty {
                dst.update(from: s, count: src.count)
                return
            }
            remap.withUnsafeBufferPointer { m in
                for j in 0..<src.count { dst[j] = m[Int(s[j])] }
            }
        }
    }

    /// Merges the per-chunk user (`kind == 0`) or item tables into one ``IDMap`` numbered in order of first
    /// appearance, and returns for each chunk the map from its local ids to final ids (empty when it is the identity).
    ///
    /// Chunk 0's table is extended with the keys of later chunks in their local (first-appearance) order, which is
    /// the file's first-appearance order of the keys chunk 0 lacks.
    static func mergeIDs(_ results: [LoaderChunkResult], kind: Int) -> (IDMap, [[Int32]]) {
        var global = results[0].takeTable(kind)
        let firstCount = global.count
        var remaps: [[Int32]] = [[]]
        for r in results.dropFirst() {
            let t = r.takeTable(kind)
            var m = [Int32](repeating: 0, count: t.count)
            for local in 0..<t.count {
                let key = t.key(local)
                m[local] = global.intern(key.baseAddress!, key.count)
            }
            remaps.append(m)
        }
        // Strings once per distinct byte id; canonical-equivalent spellings collapse to the first.
        var ids = IDMap()
        var final = [Int32](repeating: 0, count: global.count)
        var identity = true
        for g in 0..<global.count {
            let f = ids.intern(String(decoding: global.key(g), as: UTF8.self))
            final[g] = f
            if f != Int32(g) { identity = false }
        }
        if !identity {
            remaps[0] = Array(final[0..<firstCount])
            for k in 1..<remaps.count { remaps[k] = remaps[k].map { final[Int($0)] } }
        } else {
            for k in 1..<remaps.count where isIdentity(remaps[k]) { remaps[k] = [] }
        }
        return (ids, remaps)
    }

    private static func isIdentity(_ m: [Int32]) -> Bool {
        for (i, v) in m.enumerated() where v != Int32(i) { return false }
        return true
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import EncoreCore

/// A ``DelimitedFormat`` resolved against a file's header: column positions and the field names errors use.
struct LoaderPlan: Sendable {
    /// The separator bytes.
    var separator: [UInt8]
    /// Whether fields may be quoted.
    var quoted: Bool
    /// Column positions (`-1` when the column is not used).
    var user = 0, item = 0, weight = -1, timestamp = -1, filter = -1
    /// The smallest value of the filter column that is kept.
    var filterMinimum = 0.0
    /// Field names for error messages, by role.
    var userName = "user", itemName = "item", weightName = "weight", timestampName = "timestamp",
        filterName = "filter"
    /// Whether malformed rows are skipped.
    var skipBadRows = false

    /// The number of leading fields a row must have.
    var fieldsNeeded: Int { max(user, item, weight, timestamp, filter) + 1 }
}

/// One malformed row, with its line number counted from the start of its chunk (1-based).
struct LoaderProblem {
    var line: Int
    var field: String
    var reason: String
}

/// What one thread made of one chunk of lines: rows with chunk-local ids, its id tables, and its counts.
final class LoaderChunkResult {
    var users: [Int32] = []
    var items: [Int32] = []
    var weights: [Float] = []
    var timestamps: [Int64] = []
    var userTable: ByteTable
    var itemTable: ByteTable
    /// The number of lines in the chunk (including empty ones).
    var lines = 0
    var rowsRead = 0, rowsSkipped = 0, rowsFiltered = 0, blankLines = 0
    /// The first few problems of skipped rows.
    var problems: [LoaderProblem] = []
    /// The first malformed row when bad rows are not skipped (parsing stopped there).
    var error: LoaderProblem?
    /// The sum of the prefetching loads, stored so the compiler keeps them; meaningless.
    var prefetchSink: UInt64 = 0

    init(userTable: consuming ByteTable, itemTable: consuming ByteTable) {
        self.userTable = userTable
        self.itemTable = itemTable
    }

    /// Moves the user (`kind == 0`) or item table out, leaving an empty one.
    func takeTable(_ kind: Int) -> ByteTable {
        var t = ByteTable(expected: 0)
        if kind == 0 { swap(&t, &userTable) } else { swap(&t, &itemTable) }
        return t
    }
}

extension DelimitedLoader {
    /// Rows whose item lookups are batched: their table slots and key records are loaded first, all together, so
    /// the cache misses overlap instead of stalling one row at a time.
    static let itemBatch = 32

    /// Parses the lines of `p[start..<end]` (`start` is at a line start; `end` is the buffer's end or just after a
    /// line break).
    static func parseChunk(
        _ p: UnsafePointer<UInt8>, start: Int, end: Int, plan: LoaderPlan, expectedRows: Int
    ) -> LoaderChunkResult {
        var users: [Int32] = [], items: [Int32] = [], weights: [Float] = [], timestamps: [Int64] = []
        users.reserveCapacity(expectedRows)
        items.reserveCapacity(expectedRows)
        if plan.weight >= 0 { weights.reserveCapacity(expectedRows) }
        if plan.timestamp >= 0 { timestamps.reserveCapacity(expectedRows) }
        var userTable = ByteTable(expected: min(1 << 16, expectedRows / 8 + 16))
        var itemTable = ByteTable(expected: min(1 << 16, expectedRows / 8 + 16))
        var lines = 0, rowsRead = 0, rowsSkipped = 0, rowsFiltered = 0, blankLines = 0
        var problems: [LoaderProblem] = []
        var error: LoaderProblem?

        let limit = plan.fieldsNeeded
        let starts = UnsafeMutablePointer<Int>.allocate(capacity: limit)
        let ends = UnsafeMutablePointer<Int>.allocate(capacity: limit)
        let escaped = UnsafeMutablePointer<Bool>.allocate(capacity: limit)
        // The pending item lookups: key start, length, hash.
        let batchStart = UnsafeMutablePointer<Int>.allocate(capacity: itemBatch)
        let batchCount = UnsafeMutablePointer<Int>.allocate(capacity: itemBatch)
        let batchHash = UnsafeMutablePointer<UInt64>.allocate(capacity: itemBatch)
        defer {
            starts.deallocate(); ends.deallocate(); escaped.deallocate()
            batchStart.deallocate(); batchCount.deallocate(); batchHash.deallocate()
        }
        var pending = 0
        var sink: UInt64 = 0
        let sepBytes = UnsafeMutablePointer<UInt8>.allocate(capacity: plan.separator.count)
        sepBytes.initialize(from: plan.separator, count: plan.separator.count)
        defer { sepBytes.deallocate() }
        let sep = UnsafeBufferPointer(start: sepBytes, count: plan.separator.count)

        var scratch: [UInt8] = []
        var problem = ""
        let ui = plan.user, ii = plan.item, wi = plan.weight, ti = plan.timestamp, fi = plan.filter
        let hasWeight = wi >= 0, hasTime = ti >= 0, hasFilter = fi >= 0
        let quoted = plan.quoted
        // The previous row's user (raw bytes in the buffer) and its id: files are often grouped by user.
        var prevUserStart = 0, prevUserCount = -1
        var prevUser: Int32 = 0

        do {
            var pos = start
            var line = 0
            while pos < end {
                let nl = LoaderBytes.find(UInt8(ascii: "\n"), p, from: pos, to: end)
                line += 1
                var lineEnd = nl
                if lineEnd > pos && p[lineEnd - 1] == UInt8(ascii: "\r") { lineEnd -= 1 }
                let lineStart = pos
                pos = nl + 1
                if lineEnd == lineStart {
                    blankLines += 1
                    continue
                }
                rowsRead += 1

                // Records a malformed row; returns false when parsing must stop.
                func bad(_ field: String, _ reason: String) -> Bool {
                    let pr = LoaderProblem(line: line, field: field, reason: reason)
                    if plan.skipBadRows {
                        rowsSkipped += 1
                        if problems.count < maxProblems { problems.append(pr) }
                        return true
                    }
                    error = pr
                    return false
                }

                let n = LoaderBytes.split(
                    p, start: lineStart, end: lineEnd, sep: sep, quoted: quoted, limit: limit,
                    starts: starts, ends: ends, escaped: escaped, problem: &problem)
                if n < limit {
                    let available = n < 0 ? -n - 1 : n
                    // Name the first needed column at or after the missing (or broken) one.
                    let roles: [(Int, String)] = [
                        (ui, plan.userName), (ii, plan.itemName), (wi, plan.weightName), (ti, plan.timestampName),
                        (fi, plan.filterName),
                    ]
                    var field = plan.userName
                    var best = Int.max
                    for (col, name) in roles where col >= available && col < best {
                        best = col
                        field = name
                    }
                    let reason = n < 0 ? problem : "missing field (the row has \(n) field\(n == 1 ? "" : "s"))"
                    if bad(field, reason) { continue } else { break }
                }

                var weight: Float = 1
                if hasWeight {
                    let r = LoaderBytes.number(p, start: starts[wi], end: ends[wi], asFloat: true, allowNegative: false)
                    if r.status != .ok {
                        if bad(plan.weightName, r.status.reason) { continue } else { break }
                    }
                    weight = Float(r.value)
                }
                var time: Int64 = 0
                if hasTime {
                    guard let t = Timestamp.parse(p, start: starts[ti], end: ends[ti]) else {
                        let shown = min(40, ends[ti] - starts[ti])
                        let text = String(decoding: UnsafeBufferPointer(start: p + starts[ti], count: shown), as: UTF8.self)
                        let reason = ends[ti] == starts[ti] ? "empty, expected a timestamp"
                            : "'\(text)' is not integer seconds, YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ"
                        if bad(plan.timestampName, reason) { continue } else { break }
                    }
                    time = t
                }
                if hasFilter {
                    let r = LoaderBytes.number(p, start: starts[fi], end: ends[fi], asFloat: false, allowNegative: true)
                    if r.status != .ok {
                        if bad(plan.filterName, r.status.reason) { continue } else { break }
                    }
                    if r.value < plan.filterMinimum {
                        rowsFiltered += 1
                        continue
                    }
                }

                let us = starts[ui], ue = ends[ui]
                let userCount = ue - us
                if userCount == 0 {
                    if bad(plan.userName, "empty id") { continue } else { break }
                }
                let ist = starts[ii], ien = ends[ii]
                if ien == ist {
                    if bad(plan.itemName, "empty id") { continue } else { break }
                }

                // The user, with the previous row's user as a cache.
                let user: Int32
                if !escaped[ui] && userCount == prevUserCount && memcmp(p + us, p + prevUserStart, userCount) == 0 {
                    user = prevUser
                } else if escaped[ui] {
                    let k = LoaderBytes.unescape(p, start: us, end: ue, into: &scratch)
                    user = scratch.withUnsafeBufferPointer { userTable.intern($0.baseAddress!, k) }
                    prevUserCount = -1
                } else {
                    user = userTable.intern(p + us, userCount)
                    prevUserStart = us
                    prevUserCount = userCount
                    prevUser = user
                }

                // The item: batched, unless it needs unescaping (then the batch goes first).
                if escaped[ii] {
                    flushItems(p, &itemTable, &items, &pending, batchStart, batchCount, batchHash, &sink)
                    let k = LoaderBytes.unescape(p, start: ist, end: ien, into: &scratch)
                    items.append(scratch.withUnsafeBufferPointer { itemTable.intern($0.baseAddress!, k) })
                } else {
                    batchStart[pending] = ist
                    batchCount[pending] = ien - ist
                    batchHash[pending] = ByteTable.hash(p + ist, ien - ist)
                    pending += 1
                    items.append(0)
                    if pending == itemBatch {
                        flushItems(p, &itemTable, &items, &pending, batchStart, batchCount, batchHash, &sink)
                    }
                }

                users.append(user)
                if hasWeight { weights.append(weight) }
                if hasTime { timestamps.append(time) }
            }
            lines = line
        }
        flushItems(p, &itemTable, &items, &pending, batchStart, batchCount, batchHash, &sink)
        let out = LoaderChunkResult(userTable: userTable, itemTable: itemTable)
        out.users = users
        out.items = items
        out.weights = weights
        out.timestamps = timestamps
        out.lines = lines
        out.rowsRead = rowsRead
        out.rowsSkipped = rowsSkipped
        out.rowsFiltered = rowsFiltered
        out.blankLines = blankLines
        out.problems = problems
        out.error = error
        out.prefetchSink = sink
        return out
    }

    /// Looks up the pending items in row order (so ids keep their first-appearance order) and writes their ids to
    /// the last `pending` entries of `items`. First loads every pending key's slot, then every matching record, so
    /// the cache misses overlap.
    @inline(__always)
    private static func flushItems(
        _ p: UnsafePointer<UInt8>, _ table: inout ByteTable, _ items: inout [Int32], _ pending: inout Int,
        _ starts: UnsafeMutablePointer<Int>, _ counts: UnsafeMutablePointer<Int>, _ hashes: UnsafeMutablePointer<UInt64>,
        _ sink: inout UInt64
    ) {
        let n = pending
        guard n > 0 else { return }
        for j in 0..<n { sink &+= table.touch(hash: hashes[j]) }
        for j in 0..<n { sink &+= table.touchRecord(hash: hashes[j]) }
        let first = items.count - n
        items.withUnsafeMutableBufferPointer { out in
            for j in 0..<n { out[first + j] = table.intern(p + starts[j], counts[j], hash: hashes[j]) }
        }
        pending = 0
    }
}

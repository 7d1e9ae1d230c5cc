#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import EncoreCore
import SystemPackage

/// The bytes of a whole file: memory-mapped for a regular file, read into memory otherwise (pipes, devices).
final class LoaderFileBytes {
    /// The first byte, or `nil` for an empty file.
    let base: UnsafePointer<UInt8>?
    /// The number of bytes.
    let count: Int
    private let mapped: MappedFile?  // the mapping of a regular file, or nil when the bytes were read
    private let allocated: UnsafeMutableRawPointer?

    /// Maps or reads `path`.
    /// - Throws: ``DataError/unreadable(file:reason:)`` with the system's reason.
    init(path: String) throws(DataError) {
        let fd: FileDescriptor
        do {
            fd = try FileDescriptor.open(path, .readOnly, options: [.closeOnExec])
        } catch {
            throw DataError(FileError(path: path, operation: "open the file", errno: FileError.code(of: error)))
        }
        defer { try? fd.close() }
        let type: FileType
        do {
            type = try fd.stat().type
        } catch {
            throw DataError(FileError(path: path, operation: "stat the file", errno: error))
        }
        if type == .directory { throw .unreadable(file: path, reason: "is a directory") }
        if type == .regular, let file = try? MappedFile(descriptor: fd, path: path, access: .sequential) {
            mapped = file
            base = file.bytes.baseAddress?.assumingMemoryBound(to: UInt8.self)
            count = file.bytes.count
            allocated = nil
            return
        }
        // Not a regular file, or mmap failed: read it all.
        var capacity = 1 << 20, used = 0
        guard var buffer = malloc(capacity) else { throw .unreadable(file: path, reason: "out of memory") }
        while true {
            if used == capacity {
                capacity *= 2
                guard let grown = realloc(buffer, capacity) else {
                    free(buffer)
                    throw .unreadable(file: path, reason: "out of memory")
                }
                buffer = grown
            }
            let n: Int
            do {
                n = try fd.read(into: UnsafeMutableRawBufferPointer(start: buffer + used, count: capacity - used))
            } catch {
                free(buffer)
                throw DataError(FileError(path: path, operation: "read the file", errno: FileError.code(of: error)))
            }
            if n == 0 { break }
            used += n
        }
        allocated = buffer
        base = used > 0 ? UnsafePointer(buffer.assumingMemoryBound(to: UInt8.self)) : nil
        count = used
        mapped = nil
    }

    deinit {
        if let allocated { free(allocated) }
    }
}

/// Large zero-filled allocations for the loader's hash tables. On Linux, blocks of 2 MiB or more are mapped
/// anonymously and advised to use transparent huge pages: the tables are probed at random, and with 4 KiB pages
/// nearly every probe would also miss the TLB.
enum LoaderMemory {
    /// `bytes` zeroed bytes, aligned to 64 bytes at least; free them with ``release(_:bytes:)``.
    static func allocate(bytes: Int) -> UnsafeMutableRawPointer {
        #if os(Linux)
        if bytes >= 2 << 20 {
            let size = (bytes + (2 << 20) - 1) & ~((2 << 20) - 1)
            if let p = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
               p != UnsafeMutableRawPointer(bitPattern: -1)
            {
                _ = madvise(p, size, 14)  // MADV_HUGEPAGE
                return p
            }
        }
        #endif
        let p = UnsafeMutableRawPointer.allocate(byteCount: max(bytes, 64), alignment: 64)
        p.initializeMemory(as: UInt8.self, repeating: 0, count: max(bytes, 64))
        return p
    }

    /// Frees a block from ``allocate(bytes:)`` of the same size.
    static func release(_ p: UnsafeMutableRawPointer, bytes: Int) {
        #if os(Linux)
        if bytes >= 2 << 20 {
            let size = (bytes + (2 << 20) - 1) & ~((2 << 20) - 1)
            munmap(p, size)
            return
        }
        #endif
        p.deallocate()
    }
}

/// An open-addressing hash table that interns byte strings as dense ids `0, 1, 2, ...` in order of first
/// insertion. Keys are copied into a private arena, so they may come from a transient buffer.
///
/// A slot is 16 bytes: the high 32 bits of the key's hash with `id + 1`, and the arena offset of the key's record
/// (a 4-byte length, then the bytes). A lookup touches one slot and one record; ``touch(hash:)`` and
/// ``touchRecord(hash:)`` let a caller start those cache misses for a batch of keys before looking them up.
/// It is a noncopyable value so its buffers have exactly one owner, and its accesses need no run-time
/// exclusivity checks in the parsing loop.
struct ByteTable: ~Copyable {
    private var slots: UnsafeMutablePointer<UInt64>  // 2 words per slot
    private var slotCount: Int
    private var arena: UnsafeMutableRawPointer
    private var arenaCapacity: Int
    private var arenaUsed = 0
    /// The arena offset of each key's record.
    private var offsets: UnsafeMutablePointer<Int>
    private var hashes: UnsafeMutablePointer<UInt64>
    private var keyCapacity: Int
    /// The number of distinct keys.
    private(set) var count = 0

    private static let tagMask: UInt64 = 0xFFFF_FFFF_0000_0000

    /// An empty table sized for about `expected` keys.
    init(expected: Int = 1024) {
        var n = 1024
        while n * 5 < expected * 8 { n <<= 1 }
        slotCount = n
        slots = LoaderMemory.allocate(bytes: n * 16).assumingMemoryBound(to: UInt64.self)
        keyCapacity = max(16, expected)
        offsets = .allocate(capacity: keyCapacity)
        hashes = .allocate(capacity: keyCapacity)
        arenaCapacity = max(4096, expected * 24)
        arena = LoaderMemory.allocate(bytes: arenaCapacity)
    }

    deinit {
        LoaderMemory.release(UnsafeMutableRawPointer(slots), bytes: slotCount * 16)
        LoaderMemory.release(arena, bytes: arenaCapacity)
        offsets.deallocate()
        hashes.deallocate()
    }

    /// The bytes of key `id`.
    @inline(__always)
    func key(_ id: Int) -> UnsafeBufferPointer<UInt8> {
        let off = offsets[id]
        let n = Int(arena.loadUnaligned(fromByteOffset: off, as: UInt32.self))
        return UnsafeBufferPointer(start: (arena + off + 4).assumingMemoryBound(to: UInt8.self), count: n)
    }

    /// A 64-bit hash of `n` bytes at `p` (word-at-a-time multiply-xorshift; deterministic).
    @inline(__always)
    static func hash(_ p: UnsafePointer<UInt8>, _ n: Int) -> UInt64 {
        let raw = UnsafeRawPointer(p)
        var h: UInt64 = 0x9E37_79B9_7F4A_7C15 ^ (UInt64(truncatingIfNeeded: n) &* 0xFF51_AFD7_ED55_8CCD)
        var i = 0
        while i &+ 8 <= n {
            let w = raw.loadUnaligned(fromByteOffset: i, as: UInt64.self)
            h = (h ^ w) &* 0xBF58_476D_1CE4_E5B9
            h ^= h >> 29
            i &+= 8
        }
        if i < n {
            var w: UInt64 = 0
            var shift: UInt64 = 0
            while i < n {
                w |= UInt64(p[i]) << shift
                shift &+= 8
                i &+= 1
            }
            h = (h ^ w) &* 0xBF58_476D_1CE4_E5B9
            h ^= h >> 29
        }
        h ^= h >> 32
        h = h &* 0x94D0_49BB_1331_11EB
        h ^= h >> 31
        return h
    }

    /// Loads the slot where a key with hash `h` starts probing (a software prefetch); returns the word so the load
    /// is kept.
    @inline(__always)
    func touch(hash h: UInt64) -> UInt64 {
        slots[(Int(truncatingIfNeeded: h) & (slotCount &- 1)) &* 2]
    }

    /// Loads the record of the key in that first slot when its hash tag matches (a software prefetch of the
    /// bytes ``intern(_:_:hash:)`` compares); returns a word so the load is kept.
    @inline(__always)
    func touchRecord(hash h: UInt64) -> UInt64 {
        let i = (Int(truncatingIfNeeded: h) & (slotCount &- 1)) &* 2
        let w = slots[i]
        guard w & ByteTable.tagMask == h & ByteTable.tagMask, w != 0 else { return 0 }
        return UInt64(arena.loadUnaligned(fromByteOffset: Int(truncatingIfNeeded: slots[i &+ 1]), as: UInt32.self))
    }

    /// The id of the `n` bytes at `p`, adding them when new.
    @inline(__always)
    mutating func intern(_ p: UnsafePointer<UInt8>, _ n: Int) -> Int32 {
        intern(p, n, hash: ByteTable.hash(p, n))
    }

    /// The id of the `n` bytes at `p` whose ``hash(_:_:)`` is `h`, adding them when new.
    @inline(__always)
    mutating func intern(_ p: UnsafePointer<UInt8>, _ n: Int, hash h: UInt64) -> Int32 {
        let tag = h & ByteTable.tagMask
        let mask = slotCount &- 1
        var i = Int(truncatingIfNeeded: h) & mask
        while true {
            let w = slots[i &* 2]
            if w == 0 { break }
            if w & ByteTable.tagMask == tag {
                let off = Int(truncatingIfNeeded: slots[i &* 2 &+ 1])
                if Int(arena.loadUnaligned(fromByteOffset: off, as: UInt32.self)) == n
                    && memcmp(arena + off + 4, p, n) == 0
                {
                    return Int32(truncatingIfNeeded: Int(w & 0xFFFF_FFFF) &- 1)
                }
            }
            i = (i &+ 1) & mask
        }
        return insert(p, n, hash: h, slot: i)
    }

    private mutating func insert(_ p: UnsafePointer<UInt8>, _ n: Int, hash h: UInt64, slot: Int) -> Int32 {
        let id = count
        if id == keyCapacity {
            let newCapacity = keyCapacity * 2
            let newOffsets = UnsafeMutablePointer<Int>.allocate(capacity: newCapacity)
            newOffsets.update(from: offsets, count: count)
            offsets.deallocate()
            offsets = newOffsets
            let newHashes = UnsafeMutablePointer<UInt64>.allocate(capacity: newCapacity)
            newHashes.update(from: hashes, count: count)
            hashes.deallocate()
            hashes = newHashes
            keyCapacity = newCapacity
        }
        let record = (n + 4 + 3) & ~3
        if arenaUsed + record > arenaCapacity {
            var newCapacity = arenaCapacity * 2
            while arenaUsed + record > newCapacity { newCapacity *= 2 }
            let newArena = LoaderMemory.allocate(bytes: newCapacity)
            newArena.copyMemory(from: arena, byteCount: arenaUsed)
            LoaderMemory.release(arena, bytes: arenaCapacity)
            arena = newArena
            arenaCapacity = newCapacity
        }
        let off = arenaUsed
        arena.storeBytes(of: UInt32(truncatingIfNeeded: n), toByteOffset: off, as: UInt32.self)
        if n > 0 { (arena + off + 4).copyMemory(from: p, byteCount: n) }
        arenaUsed += record
        offsets[id] = off
        hashes[id] = h
        count = id + 1
        slots[slot * 2] = (h & ByteTable.tagMask) | UInt64(id + 1)
        slots[slot * 2 + 1] = UInt64(off)
        if count * 10 > slotCount * 7 { grow() }
        return Int32(id)
    }

    private mutating func grow() {
        let old = slots, oldCount = slotCount
        slotCount *= 2
        slots = LoaderMemory.allocate(bytes: slotCount * 16).assumingMemoryBound(to: UInt64.self)
        let mask = slotCount - 1
        for id in 0..<count {
            let h = hashes[id]
            var i = Int(truncatingIfNeeded: h) & mask
            while slots[i * 2] != 0 { i = (i + 1) & mask }
            slots[i * 2] = (h & ByteTable.tagMask) | UInt64(id + 1)
            slots[i * 2 + 1] = UInt64(offsets[id])
        }
        LoaderMemory.release(UnsafeMutableRawPointer(old), bytes: oldCount * 16)
    }
}

/// Byte-level helpers of the delimited loader: scanning, numbers, timestamps.
enum LoaderBytes {
    /// The position of the first `byte` in `p[from..<to]`, or `to`.
    @inline(__always)
    static func find(_ byte: UInt8, _ p: UnsafePointer<UInt8>, from: Int, to: Int) -> Int {
        guard from < to, let r = memchr(p + from, Int32(byte), to - from) else { return to }
        return UnsafeRawPointer(r) - UnsafeRawPointer(p)
    }

    /// Whether `sep` occurs at `p[at...]` within `..<to`.
    @inline(__always)
    static func matches(_ sep: UnsafeBufferPointer<UInt8>, _ p: UnsafePointer<UInt8>, at: Int, to: Int) -> Bool {
        let n = sep.count
        if at + n > to { return false }
        if n == 1 { return p[at] == sep[0] }
        return memcmp(p + at, sep.baseAddress!, n) == 0
    }

    /// The position of the first occurrence of `sep` in `p[from..<to]`, or `to`.
    @inline(__always)
    static func findSeparator(_ sep: UnsafeBufferPointer<UInt8>, _ p: UnsafePointer<UInt8>, from: Int, to: Int) -> Int {
        let first = sep[0]
        if sep.count == 1 { return find(first, p, from: from, to: to) }
        var i = from
        while true {
            let j = find(first, p, from: i, to: to)
            if j == to { return to }
            if matches(sep, p, at: j, to: to) { return j }
            i = j + 1
        }
    }

    /// Splits one line `p[start..<end]` (no line break) into fields. For each of the first `limit` fields it records
    /// the content range and whether it was quoted with `""` escapes inside.
    ///
    /// Returns the number of fields found (at most `limit`), or a negative value with `problem` set when a quoted
    /// field is broken (the value is `-(index of the broken field) - 1`).
    @inline(__always)
    static func split(
        _ p: UnsafePointer<UInt8>, start: Int, end: Int, sep: UnsafeBufferPointer<UInt8>, quoted: Bool, limit: Int,
        starts: UnsafeMutablePointer<Int>, ends: UnsafeMutablePointer<Int>, escaped: UnsafeMutablePointer<Bool>,
        problem: inout String
    ) -> Int {
        var pos = start
        var field = 0
        while field < limit {
            var next: Int
            if quoted && pos < end && p[pos] == UInt8(ascii: "\"") {
                var i = pos + 1
                var hasEscape = false
                var close = -1
                while i < end {
                    let q = find(UInt8(ascii: "\""), p, from: i, to: end)
                    if q == end { break }
                    if q + 1 < end && p[q + 1] == UInt8(ascii: "\"") {
                        hasEscape = true
                        i = q + 2
                        continue
                    }
                    close = q
                    break
                }
                if close < 0 {
                    problem = "unterminated quoted field (a quoted field may not span lines)"
                    return -field - 1
                }
                next = close + 1
                if next != end && !matches(sep, p, at: next, to: end) {
                    problem = "unexpected text after the closing quote"
                    return -field - 1
                }
                starts[field] = pos + 1
                ends[field] = close
                escaped[field] = hasEscape
            } else {
                next = findSeparator(sep, p, from: pos, to: end)
                starts[field] = pos
                ends[field] = next
                escaped[field] = false
            }
            field += 1
            if next >= end { break }
            pos = next + sep.count
        }
        return field
    }

    /// Copies a quoted field's content `p[start..<end]` into `out`, turning each `""` into `"`; returns the length.
    static func unescape(_ p: UnsafePointer<UInt8>, start: Int, end: Int, into out: inout [UInt8]) -> Int {
        out.removeAll(keepingCapacity: true)
        var i = start
        while i < end {
            let b = p[i]
            out.append(b)
            i += (b == UInt8(ascii: "\"") && i + 1 < end && p[i + 1] == UInt8(ascii: "\"")) ? 2 : 1
        }
        return out.count
    }

    /// A field as a `String` (quotes unescaped).
    static func string(_ p: UnsafePointer<UInt8>, start: Int, end: Int, escaped: Bool) -> String {
        if escaped {
            var buffer: [UInt8] = []
            _ = unescape(p, start: start, end: end, into: &buffer)
            return String(decoding: buffer, as: UTF8.self)
        }
        return String(decoding: UnsafeBufferPointer(start: p + start, count: end - start), as: UTF8.self)
    }

    /// Reads the header cells of `path` (its first non-empty line).
    static func readHeader(path: String, separator: [UInt8], quoted: Bool) throws(DataError) -> [String] {
        let file = try LoaderFileBytes(path: path)
        guard let p = file.base else { throw .empty(file: path) }
        let (cells, _, problem) = headerCells(p, count: file.count, from: skipBOM(p, file.count), sep: separator,
                                              quoted: quoted)
        if let problem { throw .malformedRow(file: path, line: problem.line, field: "header", reason: problem.reason) }
        guard let cells else { throw .empty(file: path) }
        return cells
    }

    /// 3 when the bytes start with a UTF-8 byte-order mark, else 0.
    static func skipBOM(_ p: UnsafePointer<UInt8>, _ n: Int) -> Int {
        n >= 3 && p[0] == 0xEF && p[1] == 0xBB && p[2] == 0xBF ? 3 : 0
    }

    /// The cells of the first non-empty line at or after `from`, the offset just past that line, and the number of
    /// lines consumed up to and including it (in `problem.line` on failure). `cells` is `nil` when there is no
    /// non-empty line.
    static func headerCells(
        _ p: UnsafePointer<UInt8>, count: Int, from: Int, sep: [UInt8], quoted: Bool
    ) -> (cells: [String]?, after: (offset: Int, lines: Int), problem: (line: Int, reason: String)?) {
        var pos = from
        var lines = 0
        while pos < count {
            let nl = find(UInt8(ascii: "\n"), p, from: pos, to: count)
            lines += 1
            var end = nl
            if end > pos && p[end - 1] == UInt8(ascii: "\r") { end -= 1 }
            let after = min(count, nl + 1)
            if end == pos { pos = after; continue }
            // Count the fields first (unbounded), then split.
            var limit = 1
            sep.withUnsafeBufferPointer { sb in
                var i = pos
                while true {
                    let j = findSeparator(sb, p, from: i, to: end)
                    if j >= end { break }
                    limit += 1
                    i = j + sb.count
                }
            }
            var starts = [Int](repeating: 0, count: limit), ends = starts
            var escaped = [Bool](repeating: false, count: limit)
            var problem = ""
            let n = sep.withUnsafeBufferPointer { s in
                starts.withUnsafeMutableBufferPointer { st in
                    ends.withUnsafeMutableBufferPointer { en in
                        escaped.withUnsafeMutableBufferPointer { es in
                            split(p, start: pos, end: end, sep: s, quoted: quoted, limit: limit,
                                  starts: st.baseAddress!, ends: en.baseAddress!, escaped: es.baseAddress!,
                                  problem: &problem)
                        }
                    }
                }
            }
            if n < 0 { return (nil, (after, lines), (lines, problem)) }
            let cells = (0..<n).map { k in
                trimSpaces(string(p, start: starts[k], end: ends[k], escaped: escaped[k]))
            }
            return (cells, (after, lines), nil)
        }
        return (nil, (count, lines), nil)
    }

    /// `s` without leading and trailing spaces.
    static func trimSpaces(_ s: String) -> String {
        var sub = Substring(s)
        while sub.first == " " { sub.removeFirst() }
        while sub.last == " " { sub.removeLast() }
        return String(sub)
    }

    // MARK: Numbers

    /// The outcome of parsing a number.
    enum NumberStatus {
        case ok, empty, invalid, nan, infinite, negative

        /// A reason for an error message.
        var reason: String {
            switch self {
            case .ok: return "ok"
            case .empty: return "empty, expected a number"
            case .invalid: return "not a number"
            case .nan: return "NaN is not allowed"
            case .infinite: return "infinite or out of range"
            case .negative: return "negative, expected a value >= 0"
            }
        }
    }

    /// Parses a decimal number (`[+-]digits[.digits][e[+-]digits]`, spaces around allowed) from `p[start..<end]`.
    /// With `asFloat` the value is correctly rounded to `Float` (and must be finite as a `Float`).
    /// `allowNegative: false` rejects values below zero.
    @inline(__always)
    static func number(
        _ p: UnsafePointer<UInt8>, start: Int, end: Int, asFloat: Bool, allowNegative: Bool
    ) -> (value: Double, status: NumberStatus) {
        var s = start, e = end
        while s < e && p[s] == 0x20 { s += 1 }
        while e > s && p[e - 1] == 0x20 { e -= 1 }
        if s == e { return (0, .empty) }
        // Fast path: up to 18 plain digits.
        if e - s <= 18 {
            let (v, i) = ASCIIDigits.prefix(p, from: s, to: e)
            if i == e { return (asFloat ? Double(Float(v)) : Double(v), .ok) }
        }
        // General grammar check, then the standard library's correctly rounded conversion.
        var i = s
        var negative = false
        if p[i] == UInt8(ascii: "+") || p[i] == UInt8(ascii: "-") {
            negative = p[i] == UInt8(ascii: "-")
            i += 1
        }
        var digits = 0
        while i < e && p[i] &- 0x30 <= 9 { i += 1; digits += 1 }
        if i < e && p[i] == UInt8(ascii: ".") {
            i += 1
            while i < e && p[i] &- 0x30 <= 9 { i += 1; digits += 1 }
        }
        if digits > 0 && i < e && (p[i] | 0x20) == UInt8(ascii: "e") {
            i += 1
            if i < e && (p[i] == UInt8(ascii: "+") || p[i] == UInt8(ascii: "-")) { i += 1 }
            var expDigits = 0
            while i < e && p[i] &- 0x30 <= 9 { i += 1; expDigits += 1 }
            if expDigits == 0 { return (0, .invalid) }
        }
        if digits == 0 || i != e {
            let word = String(decoding: UnsafeBufferPointer(start: p + s, count: e - s), as: UTF8.self).lowercased()
            let bare = word.hasPrefix("+") || word.hasPrefix("-") ? String(word.dropFirst()) : word
            if bare == "nan" { return (.nan, .nan) }
            if bare == "inf" || bare == "infinity" { return (.infinity, .infinite) }
            return (0, .invalid)
        }
        let text = String(decoding: UnsafeBufferPointer(start: p + s, count: e - s), as: UTF8.self)
        let value: Double
        if asFloat {
            guard let f = Float(text) else { return (0, .invalid) }
            value = Double(f)
        } else {
            guard let d = Double(text) else { return (0, .invalid) }
            value = d
        }
        if !value.isFinite { return (value, .infinite) }
        if negative && value < 0 && !allowNegative { return (value, .negative) }
        return (value, .ok)
    }

    /// Whether `cell` is a weight as the loader reads one (a finite, non-negative number).
    static func isWeight(_ cell: String) -> Bool {
        let bytes = Array(cell.utf8)
        return bytes.withUnsafeBufferPointer { b in
            guard let p = b.baseAddress else { return false }
            return number(p, start: 0, end: b.count, asFloat: true, allowNegative: false).status == .ok
        }
    }

    /// Whether `cell` is a timestamp as the loader reads one (see ``Timestamp/parse(_:)``).
    static func isTimestamp(_ cell: String) -> Bool { Timestamp.parse(cell) != nil }
}

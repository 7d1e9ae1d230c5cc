import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import EncoreCore

/// Encore's persistence container for vector indexes: a small self-describing header, a table of named sections,
/// and the section bytes, memory-mapped when read.
///
/// Every index kind (``ExactIndex``, the HNSW index) stores itself as one `IndexFile`: the header says what the file
/// holds (kind, metric, dimension, count and free-form attributes) and each section is one flat array of plain
/// values (vectors, ids, norms, adjacency lists), so loading is `mmap` plus validation, with no parsing of the bulk.
///
/// ## Format (version 1)
/// All integers are little-endian. A *string* is a `UInt32` byte count followed by that many UTF-8 bytes.
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 8 | magic bytes `ENCOREIX` |
/// | 8 | 4 | format version, `UInt32` (this reader: 1; a larger one is rejected as newer) |
/// | 12 | 4 | header length `H`, `UInt32`: bytes `0..<H` are the header, checksum included |
/// | 16 | 8 | file length, `UInt64` (detects truncation and trailing garbage) |
/// | 24 | … | kind (string, e.g. `exact`, `hnsw`) |
/// | | … | metric (string: `cosine`, `l2` or `ip`, the raw values of ``VectorMetric``) |
/// | | 8 + 8 | dimension, count (`UInt64` each) |
/// | | … | integer attributes: `UInt32` n, then n × (key string, `Int64` value), keys sorted |
/// | | … | string attributes: `UInt32` n, then n × (key string, value string), keys sorted |
/// | | … | section table: `UInt32` n, then n × (name string, offset `UInt64`, length `UInt64`, XXH64 `UInt64`) |
/// | H − 8 | 8 | header checksum: XXH64 (seed 0) of bytes `0..<H−8` |
///
/// The section bytes follow the header, each section starting at a 64-byte-aligned offset (zero padding between).
/// Section checksums are XXH64 (seed 0) of the section's bytes. Section names are unique.
///
/// ## Reading
/// ``open(path:expectedKind:)`` maps the file (`PROT_READ`, `MAP_PRIVATE`), then checks, in order: the magic, the
/// format version, the header length and checksum, the recorded file length, the kind, the section table (offsets
/// aligned, inside the file, not overlapping) and every section's checksum. Any failure is an ``IndexError`` naming
/// the path and what is wrong. The mapping lives as long as the `IndexFile`: pointers from ``section(_:)`` and
/// ``array(_:of:count:)`` are valid only while it is alive (an index built on them keeps a reference to it).
///
/// ## Writing
/// ``write(to:kind:metric:dimension:count:attributes:stringAttributes:sections:)`` (or a ``Builder``) writes a
/// temporary sibling file straight from the callers' buffers (no intermediate copy), `fsync`s it and renames it into
/// place, so a reader sees either the old file or the complete new one.
public final class IndexFile: @unchecked Sendable {
    // Immutable after init: the mapping is read-only and never changes, so sharing across threads is safe.

    /// The format version this library writes and the newest it reads.
    public static let formatVersion: UInt32 = 1
    /// The magic bytes every index file starts with.
    public static let magic: [UInt8] = Array("ENCOREIX".utf8)
    /// Alignment of every section's offset in the file (and so in memory).
    public static let sectionAlignment = 64

    /// One entry of the section table.
    public struct SectionInfo: Sendable, Equatable {
        /// The section's name.
        public let name: String
        /// Its byte offset in the file (a multiple of ``IndexFile/sectionAlignment``).
        public let offset: Int
        /// Its length in bytes.
        public let length: Int
        /// XXH64 (seed 0) of its bytes.
        public let checksum: UInt64
    }

    /// The path the file was opened from.
    public let path: String
    /// The format version stored in the file.
    public let version: UInt32
    /// The index kind, e.g. `"exact"` or `"hnsw"`.
    public let kind: String
    /// The metric of the stored index.
    public let metric: VectorMetric
    /// The dimension of the stored vectors.
    public let dimension: Int
    /// The number of (live) vectors the writer recorded.
    public let count: Int
    /// Integer attributes (index parameters such as `m` or `ef_construction`).
    public let attributes: [String: Int64]
    /// String attributes (free-form metadata such as the library version).
    public let stringAttributes: [String: String]
    /// The section table, in file order.
    public let sections: [SectionInfo]
    /// The size of the file in bytes.
    public let fileSize: Int

    private let mapping: MappedFile
    private let sectionIndex: [String: Int]

    // MARK: Opening

    /// Maps and validates the index file at `path`.
    ///
    /// - Parameters:
    ///   - path: the file.
    ///   - expectedKind: when given, the file must hold an index of this kind (e.g. `"hnsw"`).
    ///   - verifyChecksums: verify every section's XXH64 (default). The header checksum is always verified.
    /// - Throws: ``IndexError/io(path:reason:)`` when the file is missing or unreadable;
    ///   ``IndexError/corruptFile(path:reason:)`` when it is empty, foreign (wrong magic), of a newer format version,
    ///   of another kind, truncated, or fails a checksum, or when a section entry is inconsistent.
    public static func open(path: String, expectedKind: String? = nil, verifyChecksums: Bool = true) throws(IndexError) -> IndexFile {
        let mapping: MappedFile
        do {
            mapping = try MappedFile(path: path)
        } catch {
            if error.code == ENOENT { throw .io(path: path, reason: "no such file") }
            throw IndexError(error)
        }
        guard mapping.bytes.count > 0 else { throw .corruptFile(path: path, reason: "the file is empty") }
        return try IndexFile(path: path, mapping: mapping, expectedKind: expectedKind, verify: verifyChecksums)
    }

    private init(path: String, mapping: MappedFile, expectedKind: String?, verify: Bool) throws(IndexError) {
        let bytes = mapping.bytes
        let size = bytes.count
        func corrupt(_ reason: String) -> IndexError { .corruptFile(path: path, reason: reason) }

        // Magic: a short file whose bytes are a prefix of the magic is truncated, anything else is foreign.
        let magicCount = min(size, Self.magic.count)
        for i in 0..<magicCount where bytes[i] != Self.magic[i] {
            throw corrupt("foreign file: it does not start with the magic bytes ENCOREIX (not an Encore index file)")
        }
        let fixed = 24
        guard size >= fixed else { throw corrupt("truncated: the file is \(size) bytes, shorter than the \(fixed)-byte fixed header") }
        let version = bytes.loadLE(UInt32.self, at: 8)
        guard version != 0 else { throw corrupt("format version 0 is invalid") }
        guard version <= Self.formatVersion else {
            throw corrupt("format version \(version) is newer than this library reads (\(Self.formatVersion)); upgrade Encore to open it")
        }
        let headerLength = Int(bytes.loadLE(UInt32.self, at: 12))
        guard headerLength >= fixed + 8 else { throw corrupt("header length \(headerLength) is too small") }
        guard headerLength <= size else {
            throw corrupt("truncated: the header is \(headerLength) bytes but the file only \(size)")
        }
        let storedHeaderSum = bytes.loadLE(UInt64.self, at: headerLength - 8)
        let headerSum = XXHash64.hash(UnsafeRawBufferPointer(rebasing: bytes[0..<(headerLength - 8)]))
        guard storedHeaderSum == headerSum else {
            throw corrupt("header checksum mismatch (stored \(hex(storedHeaderSum)), computed \(hex(headerSum))): the header is damaged")
        }
        let recordedSize = bytes.loadLE(UInt64.self, at: 16)
        guard recordedSize <= UInt64(Int.max) else { throw corrupt("recorded file length \(recordedSize) is invalid") }
        if Int(recordedSize) > size {
            throw corrupt("truncated: the file is \(size) bytes but was written with \(recordedSize)")
        }
        if Int(recordedSize) < size {
            throw corrupt("the file is \(size) bytes but was written with \(recordedSize) (trailing bytes)")
        }

        var reader = HeaderReader(bytes: UnsafeRawBufferPointer(rebasing: bytes[0..<(headerLength - 8)]), position: fixed)
        func field<T>(_ what: String, _ read: (inout HeaderReader) -> T?) throws(IndexError) -> T {
            guard let v = read(&reader) else { throw corrupt("header ends inside the \(what)") }
            return v
        }
        let kind = try field("kind") { $0.string() }
        let metricName = try field("metric") { $0.string() }
        guard let metric = VectorMetric(rawValue: metricName) else {
            throw corrupt("unknown metric '\(metricName)' (expected cosine, l2 or ip)")
        }
        let dimension = try field("dimension") { $0.u64() }
        let count = try field("count") { $0.u64() }
        guard dimension <= UInt64(Int32.max), count <= UInt64(Int32.max) else {
            throw corrupt("dimension \(dimension) or count \(count) is out of range")
        }
        if let expectedKind, kind != expectedKind {
            throw corrupt("wrong kind: the file holds a '\(kind)' index, expected '\(expectedKind)'")
        }

        var attributes: [String: Int64] = [:]
        let nInt = try field("integer attribute count") { $0.u32() }
        for _ in 0..<nInt {
            let key = try field("integer attributes") { $0.string() }
            let value = try field("integer attributes") { $0.u64() }
            attributes[key] = Int64(bitPattern: value)
        }
        var stringAttributes: [String: String] = [:]
        let nString = try field("string attribute count") { $0.u32() }
        for _ in 0..<nString {
            let key = try field("string attributes") { $0.string() }
            let value = try field("string attributes") { $0.string() }
            stringAttributes[key] = value
        }
        let nSections = try field("section count") { $0.u32() }
        var sections: [SectionInfo] = []
        var index: [String: Int] = [:]
        var previousEnd = headerLength
        for _ in 0..<nSections {
            let name = try field("section table") { $0.string() }
            let offset = try field("section table") { $0.u64() }
            let length = try field("section table") { $0.u64() }
            let sum = try field("section table") { $0.u64() }
            guard index[name] == nil else { throw corrupt("section '\(name)' appears twice") }
            guard offset % UInt64(Self.sectionAlignment) == 0 else {
                throw corrupt("section '\(name)' starts at \(offset), not a multiple of \(Self.sectionAlignment)")
            }
            guard offset >= UInt64(previousEnd), length <= UInt64(size), offset <= UInt64(size) - length else {
                if offset >= UInt64(previousEnd), offset < recordedSize {
                    throw corrupt("truncated: section '\(name)' (\(length) bytes at \(offset)) runs past the end of the \(size)-byte file")
                }
                throw corrupt("section '\(name)' (\(length) bytes at \(offset)) overlaps another or lies outside the file")
            }
            index[name] = sections.count
            sections.append(SectionInfo(name: name, offset: Int(offset), length: Int(length), checksum: sum))
            previousEnd = Int(offset + length)
        }
        guard reader.position == reader.bytes.count else {
            throw corrupt("\(reader.bytes.count - reader.position) unexpected bytes at the end of the header")
        }
        if verify {
            for s in sections {
                let computed = XXHash64.hash(UnsafeRawBufferPointer(rebasing: bytes[s.offset..<(s.offset + s.length)]))
                guard computed == s.checksum else {
                    throw corrupt("checksum mismatch in section '\(s.name)' (stored \(hex(s.checksum)), computed \(hex(computed))): the data is damaged")
                }
            }
        }

        self.path = path
        self.version = version
        self.kind = kind
        self.metric = metric
        self.dimension = Int(dimension)
        self.count = Int(count)
        self.attributes = attributes
        self.stringAttributes = stringAttributes
        self.sections = sections
        self.fileSize = size
        self.mapping = mapping
        self.sectionIndex = index
    }

    // MARK: Accessors

    /// The names of the sections, in file order.
    public var sectionNames: [String] { sections.map(\.name) }

    /// Whether a section named `name` exists.
    public func hasSection(_ name: String) -> Bool { sectionIndex[name] != nil }

    /// The bytes of section `name`, valid while this `IndexFile` is alive.
    /// - Throws: ``IndexError/corruptFile(path:reason:)`` when the section is missing.
    public func section(_ name: String) throws(IndexError) -> UnsafeRawBufferPointer {
        guard let i = sectionIndex[name] else {
            throw .corruptFile(path: path, reason: "section '\(name)' is missing (the file has: \(sectionNames.joined(separator: ", ")))")
        }
        let s = sections[i]
        guard let base = mapping.bytes.baseAddress else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return UnsafeRawBufferPointer(start: base + s.offset, count: s.length)
    }

    /// Section `name` viewed as an array of `T` (valid while this `IndexFile` is alive).
    ///
    /// - Parameter count: when given, the section must hold exactly this many values.
    /// - Throws: ``IndexError/corruptFile(path:reason:)`` when the section is missing, its length is not a multiple of
    ///   `T`'s stride or differs from `count`, or it is misaligned for `T`.
    public func array<T: BitwiseCopyable>(_ name: String, of type: T.Type, count: Int? = nil) throws(IndexError) -> UnsafeBufferPointer<T> {
        let raw = try section(name)
        let stride = MemoryLayout<T>.stride
        guard stride > 0, raw.count % stride == 0 else {
            throw .corruptFile(path: path, reason: "section '\(name)' is \(raw.count) bytes, not a whole number of \(stride)-byte \(T.self) values")
        }
        let n = raw.count / stride
        if let count, n != count {
            throw .corruptFile(path: path, reason: "section '\(name)' holds \(n) \(T.self) values, expected \(count)")
        }
        guard n > 0, let start = raw.baseAddress else { return UnsafeBufferPointer(start: nil, count: 0) }
        guard Int(bitPattern: start) % MemoryLayout<T>.alignment == 0 else {
            throw .corruptFile(path: path, reason: "section '\(name)' is not aligned for \(T.self)")
        }
        return UnsafeBufferPointer(start: start.assumingMemoryBound(to: T.self), count: n)
    }

    /// The integer attribute `key`.
    /// - Throws: ``IndexError/corruptFile(path:reason:)`` when it is missing.
    public func attribute(_ key: String) throws(IndexError) -> Int64 {
        guard let v = attributes[key] else { throw .corruptFile(path: path, reason: "integer attribute '\(key)' is missing") }
        return v
    }

    /// The string attribute `key`.
    /// - Throws: ``IndexError/corruptFile(path:reason:)`` when it is missing.
    public func stringAttribute(_ key: String) throws(IndexError) -> String {
        guard let v = stringAttributes[key] else { throw .corruptFile(path: path, reason: "string attribute '\(key)' is missing") }
        return v
    }

    // MARK: Writing

    /// Writes an index file at `path`: to a temporary sibling, `fsync`ed, then renamed into place.
    ///
    /// The section bytes are written straight from `sections` (and hashed in place), never copied.
    /// - Parameters:
    ///   - kind: the index kind (non-empty), checked by ``open(path:expectedKind:verifyChecksums:)``.
    ///   - dimension, count: recorded in the header (non-negative).
    ///   - attributes, stringAttributes: free-form parameters and metadata.
    ///   - sections: named byte ranges; names must be unique and non-empty.
    /// - Throws: ``IndexError/invalidParameter(_:)`` for a bad kind, size or section name;
    ///   ``IndexError/io(path:reason:)`` when the file cannot be written.
    public static func write(
        to path: String, kind: String, metric: VectorMetric, dimension: Int, count: Int,
        attributes: [String: Int64] = [:], stringAttributes: [String: String] = [:],
        sections: [(name: String, bytes: UnsafeRawBufferPointer)]
    ) throws(IndexError) {
        guard !kind.isEmpty else { throw .invalidParameter("index file \(path): the kind is empty") }
        guard dimension >= 0, count >= 0 else {
            throw .invalidParameter("index file \(path): dimension \(dimension) and count \(count) must be non-negative")
        }
        var seen = Set<String>()
        for s in sections {
            guard !s.name.isEmpty else { throw .invalidParameter("index file \(path): a section name is empty") }
            guard seen.insert(s.name).inserted else { throw .invalidParameter("index file \(path): section '\(s.name)' is given twice") }
        }

        // Header length: fixed part, then the variable fields, then the checksum.
        func strLen(_ s: String) -> Int { 4 + s.utf8.count }
        var headerLength = 24 + strLen(kind) + strLen(metric.rawValue) + 16
        headerLength += 4 + attributes.keys.reduce(0) { $0 + strLen($1) + 8 }
        headerLength += 4 + stringAttributes.reduce(0) { $0 + strLen($1.key) + strLen($1.value) }
        headerLength += 4 + sections.reduce(0) { $0 + strLen($1.name) + 24 }
        headerLength += 8
        guard headerLength <= Int(UInt32.max) else { throw .invalidParameter("index file \(path): the header is too large") }

        var offsets: [Int] = []
        var end = headerLength
        for s in sections {
            let o = align(end)
            offsets.append(o)
            end = o + s.bytes.count
        }
        let fileLength = end

        var header = [UInt8]()
        header.reserveCapacity(headerLength)
        header.append(contentsOf: Self.magic)
        header.appendLE(Self.formatVersion)
        header.appendLE(UInt32(headerLength))
        header.appendLE(UInt64(fileLength))
        header.appendString(kind)
        header.appendString(metric.rawValue)
        header.appendLE(UInt64(dimension))
        header.appendLE(UInt64(count))
        header.appendLE(UInt32(attributes.count))
        for key in attributes.keys.sorted() {
            header.appendString(key)
            header.appendLE(UInt64(bitPattern: attributes[key]!))
        }
        header.appendLE(UInt32(stringAttributes.count))
        for key in stringAttributes.keys.sorted() {
            header.appendString(key)
            header.appendString(stringAttributes[key]!)
        }
        header.appendLE(UInt32(sections.count))
        for (i, s) in sections.enumerated() {
            header.appendString(s.name)
            header.appendLE(UInt64(offsets[i]))
            header.appendLE(UInt64(s.bytes.count))
            header.appendLE(XXHash64.hash(s.bytes))
        }
        let headerSum = header.withUnsafeBytes { XXHash64.hash($0) }
        header.appendLE(headerSum)
        assert(header.count == headerLength)

        // Write to a temporary sibling, then rename.
        try AtomicFile.checkDirectory(for: path, operation: "write the index file", as: IndexError.self)
        try AtomicFile.write(to: path, as: IndexError.self) { (out) throws(IndexError) in
            try out.write(header, as: IndexError.self)
            var position = headerLength
            for (i, s) in sections.enumerated() {
                let pad = offsets[i] - position
                if pad > 0 { try out.write([UInt8](repeating: 0, count: pad), as: IndexError.self) }
                try out.write(s.bytes, as: IndexError.self)
                position = offsets[i] + s.bytes.count
            }
        }
    }

    /// Collects the sections of an index file from arrays of plain values and writes them without copying them.
    ///
    /// ```swift
    /// var b = IndexFile.Builder(kind: "exact", metric: .cosine, dimension: 64, count: ids.count)
    /// b.attributes["m"] = 16
    /// b.append("vectors", vectors.storage)
    /// b.append("ids", ids)
    /// try b.write(to: "items.encoreix")
    /// ```
    /// Arrays are held by reference (copy-on-write) until ``write(to:)``.
    public struct Builder {
        /// The index kind.
        public var kind: String
        /// The metric.
        public var metric: VectorMetric
        /// The dimension.
        public var dimension: Int
        /// The number of vectors.
        public var count: Int
        /// Integer attributes.
        public var attributes: [String: Int64] = [:]
        /// String attributes.
        public var stringAttributes: [String: String] = [:]
        private var parts: [(name: String, bytes: RawBytes)] = []

        /// A builder with no sections.
        public init(kind: String, metric: VectorMetric, dimension: Int, count: Int) {
            self.kind = kind
            self.metric = metric
            self.dimension = dimension
            self.count = count
        }

        /// Appends a section holding `values` (their in-memory bytes, little-endian on every supported platform).
        public mutating func append<T: BitwiseCopyable>(_ name: String, _ values: [T]) {
            parts.append((name, RawBytes(values)))
        }

        /// Appends a section holding a copy of `bytes` (for small, already-encoded data).
        public mutating func append(_ name: String, bytes: UnsafeRawBufferPointer) {
            parts.append((name, RawBytes(Array(bytes))))
        }

        /// Writes the file (see ``IndexFile/write(to:kind:metric:dimension:count:attributes:stringAttributes:sections:)``).
        public func write(to path: String) throws(IndexError) {
            try withSections(0, []) { (sections) throws(IndexError) in
                try IndexFile.write(
                    to: path, kind: kind, metric: metric, dimension: dimension, count: count, attributes: attributes,
                    stringAttributes: stringAttributes, sections: sections)
            }
        }

        private func withSections(
            _ i: Int, _ acc: [(name: String, bytes: UnsafeRawBufferPointer)],
            _ body: ([(name: String, bytes: UnsafeRawBufferPointer)]) throws(IndexError) -> Void
        ) throws(IndexError) {
            if i == parts.count { return try body(acc) }
            try parts[i].bytes.withBytes { (raw) throws(IndexError) in
                try withSections(i + 1, acc + [(parts[i].name, raw)], body)
            }
        }
    }
}

/// A type-erased array of plain values, lending its bytes without a copy.
private struct RawBytes {
    private let lend: (_ body: (UnsafeRawBufferPointer) throws(IndexError) -> Void) throws(IndexError) -> Void

    init<T: BitwiseCopyable>(_ values: [T]) {
        lend = { (body) throws(IndexError) in
            var failure: IndexError?
            values.withUnsafeBytes { raw in
                do throws(IndexError) { try body(raw) } catch { failure = error }
            }
            if let failure { throw failure }
        }
    }

    func withBytes(_ body: (UnsafeRawBufferPointer) throws(IndexError) -> Void) throws(IndexError) {
        try lend(body)
    }
}

// MARK: - XXH64

/// XXH64 (Yann Collet's xxHash, 64-bit), used for index file checksums (every section is checked on open).
public enum XXHash64 {
    private static let p1: UInt64 = 0x9E37_79B1_85EB_CA87
    private static let p2: UInt64 = 0xC2B2_AE3D_27D4_EB4F
    private static let p3: UInt64 = 0x1656_67B1_9E37_79F9
    private static let p4: UInt64 = 0x85EB_CA77_C2B2_AE63
    private static let p5: UInt64 = 0x27D4_EB2F_1656_67C5

    @inline(__always) private static func rotl(_ x: UInt64, _ r: UInt64) -> UInt64 { (x << r) | (x >> (64 - r)) }
    @inline(__always) private static func round(_ acc: UInt64, _ input: UInt64) -> UInt64 {
        rotl(acc &+ input &* p2, 31) &* p1
    }
    @inline(__always) private static func merge(_ acc: UInt64, _ v: UInt64) -> UInt64 {
        (acc ^ round(0, v)) &* p1 &+ p4
    }

    /// The XXH64 hash of `data` with `seed`.
    public static func hash(_ data: UnsafeRawBufferPointer, seed: UInt64 = 0) -> UInt64 {
        let n = data.count
        guard n > 0, let p = data.baseAddress else { return avalanche(seed &+ p5) }
        var i = 0
        var h: UInt64
        if n >= 32 {
            var v1 = seed &+ p1 &+ p2, v2 = seed &+ p2, v3 = seed, v4 = seed &- p1
            let limit = n - 32
            while i <= limit {
                v1 = round(v1, UInt64(littleEndian: p.loadUnaligned(fromByteOffset: i, as: UInt64.self)))
                v2 = round(v2, UInt64(littleEndian: p.loadUnaligned(fromByteOffset: i + 8, as: UInt64.self)))
                v3 = round(v3, UInt64(littleEndian: p.loadUnaligned(fromByteOffset: i + 16, as: UInt64.self)))
                v4 = round(v4, UInt64(littleEndian: p.loadUnaligned(fromByteOffset: i + 24, as: UInt64.self)))
                i += 32
            }
            h = rotl(v1, 1) &+ rotl(v2, 7) &+ rotl(v3, 12) &+ rotl(v4, 18)
            h = merge(h, v1); h = merge(h, v2); h = merge(h, v3); h = merge(h, v4)
        } else {
            h = seed &+ p5
        }
        h &+= UInt64(n)
        while i + 8 <= n {
            h ^= round(0, UInt64(littleEndian: p.loadUnaligned(fromByteOffset: i, as: UInt64.self)))
            h = rotl(h, 27) &* p1 &+ p4
            i += 8
        }
        if i + 4 <= n {
            h ^= UInt64(UInt32(littleEndian: p.loadUnaligned(fromByteOffset: i, as: UInt32.self))) &* p1
            h = rotl(h, 23) &* p2 &+ p3
            i += 4
        }
        while i < n {
            h ^= UInt64(p.load(fromByteOffset: i, as: UInt8.self)) &* p5
            h = rotl(h, 11) &* p1
            i += 1
        }
        return avalanche(h)
    }

    @inline(__always) private static func avalanche(_ x: UInt64) -> UInt64 {
        var h = x
        h ^= h >> 33; h &*= p2
        h ^= h >> 29; h &*= p3
        h ^= h >> 32
        return h
    }
}

// MARK: - Helpers

private func align(_ x: Int) -> Int {
    let a = IndexFile.sectionAlignment
    return (x + a - 1) / a * a
}

private func hex(_ x: UInt64) -> String { "0x" + String(x, radix: 16) }

/// Reads the variable part of the header, returning nil past its end.
private struct HeaderReader {
    let bytes: UnsafeRawBufferPointer
    var position: Int

    mutating func u32() -> UInt32? {
        guard bytes.count - position >= 4 else { return nil }
        defer { position += 4 }
        return bytes.loadLE(UInt32.self, at: position)
    }

    mutating func u64() -> UInt64? {
        guard bytes.count - position >= 8 else { return nil }
        defer { position += 8 }
        return bytes.loadLE(UInt64.self, at: position)
    }

    mutating func string() -> String? {
        guard let n = u32(), Int(n) <= bytes.count - position else { return nil }
        defer { position += Int(n) }
        return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[position..<(position + Int(n))]), as: UTF8.self)
    }
}

extension UnsafeRawBufferPointer {
    @inline(__always)
    fileprivate func loadLE<T: FixedWidthInteger>(_ type: T.Type, at offset: Int) -> T {
        T(littleEndian: loadUnaligned(fromByteOffset: offset, as: T.self))
    }
}

extension Array where Element == UInt8 {
    fileprivate mutating func appendLE<T: FixedWidthInteger>(_ v: T) {
        Swift.withUnsafeBytes(of: v.littleEndian) { append(contentsOf: $0) }
    }

    fileprivate mutating func appendString(_ s: String) {
        appendLE(UInt32(s.utf8.count))
        append(contentsOf: s.utf8)
    }
}

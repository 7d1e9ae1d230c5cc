import Foundation
import Testing
@testable import EncoreIndex
import EncoreTestSupport

/// The reason of a `.corruptFile` or `.io` error (or the description of any other).
private func reason(_ error: IndexError) -> String {
    switch error {
    case .corruptFile(_, let r), .io(_, let r): return r
    default: return error.description
    }
}

/// Runs `body`, which must throw an ``IndexError`` whose description names `path` and contains `fragment`.
private func expectIndexError(
    _ path: String, contains fragment: String, sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () throws -> Void
) {
    do {
        try body()
        Issue.record("expected an error containing '\(fragment)', got none", sourceLocation: sourceLocation)
    } catch {
        guard let error = error as? IndexError else {
            Issue.record("expected an IndexError, got \(error)", sourceLocation: sourceLocation)
            return
        }
        #expect(error.description.contains(path), "\(error) does not name \(path)", sourceLocation: sourceLocation)
        #expect(reason(error).contains(fragment), "\(error) does not say '\(fragment)'", sourceLocation: sourceLocation)
    }
}

@Suite("IndexFile")
struct IndexFileTests {
    let vectors: [Float] = (0..<(37 * 5)).map { Float($0) * 0.25 - 3 }
    let ids: [Int32] = (0..<37).map { Int32($0 * 3 + 1) }

    /// Writes a small file with three sections (one empty) and attributes.
    func writeSample(_ path: String) throws {
        try vectors.withUnsafeBytes { v in
            try ids.withUnsafeBytes { i in
                try IndexFile.write(
                    to: path, kind: "exact", metric: .cosine, dimension: 5, count: 37,
                    attributes: ["m": 16, "negative": -42, "big": Int64.max],
                    stringAttributes: ["encore_version": "0.1", "note": "héllo wörld"],
                    sections: [("vectors", v), ("ids", i), ("empty", UnsafeRawBufferPointer(start: nil, count: 0))])
            }
        }
    }

    @Test("XXH64 matches the reference values of xxHash")
    func xxhashVectors() {
        func h(_ s: String, seed: UInt64 = 0) -> UInt64 { Array(s.utf8).withUnsafeBytes { XXHash64.hash($0, seed: seed) } }
        #expect(h("") == 0xEF46_DB37_51D8_E999)
        #expect(h("xxhash") == 0x32DD_3895_2C4B_C720)
        #expect(h("xxhash", seed: 20_141_025) == 0xB559_B98D_844E_0635)
        #expect(h("I want an unsigned 64-bit seed!") == 0xD4CB_0A70_A2B8_C7C1)
        #expect(h("I want an unsigned 64-bit seed!", seed: 1) == 0xCE50_87F1_2470_D961)
        #expect(h("Nobody inspects the spammish repetition") == 0xFBCE_A83C_8A37_8BF1)
    }

    @Test("a written file reads back: header, attributes, sections, alignment")
    func roundTrip() throws {
        let dir = makeTemporaryDirectory("indexfile")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/a.encoreix"
        try writeSample(path)
        let f = try IndexFile.open(path: path, expectedKind: "exact")
        #expect(f.kind == "exact")
        #expect(f.metric == .cosine)
        #expect(f.dimension == 5)
        #expect(f.count == 37)
        #expect(f.version == 1)
        #expect(f.attributes == ["m": 16, "negative": -42, "big": Int64.max])
        #expect(f.stringAttributes == ["encore_version": "0.1", "note": "héllo wörld"])
        #expect(f.sectionNames == ["vectors", "ids", "empty"])
        for s in f.sections { #expect(s.offset % 64 == 0) }
        #expect(Array(try f.array("vectors", of: Float.self, count: vectors.count)) == vectors)
        #expect(Array(try f.array("ids", of: Int32.self)) == ids)
        #expect(try f.section("empty").count == 0)
        #expect(try f.array("empty", of: Float.self).isEmpty)
        #expect(try f.attribute("m") == 16)
        #expect(try f.stringAttribute("encore_version") == "0.1")
        #expect(f.hasSection("ids") && !f.hasSection("graph"))
        // No temporary file is left behind.
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["a.encoreix"])
        // Overwriting replaces the file.
        try IndexFile.write(to: path, kind: "hnsw", metric: .l2, dimension: 1, count: 0, sections: [])
        let g = try IndexFile.open(path: path)
        #expect(g.kind == "hnsw" && g.metric == .l2 && g.sections.isEmpty)
    }

    @Test("the on-disk layout is the documented one (a file made by hand opens)")
    func handMadeFile() throws {
        let dir = makeTemporaryDirectory("indexfile")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] { (0..<MemoryLayout<T>.size).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }
        func str(_ s: String) -> [UInt8] { le(UInt32(s.utf8.count)) + Array(s.utf8) }
        let payload: [UInt8] = le(Float(1.5).bitPattern) + le(Float(-2).bitPattern)
        let payloadSum = payload.withUnsafeBytes { XXHash64.hash($0) }
        // 24 fixed + kind 9 + metric 6 + 16 + 4 + (4 + k 5 + v 5) + 4 + section entry (4+1+24) + 8 checksum = 114;
        // the section starts at 128.
        var header: [UInt8] = Array("ENCOREIX".utf8) + le(UInt32(1)) + le(UInt32(114)) + le(UInt64(136))
        header += str("exact") + str("l2") + le(UInt64(2)) + le(UInt64(1))
        header += le(UInt32(0)) + le(UInt32(1)) + str("k") + str("v")
        header += le(UInt32(1)) + str("v") + le(UInt64(128)) + le(UInt64(8)) + le(payloadSum)
        #expect(header.count == 106)
        header += le(header.withUnsafeBytes { XXHash64.hash($0) })
        let bytes = header + [UInt8](repeating: 0, count: 14) + payload
        let path = dir + "/hand.encoreix"
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let f = try IndexFile.open(path: path, expectedKind: "exact")
        #expect(f.metric == .l2 && f.dimension == 2 && f.count == 1)
        #expect(f.stringAttributes == ["k": "v"] && f.attributes.isEmpty)
        #expect(Array(try f.array("v", of: Float.self)) == [1.5, -2])

        // And the writer produces exactly these bytes.
        let path2 = dir + "/written.encoreix"
        try payload.withUnsafeBytes { p in
            try IndexFile.write(to: path2, kind: "exact", metric: .l2, dimension: 2, count: 1, stringAttributes: ["k": "v"],
                                sections: [("v", p)])
        }
        #expect(Array(try Data(contentsOf: URL(fileURLWithPath: path2))) == bytes)
    }

    @Test("the builder writes arrays as sections")
    func builder() throws {
        let dir = makeTemporaryDirectory("indexfile")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var b = IndexFile.Builder(kind: "hnsw", metric: .innerProduct, dimension: 5, count: 37)
        b.attributes["ef_construction"] = 200
        b.stringAttributes["x"] = "y"
        b.append("vectors", vectors)
        b.append("ids", ids)
        b.append("levels", [UInt8](repeating: 3, count: 5))
        b.append("raw", bytes: UnsafeRawBufferPointer(start: nil, count: 0))
        try b.write(to: dir + "/b.encoreix")
        let f = try IndexFile.open(path: dir + "/b.encoreix", expectedKind: "hnsw")
        #expect(f.metric == .innerProduct)
        #expect(f.attributes == ["ef_construction": 200])
        #expect(Array(try f.array("vectors", of: Float.self)) == vectors)
        #expect(Array(try f.array("ids", of: Int32.self)) == ids)
        #expect(Array(try f.array("levels", of: UInt8.self)) == [3, 3, 3, 3, 3])
        #expect(f.sectionNames == ["vectors", "ids", "levels", "raw"])
    }

    @Test("a flipped byte in any section or in the header is detected")
    func flippedBytes() throws {
        let dir = makeTemporaryDirectory("indexfile")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/a.encoreix"
        try writeSample(path)
        let good = try Data(contentsOf: URL(fileURLWithPath: path))
        let f = try IndexFile.open(path: path)
        let headerLength = Int(good[12]) | Int(good[13]) << 8
        let bad = dir + "/bad.encoreix"
        for s in f.sections where s.length > 0 {
            for at in [s.offset, s.offset + s.length / 2, s.offset + s.length - 1] {
                var d = good
                d[at] ^= 0x10
                try d.write(to: URL(fileURLWithPath: bad))
                expectIndexError(bad, contains: "checksum mismatch in section '\(s.name)'") { _ = try IndexFile.open(path: bad) }
                // Without verification it opens (the caller asked for speed over safety).
                #expect(throws: Never.self) { _ = try IndexFile.open(path: bad, verifyChecksums: false) }
            }
        }
        // Every header byte after the version and length fields: the header checksum catches it.
        for at in 16..<headerLength {
            var d = good
            d[at] ^= 0x01
            try d.write(to: URL(fileURLWithPath: bad))
            expectIndexError(bad, contains: "header checksum mismatch") { _ = try IndexFile.open(path: bad) }
        }
        // The header length field itself.
        var d = good
        d[12] ^= 0x08
        try d.write(to: URL(fileURLWithPath: bad))
        do { _ = try IndexFile.open(path: bad); Issue.record("a damaged header length was accepted") } catch {
            #expect(error.description.contains(bad))
        }
    }

    @Test("a file truncated at any length is rejected as truncated")
    func truncation() throws {
        let dir = makeTemporaryDirectory("indexfile")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/a.encoreix"
        try writeSample(path)
        let good = try Data(contentsOf: URL(fileURLWithPath: path))
        let bad = dir + "/cut.encoreix"
        expectIndexError(bad, contains: "no such file") { _ = try IndexFile.open(path: bad) }
        try Data().write(to: URL(fileURLWithPath: bad))
        expectIndexError(bad, contains: "empty") { _ = try IndexFile.open(path: bad) }
        for length in 1..<good.count {
            try good.prefix(length).write(to: URL(fileURLWithPath: bad))
            expectIndexError(bad, contains: "truncated") { _ = try IndexFile.open(path: bad) }
        }
        // Extra bytes at the end are rejected too.
        try (good + Data([0])).write(to: URL(fileURLWithPath: bad))
        expectIndexError(bad, contains: "trailing bytes") { _ = try IndexFile.open(path: bad) }
    }

    @Test("foreign files, newer versions, wrong kinds and missing sections are named as such")
    func foreignAndMismatched() throws {
        let dir = makeTemporaryDirectory("indexfile")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/a.encoreix"
        try writeSample(path)
        let good = try Data(contentsOf: URL(fileURLWithPath: path))
        let bad = dir + "/bad.encoreix"

        var d = good
        d[0] = UInt8(ascii: "X")
        try d.write(to: URL(fileURLWithPath: bad))
        expectIndexError(bad, contains: "foreign file") { _ = try IndexFile.open(path: bad) }
        try Data("PK\u{3}\u{4} a zip file, not an index".utf8).write(to: URL(fileURLWithPath: bad))
        expectIndexError(bad, contains: "foreign file") { _ = try IndexFile.open(path: bad) }
        try Data("ENC".utf8).write(to: URL(fileURLWithPath: bad))
        expectIndexError(bad, contains: "truncated") { _ = try IndexFile.open(path: bad) }

        d = good
        d[8] = 2
        try d.write(to: URL(fileURLWithPath: bad))
        expectIndexError(bad, contains: "format version 2 is newer") { _ = try IndexFile.open(path: bad) }

        expectIndexError(path, contains: "wrong kind: the file holds a 'exact' index, expected 'hnsw'") {
            _ = try IndexFile.open(path: path, expectedKind: "hnsw")
        }
        let f = try IndexFile.open(path: path)
        expectIndexError(path, contains: "section 'graph' is missing") { _ = try f.section("graph") }
        expectIndexError(path, contains: "holds 185 Float values, expected 10") { _ = try f.array("vectors", of: Float.self, count: 10) }
        expectIndexError(path, contains: "not a whole number of 8-byte") { _ = try f.array("ids", of: Int64.self) }
        expectIndexError(path, contains: "integer attribute 'ef' is missing") { _ = try f.attribute("ef") }

        // A directory is not an index file.
        expectIndexError(dir, contains: "not a regular file") { _ = try IndexFile.open(path: dir) }
    }

    @Test("bad write arguments are refused and leave nothing behind")
    func badWrites() throws {
        let dir = makeTemporaryDirectory("indexfile")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let empty = UnsafeRawBufferPointer(start: nil, count: 0)
        #expect(throws: IndexError.self) {
            try IndexFile.write(to: dir + "/x", kind: "exact", metric: .l2, dimension: 1, count: 0, sections: [("a", empty), ("a", empty)])
        }
        #expect(throws: IndexError.self) {
            try IndexFile.write(to: dir + "/x", kind: "", metric: .l2, dimension: 1, count: 0, sections: [])
        }
        expectIndexError(dir + "/missing/x", contains: "does not exist") {
            try IndexFile.write(to: dir + "/missing/x", kind: "exact", metric: .l2, dimension: 1, count: 0, sections: [])
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).isEmpty)
    }
}

import Foundation
import Testing
@testable import EncoreCore
@testable import EncoreIndex
import EncoreTestSupport

/// Hand-made `.npy` bytes: preamble, the header text padded with spaces to a 64-byte boundary, then `data`.
private func npy(major: UInt8 = 1, header: String, data: [UInt8], pad: Bool = true) -> [UInt8] {
    let lengthBytes = major == 1 ? 2 : 4
    var text = Array(header.utf8)
    if pad {
        let unpadded = 6 + 2 + lengthBytes + text.count + 1
        text += [UInt8](repeating: 0x20, count: (64 - unpadded % 64) % 64)
    }
    text.append(0x0A)
    let n = text.count
    let length: [UInt8] = major == 1 ? [UInt8(n & 0xFF), UInt8(n >> 8)] : (0..<4).map { UInt8(truncatingIfNeeded: n >> (8 * $0)) }
    return [0x93] + Array("NUMPY".utf8) + [major, 0] + length + text + data
}

private func f4(_ values: [Float]) -> [UInt8] {
    values.flatMap { v in (0..<4).map { UInt8(truncatingIfNeeded: v.bitPattern >> (8 * $0)) } }
}

private func f8(_ values: [Double]) -> [UInt8] {
    values.flatMap { v in (0..<8).map { UInt8(truncatingIfNeeded: v.bitPattern >> (8 * $0)) } }
}

@Suite("NumPyArray")
struct NumPyArrayTests {
    /// Decodes `bytes` both in memory and from a file, expecting the same matrix.
    func readBoth(_ bytes: [UInt8], dir: String) throws -> Matrix {
        let path = dir + "/a.npy"
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let fromFile = try NumPyArray.read(path: path)
        let fromMemory = try NumPyArray.decode(bytes, path: path)
        #expect(fromFile == fromMemory)
        return fromFile
    }

    /// Expects reading `bytes` (from a file and from memory) to fail with a reason containing `fragment`.
    func expectRejected(_ bytes: [UInt8], dir: String, _ fragment: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let path = dir + "/bad.npy"
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        for attempt in 0..<2 {
            do {
                _ = attempt == 0 ? try NumPyArray.read(path: path) : try NumPyArray.decode(bytes, path: path)
                Issue.record("accepted; expected '\(fragment)'", sourceLocation: sourceLocation)
            } catch {
                #expect(error.description.hasPrefix(path + ": "), "\(error)", sourceLocation: sourceLocation)
                #expect(error.description.contains(fragment), "\(error) lacks '\(fragment)'", sourceLocation: sourceLocation)
            }
        }
    }

    @Test("hand-made files of each version and dtype read back")
    func handMade() throws {
        let dir = makeTemporaryDirectory("npy")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let values: [Float] = [1, -2.5, 3.25, 0, 1e-7, 6e10]
        let m = try readBoth(npy(header: "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", data: f4(values)), dir: dir)
        #expect(m.rows == 2 && m.cols == 3 && m.storage == values)
        // Version 2, float64, 1-D (one row), double quotes, no trailing comma.
        let d: [Double] = [0.1, -1e300, 2]
        let m2 = try readBoth(npy(major: 2, header: "{\"descr\": \"<f8\", \"fortran_order\": False, \"shape\": (3,)}", data: f8(d)), dir: dir)
        #expect(m2.rows == 1 && m2.cols == 3 && m2.storage == d.map { Float($0) })
        // Version 3 with keys in another order and an unpadded header.
        let m3 = try readBoth(npy(major: 3, header: "{'shape': (1, 2), 'fortran_order': False, 'descr': '<f4'}", data: f4([7, 8]), pad: false), dir: dir)
        #expect(m3.storage == [7, 8] && m3.rows == 1 && m3.cols == 2)
        // Empty arrays.
        let e = try readBoth(npy(header: "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 5), }", data: []), dir: dir)
        #expect(e.rows == 0 && e.cols == 5)
    }

    @Test("encode writes the bytes numpy.save writes, and reads back", arguments: [1, 2, 3])
    func roundTrip(version: Int) throws {
        let dir = makeTemporaryDirectory("npy")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let m = Matrix.random(rows: 33, cols: 5, scale: 2, seed: 4)
        let bytes = try NumPyArray.encode(m, version: version)
        // numpy.save leaves 21 − len("33") spaces for the first dimension to grow, then pads to 64 bytes.
        let growth = String(repeating: " ", count: 19)
        let expected = npy(major: UInt8(version), header: "{'descr': '<f4', 'fortran_order': False, 'shape': (33, 5), }" + growth, data: f4(m.storage))
        #expect(bytes == expected)
        #expect((bytes.count - m.storage.count * 4) % 64 == 0)
        try NumPyArray.write(m, to: dir + "/m.npy", version: version)
        #expect(try NumPyArray.read(path: dir + "/m.npy") == m)
        try NumPyArray.write(m, to: dir + "/m8.npy", dtype: .float64, version: version)
        #expect(try NumPyArray.read(path: dir + "/m8.npy") == m)
        let header = try NumPyArray.readHeader(path: dir + "/m8.npy")
        #expect(header.dtype == .float64 && header.shape == [33, 5] && header.version.major == UInt8(version))
        let row = try Matrix(rows: 1, cols: 4, storage: [1, 2, 3, 4])
        try NumPyArray.write(row, to: dir + "/v.npy", version: version, oneDimensional: true)
        #expect(try NumPyArray.readHeader(path: dir + "/v.npy").shape == [4])
        #expect(try NumPyArray.read(path: dir + "/v.npy") == row)
    }

    @Test("unsupported arrays and damaged files are refused with a clear reason")
    func rejected() throws {
        let dir = makeTemporaryDirectory("npy")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let data = f4([1, 2, 3, 4, 5, 6])
        func h(_ descr: String = "<f4", fortran: String = "False", shape: String = "(2, 3)") -> String {
            "{'descr': '\(descr)', 'fortran_order': \(fortran), 'shape': \(shape), }"
        }
        try expectRejected(npy(header: h(fortran: "True"), data: data), dir: dir, "Fortran order")
        try expectRejected(npy(header: h(">f4"), data: data), dir: dir, "big-endian")
        try expectRejected(npy(header: h("<i4"), data: data), dir: dir, "dtype '<i4'")
        try expectRejected(npy(header: h("<f2"), data: data), dir: dir, "dtype '<f2'")
        try expectRejected(npy(header: h(shape: "(1, 2, 3)"), data: data), dir: dir, "3-D shape")
        try expectRejected(npy(header: h(shape: "()"), data: data), dir: dir, "0-D shape")
        try expectRejected(npy(header: h(), data: Array(data.prefix(23))), dir: dir, "truncated: shape (2, 3) of <f4 needs 24 data bytes, the file has 23")
        try expectRejected(npy(header: h(), data: data + [0]), dir: dir, "1 bytes after the data")
        try expectRejected(npy(header: "{'descr': '<f4', 'shape': (2, 3)}", data: data), dir: dir, "no 'fortran_order'")
        try expectRejected(npy(header: "{'descr': '<f4' 'fortran_order': False}", data: data), dir: dir, "cannot parse the header")
        try expectRejected(npy(header: "not a dict", data: data), dir: dir, "cannot parse the header")
        try expectRejected(npy(header: h(shape: "(2, x)"), data: data), dir: dir, "cannot parse the header")
        var v4 = npy(header: h(), data: data)
        v4[6] = 4
        try expectRejected(v4, dir: dir, "format version 4.0")
        try expectRejected(Array("PK\u{3}\u{4}zip file".utf8), dir: dir, "NumPy magic")
        try expectRejected([], dir: dir, "empty")
        let good = npy(header: h(), data: data)
        for cut in [3, 6, 9, 20, good.count - 25] {
            try expectRejected(Array(good.prefix(cut)), dir: dir, "truncated")
        }
        #expect(throws: IndexError.io(path: dir + "/none.npy", reason: "no such file")) { _ = try NumPyArray.read(path: dir + "/none.npy") }
        #expect(throws: IndexError.self) { _ = try NumPyArray.read(path: dir) }
        #expect(throws: IndexError.self) { _ = try NumPyArray.encode(Matrix(rows: 2, cols: 2), oneDimensional: true) }
        #expect(throws: IndexError.self) { _ = try NumPyArray.encode(Matrix(rows: 2, cols: 2), version: 4) }
    }
}

import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import EncoreCore

/// Reads and writes NumPy `.npy` files of float vectors (the exchange format of ANN benchmarks and of
/// `encore-train ann-bench`).
///
/// Read: format versions 1.0, 2.0 and 3.0; dtype `<f4` (little-endian float32, read straight into the matrix) or `<f8`
/// (float64, converted); C order; 1-D (read as one row) or 2-D (`rows × cols`). Anything else — Fortran order,
/// big-endian or other dtypes, 0-D or 3-D shapes, a damaged header, a size that disagrees with the shape — is an
/// ``IndexError/io(path:reason:)`` naming the file and the problem.
///
/// Write: version 1.0 (2.0 when the header would not fit), `<f4` or `<f8`, C order, the header padded as `numpy.save`
/// pads it (the same bytes as numpy 2 writes), so the data start at a multiple of 64 bytes.
public enum NumPyArray {
    /// The element types Encore reads and writes.
    public enum DType: String, Sendable {
        /// Little-endian float32 (`<f4`).
        case float32 = "<f4"
        /// Little-endian float64 (`<f8`), converted to `Float` when read.
        case float64 = "<f8"

        var size: Int { self == .float32 ? 4 : 8 }
    }

    /// What an `.npy` header declares.
    public struct Header: Sendable, Equatable {
        /// The format version, e.g. `(1, 0)`.
        public var version: (major: UInt8, minor: UInt8)
        /// The element type.
        public var dtype: DType
        /// The shape: one or two dimensions.
        public var shape: [Int]
        /// Byte offset of the data.
        public var dataOffset: Int

        public static func == (a: Header, b: Header) -> Bool {
            a.version == b.version && a.dtype == b.dtype && a.shape == b.shape && a.dataOffset == b.dataOffset
        }
    }

    static let magic: [UInt8] = [0x93] + Array("NUMPY".utf8)

    /// Reads a 1-D or 2-D float array as a `Matrix` (a 1-D array of `n` values is one row of `n` columns).
    /// - Throws: ``IndexError/io(path:reason:)`` when the file is missing, unreadable, not an `.npy` file, or holds an
    ///   array Encore does not read (the reason says which and how to convert it).
    public static func read(path: String) throws(IndexError) -> Matrix {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let code = errno
            throw .io(path: path, reason: code == ENOENT ? "no such file" : "cannot open: \(FileError.errnoText(code))")
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw .io(path: path, reason: "cannot stat: \(FileError.errnoText(errno))") }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw .io(path: path, reason: "not a regular file") }
        let size = Int(st.st_size)

        // The preamble: magic, version, header length.
        var pre = [UInt8](repeating: 0, count: 12)
        let got = try readFully(fd, into: &pre, at: 0, count: min(12, size), path: path)
        let header = try parseHeader(prefix: Array(pre[0..<got]), path: path) { (offset, count) throws(IndexError) in
            guard offset + count <= size else {
                throw .io(path: path, reason: "not a valid .npy file: truncated inside the header (file is \(size) bytes)")
            }
            var buf = [UInt8](repeating: 0, count: count)
            _ = try readFully(fd, into: &buf, at: offset, count: count, path: path)
            return buf
        }
        let (rows, cols) = header.shape.count == 1 ? (1, header.shape[0]) : (header.shape[0], header.shape[1])
        let (elements, o1) = rows.multipliedReportingOverflow(by: cols)
        let (dataBytes, o2) = elements.multipliedReportingOverflow(by: header.dtype.size)
        guard !o1, !o2 else { throw .io(path: path, reason: "not a valid .npy file: shape \(header.shape) is too large") }
        let available = size - header.dataOffset
        guard available >= dataBytes else {
            throw .io(path: path, reason: "truncated: shape \(shapeText(header.shape)) of \(header.dtype.rawValue) needs \(dataBytes) data bytes, the file has \(max(0, available))")
        }
        guard available == dataBytes else {
            throw .io(path: path, reason: "not a valid .npy file: \(available - dataBytes) bytes after the data of shape \(shapeText(header.shape))")
        }

        var storage = [Float](repeating: 0, count: elements)
        switch header.dtype {
        case .float32:
            try storage.withUnsafeMutableBufferPointer { (buf) throws(IndexError) in
                try readFully(fd, into: UnsafeMutableRawBufferPointer(buf), at: header.dataOffset, path: path)
            }
            #if _endian(big)
            for i in storage.indices { storage[i] = Float(bitPattern: UInt32(littleEndian: storage[i].bitPattern)) }
            #endif
        case .float64:
            let chunk = 1 << 16
            var buffer = [Double](repeating: 0, count: min(chunk, max(1, elements)))
            var done = 0
            while done < elements {
                let n = min(chunk, elements - done)
                try buffer.withUnsafeMutableBufferPointer { (buf) throws(IndexError) in
                    try readFully(fd, into: UnsafeMutableRawBufferPointer(rebasing: UnsafeMutableRawBufferPointer(buf)[0..<(n * 8)]),
                                  at: header.dataOffset + done * 8, path: path)
                }
                for i in 0..<n { storage[done + i] = Float(Double(bitPattern: UInt64(littleEndian: buffer[i].bitPattern))) }
                done += n
            }
        }
        do { return try Matrix(rows: rows, cols: cols, storage: storage) } catch {
            throw .io(path: path, reason: "\(error)")
        }
    }

    /// Reads only the header of an `.npy` file (shape and dtype), without the data.
    /// - Throws: as ``read(path:)``.
    public static func readHeader(path: String) throws(IndexError) -> Header {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped) } catch {
            throw .io(path: path, reason: FileManager.default.fileExists(atPath: path) ? "cannot read: \(error.localizedDescription)" : "no such file")
        }
        let bytes = [UInt8](data.prefix(12))
        return try parseHeader(prefix: bytes, path: path) { (offset, count) throws(IndexError) in
            guard offset + count <= data.count else {
                throw .io(path: path, reason: "not a valid .npy file: truncated inside the header (file is \(data.count) bytes)")
            }
            return [UInt8](data[offset..<(offset + count)])
        }
    }

    /// Parses an `.npy` file held in memory.
    /// - Parameter path: named in errors.
    /// - Throws: as ``read(path:)``.
    public static func decode(_ bytes: [UInt8], path: String = "<memory>") throws(IndexError) -> Matrix {
        let header = try parseHeader(prefix: Array(bytes.prefix(12)), path: path) { (offset, count) throws(IndexError) in
            guard offset + count <= bytes.count else {
                throw .io(path: path, reason: "not a valid .npy file: truncated inside the header (file is \(bytes.count) bytes)")
            }
            return Array(bytes[offset..<(offset + count)])
        }
        let (rows, cols) = header.shape.count == 1 ? (1, header.shape[0]) : (header.shape[0], header.shape[1])
        let (elements, o1) = rows.multipliedReportingOverflow(by: cols)
        let (dataBytes, o2) = elements.multipliedReportingOverflow(by: header.dtype.size)
        guard !o1, !o2 else { throw .io(path: path, reason: "not a valid .npy file: shape \(header.shape) is too large") }
        let available = bytes.count - header.dataOffset
        guard available >= dataBytes else {
            throw .io(path: path, reason: "truncated: shape \(shapeText(header.shape)) of \(header.dtype.rawValue) needs \(dataBytes) data bytes, the file has \(max(0, available))")
        }
        guard available == dataBytes else {
            throw .io(path: path, reason: "not a valid .npy file: \(available - dataBytes) bytes after the data of shape \(shapeText(header.shape))")
        }
        var storage = [Float](repeating: 0, count: elements)
        bytes.withUnsafeBytes { raw in
            for i in 0..<elements {
                let at = header.dataOffset + i * header.dtype.size
                storage[i] = header.dtype == .float32
                    ? Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: at, as: UInt32.self)))
                    : Float(Double(bitPattern: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: at, as: UInt64.self))))
            }
        }
        do { return try Matrix(rows: rows, cols: cols, storage: storage) } catch { throw .io(path: path, reason: "\(error)") }
    }

    /// The bytes of an `.npy` file holding `matrix` (2-D, or 1-D of its single row when `oneDimensional`).
    ///
    /// - Parameters:
    ///   - dtype: `<f4` (default) or `<f8`.
    ///   - version: 1, 2 or 3; nil picks 1 (or 2 when the header needs more than 65 535 bytes).
    /// - Throws: ``IndexError/invalidParameter(_:)`` for an unknown version, a 1-D request on a matrix without exactly
    ///   one row, or a header too long for version 1.
    public static func encode(_ matrix: Matrix, dtype: DType = .float32, version: Int? = nil, oneDimensional: Bool = false) throws(IndexError) -> [UInt8] {
        if oneDimensional && matrix.rows != 1 { throw .invalidParameter("a 1-D .npy array needs a matrix of one row, got \(matrix.rows)") }
        let shape = oneDimensional ? "(\(matrix.cols),)" : "(\(matrix.rows), \(matrix.cols))"
        // As numpy.save: room for the first dimension to grow to 21 digits, then spaces up to a 64-byte boundary.
        let growth = String(repeating: " ", count: max(0, 21 - String(oneDimensional ? matrix.cols : matrix.rows).count))
        let dict = "{'descr': '\(dtype.rawValue)', 'fortran_order': False, 'shape': \(shape), }" + growth
        let v = version ?? 1
        guard (1...3).contains(v) else { throw .invalidParameter(".npy format version \(v) (expected 1, 2 or 3)") }
        let lengthBytes = v == 1 ? 2 : 4
        let unpadded = magic.count + 2 + lengthBytes + dict.utf8.count + 1
        let padded = (unpadded + 63) / 64 * 64
        let headerLength = padded - magic.count - 2 - lengthBytes
        if v == 1 && headerLength > Int(UInt16.max) {
            if version == nil { return try encode(matrix, dtype: dtype, version: 2, oneDimensional: oneDimensional) }
            throw .invalidParameter("the .npy header is too long for format version 1")
        }
        var out = magic + [UInt8(v), 0]
        out.reserveCapacity(padded + matrix.storage.count * dtype.size)
        if v == 1 {
            out += [UInt8(headerLength & 0xFF), UInt8(headerLength >> 8)]
        } else {
            out += (0..<4).map { UInt8(truncatingIfNeeded: headerLength >> (8 * $0)) }
        }
        out += Array(dict.utf8) + [UInt8](repeating: 0x20, count: padded - unpadded) + [0x0A]
        switch dtype {
        case .float32:
            for x in matrix.storage { let b = x.bitPattern.littleEndian; Swift.withUnsafeBytes(of: b) { out += $0 } }
        case .float64:
            for x in matrix.storage { let b = Double(x).bitPattern.littleEndian; Swift.withUnsafeBytes(of: b) { out += $0 } }
        }
        return out
    }

    /// Writes `matrix` as an `.npy` file (see ``encode(_:dtype:version:oneDimensional:)``), atomically.
    /// - Throws: ``IndexError/invalidParameter(_:)`` as `encode`, ``IndexError/io(path:reason:)`` when writing fails.
    public static func write(_ matrix: Matrix, to path: String, dtype: DType = .float32, version: Int? = nil, oneDimensional: Bool = false) throws(IndexError) {
        let bytes = try encode(matrix, dtype: dtype, version: version, oneDimensional: oneDimensional)
        do { try Data(bytes).write(to: URL(fileURLWithPath: path), options: .atomic) } catch {
            throw .io(path: path, reason: "cannot write: \(error.localizedDescription)")
        }
    }

    // MARK: Header parsing

    /// Parses the preamble in `prefix` (up to 12 bytes) and the header dictionary fetched with `fetch(offset, count)`.
    static func parseHeader(
        prefix: [UInt8], path: String, allowScalar: Bool = false, fetch: (Int, Int) throws(IndexError) -> [UInt8]
    ) throws(IndexError) -> Header {
        func bad(_ reason: String) -> IndexError { .io(path: path, reason: "not a valid .npy file: \(reason)") }
        guard !prefix.isEmpty else { throw bad("the file is empty") }
        for i in 0..<min(prefix.count, magic.count) where prefix[i] != magic[i] {
            throw bad("it does not start with the NumPy magic \\x93NUMPY (save it with numpy.save)")
        }
        guard prefix.count >= 10 else { throw bad("truncated inside the preamble (\(prefix.count) bytes)") }
        let major = prefix[6], minor = prefix[7]
        guard (1...3).contains(major), minor == 0 else {
            throw bad("unsupported format version \(major).\(minor) (Encore reads 1.0, 2.0 and 3.0)")
        }
        let headerLength: Int
        let headerStart: Int
        if major == 1 {
            headerLength = Int(prefix[8]) | Int(prefix[9]) << 8
            headerStart = 10
        } else {
            guard prefix.count >= 12 else { throw bad("truncated inside the preamble (\(prefix.count) bytes)") }
            headerLength = (0..<4).reduce(0) { $0 | Int(prefix[8 + $1]) << (8 * $1) }
            headerStart = 12
        }
        guard headerLength > 0, headerLength <= 1 << 24 else { throw bad("header length \(headerLength) is invalid") }
        let raw = try fetch(headerStart, headerLength)
        guard let text = major == 2 ? String(bytes: raw, encoding: .isoLatin1) : String(bytes: raw, encoding: major == 3 ? .utf8 : .ascii) else {
            throw bad("the header is not text")
        }
        var parser = DictParser(chars: Array(text.unicodeScalars), position: 0)
        let dict: [String: DictParser.Value]
        do { dict = try parser.parse() } catch { throw bad("cannot parse the header \(text.trimmingCharacters(in: .whitespacesAndNewlines)): \(error.reason)") }

        guard case .string(let descr)? = dict["descr"] else { throw bad("the header has no 'descr' string") }
        guard case .bool(let fortran)? = dict["fortran_order"] else { throw bad("the header has no 'fortran_order' flag") }
        guard case .tuple(let shape)? = dict["shape"] else { throw bad("the header has no 'shape' tuple") }
        let dtype: DType
        switch descr {
        case "<f4": dtype = .float32
        case "<f8": dtype = .float64
        case ">f4", ">f8":
            throw .io(path: path, reason: "unsupported .npy array: big-endian dtype '\(descr)'; convert with a.astype('<f4')")
        default:
            throw .io(path: path, reason: "unsupported .npy array: dtype '\(descr)' (Encore reads float32 '<f4' and float64 '<f8'); convert with a.astype('<f4')")
        }
        guard !fortran else {
            throw .io(path: path, reason: "unsupported .npy array: Fortran order (column-major); save numpy.ascontiguousarray(a) instead")
        }
        guard shape.count == 1 || shape.count == 2 || (allowScalar && shape.isEmpty) else {
            throw .io(path: path, reason: "unsupported .npy array: \(shape.count)-D shape \(shapeText(shape)) (Encore reads 1-D and 2-D arrays)")
        }
        guard shape.allSatisfy({ $0 >= 0 }) else { throw bad("negative dimension in shape \(shapeText(shape))") }
        return Header(version: (major, minor), dtype: dtype, shape: shape, dataOffset: headerStart + headerLength)
    }

    static func shapeText(_ shape: [Int]) -> String {
        shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
    }
}

/// Reads `count` bytes at `offset` into `buffer`, returning how many were read (less only at the end of the file).
private func readFully(_ fd: Int32, into buffer: inout [UInt8], at offset: Int, count: Int, path: String) throws(IndexError) -> Int {
    var total = 0
    while total < count {
        let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + total, count - total, off_t(offset + total)) }
        if n < 0 {
            if errno == EINTR { continue }
            throw .io(path: path, reason: "cannot read: \(FileError.errnoText(errno))")
        }
        if n == 0 { break }
        total += n
    }
    return total
}

/// Reads exactly `buffer.count` bytes at `offset` (the caller checked the file size).
private func readFully(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, at offset: Int, path: String) throws(IndexError) {
    guard let base = buffer.baseAddress else { return }
    var total = 0
    while total < buffer.count {
        let n = pread(fd, base + total, min(buffer.count - total, 1 << 30), off_t(offset + total))
        if n < 0 {
            if errno == EINTR { continue }
            throw .io(path: path, reason: "cannot read: \(FileError.errnoText(errno))")
        }
        if n == 0 { throw .io(path: path, reason: "truncated: the file ended while reading the data") }
        total += n
    }
}

/// A parser for the Python dict literal of an `.npy` header: string keys; string, bool and int-tuple values.
private struct DictParser {
    enum Value: Equatable { case string(String), bool(Bool), tuple([Int]), int(Int) }
    struct Failure: Error { let reason: String }

    let chars: [Unicode.Scalar]
    var position: Int

    mutating func parse() throws(Failure) -> [String: Value] {
        var out: [String: Value] = [:]
        skipSpace()
        try expect("{")
        while true {
            skipSpace()
            if peek() == "}" { position += 1; break }
            let key = try string()
            skipSpace()
            try expect(":")
            skipSpace()
            out[key] = try value()
            skipSpace()
            if peek() == "," { position += 1; continue }
            skipSpace()
            try expect("}")
            break
        }
        skipSpace()
        guard position == chars.count else { throw Failure(reason: "unexpected text after the dictionary") }
        return out
    }

    func peek() -> Unicode.Scalar? { position < chars.count ? chars[position] : nil }

    mutating func skipSpace() {
        while let c = peek(), c == " " || c == "\n" || c == "\t" || c == "\r" || c == "\0" { position += 1 }
    }

    mutating func expect(_ c: Unicode.Scalar) throws(Failure) {
        guard peek() == c else { throw Failure(reason: "expected '\(c)' at character \(position)") }
        position += 1
    }

    mutating func string() throws(Failure) -> String {
        guard let q = peek(), q == "'" || q == "\"" else { throw Failure(reason: "expected a quoted string at character \(position)") }
        position += 1
        var s = String.UnicodeScalarView()
        while let c = peek(), c != q {
            s.append(c)
            position += 1
        }
        try expect(q)
        return String(s)
    }

    mutating func int() throws(Failure) -> Int {
        var digits = ""
        if peek() == "-" { digits.append("-"); position += 1 }
        while let c = peek(), ("0"..."9").contains(c) { digits.unicodeScalars.append(c); position += 1 }
        if peek() == "L" { position += 1 }
        guard let v = Int(digits) else { throw Failure(reason: "expected an integer at character \(position)") }
        return v
    }

    mutating func value() throws(Failure) -> Value {
        guard let c = peek() else { throw Failure(reason: "the header ends early") }
        switch c {
        case "'", "\"": return .string(try string())
        case "T", "F":
            for word in ["True", "False"] where chars.count - position >= word.unicodeScalars.count
                && String(String.UnicodeScalarView(chars[position..<(position + word.unicodeScalars.count)])) == word {
                position += word.unicodeScalars.count
                return .bool(word == "True")
            }
            throw Failure(reason: "unexpected word at character \(position)")
        case "(":
            position += 1
            var items: [Int] = []
            while true {
                skipSpace()
                if peek() == ")" { position += 1; break }
                items.append(try int())
                skipSpace()
                if peek() == "," { position += 1; continue }
                skipSpace()
                try expect(")")
                break
            }
            return .tuple(items)
        default:
            return .int(try int())
        }
    }
}

internal import CZip
import EncoreCore

/// A NumPy `.npz` archive (`numpy.savez` or `numpy.savez_compressed`): named `.npy` arrays in a zip file, read
/// through libzip. implicit's `model.save(...)` writes one (`user_factors`, `item_factors`, `regularization`, ...).
public struct NumPyArchive: ~Copyable {
    /// The archive's path (named in errors).
    public let path: String
    private let handle: OpaquePointer
    /// The arrays' names, without the `.npy` suffix, in archive order.
    public let names: [String]

    /// Opens `path` for reading.
    /// - Throws: ``IndexError/io(path:reason:)`` when the file is missing or is not a zip archive.
    public init(path: String) throws(IndexError) {
        var code: Int32 = 0
        guard let z = zip_open(path, ZIP_RDONLY, &code) else {
            var error = zip_error_t()
            zip_error_init_with_code(&error, code)
            defer { zip_error_fini(&error) }
            let text = zip_error_strerror(&error).map { String(cString: $0) } ?? "error \(code)"
            throw .io(path: path, reason: code == ZIP_ER_NOENT ? "no such file" : "not a NumPy .npz archive: \(text)")
        }
        self.path = path
        handle = z
        var names: [String] = []
        let count = zip_get_num_entries(z, 0)
        for i in 0..<max(0, count) {
            guard let name = zip_get_name(z, zip_uint64_t(i), 0).map({ String(cString: $0) }) else { continue }
            names.append(name.hasSuffix(".npy") ? String(name.dropLast(4)) : name)
        }
        self.names = names
    }

    deinit { zip_discard(handle) }

    /// Array `name` (1-D or 2-D float) as a `Matrix`, as ``NumPyArray/read(path:)`` reads a `.npy` file.
    /// - Throws: ``IndexError/io(path:reason:)`` naming the archive and the array when it is missing, damaged or
    ///   of a type Encore does not read.
    public func matrix(_ name: String) throws(IndexError) -> Matrix {
        try NumPyArray.decode(try bytes(of: name), path: "\(path) [\(name).npy]")
    }

    /// The value of a 0-D (or one-element) float array `name`, e.g. implicit's `regularization`.
    /// - Throws: as ``matrix(_:)``; also when the array has more than one element.
    public func scalar(_ name: String) throws(IndexError) -> Double {
        let bytes = try bytes(of: name)
        let where_ = "\(path) [\(name).npy]"
        let header = try NumPyArray.parseHeader(prefix: Array(bytes.prefix(12)), path: where_, allowScalar: true) {
            (offset, count) throws(IndexError) in
            guard offset + count <= bytes.count else { throw .io(path: where_, reason: "not a valid .npy file: truncated header") }
            return Array(bytes[offset..<(offset + count)])
        }
        guard header.shape.reduce(1, *) == 1 else {
            throw .io(path: where_, reason: "expected one value, the array has shape \(NumPyArray.shapeText(header.shape))")
        }
        guard bytes.count == header.dataOffset + header.dtype.size else {
            throw .io(path: where_, reason: "not a valid .npy file: \(bytes.count - header.dataOffset) data bytes for one \(header.dtype.rawValue) value")
        }
        return bytes.withUnsafeBytes { raw in
            header.dtype == .float32
                ? Double(Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: header.dataOffset, as: UInt32.self))))
                : Double(bitPattern: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: header.dataOffset, as: UInt64.self)))
        }
    }

    /// Whether the archive holds array `name`.
    public func contains(_ name: String) -> Bool { names.contains(name) }

    /// The decompressed bytes of `name.npy`.
    private func bytes(of name: String) throws(IndexError) -> [UInt8] {
        let index = zip_name_locate(handle, name + ".npy", 0)
        guard index >= 0 else {
            throw .io(path: path, reason: "no array '\(name)' in the archive (it has: \(names.joined(separator: ", ")))")
        }
        var st = zip_stat_t()
        zip_stat_init(&st)
        guard zip_stat_index(handle, zip_uint64_t(index), 0, &st) == 0, st.valid & zip_uint64_t(ZIP_STAT_SIZE) != 0 else {
            throw .io(path: path, reason: "cannot read the entry of '\(name)': \(lastError)")
        }
        guard st.size <= 1 << 36 else { throw .io(path: path, reason: "the entry of '\(name)' claims \(st.size) bytes") }
        guard let file = zip_fopen_index(handle, zip_uint64_t(index), 0) else {
            throw .io(path: path, reason: "cannot open the entry of '\(name)': \(lastError)")
        }
        defer { zip_fclose(file) }
        var out = [UInt8](repeating: 0, count: Int(st.size))
        var filled = 0
        while filled < out.count {
            let n = out.withUnsafeMutableBytes { zip_fread(file, $0.baseAddress! + filled, zip_uint64_t($0.count - filled)) }
            guard n > 0 else {
                let reason = n < 0 ? zip_file_strerror(file).map { String(cString: $0) } ?? "read error" : "it ends early"
                throw .io(path: path, reason: "the entry of '\(name)' is damaged after \(filled) of \(out.count) bytes: \(reason)")
            }
            filled += Int(n)
        }
        return out
    }

    private var lastError: String { zip_strerror(handle).map { String(cString: $0) } ?? "unknown error" }
}

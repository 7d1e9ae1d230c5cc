internal import CHDF5
import Foundation
import EncoreCore

/// A small, generic layer over one HDF5 file: groups, numeric and string datasets, and attributes, addressed by
/// absolute paths such as `/cf/user_items/indptr`.
///
/// Every failure becomes a ``BundleError`` naming the file and the object (attributes as `<object>@<name>`), with
/// HDF5's own message as detail; HDF5's automatic error printing is silenced. Writing to a path that already holds
/// an object replaces it (HDF5 does not reclaim the old space until the file is repacked).
///
/// Files are opened with the strong close degree: ``close()`` closes every object still open in the file, so
/// once it returns the file is flushed and closed and may be renamed or synced.
struct HDF5File: ~Copyable {
    /// The file-system path, used in error messages.
    let path: String
    /// Whether the file was created or opened for writing.
    let writable: Bool
    private var id: hid_t

    private init(path: String, id: hid_t, writable: Bool) {
        self.path = path
        self.id = id
        self.writable = writable
    }

    deinit {
        if id >= 0 {
            HDF5Library.silence()
            _ = H5Fclose(id)
        }
    }

    // MARK: Opening and closing

    /// Creates a new file at `path`; fails if one exists unless `overwrite` is set.
    static func create(at path: String, overwrite: Bool = false) throws(BundleError) -> HDF5File {
        HDF5Library.silence()
        let fapl = try fileAccess(path)
        let flags = overwrite ? encore_H5F_ACC_TRUNC() : encore_H5F_ACC_EXCL()
        let fid = H5Fcreate(path, flags, encore_H5P_DEFAULT(), fapl.id)
        guard fid >= 0 else {
            throw .hdf5(path: path, object: "/", operation: "create the file", detail: HDF5Library.takeErrorMessage())
        }
        return HDF5File(path: path, id: fid, writable: true)
    }

    /// Opens an existing file, read-only unless `writable`.
    ///
    /// - Throws: ``BundleError/unreadable(path:reason:)`` with HDF5's reason (for example a truncated file).
    static func open(at path: String, writable: Bool = false) throws(BundleError) -> HDF5File {
        HDF5Library.silence()
        let fapl = try fileAccess(path)
        let fid = H5Fopen(path, writable ? encore_H5F_ACC_RDWR() : encore_H5F_ACC_RDONLY(), fapl.id)
        guard fid >= 0 else {
            let detail = HDF5Library.takeErrorMessage()
            var reason = "HDF5 could not open it: \(detail)"
            if detail.contains("truncated") {
                reason = "the file is truncated (it was cut short while being copied or written): \(detail)"
            }
            throw .unreadable(path: path, reason: reason)
        }
        return HDF5File(path: path, id: fid, writable: writable)
    }

    private static func fileAccess(_ path: String) throws(BundleError) -> HDF5Handle {
        let fapl = H5Pcreate(encore_H5P_FILE_ACCESS())
        guard fapl >= 0 else {
            throw .hdf5(path: path, object: "/", operation: "create a file access list",
                        detail: HDF5Library.takeErrorMessage())
        }
        let handle = HDF5Handle(fapl, closer: H5Pclose)
        guard H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG) >= 0,
              // Keep HDF5's file locks, but do not fail on file systems without flock().
              H5Pset_file_locking(fapl, true, true) >= 0
        else {
            throw .hdf5(path: path, object: "/", operation: "set the file access properties",
                        detail: HDF5Library.takeErrorMessage())
        }
        return handle
    }

    /// Flushes (when writable) and closes the file, reporting any failure. Safe to call twice.
    mutating func close() throws(BundleError) {
        guard id >= 0 else { return }
        HDF5Library.silence()
        let fid = id
        id = -1
        if writable, H5Fflush(fid, H5F_SCOPE_GLOBAL) < 0 {
            let detail = HDF5Library.takeErrorMessage()
            _ = H5Fclose(fid)
            throw .hdf5(path: path, object: "/", operation: "flush the file", detail: detail)
        }
        guard H5Fclose(fid) >= 0 else {
            throw .hdf5(path: path, object: "/", operation: "close the file", detail: HDF5Library.takeErrorMessage())
        }
    }

    // MARK: Paths and objects

    /// The kind of an object in the file.
    enum ObjectKind: Sendable, Equatable {
        case group, dataset, other
    }

    /// The components of an absolute object path (`"/a/b"` -> `["a", "b"]`, `"/"` -> `[]`).
    static func components(_ object: String) -> [Substring] {
        object.split(separator: "/", omittingEmptySubsequences: true)
    }

    private func checkPath(_ object: String) throws(BundleError) {
        guard object.hasPrefix("/") else {
            throw .invalidData(path: path, object: object, reason: "object paths must be absolute (start with '/')")
        }
        guard !object.utf8.contains(0) else {
            throw .invalidData(path: path, object: object, reason: "object path contains a NUL character")
        }
    }

    /// Whether an object exists at `object` (every intermediate link is checked, so a missing parent is `false`).
    func exists(_ object: String) -> Bool {
        HDF5Library.silence()
        guard object.hasPrefix("/") else { return false }
        var prefix = ""
        for component in Self.components(object) {
            prefix += "/" + component
            let r = H5Lexists(id, prefix, encore_H5P_DEFAULT())
            if r <= 0 {
                if r < 0 { _ = HDF5Library.takeErrorMessage() }
                return false
            }
        }
        return true
    }

    /// The kind of the object at `object`, or `nil` when there is none.
    func kind(of object: String) -> ObjectKind? {
        guard exists(object) else { return nil }
        let oid = H5Oopen(id, object, encore_H5P_DEFAULT())
        guard oid >= 0 else {
            _ = HDF5Library.takeErrorMessage()
            return nil
        }
        let handle = HDF5Handle(oid, closer: H5Oclose)
        switch H5Iget_type(handle.id) {
        case H5I_GROUP: return .group
        case H5I_DATASET: return .dataset
        default: return .other
        }
    }

    /// Opens the group or dataset at `object`, checking it exists and has the expected kind.
    private func openObject(_ object: String, as expected: ObjectKind) throws(BundleError) -> HDF5Handle {
        try checkPath(object)
        guard let found = kind(of: object) else { throw .missingObject(path: path, object: object) }
        guard found == expected else {
            throw .wrongType(path: path, object: object, expected: "a \(expected)", found: "a \(found)")
        }
        HDF5Library.silence()
        let oid: hid_t
        let closer: @convention(c) (hid_t) -> herr_t
        switch expected {
        case .group:
            oid = H5Gopen2(id, object, encore_H5P_DEFAULT())
            closer = H5Gclose
        case .dataset:
            oid = H5Dopen2(id, object, encore_H5P_DEFAULT())
            closer = H5Dclose
        case .other:
            oid = H5Oopen(id, object, encore_H5P_DEFAULT())
            closer = H5Oclose
        }
        guard oid >= 0 else {
            throw .hdf5(path: path, object: object, operation: "open the \(expected)",
                        detail: HDF5Library.takeErrorMessage())
        }
        return HDF5Handle(oid, closer: closer)
    }

    /// A link creation list that creates missing intermediate groups.
    private func linkCreation(_ object: String) throws(BundleError) -> HDF5Handle {
        let lcpl = H5Pcreate(encore_H5P_LINK_CREATE())
        guard lcpl >= 0 else {
            throw .hdf5(path: path, object: object, operation: "create a link creation list",
                        detail: HDF5Library.takeErrorMessage())
        }
        let handle = HDF5Handle(lcpl, closer: H5Pclose)
        guard H5Pset_create_intermediate_group(lcpl, 1) >= 0,
              H5Pset_char_encoding(lcpl, H5T_CSET_UTF8) >= 0
        else {
            throw .hdf5(path: path, object: object, operation: "set link creation properties",
                        detail: HDF5Library.takeErrorMessage())
        }
        return handle
    }

    /// Creates the group at `object` and any missing parents; does nothing when the group exists.
    func createGroup(_ object: String) throws(BundleError) {
        try checkPath(object)
        if let found = kind(of: object) {
            guard found == .group else {
                throw .wrongType(path: path, object: object, expected: "a group", found: "a \(found)")
            }
            return
        }
        let lcpl = try linkCreation(object)
        HDF5Library.silence()
        let gid = H5Gcreate2(id, object, lcpl.id, encore_H5P_DEFAULT(), encore_H5P_DEFAULT())
        guard gid >= 0 else {
            throw .hdf5(path: path, object: object, operation: "create the group", detail: HDF5Library.takeErrorMessage())
        }
        _ = HDF5Handle(gid, closer: H5Gclose)
    }

    /// Removes the link at `object` (a dataset or group and everything under it).
    func delete(_ object: String) throws(BundleError) {
        try checkPath(object)
        guard exists(object) else { throw .missingObject(path: path, object: object) }
        HDF5Library.silence()
        guard H5Ldelete(id, object, encore_H5P_DEFAULT()) >= 0 else {
            throw .hdf5(path: path, object: object, operation: "delete the object", detail: HDF5Library.takeErrorMessage())
        }
    }

    /// The names of the links in the group at `group`, in name order.
    func children(of group: String) throws(BundleError) -> [String] {
        let g = try openObject(group, as: .group)
        final class Collector {
            var names: [String] = []
        }
        let collector = Collector()
        let box = Unmanaged.passRetained(collector)
        defer { box.release() }
        var index: hsize_t = 0
        HDF5Library.silence()
        let r = H5Literate(
            g.id, H5_INDEX_NAME, H5_ITER_INC, &index,
            { _, name, _, data in
                guard let name, let data else { return 0 }
                Unmanaged<Collector>.fromOpaque(data).takeUnretainedValue().names.append(String(cString: name))
                return 0
            }, box.toOpaque())
        guard r >= 0 else {
            throw .hdf5(path: path, object: group, operation: "list the group", detail: HDF5Library.takeErrorMessage())
        }
        return collector.names
    }

    // MARK: Dataspaces and types

    private func makeSpace(_ shape: [Int], object: String) throws(BundleError) -> HDF5Handle {
        HDF5Library.silence()
        let sid: hid_t
        if shape.isEmpty {
            sid = H5Screate(H5S_SCALAR)
        } else {
            let dims = shape.map { hsize_t($0) }
            sid = H5Screate_simple(Int32(dims.count), dims, nil)
        }
        guard sid >= 0 else {
            throw .hdf5(path: path, object: object, operation: "create a dataspace of shape \(shape)",
                        detail: HDF5Library.takeErrorMessage())
        }
        return HDF5Handle(sid, closer: H5Sclose)
    }

    /// The shape of a dataspace (`[]` for a scalar, `[0]` for a null dataspace).
    private func shape(ofSpace sid: hid_t, object: String) throws(BundleError) -> [Int] {
        let cls = H5Sget_simple_extent_type(sid)
        if cls == H5S_SCALAR { return [] }
        if cls == H5S_NULL { return [0] }
        let rank = H5Sget_simple_extent_ndims(sid)
        guard rank >= 0, rank <= 32 else {
            throw .hdf5(path: path, object: object, operation: "read the dataspace rank",
                        detail: HDF5Library.takeErrorMessage())
        }
        var dims = [hsize_t](repeating: 0, count: Int(rank))
        guard H5Sget_simple_extent_dims(sid, &dims, nil) >= 0 else {
            throw .hdf5(path: path, object: object, operation: "read the dataspace dimensions",
                        detail: HDF5Library.takeErrorMessage())
        }
        var shape: [Int] = []
        for d in dims {
            guard d <= hsize_t(Int.max) else {
                throw .invalidData(path: path, object: object, reason: "dimension \(d) is too large")
            }
            shape.append(Int(d))
        }
        return shape
    }

    /// The number of elements of `shape`, checked against `hdf5MaxReadBytes` for elements of `elementSize` bytes.
    private func elementCount(_ shape: [Int], elementSize: Int, object: String) throws(BundleError) -> Int {
        var count = 1
        for d in shape {
            let (p, overflow) = count.multipliedReportingOverflow(by: d)
            guard !overflow else {
                throw .invalidData(path: path, object: object, reason: "shape \(shape) is too large")
            }
            count = p
        }
        let (bytes, overflow) = count.multipliedReportingOverflow(by: max(elementSize, 1))
        guard !overflow, bytes <= hdf5MaxReadBytes else {
            throw .invalidData(path: path, object: object,
                               reason: "shape \(shape) is implausibly large (the file is probably damaged)")
        }
        return count
    }

    /// A readable name of an HDF5 type, such as `int32`, `float64` or `variable-length string`.
    private static func describe(type tid: hid_t) -> String {
        let size = H5Tget_size(tid)
        switch H5Tget_class(tid) {
        case H5T_INTEGER:
            let signed = H5Tget_sign(tid) == H5T_SGN_2
            return "\(signed ? "int" : "uint")\(size * 8)"
        case H5T_FLOAT: return "float\(size * 8)"
        case H5T_STRING: return H5Tis_variable_str(tid) > 0 ? "variable-length string" : "fixed-length string"
        case H5T_COMPOUND: return "compound"
        case H5T_ENUM: return "enum"
        case H5T_ARRAY: return "array"
        case H5T_VLEN: return "variable-length sequence"
        case H5T_OPAQUE: return "opaque"
        case H5T_REFERENCE: return "reference"
        case H5T_BITFIELD: return "bitfield"
        case H5T_TIME: return "time"
        default: return "an unknown type"
        }
    }

    /// A variable-length UTF-8 string type.
    private func vlenStringType(object: String) throws(BundleError) -> HDF5Handle {
        HDF5Library.silence()
        let tid = H5Tcopy(encore_H5T_C_S1())
        guard tid >= 0 else {
            throw .hdf5(path: path, object: object, operation: "create a string type", detail: HDF5Library.takeErrorMessage())
        }
        let handle = HDF5Handle(tid, closer: H5Tclose)
        guard H5Tset_size(tid, encore_H5T_VARIABLE()) >= 0, H5Tset_cset(tid, H5T_CSET_UTF8) >= 0 else {
            throw .hdf5(path: path, object: object, operation: "make a UTF-8 string type",
                        detail: HDF5Library.takeErrorMessage())
        }
        return handle
    }

    /// A dataset creation list for `shape` and `compression` (`H5P_DEFAULT`, contiguous, when not compressed).
    private func datasetCreation(shape: [Int], elementSize: Int, compression: HDF5Compression,
                                 object: String) throws(BundleError) -> HDF5Handle {
        guard case .deflate(let level, let shuffle) = compression, !shape.isEmpty, !shape.contains(0),
              HDF5Library.deflateAvailable
        else { return HDF5Handle(encore_H5P_DEFAULT(), closer: H5Pclose) }
        HDF5Library.silence()
        let dcpl = H5Pcreate(encore_H5P_DATASET_CREATE())
        guard dcpl >= 0 else {
            throw .hdf5(path: path, object: object, operation: "create a dataset creation list",
                        detail: HDF5Library.takeErrorMessage())
        }
        let handle = HDF5Handle(dcpl, closer: H5Pclose)
        // About 1 MiB a chunk, filled from the last dimension so rows stay whole when they fit.
        var budget = max(1, (1 << 20) / max(elementSize, 1))
        var chunk = [hsize_t](repeating: 1, count: shape.count)
        for i in stride(from: shape.count - 1, through: 0, by: -1) {
            let c = max(1, min(shape[i], budget))
            chunk[i] = hsize_t(c)
            budget = max(1, budget / c)
        }
        guard H5Pset_chunk(dcpl, Int32(chunk.count), chunk) >= 0,
              !shuffle || H5Pset_shuffle(dcpl) >= 0,
              H5Pset_deflate(dcpl, UInt32(min(max(level, 1), 9))) >= 0
        else {
            throw .hdf5(path: path, object: object, operation: "set chunking and compression",
                        detail: HDF5Library.takeErrorMessage())
        }
        return handle
    }

    /// Creates a dataset at `object` (replacing any object there, creating missing parent groups).
    private func createDataset(_ object: String, type tid: hid_t, shape: [Int], elementSize: Int,
                               compression: HDF5Compression) throws(BundleError) -> HDF5Handle {
        try checkPath(object)
        guard object != "/" else {
            throw .invalidData(path: path, object: object, reason: "the root group cannot be a dataset")
        }
        guard shape.allSatisfy({ $0 >= 0 }) else {
            throw .invalidData(path: path, object: object, reason: "negative dimension in shape \(shape)")
        }
        if exists(object) { try delete(object) }
        let space = try makeSpace(shape, object: object)
        let lcpl = try linkCreation(object)
        let dcpl = try datasetCreation(shape: shape, elementSize: elementSize, compression: compression,
                                       object: object)
        HDF5Library.silence()
        let did = H5Dcreate2(id, object, tid, space.id, lcpl.id, dcpl.id,
                             encore_H5P_DEFAULT())
        guard did >= 0 else {
            throw .hdf5(path: path, object: object, operation: "create the dataset", detail: HDF5Library.takeErrorMessage())
        }
        return HDF5Handle(did, closer: H5Dclose)
    }

    // MARK: Numeric datasets

    /// Writes `values` (row-major) as a dataset of `shape` at `object`; `shape` `[]` writes a scalar.
    ///
    /// Missing parent groups are created; an existing object at `object` is replaced.
    func write<T: HDF5Scalar>(_ values: [T], shape: [Int], at object: String,
                              compression: HDF5Compression = .none) throws(BundleError) {
        let expected = shape.reduce(1) { $0 &* $1 }
        guard expected == values.count else {
            throw .shapeMismatch(path: path, object: object,
                                 reason: "\(values.count) values do not fill shape \(shape)")
        }
        let dataset = try createDataset(object, type: T.hdf5MemoryType, shape: shape,
                                        elementSize: MemoryLayout<T>.stride, compression: compression)
        guard !values.isEmpty else { return }
        HDF5Library.silence()
        let status = values.withUnsafeBytes { raw in
            H5Dwrite(dataset.id, T.hdf5MemoryType, encore_H5S_ALL(), encore_H5S_ALL(), encore_H5P_DEFAULT(),
                     raw.baseAddress)
        }
        guard status >= 0 else {
            throw .hdf5(path: path, object: object, operation: "write \(values.count) \(T.hdf5TypeName) values",
                        detail: HDF5Library.takeErrorMessage())
        }
    }

    /// Writes a dense matrix as a 2-D `float32` dataset of shape `[rows, cols]`.
    func write(_ matrix: Matrix, at object: String, compression: HDF5Compression = .none) throws(BundleError) {
        try write(matrix.storage, shape: [matrix.rows, matrix.cols], at: object, compression: compression)
    }

    /// The shape of the dataset at `object` (`[]` for a scalar).
    func shape(of object: String) throws(BundleError) -> [Int] {
        let dataset = try openObject(object, as: .dataset)
        let space = try datasetSpace(dataset.id, object: object)
        return try shape(ofSpace: space.id, object: object)
    }

    /// A readable description of the element type of the dataset at `object` (`float32`, `int64`, ...).
    func typeDescription(of object: String) throws(BundleError) -> String {
        let dataset = try openObject(object, as: .dataset)
        let type = try datasetType(dataset.id, object: object)
        return Self.describe(type: type.id)
    }

    private func datasetSpace(_ did: hid_t, object: String) throws(BundleError) -> HDF5Handle {
        HDF5Library.silence()
        let sid = H5Dget_space(did)
        guard sid >= 0 else {
            throw .hdf5(path: path, object: object, operation: "read the dataspace", detail: HDF5Library.takeErrorMessage())
        }
        return HDF5Handle(sid, closer: H5Sclose)
    }

    private func datasetType(_ did: hid_t, object: String) throws(BundleError) -> HDF5Handle {
        HDF5Library.silence()
        let tid = H5Dget_type(did)
        guard tid >= 0 else {
            throw .hdf5(path: path, object: object, operation: "read the datatype", detail: HDF5Library.takeErrorMessage())
        }
        return HDF5Handle(tid, closer: H5Tclose)
    }

    /// Reads the whole dataset at `object` as `T`, which must be of the same class (integer or float); sizes are
    /// converted by HDF5 (an `int32` dataset reads as `Int64`; values that do not fit a narrower `T` are clipped
    /// to its range, so callers range-check what they read).
    func read<T: HDF5Scalar>(_ type: T.Type, at object: String) throws(BundleError) -> HDF5Array<T> {
        let dataset = try openObject(object, as: .dataset)
        let ftype = try datasetType(dataset.id, object: object)
        guard H5Tget_class(ftype.id) == T.hdf5Class else {
            throw .wrongType(path: path, object: object, expected: "a dataset of \(T.hdf5TypeName)",
                             found: "a dataset of \(Self.describe(type: ftype.id))")
        }
        let space = try datasetSpace(dataset.id, object: object)
        let shape = try shape(ofSpace: space.id, object: object)
        let count = try elementCount(shape, elementSize: MemoryLayout<T>.stride, object: object)
        guard count > 0 else { return HDF5Array(values: [], shape: shape) }
        HDF5Library.silence()
        var status: herr_t = -1
        let values = [T](unsafeUninitializedCapacity: count) { buffer, initialized in
            status = H5Dread(dataset.id, T.hdf5MemoryType, encore_H5S_ALL(), encore_H5S_ALL(), encore_H5P_DEFAULT(),
                             buffer.baseAddress)
            initialized = status >= 0 ? count : 0
        }
        guard status >= 0 else {
            throw .hdf5(path: path, object: object, operation: "read \(count) values as \(T.hdf5TypeName)",
                        detail: HDF5Library.takeErrorMessage())
        }
        return HDF5Array(values: values, shape: shape)
    }

    /// Reads a 2-D `float` dataset as a ``Matrix``.
    func readMatrix(at object: String) throws(BundleError) -> Matrix {
        let array = try read(Float.self, at: object)
        guard array.shape.count == 2 else {
            throw .shapeMismatch(path: path, object: object, reason: "expected 2 dimensions, found \(array.shape)")
        }
        do {
            return try Matrix(rows: array.shape[0], cols: array.shape[1], storage: array.values)
        } catch {
            throw .shapeMismatch(path: path, object: object, reason: error.description)
        }
    }

    // MARK: String datasets

    /// Writes `strings` as a dataset of variable-length UTF-8 strings (1-D unless `shape` is given).
    ///
    /// h5py reads them as `bytes` by default and as `str` through `dataset.asstr()`.
    /// - Throws: ``BundleError/invalidData(path:object:reason:)`` when a string contains a NUL character.
    func write(strings: [String], shape: [Int]? = nil, at object: String,
               compression: HDF5Compression = .none) throws(BundleError) {
        let shape = shape ?? [strings.count]
        guard shape.reduce(1, { $0 &* $1 }) == strings.count else {
            throw .shapeMismatch(path: path, object: object, reason: "\(strings.count) strings do not fill shape \(shape)")
        }
        if let bad = strings.firstIndex(where: { $0.utf8.contains(0) }) {
            throw .invalidData(path: path, object: object,
                               reason: "string \(bad) contains a NUL character, which HDF5 strings cannot hold")
        }
        let stype = try vlenStringType(object: object)
        let dataset = try createDataset(object, type: stype.id, shape: shape,
                                        elementSize: MemoryLayout<UnsafePointer<CChar>>.stride,
                                        compression: compression)
        guard !strings.isEmpty else { return }
        let status = Self.withCStrings(strings) { pointers in
            HDF5Library.silence()
            return H5Dwrite(dataset.id, stype.id, encore_H5S_ALL(), encore_H5S_ALL(), encore_H5P_DEFAULT(), pointers)
        }
        guard status >= 0 else {
            throw .hdf5(path: path, object: object, operation: "write \(strings.count) strings",
                        detail: HDF5Library.takeErrorMessage())
        }
    }

    /// Calls `body` with an array of C string pointers for `strings` (valid during the call only).
    private static func withCStrings<R>(_ strings: [String], _ body: (UnsafeRawPointer) -> R) -> R {
        var pointers = [UnsafeMutablePointer<CChar>?]()
        pointers.reserveCapacity(strings.count)
        for s in strings { pointers.append(strdup(s)) }
        defer { for p in pointers { free(p) } }
        return pointers.withUnsafeBytes { body($0.baseAddress!) }
    }

    /// Reads the whole string dataset at `object` (variable- or fixed-length; UTF-8 or ASCII).
    func readStrings(at object: String) throws(BundleError) -> HDF5Array<String> {
        let dataset = try openObject(object, as: .dataset)
        let ftype = try datasetType(dataset.id, object: object)
        let space = try datasetSpace(dataset.id, object: object)
        let shape = try shape(ofSpace: space.id, object: object)
        let values = try readStrings(fileType: ftype.id, space: space.id, shape: shape, object: object) {
            memType, buffer in H5Dread(dataset.id, memType, encore_H5S_ALL(), encore_H5S_ALL(), encore_H5P_DEFAULT(), buffer)
        }
        return HDF5Array(values: values, shape: shape)
    }

    /// Shared string reading for datasets and attributes: `read(memType, buffer)` performs the transfer.
    private func readStrings(fileType: hid_t, space: hid_t, shape: [Int], object: String,
                             read: (hid_t, UnsafeMutableRawPointer) -> herr_t) throws(BundleError) -> [String] {
        guard H5Tget_class(fileType) == H5T_STRING else {
            throw .wrongType(path: path, object: object, expected: "strings", found: Self.describe(type: fileType))
        }
        HDF5Library.silence()
        if H5Tis_variable_str(fileType) > 0 {
            let count = try elementCount(shape, elementSize: 16, object: object)
            guard count > 0 else { return [] }
            let memType = try vlenStringType(object: object)
            var pointers = [UnsafeMutablePointer<CChar>?](repeating: nil, count: count)
            let status = pointers.withUnsafeMutableBytes { read(memType.id, $0.baseAddress!) }
            guard status >= 0 else {
                throw .hdf5(path: path, object: object, operation: "read \(count) strings",
                            detail: HDF5Library.takeErrorMessage())
            }
            let strings = pointers.map { $0.map { String(cString: $0) } ?? "" }
            _ = pointers.withUnsafeMutableBytes {
                H5Dvlen_reclaim(memType.id, space, encore_H5P_DEFAULT(), $0.baseAddress!)
            }
            return strings
        }
        // Fixed-length strings: read the raw bytes with the file's own string type.
        let size = H5Tget_size(fileType)
        guard size > 0, size < 1 << 24 else {
            throw .invalidData(path: path, object: object, reason: "fixed string size \(size) is implausible")
        }
        let width = Int(size)
        let count = try elementCount(shape, elementSize: width, object: object)
        guard count > 0 else { return [] }
        let memType = H5Tcopy(fileType)
        guard memType >= 0 else {
            throw .hdf5(path: path, object: object, operation: "copy the string type", detail: HDF5Library.takeErrorMessage())
        }
        let memHandle = HDF5Handle(memType, closer: H5Tclose)
        let spacePadded = H5Tget_strpad(fileType) == H5T_STR_SPACEPAD
        var bytes = [UInt8](repeating: 0, count: count * width)
        let status = bytes.withUnsafeMutableBytes { read(memHandle.id, $0.baseAddress!) }
        guard status >= 0 else {
            throw .hdf5(path: path, object: object, operation: "read \(count) fixed-length strings",
                        detail: HDF5Library.takeErrorMessage())
        }
        return (0..<count).map { i in
            var slice = bytes[(i * width)..<((i + 1) * width)]
            if let nul = slice.firstIndex(of: 0) { slice = slice[..<nul] }
            if spacePadded { while slice.last == 0x20 { slice = slice.dropLast() } }
            return String(decoding: slice, as: UTF8.self)
        }
    }

    // MARK: Attributes

    /// Whether `object` has an attribute called `name`.
    func hasAttribute(_ name: String, on object: String) -> Bool {
        guard exists(object) else { return false }
        HDF5Library.silence()
        let r = H5Aexists_by_name(id, object, name, encore_H5P_DEFAULT())
        if r < 0 { _ = HDF5Library.takeErrorMessage() }
        return r > 0
    }

    /// Deletes the attribute `name` of `object`; an attribute that does not exist is left alone.
    func removeAttribute(_ name: String, on object: String) throws(BundleError) {
        try checkPath(object)
        guard hasAttribute(name, on: object) else { return }
        HDF5Library.silence()
        guard H5Adelete_by_name(id, object, name, encore_H5P_DEFAULT()) >= 0 else {
            throw .hdf5(path: path, object: Self.attributeObject(name, on: object), operation: "delete the attribute",
                        detail: HDF5Library.takeErrorMessage())
        }
    }

    /// The names of the attributes of `object`, in name order.
    func attributeNames(on object: String) throws(BundleError) -> [String] {
        try checkPath(object)
        guard exists(object) else { throw .missingObject(path: path, object: object) }
        final class Collector {
            var names: [String] = []
        }
        let collector = Collector()
        let box = Unmanaged.passRetained(collector)
        defer { box.release() }
        var index: hsize_t = 0
        HDF5Library.silence()
        let r = H5Aiterate_by_name(
            id, object, H5_INDEX_NAME, H5_ITER_INC, &index,
            { _, name, _, data in
                guard let name, let data else { return 0 }
                Unmanaged<Collector>.fromOpaque(data).takeUnretainedValue().names.append(String(cString: name))
                return 0
            }, box.toOpaque(), encore_H5P_DEFAULT())
        guard r >= 0 else {
            throw .hdf5(path: path, object: object, operation: "list the attributes",
                        detail: HDF5Library.takeErrorMessage())
        }
        return collector.names
    }

    private static func attributeObject(_ name: String, on object: String) -> String { "\(object)@\(name)" }

    private func checkAttributeName(_ name: String, on object: String) throws(BundleError) {
        guard !name.isEmpty, name != ".", !name.utf8.contains(0) else {
            throw .invalidData(path: path, object: Self.attributeObject(name, on: object),
                               reason: "an attribute name must be non-empty, not '.', and free of NUL characters")
        }
    }

    /// Creates (replacing) the attribute `name` on `object` with type `tid` and `shape` (`[]` = scalar).
    private func createAttribute(_ name: String, on object: String, type tid: hid_t,
                                 shape: [Int]) throws(BundleError) -> HDF5Handle {
        try checkPath(object)
        try checkAttributeName(name, on: object)
        let label = Self.attributeObject(name, on: object)
        guard exists(object) else { throw .missingObject(path: path, object: object) }
        if hasAttribute(name, on: object) {
            HDF5Library.silence()
            guard H5Adelete_by_name(id, object, name, encore_H5P_DEFAULT()) >= 0 else {
                throw .hdf5(path: path, object: label, operation: "replace the attribute",
                            detail: HDF5Library.takeErrorMessage())
            }
        }
        let space = try makeSpace(shape, object: label)
        HDF5Library.silence()
        let acpl = H5Pcreate(encore_H5P_ATTRIBUTE_CREATE())
        guard acpl >= 0 else {
            throw .hdf5(path: path, object: label, operation: "create an attribute creation list",
                        detail: HDF5Library.takeErrorMessage())
        }
        let acplHandle = HDF5Handle(acpl, closer: H5Pclose)
        _ = H5Pset_char_encoding(acpl, H5T_CSET_UTF8)
        let aid = H5Acreate_by_name(id, object, name, tid, space.id, acplHandle.id, encore_H5P_DEFAULT(),
                                    encore_H5P_DEFAULT())
        guard aid >= 0 else {
            throw .hdf5(path: path, object: label, operation: "create the attribute", detail: HDF5Library.takeErrorMessage())
        }
        return HDF5Handle(aid, closer: H5Aclose)
    }

    /// Sets the attribute `name` on `object` to a variable-length UTF-8 string (h5py reads it as `str`).
    func setAttribute(_ name: String, string value: String, on object: String) throws(BundleError) {
        let label = Self.attributeObject(name, on: object)
        guard !value.utf8.contains(0) else {
            throw .invalidData(path: path, object: label, reason: "the value contains a NUL character")
        }
        let stype = try vlenStringType(object: label)
        let attribute = try createAttribute(name, on: object, type: stype.id, shape: [])
        let status = Self.withCStrings([value]) { pointer in
            HDF5Library.silence()
            return H5Awrite(attribute.id, stype.id, pointer)
        }
        guard status >= 0 else {
            throw .hdf5(path: path, object: label, operation: "write the attribute", detail: HDF5Library.takeErrorMessage())
        }
    }

    /// Sets the attribute `name` on `object` to a scalar number.
    func setAttribute<T: HDF5Scalar>(_ name: String, scalar value: T, on object: String) throws(BundleError) {
        try writeAttribute(name, values: [value], shape: [], on: object)
    }

    /// Sets the attribute `name` on `object` to a 1-D array of numbers.
    func setAttribute<T: HDF5Scalar>(_ name: String, array values: [T], on object: String) throws(BundleError) {
        try writeAttribute(name, values: values, shape: [values.count], on: object)
    }

    private func writeAttribute<T: HDF5Scalar>(_ name: String, values: [T], shape: [Int],
                                               on object: String) throws(BundleError) {
        let attribute = try createAttribute(name, on: object, type: T.hdf5MemoryType, shape: shape)
        guard !values.isEmpty else { return }
        HDF5Library.silence()
        let status = values.withUnsafeBytes { H5Awrite(attribute.id, T.hdf5MemoryType, $0.baseAddress!) }
        guard status >= 0 else {
            throw .hdf5(path: path, object: Self.attributeObject(name, on: object), operation: "write the attribute",
                        detail: HDF5Library.takeErrorMessage())
        }
    }

    private func openAttribute(_ name: String, on object: String) throws(BundleError) -> HDF5Handle {
        try checkPath(object)
        let label = Self.attributeObject(name, on: object)
        guard exists(object) else { throw .missingObject(path: path, object: object) }
        guard hasAttribute(name, on: object) else { throw .missingObject(path: path, object: label) }
        HDF5Library.silence()
        let aid = H5Aopen_by_name(id, object, name, encore_H5P_DEFAULT(), encore_H5P_DEFAULT())
        guard aid >= 0 else {
            throw .hdf5(path: path, object: label, operation: "open the attribute", detail: HDF5Library.takeErrorMessage())
        }
        return HDF5Handle(aid, closer: H5Aclose)
    }

    private func attributeType(_ aid: hid_t, label: String) throws(BundleError) -> HDF5Handle {
        HDF5Library.silence()
        let tid = H5Aget_type(aid)
        guard tid >= 0 else {
            throw .hdf5(path: path, object: label, operation: "read the attribute type", detail: HDF5Library.takeErrorMessage())
        }
        return HDF5Handle(tid, closer: H5Tclose)
    }

    private func attributeSpace(_ aid: hid_t, label: String) throws(BundleError) -> HDF5Handle {
        HDF5Library.silence()
        let sid = H5Aget_space(aid)
        guard sid >= 0 else {
            throw .hdf5(path: path, object: label, operation: "read the attribute dataspace",
                        detail: HDF5Library.takeErrorMessage())
        }
        return HDF5Handle(sid, closer: H5Sclose)
    }

    /// Reads attribute `name` of `object` as numbers of type `T` (of the same class: integer or float).
    func arrayAttribute<T: HDF5Scalar>(_ type: T.Type, _ name: String, on object: String) throws(BundleError) -> [T] {
        let label = Self.attributeObject(name, on: object)
        let attribute = try openAttribute(name, on: object)
        let ftype = try attributeType(attribute.id, label: label)
        let space = try attributeSpace(attribute.id, label: label)
        guard H5Tget_class(ftype.id) == T.hdf5Class else {
            throw .wrongType(path: path, object: label, expected: "an attribute of \(T.hdf5TypeName)",
                             found: "an attribute of \(Self.describe(type: ftype.id))")
        }
        let shape = try shape(ofSpace: space.id, object: label)
        let count = try elementCount(shape, elementSize: MemoryLayout<T>.stride, object: label)
        guard count > 0 else { return [] }
        HDF5Library.silence()
        var status: herr_t = -1
        let values = [T](unsafeUninitializedCapacity: count) { buffer, initialized in
            status = H5Aread(attribute.id, T.hdf5MemoryType, buffer.baseAddress)
            initialized = status >= 0 ? count : 0
        }
        guard status >= 0 else {
            throw .hdf5(path: path, object: label, operation: "read the attribute as \(T.hdf5TypeName)",
                        detail: HDF5Library.takeErrorMessage())
        }
        return values
    }

    /// Reads attribute `name` of `object` as one number of type `T` (a scalar or a one-element array).
    func scalarAttribute<T: HDF5Scalar>(_ type: T.Type, _ name: String, on object: String) throws(BundleError) -> T {
        let values = try arrayAttribute(type, name, on: object)
        guard values.count == 1 else {
            throw .shapeMismatch(path: path, object: Self.attributeObject(name, on: object),
                                 reason: "expected one value, found \(values.count)")
        }
        return values[0]
    }

    /// Reads the string attribute `name` of `object` (variable- or fixed-length, scalar or one-element array).
    func stringAttribute(_ name: String, on object: String) throws(BundleError) -> String {
        let label = Self.attributeObject(name, on: object)
        let attribute = try openAttribute(name, on: object)
        let ftype = try attributeType(attribute.id, label: label)
        let space = try attributeSpace(attribute.id, label: label)
        guard H5Tget_class(ftype.id) == H5T_STRING else {
            throw .wrongType(path: path, object: label, expected: "a string attribute",
                             found: "an attribute of \(Self.describe(type: ftype.id))")
        }
        let shape = try shape(ofSpace: space.id, object: label)
        let values = try readStrings(fileType: ftype.id, space: space.id, shape: shape, object: label) {
            memType, buffer in H5Aread(attribute.id, memType, buffer)
        }
        guard values.count == 1 else {
            throw .shapeMismatch(path: path, object: label, reason: "expected one string, found \(values.count)")
        }
        return values[0]
    }
}

@available(*, unavailable, message: "an open HDF5 file belongs to one operation; do not share it across tasks")
extension HDF5File: Sendable {}

// MARK: Datasets that grow by rows

extension HDF5File {
    /// Creates an empty 2-D dataset of `T` at `object` with `cols` columns that ``appendRows(_:cols:at:)`` extends
    /// (chunked, unlimited rows; replaces any object there).
    func createGrowable<T: HDF5Scalar>(_ type: T.Type, cols: Int, at object: String,
                                       chunkRows: Int = 1_024) throws(BundleError) {
        guard cols > 0 else { throw .invalidData(path: path, object: object, reason: "a growable dataset needs columns") }
        if exists(object) { try delete(object) }
        HDF5Library.silence()
        let dims: [hsize_t] = [0, hsize_t(cols)]
        let maxDims: [hsize_t] = [encore_H5S_UNLIMITED(), hsize_t(cols)]
        let sid = H5Screate_simple(2, dims, maxDims)
        guard sid >= 0 else {
            throw .hdf5(path: path, object: object, operation: "create a growable dataspace", detail: HDF5Library.takeErrorMessage())
        }
        let space = HDF5Handle(sid, closer: H5Sclose)
        let dcpl = H5Pcreate(encore_H5P_DATASET_CREATE())
        guard dcpl >= 0 else {
            throw .hdf5(path: path, object: object, operation: "create a dataset creation list", detail: HDF5Library.takeErrorMessage())
        }
        let creation = HDF5Handle(dcpl, closer: H5Pclose)
        let chunk: [hsize_t] = [hsize_t(max(1, chunkRows)), hsize_t(cols)]
        guard H5Pset_chunk(dcpl, 2, chunk) >= 0 else {
            throw .hdf5(path: path, object: object, operation: "set chunking", detail: HDF5Library.takeErrorMessage())
        }
        try checkPath(object)
        let lcpl = try linkCreation(object)
        let did = H5Dcreate2(id, object, T.hdf5MemoryType, space.id, lcpl.id, creation.id, encore_H5P_DEFAULT())
        guard did >= 0 else {
            throw .hdf5(path: path, object: object, operation: "create the dataset", detail: HDF5Library.takeErrorMessage())
        }
        _ = HDF5Handle(did, closer: H5Dclose)
    }

    /// Appends `values` (row-major, a multiple of `cols`) as new rows of the growable dataset at `object`.
    func appendRows<T: HDF5Scalar>(_ values: [T], cols: Int, at object: String) throws(BundleError) {
        guard cols > 0, values.count % cols == 0 else {
            throw .shapeMismatch(path: path, object: object, reason: "\(values.count) values are not whole rows of \(cols)")
        }
        guard !values.isEmpty else { return }
        let shape = try self.shape(of: object)
        guard shape.count == 2, shape[1] == cols else {
            throw .shapeMismatch(path: path, object: object, reason: "shape \(shape) does not have \(cols) columns")
        }
        HDF5Library.silence()
        let did = H5Dopen2(id, object, encore_H5P_DEFAULT())
        guard did >= 0 else {
            throw .hdf5(path: path, object: object, operation: "open the dataset", detail: HDF5Library.takeErrorMessage())
        }
        let dataset = HDF5Handle(did, closer: H5Dclose)
        let rows = values.count / cols
        let newDims: [hsize_t] = [hsize_t(shape[0] + rows), hsize_t(cols)]
        guard H5Dset_extent(dataset.id, newDims) >= 0 else {
            throw .hdf5(path: path, object: object, operation: "extend to \(shape[0] + rows) rows", detail: HDF5Library.takeErrorMessage())
        }
        let fileSpace = HDF5Handle(H5Dget_space(dataset.id), closer: H5Sclose)
        let start: [hsize_t] = [hsize_t(shape[0]), 0], count: [hsize_t] = [hsize_t(rows), hsize_t(cols)]
        let memSpace = HDF5Handle(H5Screate_simple(2, count, nil), closer: H5Sclose)
        guard fileSpace.id >= 0, memSpace.id >= 0,
              H5Sselect_hyperslab(fileSpace.id, H5S_SELECT_SET, start, nil, count, nil) >= 0
        else {
            throw .hdf5(path: path, object: object, operation: "select rows", detail: HDF5Library.takeErrorMessage())
        }
        let status = values.withUnsafeBytes { raw in
            H5Dwrite(dataset.id, T.hdf5MemoryType, memSpace.id, fileSpace.id, encore_H5P_DEFAULT(), raw.baseAddress)
        }
        guard status >= 0 else {
            throw .hdf5(path: path, object: object, operation: "write \(rows) rows", detail: HDF5Library.takeErrorMessage())
        }
    }
}

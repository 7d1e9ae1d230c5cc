internal import CHDF5

/// Process-wide facts and error handling of the HDF5 library.
///
/// Debian's HDF5 is built thread-safe: every call takes one global lock, and the error stack (with its automatic
/// printing setting) is kept per thread. That is why ``silence()`` runs at the start of every operation of the
/// layer rather than once: a Swift task may run on any thread of the pool.
enum HDF5Library {
    /// Turns off HDF5's automatic printing of its error stack to stderr, for the calling thread.
    ///
    /// Failures are reported as ``BundleError`` values instead, carrying the text of the stack
    /// (see ``takeErrorMessage()``).
    static func silence() {
        _ = H5Eset_auto2(encore_H5E_DEFAULT(), nil, nil)
    }

    /// The descriptions on the calling thread's HDF5 error stack, innermost (most specific) first, joined by "; ";
    /// clears the stack.
    static func takeErrorMessage() -> String {
        final class Collector {
            var messages: [String] = []
        }
        let collector = Collector()
        let box = Unmanaged.passRetained(collector)
        defer { box.release() }
        _ = H5Ewalk2(
            encore_H5E_DEFAULT(), H5E_WALK_UPWARD,
            { _, entry, data in
                guard let entry, let data else { return 0 }
                let collector = Unmanaged<Collector>.fromOpaque(data).takeUnretainedValue()
                if let desc = entry.pointee.desc {
                    let text = String(cString: desc)
                    if !text.isEmpty, !collector.messages.contains(text) { collector.messages.append(text) }
                }
                return 0
            }, box.toOpaque())
        _ = H5Eclear2(encore_H5E_DEFAULT())
        let messages = collector.messages.prefix(3)
        return messages.isEmpty ? "no detail from the HDF5 library" : messages.joined(separator: "; ")
    }

    /// Whether the deflate (gzip) filter is available in the linked library.
    static var deflateAvailable: Bool {
        silence()
        return H5Zfilter_avail(H5Z_filter_t(H5Z_FILTER_DEFLATE)) > 0
    }

    /// Whether `path` starts with the 8-byte HDF5 signature at one of the offsets HDF5 searches (0, 512, 1024, ...).
    ///
    /// `nil` when the library could not tell (for example an unreadable file).
    static func isHDF5(_ path: String) -> Bool? {
        silence()
        let r = H5Fis_hdf5(path)
        if r < 0 {
            _ = takeErrorMessage()
            return nil
        }
        return r > 0
    }
}

/// An open HDF5 identifier (file access list, dataspace, datatype, dataset, group, attribute, ...) that is closed
/// when the value goes away.
///
/// `hid_t` values are not `Sendable` (they name state inside the C library), so the wrapper is `~Copyable` and
/// explicitly not `Sendable`: it lives and dies inside one synchronous operation.
struct HDF5Handle: ~Copyable {
    /// The raw identifier.
    let id: hid_t
    private let closer: @convention(c) (hid_t) -> herr_t

    /// Wraps `id`, to be closed by `closer` (for example `H5Dclose`). Identifiers of open objects are positive;
    /// `0` (`H5P_DEFAULT`) is wrapped as a placeholder and never closed.
    init(_ id: hid_t, closer: @convention(c) (hid_t) -> herr_t) {
        self.id = id
        self.closer = closer
    }

    deinit {
        if id > 0 { _ = closer(id) }
    }
}

@available(*, unavailable, message: "HDF5 identifiers belong to one operation; do not share them across tasks")
extension HDF5Handle: Sendable {}

/// A numeric element type that the HDF5 layer can write and read (datasets and attributes).
protocol HDF5Scalar: BitwiseCopyable, Sendable {
    /// The native in-memory HDF5 type of this Swift type.
    static var hdf5MemoryType: hid_t { get }
    /// The HDF5 type class a stored value must have to be read as this type (integer or float).
    static var hdf5Class: H5T_class_t { get }
    /// A short name for messages (`float32`, `int64`, ...).
    static var hdf5TypeName: String { get }
}

extension Float: HDF5Scalar {
    static var hdf5MemoryType: hid_t { encore_H5T_NATIVE_FLOAT() }
    static var hdf5Class: H5T_class_t { H5T_FLOAT }
    static var hdf5TypeName: String { "float32" }
}

extension Double: HDF5Scalar {
    static var hdf5MemoryType: hid_t { encore_H5T_NATIVE_DOUBLE() }
    static var hdf5Class: H5T_class_t { H5T_FLOAT }
    static var hdf5TypeName: String { "float64" }
}

extension Int32: HDF5Scalar {
    static var hdf5MemoryType: hid_t { encore_H5T_NATIVE_INT32() }
    static var hdf5Class: H5T_class_t { H5T_INTEGER }
    static var hdf5TypeName: String { "int32" }
}

extension Int64: HDF5Scalar {
    static var hdf5MemoryType: hid_t { encore_H5T_NATIVE_INT64() }
    static var hdf5Class: H5T_class_t { H5T_INTEGER }
    static var hdf5TypeName: String { "int64" }
}

extension UInt64: HDF5Scalar {
    static var hdf5MemoryType: hid_t { encore_H5T_NATIVE_UINT64() }
    static var hdf5Class: H5T_class_t { H5T_INTEGER }
    static var hdf5TypeName: String { "uint64" }
}

extension UInt8: HDF5Scalar {
    static var hdf5MemoryType: hid_t { encore_H5T_NATIVE_UINT8() }
    static var hdf5Class: H5T_class_t { H5T_INTEGER }
    static var hdf5TypeName: String { "uint8" }
}

/// How a dataset is laid out on disk.
enum HDF5Compression: Sendable, Equatable {
    /// One contiguous block: the fastest to read, no compression.
    case none
    /// Chunked (about 1 MiB a chunk), optionally byte-shuffled, and gzip-compressed at `level` (1-9; 1-4 keep
    /// reads fast). Falls back to contiguous when the library lacks the deflate filter or the dataset is empty.
    case deflate(level: Int, shuffle: Bool)
}

/// Dataset element values with their shape, as read from a file.
struct HDF5Array<Element>: Sendable where Element: Sendable {
    /// Row-major values.
    var values: [Element]
    /// The dimensions (empty for a scalar dataset).
    var shape: [Int]
}

/// The largest dataset or attribute the reader allocates for (a guard against damaged size fields).
let hdf5MaxReadBytes = 1 << 38

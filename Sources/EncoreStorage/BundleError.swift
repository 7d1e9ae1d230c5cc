import EncoreCore

/// Errors from writing, reading and inspecting a model bundle (and from the HDF5 layer beneath it).
///
/// Every case names the file at fault (`path`) and, where one applies, the HDF5 object inside it (`object`): a
/// group or dataset path such as `/cf/user_factors`, or an attribute written as `<object>@<attribute>`, for example
/// `/@encore_format_version` for a root attribute or `/cf@factors` for an attribute of the `/cf` group.
public enum BundleError: Error, Equatable, CustomStringConvertible {
    /// No file exists at `path`.
    case fileNotFound(path: String)
    /// The file exists but could not be opened or read (a directory, no permission, a truncated or damaged file).
    case unreadable(path: String, reason: String)
    /// The file is not an HDF5 file at all (no HDF5 signature).
    case notHDF5(path: String)
    /// The file is HDF5 but was not written by Encore (the root attributes that mark a bundle are missing).
    case notABundle(path: String, reason: String)
    /// The bundle was written in a format version this library does not read.
    ///
    /// `writtenBy` is the `encore_version` stored in the file, when it could be read.
    case unsupportedFormatVersion(path: String, found: Int64, supported: Int32, writtenBy: String?)
    /// A group, dataset or attribute the format requires is absent.
    case missingObject(path: String, object: String)
    /// An object has the wrong HDF5 type (for example an integer dataset where floats are expected).
    case wrongType(path: String, object: String, expected: String, found: String)
    /// Shapes disagree: a dataset's dimensions do not match another dataset, an attribute, or the id counts.
    case shapeMismatch(path: String, object: String, reason: String)
    /// Values are present and shaped right but invalid (duplicate ids, unsorted CSR columns, a bad parameter, ...).
    case invalidData(path: String, object: String, reason: String)
    /// An HDF5 call failed; `operation` is what was being done and `detail` the HDF5 library's own message.
    case hdf5(path: String, object: String, operation: String, detail: String)
    /// A file-system call failed (creating, syncing, renaming or removing a file).
    case io(path: String, operation: String, reason: String)
    /// A file of a published unit does not hash to the checksum its manifest records (`manifest`): it was damaged
    /// or replaced after publishing. The checksums are XXH64, as 16 hexadecimal digits.
    case checksumMismatch(path: String, manifest: String, recorded: String, computed: String)
    /// A file of a published unit has another size than its manifest records (truncated, extended or replaced).
    case sizeMismatch(path: String, manifest: String, recorded: Int64, found: Int64)
    /// A published unit's manifest (`current.json`) is missing, unreadable or not a manifest this library reads.
    case invalidManifest(path: String, reason: String)

    /// The file the error is about.
    public var path: String {
        switch self {
        case .fileNotFound(let p), .notHDF5(let p): return p
        case .unreadable(let p, _), .notABundle(let p, _), .io(let p, _, _), .invalidManifest(let p, _): return p
        case .checksumMismatch(let p, _, _, _), .sizeMismatch(let p, _, _, _): return p
        case .unsupportedFormatVersion(let p, _, _, _): return p
        case .missingObject(let p, _), .wrongType(let p, _, _, _), .shapeMismatch(let p, _, _),
            .invalidData(let p, _, _), .hdf5(let p, _, _, _):
            return p
        }
    }

    public var description: String {
        switch self {
        case .fileNotFound(let p):
            return "\(p): no such file"
        case .unreadable(let p, let reason):
            return "\(p): cannot read the file: \(reason)"
        case .notHDF5(let p):
            return "\(p): not an HDF5 file (no HDF5 signature); an Encore model bundle is an HDF5 file written by "
                + "ModelBundle.write(to:) (encore-train)"
        case .notABundle(let p, let reason):
            return "\(p): an HDF5 file but not an Encore model bundle: \(reason)"
        case .unsupportedFormatVersion(let p, let found, let supported, let writtenBy):
            let by = writtenBy.map { " (written by Encore \($0))" } ?? ""
            let advice: String
            if found < Int64(supported) {
                advice = "the bundle is older than this library; retrain with encore-train to write a format "
                    + "\(supported) bundle, or read it with the Encore release that wrote it"
            } else {
                advice = "the bundle is newer than this library; upgrade Encore to read it"
            }
            return "\(p): bundle format version \(found)\(by) is not supported: Encore \(Encore.version) reads "
                + "format version \(supported) only; \(advice)"
        case .missingObject(let p, let object):
            return "\(p): \(object): missing (the bundle is incomplete or damaged)"
        case .wrongType(let p, let object, let expected, let found):
            return "\(p): \(object): expected \(expected), found \(found)"
        case .shapeMismatch(let p, let object, let reason):
            return "\(p): \(object): shape mismatch: \(reason)"
        case .invalidData(let p, let object, let reason):
            return "\(p): \(object): invalid: \(reason)"
        case .hdf5(let p, let object, let operation, let detail):
            return "\(p): \(object): HDF5 failed to \(operation): \(detail)"
        case .io(let p, let operation, let reason):
            return "\(p): cannot \(operation): \(reason)"
        case .checksumMismatch(let p, let manifest, let recorded, let computed):
            return "\(p): checksum mismatch: the file hashes to XXH64 \(computed) but \(manifest) records \(recorded) "
                + "(the file was damaged or replaced after publishing; the unit is refused)"
        case .sizeMismatch(let p, let manifest, let recorded, let found):
            return "\(p): size mismatch, so its checksum cannot match: the file has \(found) bytes but \(manifest) "
                + "records \(recorded) (truncated or replaced after publishing; the unit is refused)"
        case .invalidManifest(let p, let reason):
            return "\(p): not a usable published-unit manifest: \(reason)"
        }
    }
}

extension BundleError: FileErrorConvertible {
    /// A failed file operation on the bundle (``io(path:operation:reason:)``).
    public init(_ file: FileError) { self = .io(path: file.path, operation: file.operation, reason: file.reason) }
}

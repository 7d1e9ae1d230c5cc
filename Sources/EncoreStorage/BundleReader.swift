import Foundation
import EncoreCore
import EncoreFactorization

/// The checks and reads behind ``ModelBundle/read(from:)`` and ``ModelBundle/inspect(path:)``.
///
/// Order matters: cheap checks first (file, signature, root attributes, versions), then every shape and attribute,
/// and only then the large arrays, so an inconsistent file fails before anything big is allocated.
enum BundleReader {
    /// The root attributes that identify a bundle.
    struct Header {
        var formatVersion: Int32
        var libraryVersion: String
        var createdAt: String?
    }

    /// The counts and parameters, all checked against each other.
    struct Layout {
        var users: Int
        var items: Int
        var nnz: Int
        var parameters: ALSParameters
    }

    /// Opens `path` read-only after checking it exists, is a regular file and carries the HDF5 signature.
    static func open(_ path: String) throws(BundleError) -> HDF5File {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw .fileNotFound(path: path)
        }
        guard !isDirectory.boolValue else { throw .unreadable(path: path, reason: "it is a directory") }
        guard FileManager.default.isReadableFile(atPath: path) else {
            throw .unreadable(path: path, reason: "permission denied")
        }
        guard let isHDF5 = HDF5Library.isHDF5(path) else {
            throw .unreadable(path: path, reason: "HDF5 could not check the file signature")
        }
        guard isHDF5 else { throw .notHDF5(path: path) }
        return try HDF5File.open(at: path)
    }

    /// Reads the root attributes and checks the file is a bundle of the supported format version.
    static func header(_ file: borrowing HDF5File) throws(BundleError) -> Header {
        let path = file.path
        for name in ["encore_format_version", "encore_version"] where !file.hasAttribute(name, on: "/") {
            let found = (try? file.attributeNames(on: "/")) ?? []
            let listing = found.isEmpty ? "it has no root attributes" : "its root attributes are \(found.joined(separator: ", "))"
            throw .notABundle(path: path, reason: "the root group has no '\(name)' attribute (\(listing))")
        }
        let version = try file.scalarAttribute(Int64.self, "encore_format_version", on: "/")
        guard version == Int64(Encore.bundleFormatVersion) else {
            throw .unsupportedFormatVersion(
                path: path, found: version, supported: Encore.bundleFormatVersion,
                writtenBy: try? file.stringAttribute("encore_version", on: "/"))
        }
        let writtenBy = try file.stringAttribute("encore_version", on: "/")
        let createdAt = file.hasAttribute("created_at", on: "/") ? try file.stringAttribute("created_at", on: "/") : nil
        return Header(formatVersion: Int32(version), libraryVersion: writtenBy, createdAt: createdAt)
    }

    /// Reads every shape and the model parameters, and checks they agree.
    static func layout(_ file: borrowing HDF5File) throws(BundleError) -> Layout {
        let path = file.path
        let users = try vectorLength(file, BundleLayout.users)
        let items = try vectorLength(file, BundleLayout.items)
        let parameters = try self.parameters(file)
        let k = parameters.factors

        for (object, rows, what) in [
            (BundleLayout.userFactors, users, "users in \(BundleLayout.users)"),
            (BundleLayout.itemFactors, items, "items in \(BundleLayout.items)"),
        ] {
            let shape = try file.shape(of: object)
            guard shape == [rows, k] else {
                throw .shapeMismatch(
                    path: path, object: object,
                    reason: "shape is \(shape), expected [\(rows), \(k)] (\(rows) \(what), \(k) factors in "
                        + "\(BundleLayout.cf)@factors)")
            }
        }

        let shape = try file.arrayAttribute(Int64.self, "shape", on: BundleLayout.userItems)
        guard shape == [Int64(users), Int64(items)] else {
            throw .shapeMismatch(path: path, object: "\(BundleLayout.userItems)@shape",
                                 reason: "shape is \(shape), expected [\(users), \(items)] (users x items)")
        }
        let indptr = try vectorLength(file, BundleLayout.indptr)
        guard indptr == users + 1 else {
            throw .shapeMismatch(path: path, object: BundleLayout.indptr,
                                 reason: "length is \(indptr), expected \(users + 1) (users + 1)")
        }
        let nnz = try vectorLength(file, BundleLayout.indices)
        let values = try vectorLength(file, BundleLayout.data)
        guard values == nnz else {
            throw .shapeMismatch(path: path, object: BundleLayout.data,
                                 reason: "length is \(values), but \(BundleLayout.indices) has \(nnz)")
        }
        for group in [BundleLayout.eval, BundleLayout.meta] where file.kind(of: group) != .group {
            throw .missingObject(path: path, object: group)
        }
        return Layout(users: users, items: items, nnz: nnz, parameters: parameters)
    }

    /// The length of the 1-D dataset at `object`.
    private static func vectorLength(_ file: borrowing HDF5File, _ object: String) throws(BundleError) -> Int {
        let shape = try file.shape(of: object)
        guard shape.count == 1 else {
            throw .shapeMismatch(path: file.path, object: object, reason: "expected 1 dimension, found shape \(shape)")
        }
        return shape[0]
    }

    /// The ALS parameters from the attributes of `/cf`.
    private static func parameters(_ file: borrowing HDF5File) throws(BundleError) -> ALSParameters {
        let cf = BundleLayout.cf
        guard file.kind(of: cf) == .group else { throw .missingObject(path: file.path, object: cf) }
        let solverName = try file.stringAttribute("solver", on: cf)
        guard let solver = ALSSolver(rawValue: solverName) else {
            throw .invalidData(path: file.path, object: "\(cf)@solver",
                               reason: "unknown solver '\(solverName)' (known: "
                                   + ALSSolver.allCases.map(\.rawValue).joined(separator: ", ") + ")")
        }
        func int(_ name: String) throws(BundleError) -> Int {
            let v = try file.scalarAttribute(Int64.self, name, on: cf)
            guard let i = Int(exactly: v) else {
                throw .invalidData(path: file.path, object: "\(cf)@\(name)", reason: "\(v) is out of range")
            }
            return i
        }
        let threads = file.hasAttribute("threads", on: cf) ? try int("threads") : 0
        let calculateLoss =
            file.hasAttribute("calculate_loss", on: cf)
            ? try file.scalarAttribute(UInt8.self, "calculate_loss", on: cf) != 0 : false
        // A bundle from before the floor existed was fitted with implicit's rule, which is floor 0.
        let floor = file.hasAttribute("confidence_floor", on: cf)
            ? Float(try file.scalarAttribute(Double.self, "confidence_floor", on: cf)) : 0
        let parameters = ALSParameters(
            factors: try int("factors"),
            regularization: Float(try file.scalarAttribute(Double.self, "regularization", on: cf)),
            alpha: Float(try file.scalarAttribute(Double.self, "alpha", on: cf)),
            iterations: try int("iterations"),
            solver: solver,
            cgSteps: try int("cg_steps"),
            seed: try file.scalarAttribute(UInt64.self, "seed", on: cf),
            threads: threads,
            calculateLoss: calculateLoss,
            confidenceFloor: floor)
        do { try parameters.validate() } catch {
            throw .invalidData(path: file.path, object: cf, reason: error.description)
        }
        return parameters
    }

    /// The id map stored at `object`.
    static func idMap(_ file: borrowing HDF5File, _ object: String) throws(BundleError) -> IDMap {
        let ids = try file.readStrings(at: object).values
        do {
            return try IDMap(ids: ids)
        } catch {
            throw .invalidData(path: file.path, object: object, reason: error.description)
        }
    }

    /// The training matrix, validated (row pointers, column bounds and order).
    static func userItems(_ file: borrowing HDF5File, layout: Layout) throws(BundleError) -> CSRMatrix {
        let indptr = try file.read(Int64.self, at: BundleLayout.indptr).values
        let indices = try file.read(Int32.self, at: BundleLayout.indices).values
        let values = try file.read(Float.self, at: BundleLayout.data).values
        var pointers = [Int]()
        pointers.reserveCapacity(indptr.count)
        for p in indptr {
            guard let i = Int(exactly: p), i >= 0, i <= layout.nnz else {
                throw .invalidData(path: file.path, object: BundleLayout.indptr,
                                   reason: "row pointer \(p) is outside 0...\(layout.nnz)")
            }
            pointers.append(i)
        }
        do {
            return try CSRMatrix(rows: layout.users, cols: layout.items, indptr: pointers, indices: indices, values: values)
        } catch {
            throw .invalidData(path: file.path, object: BundleLayout.userItems, reason: error.description)
        }
    }

    /// The stored listener count of each item (`/cf/item_listeners`), checked to be `items` values in
    /// `0...users`; `nil` for a bundle written before it was stored.
    static func itemListeners(_ file: borrowing HDF5File, layout: Layout) throws(BundleError) -> [Int]? {
        guard file.exists(BundleLayout.itemListeners) else { return nil }
        let values = try file.read(Int32.self, at: BundleLayout.itemListeners).values
        guard values.count == layout.items else {
            throw .shapeMismatch(path: file.path, object: BundleLayout.itemListeners,
                                 reason: "\(values.count) values for \(layout.items) items")
        }
        if let bad = values.first(where: { $0 < 0 || Int($0) > layout.users }) {
            throw .invalidData(path: file.path, object: BundleLayout.itemListeners,
                               reason: "a count of \(bad) listeners is outside 0...\(layout.users) (the bundle's users)")
        }
        return values.map { Int($0) }
    }

    /// The metrics: every attribute of `/eval`, as `Double`.
    static func metrics(_ file: borrowing HDF5File) throws(BundleError) -> [String: Double] {
        var metrics: [String: Double] = [:]
        for name in try file.attributeNames(on: BundleLayout.eval) {
            metrics[name] = try file.scalarAttribute(Double.self, name, on: BundleLayout.eval)
        }
        return metrics
    }

    /// The metadata: every attribute of `/meta`, as a string.
    static func metadata(_ file: borrowing HDF5File) throws(BundleError) -> [String: String] {
        var metadata: [String: String] = [:]
        for key in try file.attributeNames(on: BundleLayout.meta) {
            metadata[key] = try file.stringAttribute(key, on: BundleLayout.meta)
        }
        return metadata
    }
}

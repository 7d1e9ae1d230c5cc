import EncoreCore
import EncoreText
import Foundation

/// A parameter stored as an attribute of a vectors file's root group.
public enum VectorFileAttribute: Sendable, Equatable {
    /// An integer (int64).
    case int(Int64)
    /// A real number (float64).
    case double(Double)
    /// A UTF-8 string.
    case string(String)
}

/// The HDF5 files of text and sequence vectors (`encore-train text` and `encore-train sequences`).
///
/// | object | kind | content |
/// |---|---|---|
/// | `/` | attributes | `encore_version`, `kind` (`text` or `sequences`), `created_at` and every parameter |
/// | `/ids` | dataset `[ids]` | strings: a track, artist or item id per row |
/// | `/vectors` | dataset `[ids, dimensions]` | float32, unit-length rows |
/// | `/inherited` | dataset `[ids]` | uint8, 1 where a track took its artist's vector (text only) |
/// | `/vocabulary/terms` | dataset `[terms]` | strings, code-point order (text only) |
/// | `/vocabulary/document_frequency` | dataset `[terms]` | int32 (text only) |
/// | `/vocabulary/idf` | dataset `[terms]` | float64 (text only) |
/// | `/svd/singular_values` | dataset `[dimensions]` | float32, largest first (text only) |
/// | `/svd/components` | dataset `[dimensions, terms]` | float32 (text only) |
/// | `/weighted/indptr`, `indices`, `values` | datasets | the weighted documents x terms matrix in CSR (optional) |
/// | `/counts` | dataset `[ids]` | int64 occurrences of each item in the sequences (sequences only) |
public enum VectorFiles {
    /// Writes text vectors and the LSA model that made them to `path` (through a temporary file and a rename).
    ///
    /// With `weighted`, the documents x terms matrix is stored too, as CSR under `/weighted` (`indptr` int64,
    /// `indices` int32, `values` float32; rows in input order).
    public static func writeText(_ vectors: IDVectors, model: LSAModel, attributes: [String: VectorFileAttribute],
                                 weighted: CSRMatrix? = nil, to path: String) throws(BundleError) {
        try write(to: path) { file throws(BundleError) in
            try writeCommon(file, vectors: vectors, kind: "text", attributes: attributes)
            try file.write(vectors.inherited.map { $0 ? UInt8(1) : 0 }, shape: [vectors.ids.count], at: "/inherited")
            try file.createGroup("/vocabulary")
            let v = model.vectorizer
            try file.write(strings: v.terms, at: "/vocabulary/terms")
            try file.write(v.documentFrequency, shape: [v.termCount], at: "/vocabulary/document_frequency")
            try file.write(v.idf, shape: [v.termCount], at: "/vocabulary/idf")
            try file.createGroup("/svd")
            try file.write(model.svd.singularValues, shape: [model.svd.rank], at: "/svd/singular_values")
            try file.write(model.svd.components, at: "/svd/components")
            if let weighted {
                try file.createGroup("/weighted")
                try file.setAttribute("shape", array: [Int64(weighted.rows), Int64(weighted.cols)], on: "/weighted")
                try file.write(weighted.indptr.map(Int64.init), shape: [weighted.rows + 1], at: "/weighted/indptr")
                try file.write(weighted.indices, shape: [weighted.nnz], at: "/weighted/indices")
                try file.write(weighted.values, shape: [weighted.nnz], at: "/weighted/values")
            }
        }
    }

    /// Writes sequence vectors (and each item's count) to `path`.
    public static func writeSequences(_ vectors: IDVectors, counts: [Int], attributes: [String: VectorFileAttribute],
                                      to path: String) throws(BundleError) {
        guard counts.count == vectors.ids.count else {
            throw .shapeMismatch(path: path, object: "/counts", reason: "\(counts.count) counts for \(vectors.ids.count) ids")
        }
        try write(to: path) { file throws(BundleError) in
            try writeCommon(file, vectors: vectors, kind: "sequences", attributes: attributes)
            try file.write(counts.map(Int64.init), shape: [counts.count], at: "/counts")
        }
    }

    /// The ids and vectors of a file written by ``writeText(_:model:attributes:to:)`` or
    /// ``writeSequences(_:counts:attributes:to:)``.
    public static func readVectors(from path: String) throws(BundleError) -> (ids: [String], vectors: Matrix) {
        var file = try HDF5File.open(at: path)
        let ids = try file.readStrings(at: "/ids").values
        let vectors = try file.readMatrix(at: "/vectors")
        try file.close()
        guard vectors.rows == ids.count else {
            throw .shapeMismatch(path: path, object: "/vectors", reason: "\(vectors.rows) rows for \(ids.count) ids")
        }
        return (ids, vectors)
    }

    private static func writeCommon(_ file: borrowing HDF5File, vectors: IDVectors, kind: String,
                                    attributes: [String: VectorFileAttribute]) throws(BundleError) {
        try file.setAttribute("encore_version", string: Encore.version, on: "/")
        try file.setAttribute("kind", string: kind, on: "/")
        try file.setAttribute("created_at", string: Date().ISO8601Format(), on: "/")
        for (key, value) in attributes.sorted(by: { $0.key < $1.key }) {
            switch value {
            case .int(let v): try file.setAttribute(key, scalar: v, on: "/")
            case .double(let v): try file.setAttribute(key, scalar: v, on: "/")
            case .string(let v): try file.setAttribute(key, string: v, on: "/")
            }
        }
        try file.write(strings: vectors.ids, at: "/ids")
        try file.write(vectors.vectors, at: "/vectors")
    }

    private static func write(to path: String, _ body: (borrowing HDF5File) throws(BundleError) -> Void) throws(BundleError) {
        try AtomicFile.checkDirectory(for: path, operation: "write the vectors", as: BundleError.self)
        let temporary = AtomicFile.temporaryPath(for: path)
        do throws(BundleError) {
            var file: HDF5File
            do {
                file = try HDF5File.create(at: temporary)
            } catch {
                throw BundleError.io(path: path, operation: "create the temporary file \(temporary)", reason: error.description)
            }
            try body(file)
            try file.close()
            try AtomicFile.sync(file: temporary, reportingAs: path, as: BundleError.self)
            try AtomicFile.rename(temporary, to: path, as: BundleError.self)
        } catch {
            AtomicFile.removeIfPresent(temporary)
            throw error
        }
        try AtomicFile.syncDirectory(of: path, as: BundleError.self)
    }
}

import Foundation
import EncoreCore
import EncoreData
import EncoreFactorization
import EncoreIndex

/// Factors trained elsewhere (Spark MLlib's ALS through the Spark job's `.npy` shards, or implicit's saved `.npz`
/// models) made into an Encore bundle.
public enum FactorImport {
    /// One side (users or items) of an imported model: ids and their factor rows, in the same order.
    public struct Side: Sendable {
        /// The ids, one per factor row.
        public var ids: [String]
        /// The factors (rows = ids).
        public var factors: Matrix

        /// A side from ids and factors of equal length.
        public init(ids: [String], factors: Matrix) {
            self.ids = ids
            self.factors = factors
        }
    }

    /// Reads one side's factors from `path`:
    /// - a directory: every `*.npy` file in it in name order (the Spark job's shards, `part-00000.npy`, ...), each
    ///   with its ids in `<stem>.ids` beside it (UTF-8, one id a line); `ids` must be nil;
    /// - a `.npy` file: ids from `ids`, else from `<stem>.ids` beside it;
    /// - a `.npz` archive (implicit's `model.save`): its array `arrayName` (`user_factors` or `item_factors`); ids
    ///   from `ids`, else the row numbers `0`, `1`, ... (implicit's own indices).
    /// - Parameter what: "user" or "item", named in errors.
    /// - Throws: ``BundleError`` naming the file (and line) at fault: a missing file or ids file, an unreadable
    ///   array, an id count that differs from the row count, an empty or duplicate id, a non-finite value.
    public static func readSide(path: String, ids idsPath: String?, arrayName: String, what: String) throws(BundleError) -> Side {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { throw .fileNotFound(path: path) }
        var ids: [String] = []
        var parts: [Matrix] = []
        if isDirectory.boolValue {
            if let idsPath {
                throw .invalidData(path: idsPath, object: "", reason: "\(what) ids come from the .ids file beside each shard of the directory \(path); give no separate ids file")
            }
            let shards: [String]
            do {
                shards = try FileManager.default.contentsOfDirectory(atPath: path).filter { $0.hasSuffix(".npy") }.sorted()
            } catch {
                throw .unreadable(path: path, reason: "cannot list the directory: \(error.localizedDescription)")
            }
            guard !shards.isEmpty else { throw .invalidData(path: path, object: "", reason: "the directory holds no .npy shard") }
            for shard in shards {
                let file = (path as NSString).appendingPathComponent(shard)
                let m = try npy(file)
                let shardIDs = try readIDs(String(file.dropLast(4)) + ".ids")
                try checkCount(shardIDs.count, m, file: file)
                ids += shardIDs
                parts.append(m)
            }
        } else if path.hasSuffix(".npz") {
            let archive: NumPyArchive
            do { archive = try NumPyArchive(path: path) } catch { throw .unreadable(path: path, reason: error.description) }
            let m: Matrix
            do { m = try archive.matrix(arrayName) } catch { throw .unreadable(path: path, reason: error.description) }
            ids = try idsPath.map { p throws(BundleError) in try readIDs(p) } ?? (0..<m.rows).map(String.init)
            try checkCount(ids.count, m, file: idsPath ?? path)
            parts.append(m)
        } else {
            let m = try npy(path)
            let stem = path.hasSuffix(".npy") ? String(path.dropLast(4)) : path
            ids = try readIDs(idsPath ?? stem + ".ids")
            try checkCount(ids.count, m, file: idsPath ?? stem + ".ids")
            parts.append(m)
        }
        let factors = try stack(parts, path: path, what: what)
        for r in 0..<factors.rows where !factors.row(r).allSatisfy(\.isFinite) {
            throw .invalidData(path: path, object: "", reason: "the factors of \(what) '\(ids[r])' (row \(r)) hold NaN or infinity")
        }
        return Side(ids: ids, factors: factors)
    }

    /// implicit's regularization and alpha when `path` is an `.npz` archive that records them (nil otherwise).
    /// - Throws: ``BundleError/unreadable(path:reason:)`` when the archive or a recorded value cannot be read.
    public static func implicitParameters(path: String) throws(BundleError) -> (regularization: Float?, alpha: Float?) {
        guard path.hasSuffix(".npz") else { return (nil, nil) }
        do {
            let archive = try NumPyArchive(path: path)
            let r = archive.contains("regularization") ? Float(try archive.scalar("regularization")) : nil
            let a = archive.contains("alpha") ? Float(try archive.scalar("alpha")) : nil
            return (r, a)
        } catch {
            throw .unreadable(path: path, reason: error.description)
        }
    }

    /// A bundle of imported factors. `interactions` (weighted as the model was trained) become the bundle's
    /// training matrix, so served recommendations leave out what a user played and fold-in has their rows;
    /// without them the matrix is empty.
    /// - Parameters:
    ///   - regularization, alpha, confidenceFloor: the fold-in's parameters (the model's own, mapped to Encore's
    ///     meaning: ``ALSParameters/confidenceFloor``).
    /// - Throws: ``BundleError/invalidData(path:object:reason:)`` for sides of different dimensions, duplicate ids or
    ///   invalid parameters (`path` is `source`).
    public static func bundle(
        users: Side, items: Side, regularization: Float, alpha: Float, confidenceFloor: Float = 0,
        interactions: CSRMatrix? = nil,
        confidence: ConfidenceContext? = nil, metadata: [String: String] = [:], source: String
    ) throws(BundleError) -> ModelBundle {
        guard users.factors.cols == items.factors.cols else {
            throw .invalidData(path: source, object: "", reason: "user factors have \(users.factors.cols) columns, item factors \(items.factors.cols)")
        }
        guard users.factors.cols > 0 else { throw .invalidData(path: source, object: "", reason: "the factors have no columns") }
        let userIDs: IDMap, itemIDs: IDMap
        do { userIDs = try IDMap(ids: users.ids) } catch { throw .invalidData(path: source, object: "user ids", reason: error.description) }
        do { itemIDs = try IDMap(ids: items.ids) } catch { throw .invalidData(path: source, object: "item ids", reason: error.description) }
        let params = ALSParameters(
            factors: users.factors.cols, regularization: regularization, alpha: alpha, iterations: 0,
            confidenceFloor: confidenceFloor)
        let model: ImplicitALS
        do {
            try params.validate()
            model = try ImplicitALS(parameters: params, userFactors: users.factors, itemFactors: items.factors)
        } catch {
            throw .invalidData(path: source, object: "", reason: error.description)
        }
        let matrix: CSRMatrix
        if let interactions {
            matrix = interactions
        } else {
            do { matrix = try CSRMatrix(rows: userIDs.count, cols: itemIDs.count, rowIndices: [], colIndices: [], values: []) } catch {
                throw .invalidData(path: source, object: "", reason: error.description)
            }
        }
        var bundle = ModelBundle(userIDs: userIDs, itemIDs: itemIDs, model: model, userItems: matrix, metadata: metadata)
        bundle.confidence = confidence
        try bundle.validate(path: source)
        return bundle
    }

    /// The rows of `log` whose user and item are in the imported ids, as a raw users x items matrix (duplicates
    /// summed), and how many rows were left out because an id is not in the model.
    /// - Throws: ``BundleError/invalidData(path:object:reason:)`` when the matrix cannot be built.
    public static func interactionMatrix(_ log: Interactions, userIDs: [String], itemIDs: [String], source: String) throws(BundleError) -> (matrix: CSRMatrix, skipped: Int) {
        var userLookup = [String: Int32](), itemLookup = [String: Int32]()
        for (i, id) in userIDs.enumerated() { userLookup[id] = Int32(i) }
        for (i, id) in itemIDs.enumerated() { itemLookup[id] = Int32(i) }
        let userMap = log.userIDs.ids.map { userLookup[$0] ?? -1 }
        let itemMap = log.itemIDs.ids.map { itemLookup[$0] ?? -1 }
        var rows: [Int32] = [], cols: [Int32] = [], values: [Float] = []
        var skipped = 0
        for t in 0..<log.count {
            let u = userMap[Int(log.users[t])], i = itemMap[Int(log.items[t])]
            guard u >= 0, i >= 0 else { skipped += 1; continue }
            rows.append(u); cols.append(i); values.append(log.weights[t])
        }
        do {
            return (try CSRMatrix(rows: userIDs.count, cols: itemIDs.count, rowIndices: rows, colIndices: cols, values: values), skipped)
        } catch {
            throw .invalidData(path: source, object: "", reason: error.description)
        }
    }

    // MARK: Helpers

    static func npy(_ path: String) throws(BundleError) -> Matrix {
        do { return try NumPyArray.read(path: path) } catch {
            if case .io(_, let reason) = error, reason == "no such file" { throw .fileNotFound(path: path) }
            throw .unreadable(path: path, reason: error.description)
        }
    }

    /// Ids one a line (UTF-8; a trailing newline and `\r` line ends allowed).
    static func readIDs(_ path: String) throws(BundleError) -> [String] {
        guard FileManager.default.fileExists(atPath: path) else { throw .fileNotFound(path: path) }
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw .unreadable(path: path, reason: "not UTF-8 text: \(error.localizedDescription)")
        }
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map { $0.hasSuffix("\r") ? $0.dropLast() : $0 }
        if lines.last?.isEmpty == true { lines.removeLast() }
        for (n, line) in lines.enumerated() where line.isEmpty {
            throw .invalidData(path: path, object: "line \(n + 1)", reason: "empty id")
        }
        return lines.map(String.init)
    }

    static func checkCount(_ ids: Int, _ m: Matrix, file: String) throws(BundleError) {
        guard ids == m.rows else {
            throw .shapeMismatch(path: file, object: "", reason: "\(ids) ids for \(m.rows) factor rows")
        }
    }

    static func stack(_ parts: [Matrix], path: String, what: String) throws(BundleError) -> Matrix {
        let nonEmpty = parts.filter { $0.rows > 0 }
        guard let first = nonEmpty.first else { throw .invalidData(path: path, object: "", reason: "no \(what) factors (0 rows)") }
        if parts.count == 1 { return first }
        var storage: [Float] = []
        storage.reserveCapacity(nonEmpty.reduce(0) { $0 + $1.rows } * first.cols)
        for m in nonEmpty {
            guard m.cols == first.cols else {
                throw .shapeMismatch(path: path, object: "", reason: "shards of \(first.cols) and \(m.cols) columns")
            }
            storage += m.storage
        }
        do { return try Matrix(rows: storage.count / first.cols, cols: first.cols, storage: storage) } catch {
            throw .invalidData(path: path, object: "", reason: "\(error)")
        }
    }
}

import EncoreCore
import EncoreFactorization
import EncoreStorage

/// A bundle of 2 users and `items` items with 3 factors of fixed values and 2 training entries: the base the catalog
/// and content-space tests add their parts to.
func smallBundle(items: Int = 6) throws -> ModelBundle {
    let users = try IDMap(ids: ["u1", "u2"])
    let itemIDs = try IDMap(ids: (0..<items).map { "t\($0)" })
    let params = ALSParameters(factors: 3, regularization: 0.1, alpha: 1, iterations: 2, solver: .cg, seed: 1, threads: 1)
    var x = Matrix(rows: 2, cols: 3), y = Matrix(rows: items, cols: 3)
    for i in 0..<x.storage.count { x.storage[i] = Float(i) * 0.5 }
    for i in 0..<y.storage.count { y.storage[i] = Float(i) * -0.25 }
    let model = try ImplicitALS(parameters: params, userFactors: x, itemFactors: y)
    let csr = try CSRMatrix(rows: 2, cols: items, rowIndices: [0, 1], colIndices: [1, 2], values: [1, 2])
    return ModelBundle(userIDs: users, itemIDs: itemIDs, model: model, userItems: csr)
}

import Foundation
import EncoreCore

/// Weighted spherical k-means (cosine) with k-means++ seeding (Arthur and Vassilvitskii 2007), and the weighted
/// silhouette that chooses the number of clusters: how the Daily Mix finds the tastes in a user's listening.
public struct SphericalKMeans: Sendable, Equatable, Codable {
    /// Lloyd iterations per run (a run stops earlier when no point changes cluster).
    public var iterations: Int
    /// Runs from different seedings; the one of least inertia is kept.
    public var restarts: Int

    /// A clusterer.
    public init(iterations: Int = 30, restarts: Int = 4) {
        self.iterations = iterations
        self.restarts = restarts
    }

    /// A clustering of weighted unit vectors.
    public struct Result: Sendable, Equatable {
        /// The cluster of each point.
        public var assignment: [Int]
        /// The unit centroid of each cluster, `k x d`.
        public var centroids: Matrix
        /// `Σ wᵢ (1 − cos(xᵢ, c(i)))`.
        public var inertia: Float
        /// The total weight of each cluster.
        public var clusterWeights: [Float]
        /// The number of points in each cluster.
        public var clusterSizes: [Int]

        /// The number of clusters.
        public var k: Int { centroids.rows }
    }

    /// Clusters the rows of `points` (unit vectors) with the given positive weights into at most `k` clusters
    /// (fewer when there are fewer distinct points). Deterministic for a seed.
    public func fit(_ points: Matrix, weights: [Float], k: Int, seed: UInt64) -> Result {
        let n = points.rows
        let kk = max(1, min(k, n))
        var best: Result? = nil
        for r in 0..<max(1, restarts) {
            let result = run(points, weights: weights, k: kk, seed: StableSeed.derive(seed, UInt64(r)))
            if best == nil || result.inertia < best!.inertia - 1e-6 { best = result }
        }
        return best ?? Result(assignment: [], centroids: Matrix(rows: 0, cols: points.cols), inertia: 0,
                              clusterWeights: [], clusterSizes: [])
    }

    private func run(_ points: Matrix, weights: [Float], k: Int, seed: UInt64) -> Result {
        let n = points.rows, d = points.cols
        var rng = SplitMix64(seed: seed)
        func sample(_ w: [Float]) -> Int? {
            let total = w.reduce(0, +)
            guard total > 0 else { return nil }
            var u = Float(rng.nextDouble()) * total
            for i in 0..<w.count where w[i] > 0 {
                u -= w[i]
                if u <= 0 { return i }
            }
            return w.lastIndex { $0 > 0 }
        }
        guard n > 0, d > 0, let first = sample(weights) else {
            return Result(assignment: [Int](repeating: 0, count: n), centroids: Matrix(rows: 0, cols: d), inertia: 0,
                          clusterWeights: [], clusterSizes: [])
        }
        // One buffer for the centroids (k rows), one for the sums; the loops run on raw pointers with the SIMD dot
        // product, so a user's clustering allocates a handful of arrays whatever the number of iterations.
        var centroids = [Float](repeating: 0, count: k * d)
        var sums = [Float](repeating: 0, count: k * d)
        var assignment = [Int](repeating: -1, count: n)
        var kk = 0
        var inertia: Float = 0
        var cw = [Float](repeating: 0, count: k)
        var cs = [Int](repeating: 0, count: k)
        points.storage.withUnsafeBufferPointer { pb in
            centroids.withUnsafeMutableBufferPointer { cb in
                let p = pb.baseAddress!, c = cb.baseAddress!
                @inline(__always) func dot(_ i: Int, _ ci: Int) -> Float { Kernels.dot(p + i * d, c + ci * d, d) }
                @inline(__always) func nearest(_ i: Int) -> (Int, Float) {
                    var bestC = 0, bestS = -Float.infinity
                    for ci in 0..<kk {
                        let s = dot(i, ci)
                        if s > bestS { bestS = s; bestC = ci }
                    }
                    return (bestC, bestS)
                }
                // k-means++ seeding, weighted.
                c.update(from: p + first * d, count: d)
                kk = 1
                var distance = (0..<n).map { max(0, 1 - dot($0, 0)) }
                var seedWeights = [Float](repeating: 0, count: n)
                while kk < k {
                    for i in 0..<n { seedWeights[i] = weights[i] * distance[i] }
                    guard let next = sample(seedWeights) else { break }
                    (c + kk * d).update(from: p + next * d, count: d)
                    kk += 1
                    for i in 0..<n { distance[i] = min(distance[i], max(0, 1 - dot(i, kk - 1))) }
                }
                sums.withUnsafeMutableBufferPointer { sb in
                    let sum = sb.baseAddress!
                    var mass = [Float](repeating: 0, count: kk)
                    for _ in 0..<max(1, iterations) {
                        var changed = false
                        for i in 0..<n {
                            let bestC = nearest(i).0
                            if assignment[i] != bestC { assignment[i] = bestC; changed = true }
                        }
                        if !changed { break }
                        // Weighted mean directions; an emptied cluster takes the worst-fitting point.
                        sum.update(repeating: 0, count: kk * d)
                        for ci in 0..<kk { mass[ci] = 0 }
                        for i in 0..<n {
                            let ci = assignment[i]
                            mass[ci] += weights[i]
                            Kernels.axpy(weights[i], p + i * d, sum + ci * d, d)
                        }
                        for ci in 0..<kk {
                            let norm = Kernels.dot(sum + ci * d, sum + ci * d, d).squareRoot()
                            if mass[ci] > 0 && norm > 0 {
                                for j in 0..<d { c[ci * d + j] = sum[ci * d + j] / norm }
                            } else {
                                var worst = 0, worstCost = -Float.infinity
                                for i in 0..<n {
                                    let cost = weights[i] * (1 - dot(i, assignment[i]))
                                    if cost > worstCost { worstCost = cost; worst = i }
                                }
                                (c + ci * d).update(from: p + worst * d, count: d)
                            }
                        }
                    }
                }
                // Final assignment and statistics.
                for i in 0..<n {
                    let (bestC, bestS) = nearest(i)
                    assignment[i] = bestC
                    inertia += weights[i] * max(0, 1 - bestS)
                    cw[bestC] += weights[i]
                    cs[bestC] += 1
                }
            }
        }
        let m = (try? Matrix(rows: kk, cols: d, storage: Array(centroids.prefix(kk * d)))) ?? Matrix(rows: 0, cols: d)
        return Result(assignment: assignment, centroids: m, inertia: inertia, clusterWeights: Array(cw.prefix(kk)),
                      clusterSizes: Array(cs.prefix(kk)))
    }

    /// The weighted mean silhouette of a clustering under the cosine distance `1 − cos`, in `[−1, 1]` (0 for one
    /// cluster): `Σ wᵢ sᵢ / Σ wᵢ` with `sᵢ = (bᵢ − aᵢ) / max(aᵢ, bᵢ)`, `aᵢ` the weighted mean distance of point `i`
    /// to the other points of its cluster and `bᵢ` the least weighted mean distance to another cluster's points
    /// (`sᵢ = 0` for a point alone in its cluster).
    ///
    /// - Parameter cosines: the `n x n` cosines of the points, row-major.
    public static func silhouette(cosines: [Float], assignment: [Int], weights: [Float], k: Int) -> Float {
        let n = assignment.count
        guard k > 1, n > 1, cosines.count == n * n else { return 0 }
        var total: Float = 0, weight: Float = 0
        var sum = [Float](repeating: 0, count: k)
        var mass = [Float](repeating: 0, count: k)
        for i in 0..<n {
            for c in 0..<k { sum[c] = 0; mass[c] = 0 }
            for j in 0..<n where j != i {
                let c = assignment[j]
                sum[c] += weights[j] * max(0, 1 - cosines[i * n + j])
                mass[c] += weights[j]
            }
            let own = assignment[i]
            var s: Float = 0
            if mass[own] > 0 {
                let a = sum[own] / mass[own]
                var b = Float.infinity
                for c in 0..<k where c != own && mass[c] > 0 { b = min(b, sum[c] / mass[c]) }
                if b.isFinite, max(a, b) > 0 { s = (b - a) / max(a, b) }
            }
            total += weights[i] * s
            weight += weights[i]
        }
        return weight > 0 ? total / weight : 0
    }
}

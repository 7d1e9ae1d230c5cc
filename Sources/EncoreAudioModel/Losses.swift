import Foundation

/// A loss value with its gradient with respect to the scored tensor.
public struct LossResult: Sendable {
    /// The loss (a mean over the rows that count).
    public var value: Double
    /// `d loss / d input`, the input's shape.
    public var gradient: Tensor
}

/// The training objectives.
public enum Losses {
    /// Cosine regression: the mean over the rows with a target of `1 - cos(prediction, target)`.
    ///
    /// `prediction` and `targets` are `[batch, factors]`; rows where `hasTarget` is false contribute neither loss nor
    /// gradient. With no row counted the loss is 0.
    public static func cosine(prediction: Tensor, targets: [Float], hasTarget: [Bool]) -> LossResult {
        let n = prediction.shape[0]
        let f = prediction.count / max(1, n)
        let counted = hasTarget.filter { $0 }.count
        var grad = Tensor(zeros: prediction.shape)
        guard counted > 0 else { return LossResult(value: 0, gradient: grad) }
        var loss = 0.0
        for r in 0..<n where hasTarget[r] {
            var pp = 0.0, tt = 0.0, pt = 0.0
            for j in 0..<f {
                let p = Double(prediction.data[r * f + j]), t = Double(targets[r * f + j])
                pp += p * p
                tt += t * t
                pt += p * t
            }
            let pn = (pp + 1e-12).squareRoot(), tn = (tt + 1e-12).squareRoot()
            let cos = pt / (pn * tn)
            loss += 1 - cos
            // d(1 - cos)/dp = -(t/|t| - cos * p/|p|) / |p|
            for j in 0..<f {
                let p = Double(prediction.data[r * f + j]), t = Double(targets[r * f + j])
                grad.data[r * f + j] = Float(-(t / tn - cos * p / pn) / pn / Double(counted))
            }
        }
        return LossResult(value: loss / Double(counted), gradient: grad)
    }

    /// NT-Xent (the normalized-temperature cross-entropy of SimCLR and CLMR) over `2N` embeddings `[2N, dim]` whose
    /// rows `i` and `i + N` are two views of one example: for each row, the cross-entropy of picking its partner among
    /// the other `2N - 1` rows by `cos / temperature`, averaged over all `2N` rows.
    ///
    /// The rows are used as given (the model's embeddings are already unit length, so dot products are cosines).
    public static func ntXent(embeddings z: Tensor, temperature: Float) -> LossResult {
        let rows = z.shape[0]
        let d = z.count / max(1, rows)
        let half = rows / 2
        var sim = [Float](repeating: 0, count: rows * rows)
        z.data.withUnsafeBufferPointer { zp in
            sim.withUnsafeMutableBufferPointer { s in
                GEMM.run(transA: false, transB: true, m: rows, n: rows, k: d, alpha: 1 / temperature,
                         zp.baseAddress!, zp.baseAddress!, beta: 0, s.baseAddress!)
            }
        }
        // g[i][k] = d loss / d sim[i][k] = (softmax_i(k) - [k == partner(i)]) / 2N, zero on the diagonal.
        var g = [Float](repeating: 0, count: rows * rows)
        var loss = 0.0
        for i in 0..<rows {
            let partner = i < half ? i + half : i - half
            var mx = -Double.infinity
            for k in 0..<rows where k != i { mx = max(mx, Double(sim[i * rows + k])) }
            var sum = 0.0
            for k in 0..<rows where k != i { sum += Foundation.exp(Double(sim[i * rows + k]) - mx) }
            let logZ = mx + Foundation.log(sum)
            loss += logZ - Double(sim[i * rows + partner])
            for k in 0..<rows where k != i {
                let p = Foundation.exp(Double(sim[i * rows + k]) - logZ)
                g[i * rows + k] = Float((p - (k == partner ? 1 : 0)) / Double(rows))
            }
        }
        // sim = Z Z^T / t, so dZ = (G + G^T) Z / t.
        var sym = g
        for i in 0..<rows { for k in 0..<rows { sym[i * rows + k] = g[i * rows + k] + g[k * rows + i] } }
        var grad = Tensor(zeros: z.shape)
        sym.withUnsafeBufferPointer { s in
            z.data.withUnsafeBufferPointer { zp in
                grad.data.withUnsafeMutableBufferPointer { dz in
                    GEMM.run(transA: false, transB: false, m: rows, n: d, k: rows, alpha: 1 / temperature,
                             s.baseAddress!, zp.baseAddress!, beta: 0, dz.baseAddress!)
                }
            }
        }
        return LossResult(value: loss / Double(rows), gradient: grad)
    }
}

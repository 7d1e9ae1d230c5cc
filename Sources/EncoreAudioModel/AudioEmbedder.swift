import EncoreCore

/// Whole-track embeddings from a trained model.
public struct AudioEmbeddings: Sendable, Equatable {
    /// `tracks x dim`, each row L2-normalized.
    public var embeddings: [Float]
    /// Embedding dimension.
    public var dim: Int
    /// `tracks x factors`, each row L2-normalized, when the model has a CF head.
    public var cfPredicted: [Float]?
    /// CF factors (0 without a CF head).
    public var factors: Int
}

extension AudioEmbeddingModel {
    /// Embeds every track of `set`: each track is cut into windows of `windowFrames` frames (the last one aligned
    /// with the track's end; a shorter track is tiled to one window), the windows go through the network in
    /// evaluation mode in batches of `batchSize`, and the track's embedding (and CF prediction) is the mean over
    /// its windows, L2-normalized again.
    public func embed(_ set: LogMelSet, windowFrames: Int, batchSize: Int = 64,
                      threads: Int = 2) throws(AudioModelError) -> AudioEmbeddings {
        try set.validate()
        guard set.bands == configuration.bands else {
            throw .invalidInput(path: set.source, reason: "the features have \(set.bands) mel bands, the model \(configuration.bands)")
        }
        guard windowFrames >= configuration.minimumFrames else {
            throw .invalidParameter(name: "window", reason: "\(windowFrames) frames are fewer than the \(configuration.minimumFrames) the network needs")
        }
        BLAS.setThreads(threads)
        // (track, start frame) of every window.
        var windows: [(Int, Int)] = []
        for t in 0..<set.trackCount {
            let length = set.frames(of: t)
            if length <= windowFrames {
                windows.append((t, 0))
            } else {
                var s = 0
                while s + windowFrames < length {
                    windows.append((t, s))
                    s += windowFrames
                }
                windows.append((t, length - windowFrames))
            }
        }
        let dim = configuration.dim, f = configuration.cfFactors, c = set.bands
        var sums = [Double](repeating: 0, count: set.trackCount * dim)
        var cfSums = [Double](repeating: 0, count: set.trackCount * f)
        var start = 0
        while start < windows.count {
            let chunk = Array(windows[start..<min(windows.count, start + max(1, batchSize))])
            var input = Tensor(zeros: [chunk.count, windowFrames, c])
            set.data.withUnsafeBufferPointer { d in
                input.data.withUnsafeMutableBufferPointer { buf in
                    for (r, (t, s)) in chunk.enumerated() {
                        let length = set.frames(of: t)
                        for fr in 0..<windowFrames {
                            let src = set.offsets[t] + (s + fr) % length
                            (buf.baseAddress! + (r * windowFrames + fr) * c).update(from: d.baseAddress! + src * c, count: c)
                        }
                    }
                }
            }
            let out = try forward(input, training: false)
            for (r, (t, _)) in chunk.enumerated() {
                for j in 0..<dim { sums[t * dim + j] += Double(out.embeddings.data[r * dim + j]) }
                if let cf = out.cf { for j in 0..<f { cfSums[t * f + j] += Double(cf.data[r * f + j]) } }
            }
            start += chunk.count
        }
        func normalizedRows(_ v: [Double], width: Int) -> [Float] {
            var out = [Float](repeating: 0, count: v.count)
            for r in 0..<(v.count / max(1, width)) {
                let norm = (0..<width).reduce(0.0) { $0 + v[r * width + $1] * v[r * width + $1] }.squareRoot()
                for j in 0..<width { out[r * width + j] = norm > 0 ? Float(v[r * width + j] / norm) : 0 }
            }
            return out
        }
        return AudioEmbeddings(
            embeddings: normalizedRows(sums, width: dim), dim: dim,
            cfPredicted: f > 0 ? normalizedRows(cfSums, width: f) : nil, factors: f)
    }
}

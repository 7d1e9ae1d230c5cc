import EncoreCore
import EncoreData
import Foundation

/// The options of skip-gram training with negative sampling; the defaults are word2vec's and gensim's, except the
/// dimensions (64, the `sequences` command's).
public struct SkipGramOptions: Sendable, Equatable {
    /// The vector dimensions.
    public var dimensions: Int
    /// The largest distance between a token and a context token (a reduced window, uniform in `1...window`, is drawn
    /// for each token, as word2vec does).
    public var window: Int
    /// Negative samples per positive pair, drawn from the unigram distribution raised to `negativeExponent`.
    public var negative: Int
    /// The exponent of the negative-sampling distribution.
    public var negativeExponent: Double
    /// Tokens seen fewer times are dropped before windows are formed.
    public var minCount: Int
    /// Passes over the sequences.
    public var epochs: Int
    /// The frequent-token subsampling threshold (`sample`; 0 keeps every token).
    public var sample: Double
    /// The initial learning rate, decaying linearly to `minAlpha` over all epochs.
    public var alpha: Float
    /// The final learning rate.
    public var minAlpha: Float
    /// The seed of the initial vectors and of every random draw.
    public var seed: UInt64
    /// Worker threads updating the shared vectors without locks (Hogwild); one thread is deterministic.
    public var threads: Int

    /// Options.
    public init(dimensions: Int = 64, window: Int = 5, negative: Int = 5, negativeExponent: Double = 0.75,
                minCount: Int = 5, epochs: Int = 5, sample: Double = 1e-3, alpha: Float = 0.025,
                minAlpha: Float = 0.0001, seed: UInt64 = 1, threads: Int = 1) {
        self.dimensions = dimensions
        self.window = window
        self.negative = negative
        self.negativeExponent = negativeExponent
        self.minCount = minCount
        self.epochs = epochs
        self.sample = sample
        self.alpha = alpha
        self.minAlpha = minAlpha
        self.seed = seed
        self.threads = threads
    }

    /// Checks the ranges.
    public func validate() throws(TextError) {
        guard dimensions > 0 else { throw .invalidParameter("dimensions must be positive, got \(dimensions)") }
        guard window > 0 else { throw .invalidParameter("window must be positive, got \(window)") }
        guard negative > 0 else { throw .invalidParameter("negative must be positive, got \(negative)") }
        guard minCount >= 1 else { throw .invalidParameter("min_count must be at least 1, got \(minCount)") }
        guard epochs >= 1 else { throw .invalidParameter("epochs must be at least 1, got \(epochs)") }
        guard sample >= 0, sample.isFinite else { throw .invalidParameter("sample must be >= 0, got \(sample)") }
        guard alpha > 0, minAlpha >= 0, minAlpha <= alpha else {
            throw .invalidParameter("learning rates must satisfy 0 <= min_alpha <= alpha, alpha > 0 (got \(alpha), \(minAlpha))")
        }
        guard threads >= 1 else { throw .invalidParameter("threads must be at least 1, got \(threads)") }
    }
}

/// Skip-gram with negative sampling (word2vec) over sequences of tokens: listening sessions, playlists, text.
///
/// As word2vec: tokens below `minCount` are dropped, frequent ones subsampled (kept with probability
/// `(sqrt(f / (sample * total)) + 1) * sample * total / f`), each token predicts the tokens of a randomly reduced
/// window with `negative` negatives drawn from counts^0.75, and the learning rate decays linearly over all epochs.
/// Threads share the vectors without locks (Hogwild); with one thread training is deterministic.
public struct SkipGramModel: Sendable {
    /// The vocabulary (tokens kept), most frequent first.
    public let tokens: [String]
    /// Occurrences of each kept token.
    public let counts: [Int]
    /// The input vectors (`tokens x dimensions`), as trained (not normalized).
    public let vectors: Matrix
    /// Tokens processed per second of training (after subsampling), over all epochs.
    public let tokensPerSecond: Double

    /// The row of `token`, or nil when it was not kept.
    public func index(of token: String) -> Int? { tokens.firstIndex(of: token) }

    /// Trains on `sequences` of indices into `names`.
    ///
    /// `progress` receives the tokens processed and the tokens to process (all epochs).
    public static func train(
        sequences: [[Int32]], names: [String], options: SkipGramOptions = SkipGramOptions(),
        progress: (@Sendable (Int, Int) -> Void)? = nil
    ) throws(TextError) -> SkipGramModel {
        try options.validate()
        var counts = [Int](repeating: 0, count: names.count)
        for s in sequences {
            for t in s {
                guard t >= 0, Int(t) < names.count else {
                    throw .invalidParameter("token \(t) outside the \(names.count) names")
                }
                counts[Int(t)] += 1
            }
        }
        guard counts.contains(where: { $0 > 0 }) else { throw .emptyCorpus("no tokens in \(sequences.count) sequences") }
        // Vocabulary: count >= minCount, most frequent first, ties in name order of first index.
        let kept = (0..<names.count).filter { counts[$0] >= options.minCount }
            .sorted { counts[$0] != counts[$1] ? counts[$0] > counts[$1] : $0 < $1 }
        guard !kept.isEmpty else {
            throw .emptyVocabulary("no token occurs at least min_count = \(options.minCount) times (most frequent: \(counts.max() ?? 0))")
        }
        var remap = [Int32](repeating: -1, count: names.count)
        for (i, t) in kept.enumerated() { remap[t] = Int32(i) }
        let corpus: [[Int32]] = sequences.compactMap { s in
            let r = s.compactMap { remap[Int($0)] >= 0 ? remap[Int($0)] : nil }
            return r.count >= 2 ? r : nil
        }
        guard !corpus.isEmpty else {
            throw .emptyCorpus("no sequence holds two tokens that occur at least min_count = \(options.minCount) times (\(sequences.count) sequences, \(kept.count) tokens kept)")
        }
        let vocabCounts = kept.map { counts[$0] }
        let trainer = SkipGramTrainer(corpus: corpus, counts: vocabCounts, options: options)
        let (vectors, rate) = try trainer.run(progress: progress)
        return SkipGramModel(tokens: kept.map { names[$0] }, counts: vocabCounts, vectors: vectors, tokensPerSecond: rate)
    }
}

/// The training loop of ``SkipGramModel``.
struct SkipGramTrainer: Sendable {
    let corpus: [[Int32]]
    let counts: [Int]
    let options: SkipGramOptions
    /// The probability (scaled to 2^32) of keeping each token.
    let keep: [UInt32]
    /// Cumulative negative-sampling weights scaled to 2^31 (gensim's `cum_table`).
    let cumulative: [UInt32]
    let sigmoid: [Float]
    static let maxExp: Float = 6
    static let expTableSize = 1000

    init(corpus: [[Int32]], counts: [Int], options: SkipGramOptions) {
        self.corpus = corpus
        self.counts = counts
        self.options = options
        let total = Double(corpus.reduce(0) { $0 + $1.count })
        keep = counts.map { c in
            guard options.sample > 0 else { return UInt32.max }
            let t = options.sample * total
            let p = ((Double(c) / t).squareRoot() + 1) * t / Double(c)
            return p >= 1 ? UInt32.max : UInt32(p * 4_294_967_296)
        }
        var cum = [UInt32](repeating: 0, count: counts.count)
        let powered = counts.map { Foundation.pow(Double($0), options.negativeExponent) }
        let sum = powered.reduce(0, +)
        var acc = 0.0
        for i in 0..<counts.count {
            acc += powered[i]
            cum[i] = UInt32(min(2_147_483_647, (acc / sum * 2_147_483_647).rounded()))
        }
        cumulative = cum
        sigmoid = (0..<Self.expTableSize).map { i in
            let x = (Float(i) / Float(Self.expTableSize) * 2 - 1) * Self.maxExp
            return 1 / (1 + Foundation.exp(-x))
        }
    }

    /// Trains and returns the input vectors and tokens per second.
    func run(progress: (@Sendable (Int, Int) -> Void)?) throws(TextError) -> (Matrix, Double) {
        let v = counts.count, dim = options.dimensions
        var syn0 = [Float](repeating: 0, count: v * dim)
        var syn1 = [Float](repeating: 0, count: v * dim)
        var rng = SplitMix64(seed: options.seed)
        for i in 0..<syn0.count { syn0[i] = (rng.nextFloat() - 0.5) / Float(dim) }
        let wordsPerEpoch = corpus.reduce(0) { $0 + $1.count }
        let totalWords = wordsPerEpoch * options.epochs
        let processed = AtomicCounter()
        let trained = AtomicCounter()
        let threads = max(1, min(options.threads, corpus.count))
        let start = Date()
        syn0.withUnsafeMutableBufferPointer { s0 in
            syn1.withUnsafeMutableBufferPointer { s1 in
                let p0 = UncheckedSendable(s0.baseAddress!), p1 = UncheckedSendable(s1.baseAddress!)
                // Contiguous ranges of sequences per thread, balanced by token count.
                var bounds = [0]
                var acc = 0
                for (i, s) in corpus.enumerated() {
                    acc += s.count
                    if acc * threads >= wordsPerEpoch * bounds.count && bounds.count < threads { bounds.append(i + 1) }
                }
                while bounds.count <= threads { bounds.append(corpus.count) }
                bounds[threads] = corpus.count
                let fixedBounds = bounds
                Parallel.forEach(threads, threads: threads) { t in
                    let k = worker(thread: t, range: fixedBounds[t]..<fixedBounds[t + 1], syn0: p0.value,
                                   syn1: p1.value, processed: processed, totalWords: totalWords, progress: progress)
                    _ = trained.add(k)
                }
            }
        }
        let seconds = max(1e-9, Date().timeIntervalSince(start))
        progress?(totalWords, totalWords)
        do {
            return (try Matrix(rows: v, cols: dim, storage: syn0), Double(trained.add(0)) / seconds)
        } catch {
            throw .internalError("the \(v) x \(dim) skip-gram vectors: \(error)")
        }
    }

    /// One thread's passes over its sequences; returns the tokens trained (after subsampling).
    func worker(thread: Int, range: Range<Int>, syn0: UnsafeMutablePointer<Float>, syn1: UnsafeMutablePointer<Float>,
                processed: AtomicCounter, totalWords: Int, progress: (@Sendable (Int, Int) -> Void)?) -> Int {
        let dim = options.dimensions, window = options.window, negative = options.negative
        var next: UInt64 = options.seed &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(thread) &+ 1
        @inline(__always) func random() -> UInt64 {
            next = next &* 25_214_903_917 &+ 11
            return next
        }
        let neu1e = UnsafeMutablePointer<Float>.allocate(capacity: dim)
        defer { neu1e.deallocate() }
        var sentence: [Int32] = []
        var local = 0, trainedTokens = 0
        let alpha0 = options.alpha, minAlpha = options.minAlpha
        var alpha = alpha0
        let vocab = counts.count
        let table = cumulative
        let keepTable = keep
        let sig = sigmoid
        let maxExp = Self.maxExp, scale = Float(Self.expTableSize) / maxExp / 2
        for _ in 0..<options.epochs {
            for si in range {
                let s = corpus[si]
                sentence.removeAll(keepingCapacity: true)
                for w in s where keepTable[Int(w)] == UInt32.max || UInt32(truncatingIfNeeded: random() >> 16) < keepTable[Int(w)] {
                    sentence.append(w)
                }
                local += s.count
                if local >= 10_000 {
                    let done = processed.add(local) + local
                    local = 0
                    alpha = max(minAlpha, alpha0 - (alpha0 - minAlpha) * Float(done) / Float(max(1, totalWords)))
                    progress?(done, totalWords)
                }
                let n = sentence.count
                trainedTokens += n
                guard n >= 2 else { continue }
                for pos in 0..<n {
                    let center = Int(sentence[pos])
                    let b = Int(random() % UInt64(window))
                    let lo = max(0, pos - window + b), hi = min(n - 1, pos + window - b)
                    for cpos in lo...hi where cpos != pos {
                        let l1 = syn0 + Int(sentence[cpos]) * dim
                        neu1e.initialize(repeating: 0, count: dim)
                        for d in 0...negative {
                            let target: Int
                            let label: Float
                            if d == 0 {
                                target = center
                                label = 1
                            } else {
                                let r = UInt32(truncatingIfNeeded: random() >> 16) & 0x7FFF_FFFF
                                var lo2 = 0, hi2 = vocab - 1
                                while lo2 < hi2 {
                                    let mid = (lo2 + hi2) >> 1
                                    if table[mid] <= r { lo2 = mid + 1 } else { hi2 = mid }
                                }
                                target = lo2
                                if target == center { continue }
                                label = 0
                            }
                            let l2 = syn1 + target * dim
                            let f = Kernels.dot(l1, l2, dim)
                            let g: Float
                            if f > maxExp {
                                g = (label - 1) * alpha
                            } else if f < -maxExp {
                                g = label * alpha
                            } else {
                                g = (label - sig[Int((f + maxExp) * scale)]) * alpha
                            }
                            Kernels.axpy(g, l2, neu1e, dim)
                            Kernels.axpy(g, l1, l2, dim)
                        }
                        Kernels.axpy(1, neu1e, l1, dim)
                    }
                }
            }
        }
        if local > 0 { _ = processed.add(local) }
        return trainedTokens
    }
}

/// Sequences for skip-gram: listening sessions from a play log, and tokenized text.
public enum SequenceCorpus {
    /// Each user's plays in time order, split where the gap between consecutive plays exceeds `gapSeconds`; sessions
    /// of one play are dropped. Tokens are the log's item indices (`log.itemIDs`).
    ///
    /// - Throws: ``TextError/invalidParameter(_:)`` when the log has no timestamps or the gap is negative.
    public static func sessions(_ log: Interactions, gapSeconds: Int64) throws(TextError) -> [[Int32]] {
        guard gapSeconds >= 0 else { throw .invalidParameter("the session gap must be >= 0, got \(gapSeconds) s") }
        guard log.count == 0 || log.hasTimestamps else {
            throw .invalidParameter("sessions need timestamps, and the play log has none (give --timestamp-column)")
        }
        if let bad = log.users.firstIndex(where: { $0 < 0 }) {
            throw .invalidParameter("interaction \(bad) has the negative user index \(log.users[bad])")
        }
        let order = playOrder(log)
        var out: [[Int32]] = []
        var current: [Int32] = []
        var lastUser: Int32 = -1
        var lastTime: Int64 = 0
        // A session is stored as an exact-size copy. Appending `current` itself would hand its buffer (with the
        // capacity of the longest session so far) to `out` and make `removeAll(keepingCapacity:)` allocate another
        // as large: every session would then hold the longest one's capacity.
        func close() {
            if current.count >= 2 { out.append(current.withUnsafeBufferPointer { Array($0) }) }
            current.removeAll(keepingCapacity: true)
        }
        for p in order {
            let u = log.users[p], t = log.timestamps[p]
            if u != lastUser || t - lastTime > gapSeconds { close() }
            current.append(log.items[p])
            lastUser = u
            lastTime = t
        }
        close()
        return out
    }

    /// The interactions' positions ordered by user, then time, then position: a counting sort by user (users are
    /// dense indices) and, within each user, a sort by time that keeps equal times in log order.
    static func playOrder(_ log: Interactions) -> [Int] {
        let n = log.count
        guard n > 0 else { return [] }
        var start = [Int](repeating: 0, count: max(log.userIDs.count, Int(log.users.max() ?? 0) + 1) + 1)
        for u in log.users { start[Int(u) + 1] += 1 }
        for u in 1..<start.count { start[u] += start[u - 1] }
        var order = [Int](repeating: 0, count: n)
        var next = start
        for (p, u) in log.users.enumerated() {
            order[next[Int(u)]] = p
            next[Int(u)] += 1
        }
        log.timestamps.withUnsafeBufferPointer { times in
            order.withUnsafeMutableBufferPointer { o in
                for u in 0..<(start.count - 1) {
                    let range = start[u]..<start[u + 1]
                    guard range.count > 1 else { continue }
                    var sorted = true
                    for k in range.dropFirst() where times[o[k - 1]] > times[o[k]] { sorted = false; break }
                    if sorted { continue }
                    // Positions within a user are ascending, so (time, position) is a total order.
                    var slice = UnsafeMutableBufferPointer<Int>(rebasing: o[range])
                    slice.sort { (a: Int, b: Int) -> Bool in
                        let ta: Int64 = times[a], tb: Int64 = times[b]
                        if ta != tb { return ta < tb }
                        return a < b
                    }
                }
            }
        }
        return order
    }

    /// Tokenized documents as sequences of term indices, and the terms.
    public static func texts(_ documents: [String], tokenizer: Tokenizer = Tokenizer()) -> (names: [String], sequences: [[Int32]]) {
        var table = TermTable()
        var scratch = TokenScratch()
        var sequences: [[Int32]] = []
        for d in documents {
            var s: [Int32] = []
            tokenizer.forEachTerm(d, scratch: &scratch) { s.append(table.intern($0)) }
            sequences.append(s)
        }
        return ((0..<table.count).map { table.term($0) }, sequences)
    }
}

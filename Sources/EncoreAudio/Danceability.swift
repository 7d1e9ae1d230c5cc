import Foundation

/// Danceability by detrended fluctuation analysis (DFA), as Essentia's `Danceability` defines it (Streich and
/// Herrera, "Detrended Fluctuation Analysis of Music Signals", AES 118th Convention, 2005), fed block by block.
///
/// The definition:
/// 1. cut the mono signal into frames of `floor(0.01 * sampleRate)` samples (10 ms; a last partial frame is dropped)
///    and take each frame's standard deviation (divisor `n - 1`): the series `s`;
/// 2. subtract the mean of `s` and integrate it (running sum): the profile `y`;
/// 3. for each window length `tau = floor(t / 10)` frames, `t` from `minTau` (310 ms) multiplied by 1.1 while it is
///    at most `maxTau` (8800 ms): slide a window of `tau` frames over `y` in steps of `max(tau / 50, 1)` frames,
///    fit a least-squares line in each window and sum the mean squared residuals; `F(tau)` is the square root of
///    that sum divided by `(frames - tau) / step`;
/// 4. the DFA exponent between neighbouring lengths is `log10(F(tau2) / F(tau1)) / log10((tau2 + 3) / (tau1 + 3))`
///    (the `+ 3` is the paper's small-window correction); danceability is the reciprocal of their mean.
///
/// Range and meaning: an exponent of 0.5 (uncorrelated loudness fluctuations, like white noise) gives 2; a steady
/// beat keeps the profile bounded at time scales above the beat period, which lowers the exponents and raises the
/// value (Essentia: "usually from 0 to 3, higher is more danceable"). The value is 0 when the signal has no
/// fluctuation to analyze (silence, or a steady tone whose frame deviations all lie within 1e-6 of their mean) or is
/// shorter than the second window length.
///
/// Memory grows with the number of 10 ms frames, not samples.
public struct Danceability: Sendable {
    /// Samples per second of the mono input.
    public let sampleRate: Int
    /// Samples per 10 ms frame.
    public let frameSize: Int
    /// The window lengths in frames, in increasing order.
    public let taus: [Int]
    private var deviations: [Double] = []
    private var partial: [Float] = []

    /// Creates an analyzer for mono audio at `sampleRate`, with Essentia's defaults for the window lengths.
    public init(sampleRate: Int, minTauMs: Double = 310, maxTauMs: Double = 8_800, tauMultiplier: Double = 1.1)
        throws(AudioError)
    {
        guard sampleRate >= 100, sampleRate <= 768_000 else {
            throw .invalidParameter(name: "sample rate", reason: "\(sampleRate) Hz is not in 100...768000")
        }
        guard minTauMs >= 20, minTauMs <= maxTauMs, maxTauMs.isFinite else {
            throw .invalidParameter(
                name: "tau", reason: "minTau \(minTauMs) ms must be at least 20 ms and at most maxTau \(maxTauMs) ms")
        }
        guard tauMultiplier > 1, tauMultiplier.isFinite else {
            throw .invalidParameter(name: "tau multiplier", reason: "\(tauMultiplier) is not above 1")
        }
        self.sampleRate = sampleRate
        self.frameSize = Int(0.01 * Double(sampleRate))
        var taus: [Int] = []
        var t = minTauMs
        while t <= maxTauMs {
            taus.append(Int(t / 10))
            t *= tauMultiplier
        }
        self.taus = taus
        partial.reserveCapacity(frameSize)
    }

    /// Frames (10 ms) seen so far.
    public var frameCount: Int { deviations.count }

    /// Adds mono samples.
    public mutating func add(_ samples: UnsafeBufferPointer<Float>) {
        var i = 0
        while i < samples.count {
            let take = min(frameSize - partial.count, samples.count - i)
            partial.append(contentsOf: samples[i..<(i + take)])
            i += take
            if partial.count == frameSize {
                deviations.append(Self.standardDeviation(partial))
                partial.removeAll(keepingCapacity: true)
            }
        }
    }

    /// Adds mono samples.
    public mutating func add(_ samples: [Float]) {
        samples.withUnsafeBufferPointer { add($0) }
    }

    /// The fluctuation `F(tau)` for each window length that fits in the frames seen (in the order of ``taus``).
    /// A series whose deviations all lie within 1e-6 of their mean (relative) has no fluctuation: every `F` is 0
    /// (rounding would otherwise turn a steady tone into noise).
    public func fluctuations() -> [Double] {
        let fits = taus.prefix { $0 >= 2 && $0 <= deviations.count }.count
        let mean = deviations.isEmpty ? 0 : deviations.reduce(0, +) / Double(deviations.count)
        let steady = deviations.allSatisfy { abs($0 - mean) <= 1e-6 * mean }
        if steady { return [Double](repeating: 0, count: fits) }
        let profile = Self.profile(deviations)
        return taus.prefix(fits).map { Self.fluctuation(profile, tau: $0) }
    }

    /// The danceability of everything added (see the type's documentation); 0 when it cannot be measured.
    public func finish() -> Double {
        Self.danceability(fluctuations: fluctuations(), taus: taus)
    }

    /// The sample standard deviation (divisor `n - 1`) of one frame.
    static func standardDeviation(_ x: [Float]) -> Double {
        guard x.count > 1 else { return 0 }
        var mean = 0.0
        for v in x { mean += Double(v) }
        mean /= Double(x.count)
        var ss = 0.0
        for v in x {
            let d = Double(v) - mean
            ss += d * d
        }
        return (ss / Double(x.count - 1)).squareRoot()
    }

    /// The running sum of the series minus its mean.
    static func profile(_ s: [Double]) -> [Double] {
        guard !s.isEmpty else { return [] }
        let mean = s.reduce(0, +) / Double(s.count)
        var y = [Double](repeating: 0, count: s.count)
        var acc = 0.0
        for i in 0..<s.count {
            acc += s[i] - mean
            y[i] = acc
        }
        return y
    }

    /// The mean squared residual of the least-squares line through `y[start..<end]` (x = 0, 1, ...).
    static func residual(_ y: UnsafeBufferPointer<Double>, _ start: Int, _ end: Int) -> Double {
        let n = end - start
        let meanX = Double(n - 1) * 0.5
        var meanY = 0.0
        for i in start..<end { meanY += y[i] }
        meanY /= Double(n)
        var sxx = 0.0, sxy = 0.0, syy = 0.0
        for i in 0..<n {
            let dx = Double(i) - meanX
            let dy = y[start + i] - meanY
            sxx += dx * dx
            sxy += dx * dy
            syy += dy * dy
        }
        return max(0, syy - sxy * sxy / sxx) / Double(n)
    }

    /// `F(tau)` over the profile `y`: windows start at 0, step, 2 step, ... below `y.count - tau`.
    static func fluctuation(_ y: [Double], tau: Int) -> Double {
        let n = y.count
        guard n > tau else { return 0 }
        let step = max(tau / 50, 1)
        var total = 0.0
        y.withUnsafeBufferPointer { p in
            var k = 0
            while k < n - tau {
                total += residual(p, k, k + tau)
                k += step
            }
        }
        return (total / (Double(n - tau) / Double(step))).squareRoot()
    }

    /// The reciprocal of the mean DFA exponent over neighbouring window lengths; 0 when fewer than two lengths fit,
    /// when any `F` is zero, or when the mean exponent is zero.
    static func danceability(fluctuations f: [Double], taus: [Int]) -> Double {
        guard f.count >= 2 else { return 0 }
        var sum = 0.0
        for i in 0..<(f.count - 1) {
            guard f[i] > 0, f[i + 1] > 0 else { return 0 }
            sum += Foundation.log10(f[i + 1] / f[i]) / Foundation.log10(Double(taus[i + 1] + 3) / Double(taus[i] + 3))
        }
        let alpha = sum / Double(f.count - 1)
        return alpha != 0 && alpha.isFinite ? 1 / alpha : 0
    }
}

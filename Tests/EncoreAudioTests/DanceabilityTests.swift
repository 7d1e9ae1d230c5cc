import Foundation
import Testing
@testable import EncoreAudio

@Suite("Danceability")
struct DanceabilityTests {
    /// A deterministic uniform generator (splitmix64), so the noise is the same on every run.
    struct SplitMix {
        var state: UInt64
        mutating func next() -> Float {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            z ^= z >> 31
            return Float(Double(z >> 11) / Double(1 << 53)) * 2 - 1
        }
    }

    static func run(_ x: [Float], rate: Int, block: Int = 1_000) throws -> Double {
        var d = try Danceability(sampleRate: rate)
        var i = 0
        while i < x.count {
            let end = min(x.count, i + block)
            x[i..<end].withUnsafeBufferPointer { d.add($0) }
            i = end
        }
        return d.finish()
    }

    static func noise(seconds: Int, rate: Int, seed: UInt64) -> [Float] {
        var g = SplitMix(state: seed)
        return (0..<(seconds * rate)).map { _ in 0.5 * g.next() }
    }

    /// 20 ms noise bursts every 0.5 s (120 BPM) over silence.
    static func clicks(seconds: Int, rate: Int) -> [Float] {
        var g = SplitMix(state: 7)
        let period = rate / 2, burst = rate / 50
        return (0..<(seconds * rate)).map { i in i % period < burst ? 0.8 * g.next() : 0 }
    }

    @Test("the window lengths are Essentia's: 310 ms times 1.1 up to 8800 ms, in 10 ms frames")
    func taus() throws {
        let d = try Danceability(sampleRate: 44_100)
        #expect(d.frameSize == 441)
        // 310 * 1.1^k <= 8800 for k = 0...35; floor(t / 10): 31, 34.1, 37.51, 41.261...
        #expect(d.taus.count == 36)
        #expect(Array(d.taus.prefix(4)) == [31, 34, 37, 41])
        #expect(d.taus.last == 871)  // 310 * 1.1^35 = 8711.7 ms
    }

    @Test("DFA by hand on a tiny series: profile, residuals, F and the exponent")
    func byHand() {
        // s = [1, 2, 3, 6], mean 3: deviations [-2, -1, 0, 3], running sum [-2, -3, -3, 0].
        #expect(Danceability.profile([1, 2, 3, 6]) == [-2, -3, -3, 0])
        // Window [1, 3, 2]: x mean 1, y mean 2, Sxx = 2, Sxy = 1, Syy = 2: (2 - 1/2) / 3 = 0.5.
        let y: [Double] = [1, 3, 2, 5, 4]
        y.withUnsafeBufferPointer { p in
            #expect(abs(Danceability.residual(p, 0, 3) - 0.5) < 1e-12)
            // Window [3, 2, 5]: y mean 10/3, Sxy = 2, Syy = 14/3: (14/3 - 2) / 3 = 8/9.
            #expect(abs(Danceability.residual(p, 1, 4) - 8.0 / 9) < 1e-12)
        }
        // tau 3 over 5 values, step 1: windows at 0 and 1; F = sqrt((1/2 + 8/9) / 2) = 5/6.
        #expect(abs(Danceability.fluctuation(y, tau: 3) - 5.0 / 6) < 1e-12)
        // F doubling from tau 7 to 17 ((17+3)/(7+3) = 2) is exponent 1; sqrt(2) from 17 to 37 is 0.5;
        // the mean 0.75 gives 1 / 0.75.
        #expect(abs(Danceability.danceability(fluctuations: [1, 2], taus: [7, 17]) - 1) < 1e-12)
        let three = Danceability.danceability(fluctuations: [1, 2, 2 * 2.0.squareRoot()], taus: [7, 17, 37])
        #expect(abs(three - 4.0 / 3) < 1e-12)
        #expect(Danceability.danceability(fluctuations: [1, 0], taus: [7, 17]) == 0)
    }

    @Test("white noise: uncorrelated fluctuations, DFA exponent near 0.5 (0.4 to 0.67 on 30 s), danceability near 2")
    func whiteNoise() throws {
        for seed: UInt64 in [1, 2, 3] {
            let v = try Self.run(Self.noise(seconds: 30, rate: 22_050, seed: seed), rate: 22_050)
            #expect(v > 1.5 && v < 2.5, "seed \(seed): \(v)")
        }
    }

    @Test("a steady 120 BPM click track is more danceable than white noise (bounded profile above 0.5 s)")
    func clickTrack() throws {
        let click = try Self.run(Self.clicks(seconds: 30, rate: 22_050), rate: 22_050)
        let noise = try Self.run(Self.noise(seconds: 30, rate: 22_050, seed: 1), rate: 22_050)
        // Above the 0.5 s period the click profile is bounded (exponent near 0), so the mean exponent falls well
        // below white noise's 0.5: danceability above 3 (1 / 0.33), where noise stays near 2.
        #expect(click > 3 && click > noise + 1, "click \(click), noise \(noise)")
    }

    @Test("a constant tone and silence have no fluctuation: 0")
    func steady() throws {
        let rate = 44_100
        // 1 kHz at 44.1 kHz: every 10 ms frame holds exactly 10 periods, so every frame has the same deviation.
        let tone = (0..<(10 * rate)).map { Float(0.5 * Foundation.sin(2 * Double.pi * 1_000 * Double($0) / Double(rate))) }
        #expect(try Self.run(tone, rate: rate) == 0)
        #expect(try Self.run([Float](repeating: 0, count: 5 * rate), rate: rate) == 0)
    }

    @Test("too short for two window lengths: 0; block size does not change the value")
    func shortAndBlocks() throws {
        #expect(try Self.run(Self.noise(seconds: 0, rate: 22_050, seed: 3) + [Float](repeating: 0.1, count: 7_000), rate: 22_050) == 0)
        let x = Self.noise(seconds: 5, rate: 22_050, seed: 4)
        let a = try Self.run(x, rate: 22_050, block: 37)
        let b = try Self.run(x, rate: 22_050, block: 100_000)
        #expect(a == b)
        #expect(a > 0)
    }

    @Test("bad parameters are refused with the numbers")
    func badParameters() {
        #expect(throws: AudioError.invalidParameter(name: "sample rate", reason: "50 Hz is not in 100...768000")) {
            try Danceability(sampleRate: 50)
        }
        #expect(throws: AudioError.invalidParameter(
            name: "tau", reason: "minTau 900.0 ms must be at least 20 ms and at most maxTau 800.0 ms")) {
            try Danceability(sampleRate: 22_050, minTauMs: 900, maxTauMs: 800)
        }
    }
}

import Foundation
import Testing
@testable import EncoreAudio

/// EBU Tech 3341 (loudness) and Tech 3342 (loudness range) test signals, generated here: 1 kHz sines whose peak
/// level is given in dBFS, stereo, 48 kHz. They are the reference cases libebur128's own tests use.
@Suite("LoudnessMeter")
struct LoudnessTests {
    static let rate = 48_000

    /// A stereo 1 kHz sine, `seconds` long at `dbfs` peak, continuing the phase from `start` frames.
    static func sine(dbfs: Double, seconds: Double, start: Int = 0) -> [Float] {
        let n = Int(seconds * Double(rate))
        let a = Foundation.pow(10, dbfs / 20)
        var out = [Float](repeating: 0, count: 2 * n)
        for i in 0..<n {
            let v = Float(a * Foundation.sin(2 * Double.pi * 1_000 * Double(start + i) / Double(rate)))
            out[2 * i] = v
            out[2 * i + 1] = v
        }
        return out
    }

    /// Measures segments of (dBFS, seconds), fed in blocks of 4096 frames.
    static func measure(_ segments: [(Double, Double)], range: Bool = false) throws -> LoudnessMeter {
        let meter = try LoudnessMeter(sampleRate: rate, channels: 2, loudnessRange: range)
        var frames = 0
        for (level, seconds) in segments {
            let x = sine(dbfs: level, seconds: seconds, start: frames)
            frames += x.count / 2
            var i = 0
            while i < x.count {
                let end = min(x.count, i + 2 * 4_096)
                try x[i..<end].withUnsafeBufferPointer { try meter.add($0) }
                i = end
            }
        }
        return meter
    }

    @Test("Tech 3341 case 1: stereo sine at -23 dBFS for 20 s reads -23.0 LUFS")
    func case1() throws {
        let l = try #require(try Self.measure([(-23, 20)]).integratedLoudness())
        #expect(abs(l - -23) <= 0.1)
    }

    @Test("Tech 3341 case 2: stereo sine at -33 dBFS for 20 s reads -33.0 LUFS")
    func case2() throws {
        let l = try #require(try Self.measure([(-33, 20)]).integratedLoudness())
        #expect(abs(l - -33) <= 0.1)
    }

    @Test("Tech 3341 case 3: -36, -23, -36 dBFS (10, 60, 10 s): the relative gate drops the quiet parts, -23.0 LUFS")
    func case3() throws {
        let l = try #require(try Self.measure([(-36, 10), (-23, 60), (-36, 10)]).integratedLoudness())
        #expect(abs(l - -23) <= 0.1)
    }

    @Test("Tech 3341 case 4: -72, -36, -23, -36, -72 dBFS (10, 10, 60, 10, 10 s): both gates, -23.0 LUFS")
    func case4() throws {
        let l = try #require(try Self.measure([(-72, 10), (-36, 10), (-23, 60), (-36, 10), (-72, 10)]).integratedLoudness())
        #expect(abs(l - -23) <= 0.1)
    }

    @Test("Tech 3341 case 5: -26, -20, -26 dBFS (20, 20.1, 20 s) reads -23.0 LUFS")
    func case5() throws {
        let l = try #require(try Self.measure([(-26, 20), (-20, 20.1), (-26, 20)]).integratedLoudness())
        #expect(abs(l - -23) <= 0.1)
    }

    @Test("Tech 3342 case 1: -20 then -30 dBFS (20 s each) has a loudness range of 10 LU (within 1 LU)")
    func range1() throws {
        let meter = try Self.measure([(-20, 20), (-30, 20)], range: true)
        let lra = try #require(meter.loudnessRange())
        #expect(abs(lra - 10) <= 1)
    }

    @Test("a meter made without loudness range reports none")
    func noRange() throws {
        #expect(try Self.measure([(-20, 4)]).loudnessRange() == nil)
    }

    @Test("silence is too quiet to measure: nil, not -inf and not a crash")
    func silence() throws {
        let meter = try LoudnessMeter(sampleRate: 22_050, channels: 1)
        try meter.add([Float](repeating: 0, count: 22_050 * 5))
        #expect(meter.integratedLoudness() == nil)
        let empty = try LoudnessMeter(sampleRate: 22_050, channels: 1)
        #expect(empty.integratedLoudness() == nil)
    }

    @Test("a mono sine reads 3 LU below the same sine on two channels (one front channel counted)")
    func mono() throws {
        let stereo = Self.sine(dbfs: -20, seconds: 5)
        let meter = try LoudnessMeter(sampleRate: Self.rate, channels: 1)
        try meter.add(stride(from: 0, to: stereo.count, by: 2).map { stereo[$0] })
        let l = try #require(meter.integratedLoudness())
        #expect(abs(l - (-20 - 10 * Foundation.log10(2))) <= 0.1)
    }

    @Test("bad parameters and ragged blocks are refused with the numbers")
    func badInput() throws {
        #expect(throws: AudioError.invalidParameter(name: "channels", reason: "0 is not in 1...64")) {
            try LoudnessMeter(sampleRate: 44_100, channels: 0)
        }
        #expect(throws: AudioError.invalidParameter(name: "sample rate", reason: "0 Hz is not in 16...2822400")) {
            try LoudnessMeter(sampleRate: 0, channels: 2)
        }
        let meter = try LoudnessMeter(sampleRate: 44_100, channels: 2)
        #expect(throws: AudioError.invalidParameter(name: "samples", reason: "3 is not a multiple of 2 channels")) {
            try meter.add([0, 0, 0])
        }
    }
}

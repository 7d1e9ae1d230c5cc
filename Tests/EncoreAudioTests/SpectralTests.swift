import EncoreCore
import Foundation
import Testing
@testable import EncoreAudio

/// A sine of `frequency` Hz and `amplitude` at `sampleRate`, `count` samples.
func sine(_ frequency: Double, amplitude: Double = 1, sampleRate: Double = 22_050, count: Int, phase: Double = 0) -> [Float] {
    (0..<count).map { Float(amplitude * sin(2 * Double.pi * frequency * Double($0) / sampleRate + phase)) }
}

/// Deterministic noise in -1...1.
func noise(count: Int, seed: UInt64 = 7) -> [Float] {
    var rng = SplitMix64(seed: seed)
    return (0..<count).map { _ in Float(rng.nextDouble() * 2 - 1) }
}

@Suite("STFT")
struct STFTTests {
    let stft: STFT
    init() throws { stft = try STFT() }

    @Test("centered frame counts are librosa's 1 + n // hop", arguments: [1, 511, 512, 513, 2047, 2048, 22_050, 100_000])
    func frameCounts(n: Int) {
        let spec = stft.powerSpectrogram([Float](repeating: 0.1, count: n))
        #expect(spec.rows == 1 + n / 512)
        #expect(spec.cols == 1025)
        #expect(stft.frameCount(samples: n) == 1 + n / 512)
    }

    @Test("a sine on bin k has power (A N / 4)^2 at k and (A N / 8)^2 at k ± 1 (periodic Hann), nothing elsewhere")
    func sineBin() {
        let k = 100, amplitude = 0.5, n = 2048.0
        let x = sine(Double(k) * 22_050 / n, amplitude: amplitude, count: 22_050)
        let spec = stft.powerSpectrogram(x)
        let t = 20  // a frame well inside the signal
        let center = pow(amplitude * n / 4, 2), side = pow(amplitude * n / 8, 2)
        #expect(abs(Double(spec[t, k]) - center) / center < 1e-4)
        #expect(abs(Double(spec[t, k - 1]) - side) / side < 1e-3)
        #expect(abs(Double(spec[t, k + 1]) - side) / side < 1e-3)
        for bin in [0, 50, k - 3, k + 3, 500, 1024] { #expect(Double(spec[t, bin]) < center * 1e-8) }
    }

    @Test("Parseval: a frame's windowed energy equals its one-sided spectrum's energy over N")
    func parseval() {
        let x = noise(count: 10_000)
        let spec = stft.powerSpectrogram(x)
        let w = stft.window
        for t in [4, 10, 15] {
            let start = t * 512 - 1024
            var energy = 0.0
            for i in 0..<2048 { let v = Double(x[start + i] * w[i]); energy += v * v }
            var spectral = Double(spec[t, 0]) + Double(spec[t, 1024])
            for k in 1..<1024 { spectral += 2 * Double(spec[t, k]) }
            #expect(abs(spectral / 2048 - energy) / energy < 1e-4)
        }
    }

    @Test("a click at a frame's center has a flat spectrum of power 1; one hop later, of power w[512]^2 = 0.25")
    func click() {
        var x = [Float](repeating: 0, count: 20_000)
        x[10 * 512] = 1
        let spec = stft.powerSpectrogram(x)
        for k in stride(from: 0, through: 1024, by: 97) {
            #expect(abs(spec[10, k] - 1) < 1e-5)
            #expect(abs(spec[11, k] - 0.25) < 1e-5)
            #expect(abs(spec[9, k] - 0.25) < 1e-5)
        }
        // Frames whose window does not reach the click are silent.
        #expect(spec[5, 10] == 0)
        #expect(spec[15, 10] == 0)
    }

    @Test("the first frame is zero-padded on the left (not reflected): a signal's first half-window only")
    func zeroPadding() {
        let x = [Float](repeating: 1, count: 8_192)
        let spec = stft.powerSpectrogram(x)
        // Frame 0 sees the window's second half over ones: DC = sum of w[1024...] = N/4.
        let w = stft.window
        let dc = w[1024...].reduce(0, +)
        #expect(abs(spec[0, 0] - dc * dc) / (dc * dc) < 1e-5)
    }

    @Test("a linear sweep's peak bin follows its instantaneous frequency")
    func sweep() {
        let sr = 22_050.0, count = 5 * 22_050, f0 = 200.0, f1 = 8_000.0
        let rate = (f1 - f0) / (Double(count) / sr)
        let x = (0..<count).map { i -> Float in
            let t = Double(i) / sr
            return Float(sin(2 * Double.pi * (f0 * t + rate * t * t / 2)))
        }
        let spec = stft.powerSpectrogram(x)
        for t in stride(from: 4, to: spec.rows - 4, by: 10) {
            let row = spec.row(t)
            let peak = row.indices.max { row[$0] < row[$1] }!
            let expected = (f0 + rate * Double(t * 512) / sr) * 2048 / sr
            #expect(abs(Double(peak) - expected) <= 1.5, "frame \(t)")
        }
    }

    @Test("streaming in uneven blocks gives the same frames as the whole signal")
    func streaming() {
        let x = noise(count: 30_001, seed: 3)
        let whole = stft.powerSpectrogram(x)
        var stream = SpectrogramStream(stft: stft, batchFrames: 7)
        var rows: [Float] = []
        var start = 0, size = 1
        x.withUnsafeBufferPointer { b in
            while start < x.count {
                let end = min(x.count, start + size)
                stream.append(UnsafeBufferPointer(rebasing: b[start..<end])) { p, _ in rows.append(contentsOf: p) }
                start = end
                size = size * 3 % 5_000 + 1
            }
        }
        stream.finish { p, _ in rows.append(contentsOf: p) }
        #expect(stream.framesEmitted == whole.rows)
        #expect(rows == whole.storage)
    }

    @Test("appendWhole reads the frames in place and gives those of append then finish, at any length",
          arguments: [1, 700, 1_024, 2_048, 2_049, 5_000])
    func appendWhole(n: Int) {
        let x = noise(count: n, seed: UInt64(n))
        var streamed = SpectrogramStream(stft: stft, batchFrames: 3), whole = SpectrogramStream(stft: stft, batchFrames: 5)
        var rowsStreamed: [Float] = [], rowsWhole: [Float] = []
        x.withUnsafeBufferPointer { p in
            streamed.append(p) { q, _ in rowsStreamed.append(contentsOf: q) }
            whole.appendWhole(p) { q, _ in rowsWhole.append(contentsOf: q) }
        }
        streamed.finish { q, _ in rowsStreamed.append(contentsOf: q) }
        #expect(rowsStreamed.count == stft.frameCount(samples: n) * stft.bins)
        #expect(rowsWhole == rowsStreamed)
        #expect(whole.framesEmitted == streamed.framesEmitted)
        #expect(whole.samplesSeen == n)
        // On a stream that already has samples it appends the rest and finishes.
        var started = SpectrogramStream(stft: stft)
        var rowsStarted: [Float] = []
        x.withUnsafeBufferPointer { p in
            started.append(UnsafeBufferPointer(rebasing: p[0..<(n / 2)])) { q, _ in rowsStarted.append(contentsOf: q) }
            started.appendWhole(UnsafeBufferPointer(rebasing: p[(n / 2)...])) { q, _ in rowsStarted.append(contentsOf: q) }
        }
        #expect(rowsStarted == rowsStreamed)
    }

    @Test("bad sizes are refused with the parameter named")
    func badSizes() {
        #expect(throws: AudioError.invalidParameter(name: "n_fft", reason: "2047 is not an even size in 4...1048576")) {
            try STFT(nFFT: 2047)
        }
        #expect(throws: AudioError.invalidParameter(name: "hop length", reason: "0 is not in 1...2048")) {
            try STFT(hopLength: 0)
        }
    }
}

@Suite("MelSpectrogram")
struct MelTests {
    @Test("the Slaney scale is linear to 1 kHz (15 mels) and logarithmic above; HTK is 2595 log10(1 + f / 700)")
    func scales() {
        #expect(abs(MelScale.slaney.mel(hz: 1_000) - 15) < 1e-12)
        #expect(abs(MelScale.slaney.mel(hz: 500) - 7.5) < 1e-12)
        #expect(abs(MelScale.slaney.mel(hz: 6_400) - 42) < 1e-9)  // 15 + 27 steps of log(6.4)/27
        #expect(abs(MelScale.htk.mel(hz: 700) - 2595 * log10(2)) < 1e-9)
        for f in [0.0, 123.0, 999.0, 1_000.0, 4_321.0, 11_025.0] {
            #expect(abs(MelScale.slaney.hz(mel: MelScale.slaney.mel(hz: f)) - f) < 1e-6)
            #expect(abs(MelScale.htk.hz(mel: MelScale.htk.mel(hz: f)) - f) < 1e-6)
        }
    }

    @Test("Slaney-normalized triangles have area 1 over Hz, peak 2 / (right - left), and tile 0 Hz to Nyquist")
    func filterShapes() throws {
        let bank = try MelFilterBank(sampleRate: 22_050, nFFT: 8_192, bands: 40)
        #expect(bank.edgesHz.count == 42)
        #expect(abs(bank.edgesHz[0]) < 1e-9)
        #expect(abs(bank.edgesHz[41] - 11_025) < 1e-6)
        let df = 22_050.0 / 8_192
        for b in [0, 10, 39] {
            let area = (0..<bank.bins).reduce(0.0) { $0 + Double(bank.weights[b * bank.bins + $1]) } * df
            #expect(abs(area - 1) < 0.03, "band \(b) area \(area)")
            let peak = bank.weights[(b * bank.bins)..<((b + 1) * bank.bins)].max()!
            #expect(Double(peak) <= 2 / (bank.edgesHz[b + 2] - bank.edgesHz[b]) * 1.0001)
        }
        let htk = try MelFilterBank(sampleRate: 22_050, bands: 40, scale: .htk, slaneyNorm: false)
        #expect(htk.weights.max()! <= 1.0001)
    }

    @Test("a sine's mel power is the bank times its spectrum, peaking in the band centered nearest it")
    func sineBand() throws {
        let mel = try MelSpectrogram(sampleRate: 22_050)
        for f in [300.0, 1_500.0, 5_000.0] {
            let x = sine(f, amplitude: 0.3, count: 22_050)
            let spec = mel.stft.powerSpectrogram(x)
            let m = mel.power(x)
            let t = 20
            // Brute force: sum over bins of weight x power.
            var expected = [Double](repeating: 0, count: 128)
            for b in 0..<128 { for k in 0..<1025 { expected[b] += Double(mel.filterBank.weights[b * 1025 + k]) * Double(spec[t, k]) } }
            for b in 0..<128 where expected[b] > 1e-3 { #expect(abs(Double(m[t, b]) - expected[b]) / expected[b] < 1e-4) }
            let row = m.row(t)
            let peak = row.indices.max { row[$0] < row[$1] }!
            let centers = mel.filterBank.edgesHz[1...128]
            let nearest = centers.indices.min { abs(centers[$0] - f) < abs(centers[$1] - f) }! - 1
            #expect(abs(peak - nearest) <= 1, "\(f) Hz: band \(peak), nearest center \(nearest)")
        }
    }

    @Test("each band's span holds exactly its nonzero weights; the banded product equals the dense sum over all bins",
          arguments: [(2048, 128), (256, 128), (8192, 40)])
    func bandedProduct(nFFT: Int, bands: Int) throws {
        let bank = try MelFilterBank(sampleRate: 22_050, nFFT: nFFT, bands: bands)
        let bins = bank.bins
        #expect(bank.spans.count == bands)
        for b in 0..<bands {
            for k in 0..<bins { #expect((bank.weights[b * bins + k] != 0) == bank.spans[b].contains(k), "band \(b) bin \(k)") }
        }
        // 256 points give bins 86 Hz apart, wider than the lowest triangles: some bands cover no bin at all.
        if nFFT == 256 { #expect(bank.spans.contains { $0.isEmpty }) }
        let frames = 5
        let power = noise(count: frames * bins, seed: 11).map { $0 * $0 * 100 }
        var out = [Float](repeating: .nan, count: frames * bands)
        power.withUnsafeBufferPointer { p in
            out.withUnsafeMutableBufferPointer { bank.apply(p.baseAddress!, frames: frames, into: $0.baseAddress!) }
        }
        for t in 0..<frames {
            for b in 0..<bands {
                var expected = 0.0
                for k in 0..<bins { expected += Double(bank.weights[b * bins + k]) * Double(power[t * bins + k]) }
                let got = Double(out[t * bands + b])
                if expected == 0 { #expect(got == 0, "frame \(t) band \(b)") }
                else { #expect(abs(got - expected) / expected < 1e-5, "frame \(t) band \(b): \(got) vs \(expected)") }
            }
        }
    }

    @Test("power_to_db's logarithm is within 2e-5 dB of 10 log10 from 1e-12 to 1e6, whatever a value's position")
    func powerToDBAccuracy() {
        // 1 003 values: not a multiple of the 8 lanes, so the tail is covered too.
        let values = (0..<1_003).map { Float(pow(10, -12 + 18 * Double($0) / 1_002)) }
        let db = PowerToDB(topDB: nil)(values)
        for (x, d) in zip(values, db) {
            let expected = 10 * log10(max(Double(Float(1e-10)), Double(x)))
            #expect(abs(Double(d) - expected) < 2e-5, "\(x): \(d) dB, expected \(expected)")
        }
        #expect(Array(PowerToDB(topDB: nil)(Array(values[3...]))) == Array(db[3...]))
        let referenced = PowerToDB(reference: 10, topDB: nil)(values)
        for i in values.indices { #expect(abs(referenced[i] - (db[i] - 10)) < 2e-5) }
        var copy = values
        let peak = copy.withUnsafeMutableBufferPointer { PowerToDB().convert($0) }
        #expect(peak == copy.max()!)
        #expect(abs(Double(peak) - 60) < 2e-5)
        // An amin below the normal floats: subnormal powers are converted by log10f itself.
        let tiny = PowerToDB(amin: 0, topDB: nil)([0, 1e-40, 1])
        #expect(tiny[0] == -.infinity)
        #expect(abs(Double(tiny[1]) - 10 * log10(Double(Float(1e-40)))) < 1e-3)
        #expect(tiny[2] == 0)
    }

    @Test("power_to_db: 10 log10(max(1e-10, S)), clipped 80 dB below the whole array's maximum")
    func powerToDB() {
        let db = PowerToDB()([1, 0.01, 0, 100, 1e-9])
        #expect(db[0] == 0)
        #expect(abs(db[1] + 20) < 1e-5)
        #expect(abs(db[3] - 20) < 1e-5)
        #expect(db[2] == -60)  // 1e-10 is -100 dB, raised to 20 - 80
        #expect(db[4] == -60)
        let unclipped = PowerToDB(topDB: nil)([0])
        #expect(unclipped[0] == -100)
    }

    @Test("the log-mel of a signal is the dB of its mel power, with frame count 1 + n // 512")
    func logMel() throws {
        let mel = try MelSpectrogram(sampleRate: 22_050)
        let x = sine(440, count: 10_000)
        let power = mel.power(x), logMel = mel.logMel(x)
        #expect(logMel.rows == 1 + 10_000 / 512)
        #expect(logMel.cols == 128)
        let peak = power.storage.max()!
        for i in stride(from: 0, to: power.storage.count, by: 37) {
            let expected = max(10 * log10(max(1e-10, Double(power.storage[i]))), 10 * log10(Double(peak)) - 80)
            #expect(abs(Double(logMel.storage[i]) - expected) < 1e-3)
        }
    }
}

@Suite("MFCC and chroma")
struct MFCCChromaTests {
    @Test("the DCT-II basis is orthonormal")
    func orthonormal() throws {
        let mfcc = try MFCC(coefficients: 20, bands: 128)
        for i in 0..<20 {
            for j in 0..<20 {
                var dot = 0.0
                for n in 0..<128 { dot += Double(mfcc.basis[i * 128 + n]) * Double(mfcc.basis[j * 128 + n]) }
                #expect(abs(dot - (i == j ? 1 : 0)) < 1e-5)
            }
        }
    }

    @Test("a constant log-mel frame c has coefficient 0 = c sqrt(128) and no others; a cosine lands on its index")
    func constantFrame() throws {
        let mfcc = try MFCC()
        let c: Float = -12.5
        var frames = [Float](repeating: c, count: 128)
        frames += (0..<128).map { Float(cos(Double.pi * 3 * (2 * Double($0) + 1) / 256)) }
        let out = try mfcc(try Matrix(rows: 2, cols: 128, storage: frames))
        #expect(abs(out[0, 0] - c * Float(128).squareRoot()) < 1e-3)
        for k in 1..<20 { #expect(abs(out[0, k]) < 1e-3) }
        #expect(abs(out[1, 3] - Float(64).squareRoot()) < 1e-3)  // sqrt(N / 2)
        for k in 0..<20 where k != 3 { #expect(abs(out[1, k]) < 1e-3) }
    }

    @Test("a pure tone's chroma peaks at its pitch class (C = 0, A = 9) with maximum 1", arguments: [
        (440.0, 9), (261.63, 0), (523.25, 0), (329.63, 4), (196.0, 7), (466.16, 10),
    ])
    func pitchClass(frequency: Double, expected: Int) throws {
        let chroma = try Chroma(sampleRate: 22_050)
        let stft = try STFT()
        let c = try chroma(stft.powerSpectrogram(sine(frequency, count: 22_050)))
        let row = c.row(20)
        let peak = row.indices.max { row[$0] < row[$1] }!
        #expect(peak == expected)
        #expect(row[peak] == 1)
    }

    @Test("chroma of silence stays zero")
    func silentChroma() throws {
        let c = try Chroma(sampleRate: 22_050)(try STFT().powerSpectrogram([Float](repeating: 0, count: 4_096)))
        #expect(c.storage.allSatisfy { $0 == 0 })
    }
}

@Suite("Spectral shape and zero crossings")
struct ShapeTests {
    @Test("a sine on bin k: centroid at bin k, rolloff at bin k + 1 (85% of N/8 + N/4 + N/8), flatness near 0")
    func sineShape() throws {
        let stft = try STFT()
        let k = 200
        let spec = stft.powerSpectrogram(sine(Double(k) * 22_050 / 2048, count: 22_050))
        let shape = SpectralShape(stft: stft, sampleRate: 22_050)
        let m = spec.storage.withUnsafeBufferPointer { shape.measure($0.baseAddress! + 20 * 1025) }
        let df = Float(22_050.0 / 2048)
        #expect(abs(m.centroidHz - Float(k) * df) < 0.5)
        #expect(m.rolloffHz == Float(k + 1) * df)
        #expect(m.flatness < 1e-3)
    }

    @Test("white noise has flatness near exp(-Euler's gamma) = 0.561 and centroid near Nyquist / 2")
    func noiseShape() throws {
        let stft = try STFT()
        let spec = stft.powerSpectrogram(noise(count: 50_000))
        let shape = SpectralShape(stft: stft, sampleRate: 22_050)
        var flat = 0.0, centroid = 0.0, rolloff = 0.0
        let frames = Array(5..<(spec.rows - 5))
        spec.storage.withUnsafeBufferPointer { p in
            for t in frames {
                let m = shape.measure(p.baseAddress! + t * 1025)
                flat += Double(m.flatness); centroid += Double(m.centroidHz); rolloff += Double(m.rolloffHz)
            }
        }
        let n = Double(frames.count)
        #expect(abs(flat / n - exp(-0.5772156649)) < 0.03)
        #expect(abs(centroid / n - 5_512.5) < 150)
        #expect(abs(rolloff / n - 0.85 * 11_025) < 200)
    }

    @Test("a sine crosses zero 2 f / sr times a sample; frames are 1 + n // hop")
    func zeroCrossings() {
        let f = 1_000.0
        let rates = ZeroCrossingStream.rates(sine(f, count: 22_050, phase: 0.1))
        #expect(rates.count == 1 + 22_050 / 512)
        for t in 4..<(rates.count - 4) { #expect(abs(Double(rates[t]) - 2 * f / 22_050) <= 1.5 / 2048) }
        // Edge-padded ends see only half a frame of crossings.
        #expect(abs(Double(rates[0]) - f / 22_050) <= 1.5 / 2048)
        // Values within 1e-10 of zero count as positive: no crossings.
        #expect(ZeroCrossingStream.rates([1e-11, -1e-11, 1e-11, -1e-11, 0.5]).allSatisfy { $0 == 0 })
    }
}

import EncoreCore
import EncoreTestSupport
import Foundation
import Testing
@testable import EncoreAudio

/// Writes interleaved `samples` to `path` in `format`.
func writeAudio(_ path: String, _ format: AudioFileFormat, sampleRate: Int, channels: Int, _ samples: [Float]) throws {
    var writer = try AudioFileWriter(path: path, format: format, sampleRate: sampleRate, channels: channels)
    try writer.write(samples)
    try writer.close()
}

/// A 32-bit float WAV (format 3) of interleaved `samples`, written byte by byte: the 16-bit files of
/// `AudioFileWriter` cannot hold a NaN, an infinity or a value past full scale.
func writeFloatWAV(_ path: String, sampleRate: Int, channels: Int, _ samples: [Float]) throws {
    var d = Data()
    func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { d.append(contentsOf: $0) } }
    func u16(_ v: UInt16) { withUnsafeBytes(of: v.littleEndian) { d.append(contentsOf: $0) } }
    let bytes = UInt32(samples.count * 4)
    d.append(contentsOf: Array("RIFF".utf8)); u32(36 + bytes); d.append(contentsOf: Array("WAVE".utf8))
    d.append(contentsOf: Array("fmt ".utf8)); u32(16); u16(3); u16(UInt16(channels)); u32(UInt32(sampleRate))
    u32(UInt32(sampleRate * channels * 4)); u16(UInt16(channels * 4)); u16(32)
    d.append(contentsOf: Array("data".utf8)); u32(bytes)
    for x in samples { u32(x.bitPattern) }
    try d.write(to: URL(fileURLWithPath: path))
}

/// Pearson correlation of two equal-length arrays.
func correlation(_ a: ArraySlice<Float>, _ b: ArraySlice<Float>) -> Double {
    let n = Double(a.count)
    let ma = a.reduce(0.0) { $0 + Double($1) } / n, mb = b.reduce(0.0) { $0 + Double($1) } / n
    var sab = 0.0, saa = 0.0, sbb = 0.0
    for (x, y) in zip(a, b) {
        let dx = Double(x) - ma, dy = Double(y) - mb
        sab += dx * dy; saa += dx * dx; sbb += dy * dy
    }
    return sab / (saa * sbb).squareRoot()
}

@Suite("AudioDecoder")
struct AudioDecoderTests {
    @Test("each format decodes to mono 22 050 Hz: the mean of the channels, of librosa's length", arguments: AudioFileFormat.allCases)
    func formats(format: AudioFileFormat) throws {
        let dir = makeTemporaryDirectory("decode")
        let rate = format == .opus ? 48_000 : 44_100
        let n = rate * 3 / 2 + 1
        // Left: a 440 Hz sine; right: a 660 Hz sine at half amplitude. Mono is their mean.
        var stereo = [Float](repeating: 0, count: 2 * n)
        for i in 0..<n {
            stereo[2 * i] = Float(0.5 * sin(2 * Double.pi * 440 * Double(i) / Double(rate)))
            stereo[2 * i + 1] = Float(0.25 * sin(2 * Double.pi * 660 * Double(i) / Double(rate)))
        }
        let path = dir + "/tone." + format.fileExtension
        try writeAudio(path, format, sampleRate: rate, channels: 2, stereo)
        var decoder = try AudioDecoder(path: path)
        #expect(decoder.nativeSampleRate == rate)
        #expect(decoder.channels == 2)
        var samples: [Float] = []
        while let block = try decoder.nextBlock() { samples += block }
        let frames = decoder.framesRead
        #expect(samples.count == Int((Double(frames) * 22_050 / Double(rate)).rounded(.up)))
        if format == .wav || format == .flac { #expect(frames == n) }
        let expected = (0..<samples.count).map { i -> Float in
            let t = Double(i) / 22_050
            return Float(0.25 * sin(2 * Double.pi * 440 * t) + 0.125 * sin(2 * Double.pi * 660 * t))
        }
        // Lossy codecs delay and color the signal: compare the best-aligned middle second.
        let middle = 4_000..<(samples.count - 4_000)
        var best = -1.0
        for lag in -1_200...1_200 where format != .wav && format != .flac || lag == 0 {
            let shifted = (middle.lowerBound + lag)..<(middle.upperBound + lag)
            guard shifted.lowerBound >= 0, shifted.upperBound <= samples.count else { continue }
            best = max(best, correlation(samples[shifted], expected[middle]))
            if best > 0.995 { break }
        }
        #expect(best > (format == .wav || format == .flac ? 0.9999 : 0.95), "\(format): correlation \(best)")
    }

    @Test("the resampled length is ceil(n * sr_out / sr_in)", arguments: [
        (44_100, 44_101, 22_050), (48_000, 1_000, 22_050), (8_000, 7_999, 22_050), (22_050, 12_345, 16_000),
    ])
    func resampledLength(native: Int, n: Int, target: Int) throws {
        let dir = makeTemporaryDirectory("decode")
        let path = dir + "/x.wav"
        try writeAudio(path, .wav, sampleRate: native, channels: 1, sine(300, amplitude: 0.5, sampleRate: Double(native), count: n))
        let y = try AudioDecoder.decode(path: path, options: DecodeOptions(sampleRate: target))
        #expect(y.count == Int((Double(n) * Double(target) / Double(native)).rounded(.up)))
    }

    @Test("at the native rate the samples are the file's; offset and duration cut the excerpt in frames")
    func excerpt() throws {
        let dir = makeTemporaryDirectory("decode")
        let path = dir + "/ramp.wav"
        let ramp = (0..<22_050).map { Float(($0 % 1_000) - 500) / 1_000 }
        try writeAudio(path, .wav, sampleRate: 22_050, channels: 1, ramp)
        let whole = try AudioDecoder.decode(path: path, options: DecodeOptions(sampleRate: nil))
        #expect(whole.count == ramp.count)
        #expect(zip(whole, ramp).allSatisfy { abs($0 - $1) <= 1.0 / 32_768 })
        let cut = try AudioDecoder.decode(path: path, options: DecodeOptions(sampleRate: nil, offset: 0.5, duration: 0.25))
        #expect(cut.count == 5_512)
        #expect(zip(cut, ramp[11_025...]).allSatisfy { abs($0 - $1) <= 1.0 / 32_768 })
        // An excerpt running past the end stops at the end.
        let tail = try AudioDecoder.decode(path: path, options: DecodeOptions(sampleRate: nil, offset: 0.9, duration: 10))
        #expect(tail.count == 22_050 - 19_845)
    }

    @Test("blocks are bounded: a long file is handed out in blocks of about blockFrames")
    func boundedBlocks() throws {
        let dir = makeTemporaryDirectory("decode")
        let path = dir + "/long.flac"
        try writeAudio(path, .flac, sampleRate: 44_100, channels: 1, noise(count: 44_100 * 20).map { $0 * 0.3 })
        var decoder = try AudioDecoder(path: path, options: DecodeOptions(blockFrames: 8_192))
        var total = 0, largest = 0, blocks = 0
        while let block = try decoder.nextBlock() { total += block.count; largest = max(largest, block.count); blocks += 1 }
        #expect(total == 22_050 * 20)
        #expect(largest <= 8_192)
        #expect(blocks > 50)
    }

    @Test("bad files get an error naming the file and the reason")
    func badFiles() throws {
        let dir = makeTemporaryDirectory("decode")
        func message(_ path: String, _ options: DecodeOptions = DecodeOptions()) -> String {
            do { _ = try AudioDecoder.decode(path: path, options: options); return "decoded" } catch { return error.description }
        }
        #expect(message(dir + "/missing.wav") == dir + "/missing.wav: cannot open: No such file or directory (errno 2)")
        _ = FileManager.default.createFile(atPath: dir + "/empty.ogg", contents: Data())
        #expect(message(dir + "/empty.ogg") == dir + "/empty.ogg: no audio: the file is 0 bytes")
        _ = FileManager.default.createFile(atPath: dir + "/text.mp3", contents: Data("artist\ttitle\nnot audio at all\n".utf8))
        #expect(message(dir + "/text.mp3").hasPrefix(dir + "/text.mp3: unsupported audio: "))
        try FileManager.default.createDirectory(atPath: dir + "/folder.flac", withIntermediateDirectories: true)
        #expect(message(dir + "/folder.flac") == dir + "/folder.flac: unsupported audio: not a regular file")
        try writeAudio(dir + "/silent.wav", .wav, sampleRate: 22_050, channels: 1, [Float](repeating: 0, count: 22_050))
        #expect(message(dir + "/silent.wav") == dir + "/silent.wav: no audio: the audio is silent (peak 0.0 below 0.0001)")
        try writeAudio(dir + "/short.wav", .wav, sampleRate: 22_050, channels: 1, sine(440, count: 22_050))
        #expect(message(dir + "/short.wav", DecodeOptions(offset: 2)) == dir + "/short.wav: no audio: offset 2.0 s is at or past the end (1.0 s)")
        // A WAV cut short: the header declares more frames than the file holds.
        let data = try Data(contentsOf: URL(fileURLWithPath: dir + "/short.wav"))
        try data.prefix(10_044).write(to: URL(fileURLWithPath: dir + "/cut.wav"))
        #expect(message(dir + "/cut.wav") == dir + "/cut.wav: corrupt audio: truncated: the data chunk declares 44100 bytes but the file holds 10000")
        #expect(throws: AudioError.invalidParameter(name: "duration", reason: "-1.0 s is not a positive number of seconds")) {
            _ = try AudioDecoder(path: dir + "/short.wav", options: DecodeOptions(duration: -1))
        }
    }

    @Test("mono is the mean of 1, 2 or 3 channels; the peak is the largest magnitude; a NaN or infinity is corrupt")
    func floatSamples() throws {
        let dir = makeTemporaryDirectory("decode")
        let frames = 1_000, native = DecodeOptions(sampleRate: nil, blockFrames: 256)
        func message(_ path: String) -> String {
            do { _ = try AudioDecoder.decode(path: path, options: native); return "decoded" } catch { return error.description }
        }
        for channels in 1...3 {
            let values: [Float] = [0.3, -0.6, 0.05]
            var x = [Float](repeating: 0, count: channels * frames)
            for i in 0..<frames { for c in 0..<channels { x[i * channels + c] = values[c] + Float(i) / 10_000 } }
            try writeFloatWAV(dir + "/c\(channels).wav", sampleRate: 22_050, channels: channels, x)
            let y = try AudioDecoder.decode(path: dir + "/c\(channels).wav", options: native)
            #expect(y.count == frames)
            let mean = values[0..<channels].reduce(0, +) / Float(channels)
            for i in stride(from: 0, to: frames, by: 7) { #expect(abs(y[i] - (mean + Float(i) / 10_000)) < 1e-6) }
        }
        // The loudest sample is negative: its magnitude counts.
        var quiet = [Float](repeating: 0, count: frames)
        quiet[600] = -2e-4
        try writeFloatWAV(dir + "/negative.wav", sampleRate: 22_050, channels: 1, quiet)
        #expect(message(dir + "/negative.wav") == "decoded")
        quiet[600] = -5e-5
        try writeFloatWAV(dir + "/quiet.wav", sampleRate: 22_050, channels: 1, quiet)
        #expect(message(dir + "/quiet.wav") == dir + "/quiet.wav: no audio: the audio is silent (peak 5e-05 below 0.0001)")
        // One bad value in the third block of 256 frames (frames 512..<768; 768 frames read is 0.035 s).
        for bad in [Float.nan, .infinity, -.infinity] {
            var stereo = [Float](repeating: 0.1, count: 2 * frames)
            stereo[2 * 700 + 1] = bad
            try writeFloatWAV(dir + "/bad.wav", sampleRate: 22_050, channels: 2, stereo)
            #expect(message(dir + "/bad.wav") == dir + "/bad.wav: corrupt audio: non-finite sample values near 0.035 s", "\(bad)")
        }
    }

    @Test("fuzz: truncated and bit-flipped files of every format decode or fail with an AudioError, never crash")
    func fuzz() throws {
        let dir = makeTemporaryDirectory("fuzz")
        var rng = SplitMix64(seed: 12)
        var outcomes: [String: Int] = [:]
        for format in AudioFileFormat.allCases {
            let rate = format == .opus ? 48_000 : 22_050
            let path = dir + "/seed." + format.fileExtension
            try writeAudio(path, format, sampleRate: rate, channels: 2,
                           (0..<(rate * 2 / 5)).flatMap { i in [Float(0.4 * sin(Double(i) * 0.05)), Float(0.3 * sin(Double(i) * 0.031))] })
            let original = try Data(contentsOf: URL(fileURLWithPath: path))
            for round in 0..<24 {
                var bytes = [UInt8](original)
                if round % 3 == 0 {
                    bytes = Array(bytes.prefix(Int(rng.next() % UInt64(bytes.count))))
                } else {
                    for _ in 0..<(1 + round) {
                        let i = Int(rng.next() % UInt64(bytes.count))
                        bytes[i] ^= UInt8(1 << (rng.next() % 8))
                    }
                    if round % 3 == 2 { bytes = Array(bytes.prefix(bytes.count * 2 / 3)) }
                }
                let mutated = dir + "/m\(round)." + format.fileExtension
                try Data(bytes).write(to: URL(fileURLWithPath: mutated))
                do throws(AudioError) {
                    let y = try AudioDecoder.decode(path: mutated)
                    let finite = y.allSatisfy { $0.isFinite }
                    #expect(finite)
                    outcomes["decoded", default: 0] += 1
                } catch {
                    #expect(error.description.hasPrefix(mutated + ": "), "\(error)")
                    outcomes["refused", default: 0] += 1
                }
            }
        }
        #expect(outcomes.values.reduce(0, +) == 5 * 24)
        #expect(outcomes["refused", default: 0] > 0)
    }
}

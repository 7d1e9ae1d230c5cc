import EncoreTestSupport
import Foundation
import Testing
@testable import EncoreAudio
@testable import EncoreCore
@testable import EncoreSynth

/// One row of `audio_truth.tsv`.
struct TruthRow {
    var track: String
    var tempo: Double
    var key: Int
    var mode: Int
    var instruments: String

    /// The rows of the file at `path` (header checked).
    static func read(_ path: String) throws -> [TruthRow] {
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map(String.init)
        #expect(lines.first == "track\ttempo\tkey\tmode\tinstruments")
        return try lines.dropFirst().map { line in
            let f = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            try #require(f.count == 5, "\(line)")
            return TruthRow(track: f[0], tempo: try #require(Double(f[1])), key: try #require(Int(f[2])),
                            mode: try #require(Int(f[3])), instruments: f[4])
        }
    }
}

@Suite("Rendered world against its truth")
struct RenderedTruthTests {
    static let noteNames = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"]

    /// How an estimated key relates to the true one.
    enum KeyOutcome: Equatable { case exact, relative, fifth, other }

    /// `exact` for the same tonic and mode; `relative` for the relative major or minor (same pitch classes: A minor
    /// for C major, E-flat major for C minor), the usual confusion of profile matching; `fifth` for the same mode a
    /// fifth up or down (the confusion overtones cause: a note's third harmonic sounds a fifth above it).
    static func keyOutcome(key: Int, mode: Int, trueKey: Int, trueMode: Int) -> KeyOutcome {
        if key == trueKey && mode == trueMode { return .exact }
        if trueMode == 1 && mode == 0 && key == (trueKey + 9) % 12 { return .relative }
        if trueMode == 0 && mode == 1 && key == (trueKey + 3) % 12 { return .relative }
        if mode == trueMode && (key == (trueKey + 7) % 12 || key == (trueKey + 5) % 12) { return .fifth }
        return .other
    }

    @Test("the key outcome's relative cases, by hand")
    func relativeKeys() {
        #expect(Self.keyOutcome(key: 9, mode: 0, trueKey: 0, trueMode: 1) == .relative)  // A minor for C major
        #expect(Self.keyOutcome(key: 3, mode: 1, trueKey: 0, trueMode: 0) == .relative)  // E-flat major for C minor
        #expect(Self.keyOutcome(key: 1, mode: 1, trueKey: 10, trueMode: 0) == .relative)  // D-flat major for B-flat minor
        #expect(Self.keyOutcome(key: 9, mode: 1, trueKey: 0, trueMode: 1) == .other)
        #expect(Self.keyOutcome(key: 7, mode: 1, trueKey: 0, trueMode: 1) == .fifth)  // G major for C major
        #expect(Self.keyOutcome(key: 3, mode: 0, trueKey: 10, trueMode: 0) == .fifth)  // E-flat minor for B-flat minor
        #expect(Self.keyOutcome(key: 7, mode: 0, trueKey: 0, trueMode: 1) == .other)
        #expect(Self.keyOutcome(key: 4, mode: 0, trueKey: 4, trueMode: 0) == .exact)
    }

    /// Renders 16 tracks of the tiny world (12 s each) with `generate --audio`'s code path, analyzes the files with
    /// the analyzer `analyze` uses, and checks tempo, key and mode against `audio_truth.tsv`.
    ///
    /// Tempo: within 4% of the MIDI tempo (quarter notes per minute). A doubling or halving is counted apart and
    /// allowed on a few tracks: librosa's estimator (a prior centered on 120 BPM) reads a 60-80 BPM piece whose
    /// hi-hats play eighths at the eighth-note rate, and a 180 BPM piece at half of it, as listeners tapping along
    /// also do; any other ratio is a miss. Key: the tonic and mode exactly right on at least 85% of the tracks (the
    /// issue's bar); a relative major/minor and a fifth up or down in the same mode are counted apart and are the only
    /// other outcomes allowed.
    @Test("tempo, key and mode of rendered tracks against audio_truth.tsv")
    func descriptorsAgainstTruth() throws {
        let world = try MusicComposerTests.world()
        let dir = makeTemporaryDirectory("rendered-truth")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let tracks = 16
        try world.writeAudio(to: dir, options: AudibleWorldOptions(tracks: tracks, seconds: 12, threads: 2))
        let truth = try TruthRow.read(dir + "/audio_truth.tsv")
        try #require(truth.count == tracks)

        var tempoExact = 0, tempoOctave = 0, keyExact = 0, keyRelative = 0, keyFifth = 0
        var report: [String] = []
        for row in truth {
            let d = try AudioAnalyzer.analyze(path: dir + "/audio/\(row.track).flac").descriptors
            let ratio = d.tempoBPM / row.tempo
            let tempoNote: String
            if abs(ratio - 1) <= 0.04 {
                tempoExact += 1; tempoNote = "ok"
            } else if abs(ratio - 2) <= 0.08 || abs(ratio - 0.5) <= 0.02 {
                tempoOctave += 1; tempoNote = "octave"
            } else {
                tempoNote = "MISS"
            }
            let outcome = Self.keyOutcome(key: d.key, mode: d.mode, trueKey: row.key, trueMode: row.mode)
            switch outcome {
            case .exact: keyExact += 1
            case .relative: keyRelative += 1
            case .fifth: keyFifth += 1
            case .other: break
            }
            let name = { (k: Int, m: Int) in Self.noteNames[k] + (m == 1 ? "" : "m") }
            report.append("\(row.track): tempo \(String(format: "%.1f", row.tempo)) read \(String(format: "%.1f", d.tempoBPM)) "
                + "\(tempoNote); key \(name(row.key, row.mode)) read \(name(d.key, d.mode)) \(outcome) "
                + "(\(row.instruments))")
        }
        let summary = "tempo: \(tempoExact) exact, \(tempoOctave) doubled or halved; key: \(keyExact) exact, "
            + "\(keyRelative) relative, \(keyFifth) a fifth off\n" + report.joined(separator: "\n")
        // Every track's tempo is right or an octave off, and most are exactly right.
        #expect(tempoExact + tempoOctave == tracks, "\(summary)")
        #expect(tempoExact >= tracks * 3 / 4, "\(summary)")
        // The key and mode exactly on 85%; the rest is the relative key or a fifth off.
        #expect(Double(keyExact) >= 0.85 * Double(tracks), "\(summary)")
        #expect(keyExact + keyRelative + keyFifth == tracks, "\(summary)")
    }
}

@Suite("Rendering determinism")
struct RenderingDeterminismTests {
    /// Decoded samples of every audio file under `dir/audio`, by file name.
    static func decodedAudio(_ dir: String) throws -> [String: [Float]] {
        var out: [String: [Float]] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: dir + "/audio") {
            out[name] = try AudioDecoder.decode(path: dir + "/audio/" + name, options: DecodeOptions(sampleRate: nil))
        }
        return out
    }

    @Test("a synth renders a piece the same whatever it rendered before")
    func history() throws {
        let world = try MusicComposerTests.world()
        let composer = MusicComposer(world: world, seconds: 2)
        let renderer = try MusicRenderer(sampleRate: 22_050)
        let piece = composer.compose(track: 40)
        let fresh = try renderer.makeSynthesizer().render(piece)
        // Another piece first, of a length that is not a whole number of FluidSynth's 64-frame blocks, and cut
        // while its notes still sound.
        let used = try renderer.makeSynthesizer()
        let other = MusicComposer(world: world, seconds: 1.2345).compose(track: 41)
        _ = try used.render(other)
        let after = try used.render(piece)
        #expect(fresh.count == after.count)
        let differing = zip(fresh, after).filter { $0 != $1 }.count
        #expect(differing == 0, "\(differing) of \(fresh.count) samples differ")
        #expect(fresh.contains { $0 != 0 })
    }

    @Test("the rendered files decode to the same samples on 1 and 3 threads")
    func threads() throws {
        let world = try MusicComposerTests.world()
        var decoded: [[String: [Float]]] = []
        for (threads, format) in [(1, AudioFileFormat.flac), (3, .flac), (1, .ogg), (3, .ogg)] {
            let dir = makeTemporaryDirectory("render-threads")
            defer { try? FileManager.default.removeItem(atPath: dir) }
            try world.writeAudio(
                to: dir, options: AudibleWorldOptions(tracks: 7, format: format, seconds: 1.5, threads: threads))
            decoded.append(try Self.decodedAudio(dir))
        }
        for (a, b) in [(0, 1), (2, 3)] {
            #expect(decoded[a].count == 7)
            #expect(Set(decoded[a].keys) == Set(decoded[b].keys))
            for (name, samples) in decoded[a] {
                #expect(samples == decoded[b][name], "\(name)")
            }
        }
    }
}

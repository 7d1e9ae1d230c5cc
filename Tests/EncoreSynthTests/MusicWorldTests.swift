import EncoreTestSupport
import Foundation
import Testing
@testable import EncoreAudio
@testable import EncoreCore
@testable import EncoreSynth

@Suite("StandardMIDIFile")
struct MIDIFileTests {
    @Test("variable-length quantities as the SMF specification's examples")
    func vlq() {
        func v(_ x: UInt32) -> [UInt8] {
            var out: [UInt8] = []
            StandardMIDIFile.appendVLQ(x, to: &out)
            return out
        }
        #expect(v(0) == [0x00])
        #expect(v(0x40) == [0x40])
        #expect(v(0x7F) == [0x7F])
        #expect(v(0x80) == [0x81, 0x00])
        #expect(v(0x2000) == [0xC0, 0x00])
        #expect(v(0x3FFF) == [0xFF, 0x7F])
        #expect(v(0x4000) == [0x81, 0x80, 0x00])
        #expect(v(0x0FFF_FFFF) == [0xFF, 0xFF, 0xFF, 0x7F])
    }

    @Test("a tiny format-1 file, byte for byte as computed by hand")
    func tinyFile() {
        // Track 0: tempo 500 000 us a quarter (120 BPM). Track 1: piano, middle C for a quarter, then E at tick 296
        // (delta 200 = 0x81 0x48) for 96 ticks; events given out of order to check the sort (off before on at 96).
        let file = StandardMIDIFile(ticksPerQuarter: 96, tracks: [
            [MIDIEvent(tick: 0, .tempo(microsecondsPerQuarter: 500_000))],
            [
                MIDIEvent(tick: 296, .noteOn(channel: 0, key: 64, velocity: 90)),
                MIDIEvent(tick: 96, .noteOff(channel: 0, key: 60)),
                MIDIEvent(tick: 0, .noteOn(channel: 0, key: 60, velocity: 100)),
                MIDIEvent(tick: 392, .noteOff(channel: 0, key: 64)),
                MIDIEvent(tick: 0, .programChange(channel: 0, program: 0)),
            ],
        ])
        let expected: [UInt8] = [
            0x4D, 0x54, 0x68, 0x64, 0, 0, 0, 6, 0, 1, 0, 2, 0, 96,  // MThd, format 1, 2 tracks, 96 ticks
            0x4D, 0x54, 0x72, 0x6B, 0, 0, 0, 11,  // MTrk, 11 bytes
            0x00, 0xFF, 0x51, 0x03, 0x07, 0xA1, 0x20,  // tempo 0x07A120
            0x00, 0xFF, 0x2F, 0x00,  // end of track
            0x4D, 0x54, 0x72, 0x6B, 0, 0, 0, 24,  // MTrk, 24 bytes (3 + 4 + 4 + 5 + 4 + 4)
            0x00, 0xC0, 0x00,  // program change
            0x00, 0x90, 60, 100,  // note on C4
            0x60, 0x80, 60, 64,  // delta 96, note off
            0x81, 0x48, 0x90, 64, 90,  // delta 200, note on E4
            0x60, 0x80, 64, 64,  // delta 96, note off
            0x00, 0xFF, 0x2F, 0x00,
        ]
        #expect(file.bytes() == expected)
    }
}

@Suite("MusicComposer")
struct MusicComposerTests {
    static func world() throws -> SyntheticWorld { try SyntheticWorld.generate(.tiny, threads: 2) }

    /// Note-ons of a piece's MIDI: (tick, channel, key).
    static func notes(_ p: ComposedPiece) -> [(tick: Int, channel: UInt8, key: UInt8)] {
        p.midi.tracks.flatMap { $0 }.compactMap { e in
            if case .noteOn(let c, let k, _) = e.kind { return (e.tick, c, k) }
            return nil
        }
    }

    static func programs(_ p: ComposedPiece) -> [UInt8: UInt8] {
        var out: [UInt8: UInt8] = [:]
        for e in p.midi.tracks.flatMap({ $0 }) {
            if case .programChange(let c, let prog) = e.kind { out[c] = prog }
        }
        return out
    }

    @Test("every track of an artist carries the artist's palette in its program changes; artists differ")
    func paletteConsistency() throws {
        let w = try Self.world()
        let composer = MusicComposer(world: w, seconds: 8)
        var distinct = Set<ArtistPalette>()
        for a in 0..<Int32(w.catalog.artistCount) {
            let palette = composer.palette(ofArtist: a)
            distinct.insert(palette)
            for t in w.catalog.tracks(ofArtist: a).prefix(4) {
                let piece = composer.compose(track: t)
                #expect(piece.palette == palette)
                let programs = Self.programs(piece)
                #expect(programs[MusicComposer.leadChannel] == palette.lead)
                #expect(programs[MusicComposer.chordChannel] == palette.chords)
                #expect(programs[MusicComposer.bassChannel] == palette.bass)
                #expect(programs[MusicComposer.drumChannel] == palette.drumKit)
            }
        }
        // 80 artists over a few dozen instruments and patterns: most palettes are distinct.
        #expect(distinct.count >= 60)
    }

    @Test("tempo in the genre's range and written in the file; the bass's commonest pitch class is the key")
    func traits() throws {
        let w = try Self.world()
        let composer = MusicComposer(world: w, seconds: 20)
        var majors = 0
        for t in Int32(0)..<Int32(200) {
            let piece = composer.compose(track: t)
            let genre = w.config.genres[Int(w.catalog.trackGenre[Int(t)])]
            #expect(piece.tempoBPM >= genre.tempoMin - 0.01 && piece.tempoBPM <= genre.tempoMax + 0.01)
            let tempo = piece.midi.tracks[0].compactMap { e -> UInt32? in
                if case .tempo(let us) = e.kind { return us }
                return nil
            }
            #expect(tempo == [piece.microsecondsPerQuarter])
            var bassCounts = [Int](repeating: 0, count: 12)
            for n in Self.notes(piece) where n.channel == MusicComposer.bassChannel { bassCounts[Int(n.key) % 12] += 1 }
            let top = bassCounts.indices.max { bassCounts[$0] < bassCounts[$1] }
            #expect(top == piece.key, "track \(t)")
            if piece.major { majors += 1 }
            // The chords' first bar is the tonic triad: major or minor third above the key.
            let first = Set(Self.notes(piece).filter { $0.channel == MusicComposer.chordChannel && $0.tick < 4 * 480 }
                .map { Int($0.key) % 12 })
            #expect(first == [piece.key, (piece.key + (piece.major ? 4 : 3)) % 12, (piece.key + 7) % 12])
        }
        #expect(majors > 40 && majors < 190)
    }

    @Test("the kick or snare sounds on every beat, the kick on beats 1 and 3, for the whole excerpt")
    func beats() throws {
        let w = try Self.world()
        let composer = MusicComposer(world: w, seconds: 10)
        for t in stride(from: Int32(0), to: Int32(800), by: 7) {
            let piece = composer.compose(track: t)
            let drums = Self.notes(piece).filter { $0.channel == MusicComposer.drumChannel }
            let kicks = Set(drums.filter { $0.key == 36 }.map(\.tick))
            let backbeat = Set(drums.filter { [38, 39, 44].contains($0.key) }.map(\.tick))
            let beats = Int(10 / (Double(piece.microsecondsPerQuarter) / 1e6))
            for beat in 0..<beats {
                let tick = beat * 480
                #expect(kicks.contains(tick) || backbeat.contains(tick), "track \(t) beat \(beat)")
                if beat % 2 == 0 { #expect(kicks.contains(tick), "track \(t) beat \(beat)") }
            }
        }
    }

    @Test("composing is deterministic")
    func deterministic() throws {
        let world = try Self.world()
        let a = MusicComposer(world: world).compose(track: 123)
        let b = MusicComposer(world: world).compose(track: 123)
        #expect(a.midi.bytes() == b.midi.bytes())
    }
}

@Suite("MusicRenderer")
struct MusicRendererTests {
    @Test("a few seconds render to non-silent audio at a sane loudness")
    func render() throws {
        let world = try MusicComposerTests.world()
        let piece = MusicComposer(world: world, seconds: 4).compose(track: 5)
        let synth = try MusicRenderer(sampleRate: 22_050).makeSynthesizer()
        let samples = try synth.render(piece)
        #expect(samples.count == 4 * 22_050)
        let peak = samples.map { abs($0) }.max() ?? 0
        #expect(peak > 0.01 && peak <= 1)
        let meter = try LoudnessMeter(sampleRate: 22_050, channels: 1)
        try meter.add(samples)
        let lufs = try #require(meter.integratedLoudness())
        #expect(lufs > -40 && lufs < -6, "\(lufs) LUFS")
    }

    @Test("a missing SoundFont is named in the error")
    func missingSoundFont() {
        #expect(throws: AudioError.file(FileError(
            path: "/nonexistent-encore/gm.sf2", operation: "open the SoundFont", reason: "no such file"))) {
            try MusicRenderer(soundFont: "/nonexistent-encore/gm.sf2")
        }
        do {
            _ = try MusicRenderer(soundFont: "/nonexistent-encore/gm.sf2")
        } catch {
            #expect(error.description == "/nonexistent-encore/gm.sf2: cannot open the SoundFont: no such file")
        }
    }

    @Test("a file that is not a SoundFont is named in the error")
    func notASoundFont() throws {
        let dir = makeTemporaryDirectory("soundfont")
        let path = dir + "/fake.sf2"
        try Data("not a soundfont".utf8).write(to: URL(fileURLWithPath: path))
        do {
            _ = try MusicRenderer(soundFont: path).makeSynthesizer()
            Issue.record("expected an error")
        } catch {
            #expect(error.description == "\(path): unsupported audio: FluidSynth cannot load it as a SoundFont (SF2/SF3)")
        }
    }

    @Test("writeAudio: the sample's files, MIDI bytes and truth rows are what was composed")
    func writeAudio() throws {
        let world = try MusicComposerTests.world()
        let dir = makeTemporaryDirectory("audible")
        let options = AudibleWorldOptions(tracks: 3, format: .flac, seconds: 2, threads: 2)
        let summary = try world.writeAudio(to: dir, options: options)
        #expect(summary.tracks == [0, 266, 533])
        let composer = MusicComposer(world: world, seconds: 2)
        let truth = try String(contentsOfFile: dir + "/audio_truth.tsv", encoding: .utf8)
        let lines = truth.split(separator: "\n").map(String.init)
        #expect(lines.count == 4)
        #expect(lines[0] == "track\ttempo\tkey\tmode\tinstruments")
        for (row, t) in zip(lines.dropFirst(), summary.tracks) {
            let piece = composer.compose(track: t)
            let fields = row.split(separator: "\t").map(String.init)
            #expect(fields.count == 5)
            #expect(fields[0] == world.ids.track(t))
            #expect(abs((Double(fields[1]) ?? 0) - 60_000_000 / Double(piece.microsecondsPerQuarter)) < 1e-5)
            #expect(Int(fields[2]) == piece.key)
            #expect(fields[3] == (piece.major ? "1" : "0"))
            #expect(fields[4] == piece.palette.summary)
            let midi = try Data(contentsOf: URL(fileURLWithPath: dir + "/midi/\(world.ids.track(t)).mid"))
            #expect([UInt8](midi) == piece.midi.bytes())
            let audio = try Data(contentsOf: URL(fileURLWithPath: dir + "/audio/\(world.ids.track(t)).flac"))
            #expect(audio.prefix(4) == Data("fLaC".utf8))
        }
        let audioFiles = try FileManager.default.contentsOfDirectory(atPath: dir + "/audio")
        #expect(audioFiles.count == 3)
    }
}

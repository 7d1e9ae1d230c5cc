import ArgumentParser
import Foundation
import Testing
@testable import RecCore
@testable import Trainer
import EncoreTestSupport

@Suite("generate --audio")
struct GenerateAudioTests {
    @Test("--audio-tracks N renders N tracks: N MIDI files, N OGG files (--audio-format ogg), N truth rows")
    func sampleCount() throws {
        let dir = makeTemporaryDirectory("audio") + "/world"
        try run(["generate", "--preset", "tiny", "--output", dir, "--audio", "--audio-tracks", "4", "--audio-format", "ogg",
                      "--threads", "2"])
        let midi = try FileManager.default.contentsOfDirectory(atPath: dir + "/midi").filter { $0.hasSuffix(".mid") }
        let audio = try FileManager.default.contentsOfDirectory(atPath: dir + "/audio").filter { $0.hasSuffix(".ogg") }
        #expect(midi.count == 4)
        #expect(audio.count == 4)
        let truth = try String(contentsOfFile: dir + "/audio_truth.tsv", encoding: .utf8)
        let rows = truth.split(separator: "\n").dropFirst().map { String($0.split(separator: "\t")[0]) }
        #expect(rows.sorted() == midi.map { String($0.dropLast(4)) }.sorted())
        #expect(rows.sorted() == audio.map { String($0.dropLast(4)) }.sorted())
        #expect(FileManager.default.fileExists(atPath: dir + "/world.json"))
    }

    @Test("audio flags without --audio, a bad format and a bad count are refused with the flag named")
    func badFlags() {
        for (args, message) in [
            (["--audio-tracks", "3"], "--audio-tracks and --audio-format need --audio"),
            (["--audio-format", "ogg"], "--audio-tracks and --audio-format need --audio"),
            (["--audio", "--audio-format", "mp3"], "--audio-format 'mp3' is not ogg or flac"),
            (["--audio", "--audio-tracks", "0"], "--audio-tracks must be >= 1, got 0"),
        ] {
            do {
                _ = try EncoreTrain.parseAsRoot(["generate", "--preset", "tiny", "--output", "/tmp/x"] + args)
                Issue.record("expected \(message)")
            } catch {
                #expect(EncoreTrain.message(for: error) == message)
            }
        }
    }

    @Test("a missing SoundFont fails the command and names the file")
    func missingSoundFont() throws {
        let dir = makeTemporaryDirectory("audio") + "/world"
        #expect(throws: ExitCode.failure) {
            try run(["generate", "--preset", "tiny", "--output", dir, "--audio", "--audio-tracks", "1",
                          "--sound-font", "/nonexistent-encore/none.sf2"])
        }
        #expect(!FileManager.default.fileExists(atPath: dir + "/audio_truth.tsv"))
    }
}

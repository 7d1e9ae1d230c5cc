import EncoreTestSupport
import Foundation
import Testing
@testable import EncoreAudio

@Suite("AudioFileWriter")
struct AudioFileWriterTests {
    @Test("a 16-bit mono WAV is a 44-byte header and two bytes a sample")
    func wavSize() throws {
        let dir = makeTemporaryDirectory("writer")
        let path = dir + "/tone.wav"
        var writer = try AudioFileWriter(path: path, format: .wav, sampleRate: 8_000, channels: 1)
        try writer.write((0..<1_000).map { Float(sin(Double($0) * 0.1)) * 0.5 })
        try writer.close()
        let size = try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int
        #expect(size == 44 + 2 * 1_000)
    }

    @Test("a frame count that does not fill every channel is refused with the counts")
    func partialFrame() throws {
        let dir = makeTemporaryDirectory("writer")
        var writer = try AudioFileWriter(path: dir + "/s.wav", format: .wav, sampleRate: 8_000, channels: 2)
        #expect(throws: AudioError.invalidParameter(name: "samples", reason: "3 is not a multiple of 2 channels")) {
            try writer.write([0, 0, 0])
        }
        try writer.close()
    }

    @Test("a file in a missing folder names the path")
    func missingFolder() {
        do {
            _ = try AudioFileWriter(path: "/nonexistent-encore/x.flac", format: .flac, sampleRate: 22_050)
            Issue.record("expected an error")
        } catch {
            #expect(error.description.hasPrefix("/nonexistent-encore/x.flac: cannot open for writing"))
        }
    }
}

import Foundation
import RecCore
import Testing

// The README's audio example, as written there; the test checks that the README still shows exactly this code, so
// the example compiles against the one library product whenever the tests build.

/// The body of the README's audio example (everything after `import RecCore`).
@discardableResult
func audioReadmeExample() throws -> Any {

    var decoder = try AudioDecoder(path: "song.ogg")          // 22 050 Hz mono, in blocks
    var analyzer = try AudioAnalyzer(sampleRate: 22_050, options: AnalysisOptions(keepLogMel: true))
    while let block = try decoder.nextBlock() { analyzer.append(block) }
    let analysis = analyzer.finish()
    print(analysis.descriptors.tempoBPM, analysis.descriptors.key, analysis.descriptors.mode)

    let samples = try AudioDecoder.decode(path: "song.ogg")   // or the whole signal at once
    let logMel = try MelSpectrogram(sampleRate: 22_050).logMel(samples)   // frames x 128, dB
    let mfcc = try MFCC()(logMel)                                        // frames x 20
    let all = try AudioAnalyzer.analyze(path: "song.ogg")     // descriptors, loudness included
    return (analysis, mfcc, all)
}

@Suite("README audio example")
struct AudioReadmeExampleTests {
    @Test("the README shows the audio example this file compiles")
    func readmeMatchesCompiledExample() throws {
        let here = URL(fileURLWithPath: #filePath)
        let root = here.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let readme = try String(contentsOf: root.appendingPathComponent("README.md"), encoding: .utf8)
        let source = try String(contentsOf: here, encoding: .utf8)
        let section = try #require(readme.range(of: "## Audio (`EncoreAudio`, `encore-train analyze`)"))
        let start = try #require(readme.range(of: "```swift\n", range: section.upperBound..<readme.endIndex))
        let end = try #require(readme.range(of: "```\n", range: start.upperBound..<readme.endIndex))
        let example = String(readme[start.upperBound..<end.lowerBound])
        #expect(example.hasPrefix("import RecCore\n"))
        let bodyStart = try #require(source.range(of: "func audioReadmeExample() throws -> Any {\n"))
        let bodyEnd = try #require(source.range(of: "\n    return (analysis, mfcc, all)", range: bodyStart.upperBound..<source.endIndex))
        let compiled = source[bodyStart.upperBound..<bodyEnd.lowerBound].split(separator: "\n", omittingEmptySubsequences: false)
            .map { $0.hasPrefix("    ") ? String($0.dropFirst(4)) : String($0) }
        let shown = example.split(separator: "\n", omittingEmptySubsequences: false).dropFirst().map(String.init)
        #expect(Array(shown.dropLast()) == compiled, "README's audio example differs from Tests/RecCoreTests/AudioReadmeExampleTests.swift")
        // The decoder refuses a missing file with its name.
        #expect(throws: AudioError.self) { try audioReadmeExample() }
    }
}

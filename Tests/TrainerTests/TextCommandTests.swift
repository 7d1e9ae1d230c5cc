import ArgumentParser
import Foundation
import Testing
@testable import RecCore
@testable import Trainer
import EncoreTestSupport

@Suite("encore-train text and sequences")
struct TextCommandTests {
    @Test("a generated world's texts and plays become text and sequence vectors")
    func worldToVectors() throws {
        let dir = makeTemporaryDirectory("textcmd")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var generate = try EncoreTrain.parseAsRoot(["generate", "--preset", "tiny", "--output", "\(dir)/w", "--seed", "5"])
        try generate.run()
        let texts = try TextCorpus.read(path: "\(dir)/w/texts.tsv")
        #expect(Set(texts.kinds) == ["bio", "review", "tags"])

        var text = try EncoreTrain.parseAsRoot([
            "text", "--input", "\(dir)/w/texts.tsv", "--output", "\(dir)/T.h5", "--dimensions", "12",
            "--track-artists", "\(dir)/w/tracks.tsv", "--threads", "2", "--stop-words", "english",
        ])
        try text.run()
        let t = try VectorFiles.readVectors(from: "\(dir)/T.h5")
        #expect(t.vectors.cols == 12)
        // Every track with text or an artist with text has a vector; the catalog's 800 tracks mostly do.
        #expect(t.ids.filter { $0.hasPrefix("t") }.count > 600)
        #expect(Set(t.ids).count == t.ids.count)

        var seq = try EncoreTrain.parseAsRoot([
            "sequences", "--events", "\(dir)/w/plays.tsv", "--output", "\(dir)/S.h5", "--dim", "16", "--min-count", "2",
            "--epochs", "1", "--threads", "1",
        ])
        try seq.run()
        let s = try VectorFiles.readVectors(from: "\(dir)/S.h5")
        #expect(s.vectors.cols == 16 && s.ids.count > 50)
        for n in s.vectors.rowNorms() { #expect(abs(n - 1) < 1e-4) }
    }

    @Test("bad input and options give clear messages")
    func errors() throws {
        let dir = makeTemporaryDirectory("textcmd")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "id\ttext\nt1\tred blue\nt2\tgreen\n".write(toFile: "\(dir)/small.tsv", atomically: true, encoding: .utf8)
        try "id\ttext\nt1\tred blue\nt2\n".write(toFile: "\(dir)/bad.tsv", atomically: true, encoding: .utf8)
        try "id\ttext\nt1\tred blue\nt2\tgreen\nt3\tyellow\n".write(toFile: "\(dir)/three.tsv", atomically: true, encoding: .utf8)
        try "user\titem\nu1\ti1\nu1\ti2\n".write(toFile: "\(dir)/log.tsv", atomically: true, encoding: .utf8)
        func run(_ args: [String]) -> String? {
            errorMessage {
                var c = try EncoreTrain.parseAsRoot(args)
                try c.run()
            }?.replacingOccurrences(of: dir + "/", with: "")
        }
        let out = ["--output", "\(dir)/o.h5"]
        #expect(run(["text", "--input", "\(dir)/three.tsv"] + out)
            == "empty vocabulary: after pruning no terms remain (4 terms before min_df 2, max_df 0.95); try a lower min_df or a higher max_df")
        #expect(run(["text", "--input", "\(dir)/small.tsv"] + out)
            == "invalid parameter: max_df (0.95, 1.9 documents) is below min_df (2, 2.0 documents)")
        #expect(run(["text", "--input", "\(dir)/bad.tsv"] + out) == "bad.tsv:3: field 'text': the row has 1 fields, the header 2")
        #expect(run(["text", "--input", "\(dir)/small.tsv", "--min-df", "1", "--dimensions", "5"] + out)
            == "invalid parameter: 5 dimensions exceed min(documents 2, terms 3) = 2")
        #expect(run(["text", "--input", "\(dir)/small.tsv", "--min-df", "abc"] + out)
            == "--min-df must be a count or a proportion, got 'abc'")
        #expect(run(["text", "--input", "\(dir)/small.tsv", "--id-column", "track"] + out)
            == "small.tsv: no column 'track' in the header (columns: id, text)")
        #expect(run(["sequences", "--events", "\(dir)/log.tsv"] + out)
            == "invalid parameter: sessions need timestamps, and the play log has none (give --timestamp-column)")
        #expect(run(["sequences", "--events", "\(dir)/log.tsv", "--dim", "0"] + out)
            == "invalid parameter: dimensions must be positive, got 0")
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/o.h5"))
    }
}

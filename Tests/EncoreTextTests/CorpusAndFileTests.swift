import EncoreCore
import EncoreStorage
import EncoreTestSupport
import Foundation
import Testing

@testable import EncoreText

func write(_ text: String, to path: String) throws {
    try Data(text.utf8).write(to: URL(fileURLWithPath: path))
}

@Suite("Text: corpus files and the vectors file")
struct CorpusAndFileTests {
    @Test("TSV, CSV (quoted fields, across lines) and JSON Lines read the same documents")
    func formats() throws {
        let dir = makeTemporaryDirectory("text")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try write("id\tkind\ttext\nt1\treview\t\"Loud \"\"rock\"\"\tguitar\"\na1\tbio\tplain text\n\n", to: dir + "/a.tsv")
        try write("text,id\n\"Loud \"\"rock\"\"\tguitar\",t1\r\n\"plain\ntext\",a1\n", to: dir + "/a.csv")
        try write("{\"id\": \"t1\", \"text\": \"Loud \\\"rock\\\"\\tguitar\", \"kind\": \"review\"}\n\n{\"id\": 7, \"text\": \"x\"}\n",
                  to: dir + "/a.jsonl")
        let tsv = try TextCorpus.read(path: dir + "/a.tsv")
        #expect(tsv.ids == ["t1", "a1"] && tsv.texts == ["Loud \"rock\"\tguitar", "plain text"] && tsv.kinds == ["review", "bio"])
        let csv = try TextCorpus.read(path: dir + "/a.csv")
        #expect(csv.ids == ["t1", "a1"] && csv.texts == ["Loud \"rock\"\tguitar", "plain\ntext"] && csv.kinds == [])
        let jsonl = try TextCorpus.read(path: dir + "/a.jsonl")
        #expect(jsonl.ids == ["t1", "7"] && jsonl.texts == ["Loud \"rock\"\tguitar", "x"])
        let renamed = try TextCorpus.read(path: dir + "/a.csv", idColumn: "text", textColumn: "id")
        #expect(renamed.texts == ["t1", "a1"])
        // A quoted field without doubled quotes, and a last row with an empty field and no line end.
        try write("id\ttext\nt1\t\"a\ttab, \u{E9}\"\r\nt2\t", to: dir + "/end.tsv")
        let end = try TextCorpus.read(path: dir + "/end.tsv")
        #expect(end.ids == ["t1", "t2"] && end.texts == ["a\ttab, \u{E9}", ""])
    }

    @Test("malformed rows name the file, line and field; an empty corpus is an error")
    func errors() throws {
        let dir = makeTemporaryDirectory("text")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        func message(_ name: String, _ content: String, id: String = "id") throws -> String {
            try write(content, to: dir + "/" + name)
            do {
                _ = try TextCorpus.read(path: dir + "/" + name, idColumn: id)
                return "no error"
            } catch {
                return error.description.replacingOccurrences(of: dir + "/", with: "")
            }
        }
        #expect(try message("short.tsv", "id\ttext\nt1\tok\nt2\n") == "short.tsv:3: field 'text': the row has 1 fields, the header 2")
        #expect(try message("long.tsv", "id\ttext\nt1\tok\tmore\n")
            == "long.tsv:2: field '(extra field 3)': the row has 3 fields, the header 2")
        #expect(try message("noid.tsv", "id\ttext\n\tok\n") == "noid.tsv:2: field 'id': empty id")
        #expect(try message("quote.csv", "id,text\nt1,\"never closed\n") 
            == "quote.csv:2: field 'text': a quoted field is not closed before the end of the file")
        #expect(try message("after.csv", "id,text\nt1,\"a\"b\n")
            == "after.csv:2: field 'text': unexpected character after a closing quote")
        #expect(try message("col.tsv", "track\ttext\nt1\tx\n")
            == "col.tsv: no column 'id' in the header (columns: track, text)")
        #expect(try message("empty.tsv", "id\ttext\n") == "empty corpus: empty.tsv has no documents")
        #expect(try message("bad.jsonl", "{\"id\": \"a\", \"text\": \"x\"}\n{\"id\": \"b\"}\n")
            == "bad.jsonl:2: field 'text': missing")
        #expect(try message("notjson.jsonl", "{\"id\": \"a\", \"text\": \"x\"}\n[1, 2]\n") == "notjson.jsonl:2: field 'json': not a JSON object")
        try Data([UInt8]("id\ttext\nt1\tab".utf8) + [0xFF, 10]).write(to: URL(fileURLWithPath: dir + "/utf.tsv"))
        #expect(throws: TextError.malformedRow(file: dir + "/utf.tsv", line: 2, field: "text", reason: "not valid UTF-8")) {
            _ = try TextCorpus.read(path: dir + "/utf.tsv")
        }
        try Data([UInt8]("id\ttext\nt1\t\"ab".utf8) + [0xFF] + [UInt8]("\"\n".utf8)).write(to: URL(fileURLWithPath: dir + "/q.tsv"))
        #expect(throws: TextError.malformedRow(file: dir + "/q.tsv", line: 2, field: "text", reason: "not valid UTF-8")) {
            _ = try TextCorpus.read(path: dir + "/q.tsv")
        }
        #expect(throws: TextError.unreadable(file: dir + "/missing.tsv", reason: "No such file or directory")) {
            _ = try TextCorpus.read(path: dir + "/missing.tsv")
        }
    }

    @Test("the vectors file reads back in Swift and in h5py")
    func vectorsFile() throws {
        let dir = makeTemporaryDirectory("text")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (model, docs, _) = try LSAModel.fit(LSATests.corpus, options: LSAOptions(dimensions: 3, algorithm: .exact))
        let ids = LSATests.corpus.indices.map { "t\($0 % 5)" }
        let vectors = try IDVectors.combining(documentIDs: ids, vectors: docs).inheriting(trackArtists: [("t9", "t0")])
        let path = dir + "/T.h5"
        try VectorFiles.writeText(vectors, model: model, attributes: ["dimensions": .int(3), "weighting": .string("tfidf")], to: path)
        let back = try VectorFiles.readVectors(from: path)
        #expect(back.ids == ["t0", "t1", "t2", "t3", "t4", "t9"] && back.vectors == vectors.vectors)
        if let missing = TestPython.h5pyMissing {
            if TestPython.h5pyRequired { Issue.record(Comment(rawValue: missing)) }
            return
        }
        let script = """
            import h5py, sys, numpy as np
            f = h5py.File(sys.argv[1], "r")
            ids = [s.decode() for s in f["ids"][:]]
            v = f["vectors"][:]
            terms = [s.decode() for s in f["vocabulary/terms"][:]]
            print(ids, v.shape, v.dtype, f["inherited"][:].tolist(), f.attrs["dimensions"], f.attrs["weighting"],
                  f.attrs["kind"], len(terms) == f["vocabulary/document_frequency"].shape[0],
                  f["svd/components"].shape == (3, len(terms)), f["svd/singular_values"].shape,
                  bool(np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-5)), terms[:2])
            """
        let result = try TestPython.run(["-c", script, path])
        #expect(result.status == 0)
        #expect(result.output == "['t0', 't1', 't2', 't3', 't4', 't9'] (6, 3) float32 [0, 0, 0, 0, 0, 1] 3 tfidf text True True (3,) True ['amplifier', 'anthem']\n")
    }
}

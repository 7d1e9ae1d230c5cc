import EncoreCore
import Foundation
import Testing

@testable import EncoreText

/// scikit-learn's output for a small corpus (Fixtures/make_sklearn_fixture.py wrote it).
struct SklearnFixture {
    struct Config {
        let params: [String: Any]
        let terms: [String]
        let documentFrequency: [Int]
        let idf: [Double]
        let rows: [[(Int, Double)]]
    }
    let corpus: [String]
    let tokens: [[String]]
    let configs: [String: Config]

    static func load() throws -> SklearnFixture {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("Fixtures/sklearn_tfidf.json")
        let object = try JSONSerialization.jsonObject(with: Data(contentsOf: url))
        let root = try #require(object as? [String: Any])
        var configs: [String: Config] = [:]
        for (name, value) in try #require(root["configs"] as? [String: Any]) {
            let c = try #require(value as? [String: Any])
            let rows = try #require(c["rows"] as? [[[Double]]]).map { row in row.map { (Int($0[0]), $0[1]) } }
            configs[name] = Config(
                params: try #require(c["params"] as? [String: Any]), terms: try #require(c["terms"] as? [String]),
                documentFrequency: try #require(c["document_frequency"] as? [Int]),
                idf: try #require(c["idf"] as? [Double]), rows: rows)
        }
        return SklearnFixture(
            corpus: try #require(root["corpus"] as? [String]), tokens: try #require(root["tokens"] as? [[String]]),
            configs: configs)
    }

    /// The fixture's parameters as options.
    static func options(_ p: [String: Any]) -> TextVectorizerOptions {
        var o = TextVectorizerOptions()
        if let s = p["stop_words"] as? String, s == "english" { o.tokenizer.stopWords = .english }
        if let r = p["ngram_range"] as? [Int] { o.tokenizer.ngramMax = r[1] }
        if let b = p["sublinear_tf"] as? Bool { o.sublinearTF = b }
        func bound(_ v: Any?) -> DocumentFrequencyBound? {
            guard let n = v as? NSNumber else { return nil }
            let type = String(cString: n.objCType)
            return type == "d" || type == "f" ? .proportion(n.doubleValue) : .count(n.intValue)
        }
        if let b = bound(p["min_df"]) { o.minDF = b }
        if let b = bound(p["max_df"]) { o.maxDF = b }
        if let m = p["max_features"] as? Int { o.maxFeatures = m }
        return o
    }
}

@Suite("Text: tokenizer and TF-IDF")
struct TokenizerTests {
    @Test("tokens follow (?u)\\b\\w\\w+\\b after case folding: hand-made cases")
    func handTokens() {
        let t = Tokenizer()
        #expect(t.terms("Hello, World! a b cd") == ["hello", "world", "cd"])
        #expect(t.terms("snake_case x2 42 7 _") == ["snake_case", "x2", "42"])
        #expect(t.terms("Ünïcödé ÉTÉ") == ["ünïcödé", "été"])
        // A combining mark is not a word character; a final capital sigma lowers to ς.
        #expect(t.terms("cafe\u{301}s ΣΟΦΟΣ ΣΣ") == ["cafe", "σοφος", "σς"])
        #expect(t.terms("") == [])
        // ASCII runs joined to non-ASCII letters, and every ASCII punctuation boundary (@ [ ` { ~ and the others).
        #expect(t.terms("ABCd\u{E9}_9 x@y Z\u{FC}rich2 [a]bc `q{r}s~ a1b2c3d4e5f6g7h8i9 !\"#$%&'()*+,-./:;<=>?\\^|ok")
            == ["abcd\u{E9}_9", "z\u{FC}rich2", "bc", "a1b2c3d4e5f6g7h8i9", "ok"])
        let stop = Tokenizer(options: TokenizerOptions(stopWords: .english, ngramMax: 2))
        #expect(stop.terms("The cat and the hat sat") == ["cat", "hat", "sat", "cat hat", "hat sat"])
        let cased = Tokenizer(options: TokenizerOptions(lowercase: false))
        #expect(cased.terms("Big Cat") == ["Big", "Cat"])
    }

    @Test("tokens equal scikit-learn's analyzer on the fixture corpus")
    func sklearnTokens() throws {
        let f = try SklearnFixture.load()
        let t = Tokenizer()
        for (d, doc) in f.corpus.enumerated() { #expect(t.terms(doc) == f.tokens[d], "document \(d)") }
        #expect(EnglishStopWords.list.count == 318)
    }

    @Test("TF-IDF of a two-document corpus, by hand")
    func handTFIDF() throws {
        let (m, x) = try TextVectorizer.fit(["apple banana apple", "banana cherry"])
        #expect(m.terms == ["apple", "banana", "cherry"])
        #expect(m.documentFrequency == [1, 2, 1])
        let idfRare = 1 + Foundation.log(1.5)  // ln((1+2)/(1+1)) + 1
        #expect(abs(m.idf[0] - idfRare) < 1e-12 && abs(m.idf[1] - 1) < 1e-12)
        let n0 = (4 * idfRare * idfRare + 1).squareRoot()
        #expect(abs(Double(x.value(row: 0, col: 0)) - 2 * idfRare / n0) < 1e-6)
        #expect(abs(Double(x.value(row: 0, col: 1)) - 1 / n0) < 1e-6)
        #expect(x.value(row: 0, col: 2) == 0)
        let n1 = (1 + idfRare * idfRare).squareRoot()
        #expect(abs(Double(x.value(row: 1, col: 2)) - idfRare / n1) < 1e-6)
        // Sublinear tf: 1 + ln 2 for the two apples.
        let (_, s) = try TextVectorizer.fit(["apple banana apple", "banana cherry"],
                                            options: TextVectorizerOptions(sublinearTF: true))
        let a = (1 + Foundation.log(2.0)) * idfRare
        #expect(abs(Double(s.value(row: 0, col: 0)) - a / (a * a + 1).squareRoot()) < 1e-6)
    }

    @Test("BM25 of a two-document corpus, by hand")
    func handBM25() throws {
        let (m, x) = try TextVectorizer.fit(["apple banana apple", "banana cherry"],
                                            options: TextVectorizerOptions(weighting: .bm25))
        #expect(abs(m.averageLength - 2.5) < 1e-12)
        // idf = ln(1 + (n - df + 0.5) / (df + 0.5)); document 0 has length 3, avgdl 2.5, k1 1.2, b 0.75.
        let apple = Foundation.log(2.0) * 2 * 2.2 / (2 + 1.2 * (0.25 + 0.75 * 3 / 2.5))
        let banana = Foundation.log(1.2) * 2.2 / (1 + 1.2 * (0.25 + 0.75 * 3 / 2.5))
        let norm = (apple * apple + banana * banana).squareRoot()
        #expect(abs(Double(x.value(row: 0, col: 0)) - apple / norm) < 1e-6)
        #expect(abs(Double(x.value(row: 0, col: 1)) - banana / norm) < 1e-6)
    }

    @Test("vocabulary, document frequencies, idf and rows equal scikit-learn's TfidfVectorizer", arguments: [1, 3])
    func sklearnTFIDF(threads: Int) throws {
        let f = try SklearnFixture.load()
        #expect(f.configs.count == 5)
        for (name, c) in f.configs {
            let (m, x) = try TextVectorizer.fit(f.corpus, options: SklearnFixture.options(c.params), threads: threads)
            #expect(m.terms == c.terms, "\(name)")
            #expect(m.documentFrequency.map(Int.init) == c.documentFrequency, "\(name)")
            guard m.terms == c.terms else { continue }
            for j in 0..<c.idf.count { #expect(abs(m.idf[j] - c.idf[j]) < 1e-12, "\(name) idf \(j)") }
            #expect(x.rows == f.corpus.count)
            for r in 0..<x.rows {
                #expect(x.columns(ofRow: r).map(Int.init) == c.rows[r].map(\.0).sorted(), "\(name) row \(r)")
                for (j, v) in c.rows[r] { #expect(abs(Double(x.value(row: r, col: Int32(j))) - v) < 1e-6, "\(name) \(r),\(j)") }
            }
        }
    }

    @Test("transform weighs new documents with the fitted vocabulary; unknown terms are ignored")
    func transform() throws {
        let f = try SklearnFixture.load()
        let (m, x) = try TextVectorizer.fit(f.corpus)
        let again = try m.transform(f.corpus, threads: 2)
        #expect(again == x)
        let fresh = try m.transform(["zebra fox FOX unknownword", "nothing known here"])
        #expect(fresh.columns(ofRow: 0).map { m.terms[Int($0)] } == ["fox"])
        #expect(fresh.values(ofRow: 0).first == 1)
        #expect(fresh.count(ofRow: 1) == 0)
        #expect(m.column(of: "fox") != nil && m.column(of: "zebra") == nil)
    }

    @Test("an empty corpus, a vocabulary emptied by filters and bad parameters are clear errors")
    func errors() throws {
        #expect(throws: TextError.emptyCorpus("no documents")) { _ = try TextVectorizer.fit([]) }
        let stop = TextVectorizerOptions(tokenizer: TokenizerOptions(stopWords: .english))
        #expect { _ = try TextVectorizer.fit(["the and of", "a"], options: stop) } throws: { e in
            "\(e)" == "empty vocabulary: no document has a token; perhaps the documents only contain stop words"
        }
        #expect { _ = try TextVectorizer.fit(["red blue", "green"], options: TextVectorizerOptions(minDF: .count(2))) } throws: { e in
            "\(e)".hasPrefix("empty vocabulary: after pruning no terms remain (3 terms before min_df 2, max_df 1.0)")
        }
        #expect(throws: TextError.invalidParameter("max_df (0.1, 0.2 documents) is below min_df (1, 1.0 documents)")) {
            _ = try TextVectorizer.fit(["red blue", "green"], options: TextVectorizerOptions(maxDF: .proportion(0.1)))
        }
        #expect(throws: TextError.invalidParameter("max_df as a proportion must be in [0, 1], got 1.5")) {
            _ = try TextVectorizer.fit(["a b"], options: TextVectorizerOptions(maxDF: .proportion(1.5)))
        }
        #expect(throws: TextError.invalidParameter("sublinear tf applies to tfidf weighting only")) {
            _ = try TextVectorizer.fit(["ab"], options: TextVectorizerOptions(weighting: .bm25, sublinearTF: true))
        }
        #expect(throws: TextError.invalidParameter("ngram_max must be at least 1, got 0")) {
            _ = try TextVectorizer.fit(["ab"], options: TextVectorizerOptions(tokenizer: TokenizerOptions(ngramMax: 0)))
        }
        #expect(DocumentFrequencyBound(parsing: "2") == .count(2))
        #expect(DocumentFrequencyBound(parsing: "0.95") == .proportion(0.95))
        #expect(DocumentFrequencyBound(parsing: "x") == nil)
    }
}

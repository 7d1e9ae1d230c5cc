/// Which stop words the tokenizer drops.
public enum StopWords: String, Sendable, Equatable, CaseIterable {
    /// Keeps every token.
    case none
    /// Drops scikit-learn's English stop-word list (`ENGLISH_STOP_WORDS`, 318 words).
    case english
}

/// How text becomes tokens: scikit-learn's `CountVectorizer` analyzer (`analyzer="word"`).
///
/// A token is a maximal run of two or more word characters after case folding, as scikit-learn's default pattern
/// `(?u)\b\w\w+\b` finds them: a word character is a letter (categories Lu, Ll, Lt, Lm, Lo), a character with a
/// Unicode numeric type (digits, numerals, fractions) or the underscore, as Python's `\w` on `str`. Combining marks
/// are not word characters (as in Python). Stop words are dropped before n-grams are formed; n-grams join tokens
/// with one space.
public struct TokenizerOptions: Sendable, Equatable {
    /// Fold case before tokenizing (Python's `str.lower()`, full Unicode mappings and the final sigma).
    public var lowercase: Bool
    /// Stop words to drop.
    public var stopWords: StopWords
    /// The longest n-gram: 1 for single words, 2 adds bigrams.
    public var ngramMax: Int

    /// Options; the defaults are scikit-learn's.
    public init(lowercase: Bool = true, stopWords: StopWords = .none, ngramMax: Int = 1) {
        self.lowercase = lowercase
        self.stopWords = stopWords
        self.ngramMax = ngramMax
    }

    /// Checks the ranges.
    public func validate() throws(TextError) {
        guard ngramMax >= 1 else { throw .invalidParameter("ngram_max must be at least 1, got \(ngramMax)") }
    }
}

/// Splits text into tokens and n-grams (see ``TokenizerOptions``).
public struct Tokenizer: Sendable {
    /// The options.
    public let options: TokenizerOptions
    private let stopTable: TermTable?

    /// A tokenizer with `options`.
    public init(options: TokenizerOptions = TokenizerOptions()) {
        self.options = options
        switch options.stopWords {
        case .none: stopTable = nil
        case .english:
            var t = TermTable(capacity: EnglishStopWords.list.count)
            for w in EnglishStopWords.list { _ = t.intern(w) }
            stopTable = t
        }
    }

    /// The tokens and n-grams of `text`, in order (unigrams first, then bigrams, ... as scikit-learn lists them).
    public func terms(_ text: String) -> [String] {
        var out: [String] = []
        var scratch = TokenScratch()
        forEachTerm(text, scratch: &scratch) { out.append(String(decoding: $0, as: UTF8.self)) }
        return out
    }

    /// Calls `body` with the UTF-8 bytes of every term of `text` (valid only during the call).
    func forEachTerm(_ text: String, scratch: inout TokenScratch,
                     _ body: (UnsafeBufferPointer<UInt8>) -> Void) {
        scratch.reset()
        var s = text
        s.withUTF8 { bytes in
            TokenScanner.scan(bytes, lowercase: options.lowercase, into: &scratch)
        }
        // Drop stop words.
        if let stopTable {
            scratch.filter { stopTable.find($0) == nil }
        }
        let n = scratch.tokenCount
        scratch.bytes.withUnsafeBufferPointer { b in
            for t in 0..<n {
                body(UnsafeBufferPointer(rebasing: b[scratch.starts[t]..<scratch.starts[t + 1]]))
            }
        }
        guard options.ngramMax >= 2 else { return }
        for size in 2...options.ngramMax where size <= n {
            for t in 0...(n - size) {
                scratch.gram.removeAll(keepingCapacity: true)
                for k in t..<(t + size) {
                    if k > t { scratch.gram.append(0x20) }
                    scratch.gram.append(contentsOf: scratch.bytes[scratch.starts[k]..<scratch.starts[k + 1]])
                }
                scratch.gram.withUnsafeBufferPointer { body($0) }
            }
        }
    }
}

/// Reusable buffers of one tokenizing thread.
struct TokenScratch {
    /// Token bytes, back to back.
    var bytes: [UInt8] = []
    /// Token `i` is `starts[i]..<starts[i+1]`.
    var starts: [Int] = [0]
    /// The n-gram being built.
    var gram: [UInt8] = []

    var tokenCount: Int { starts.count - 1 }

    mutating func reset() {
        bytes.removeAll(keepingCapacity: true)
        starts.removeAll(keepingCapacity: true)
        starts.append(0)
    }

    /// Keeps the tokens for which `keep` is true, compacting `bytes` and `starts` in place (no allocation per document).
    mutating func filter(_ keep: (UnsafeBufferPointer<UInt8>) -> Bool) {
        var write = 0, kept = 0
        let n = tokenCount
        bytes.withUnsafeMutableBufferPointer { b in
            starts.withUnsafeMutableBufferPointer { st in
                // st[kept] is rewritten only after st[t + 1] (t + 1 >= kept) was read, so each bound is read intact.
                var lo = st[0]
                for t in 0..<n {
                    let hi = st[t + 1]
                    if keep(UnsafeBufferPointer(rebasing: b[lo..<hi])) {
                        if write != lo { for i in lo..<hi { b[write + i - lo] = b[i] } }
                        write += hi - lo
                        kept += 1
                        st[kept] = write
                    }
                    lo = hi
                }
            }
        }
        bytes.removeSubrange(write...)
        starts.removeSubrange((kept + 1)...)
    }
}

/// The token rule `(?u)\b\w\w+\b` over case-folded UTF-8.
enum TokenScanner {
    /// Whether the ASCII byte `b` (< 128) is a word character: a letter, a digit or the underscore (a bit mask per
    /// half of the ASCII range: digits are bits 48-57 of the low half; A-Z, `_` and a-z bits 1-26, 31 and 33-58 of
    /// the high one).
    @inline(__always)
    static func isASCIIWord(_ b: UInt8) -> Bool {
        b < 64 ? (0x03FF_0000_0000_0000 as UInt64) >> UInt64(b) & 1 == 1
            : (0x07FF_FFFE_87FF_FFFE as UInt64) >> UInt64(b &- 64) & 1 == 1
    }

    /// Whether `s` is a word character as Python's `\w` on `str` (alphanumeric or underscore).
    @inline(__always)
    static func isWord(_ s: Unicode.Scalar) -> Bool {
        if s.value < 128 { return isASCIIWord(UInt8(s.value)) }
        let p = s.properties
        switch p.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return true
        default: return p.numericType != nil
        }
    }

    /// Decodes the scalar at `i` (valid UTF-8 assumed, as a Swift string's bytes are); returns it and its length.
    @inline(__always)
    static func decode(_ b: UnsafeBufferPointer<UInt8>, _ i: Int) -> (Unicode.Scalar, Int) {
        let b0 = UInt32(b[i])
        if b0 < 0x80 { return (Unicode.Scalar(UInt8(b0)), 1) }
        if b0 < 0xE0 {
            return (Unicode.Scalar(((b0 & 0x1F) << 6) | (UInt32(b[i + 1]) & 0x3F)) ?? "\u{FFFD}", 2)
        }
        if b0 < 0xF0 {
            let v = ((b0 & 0x0F) << 12) | ((UInt32(b[i + 1]) & 0x3F) << 6) | (UInt32(b[i + 2]) & 0x3F)
            return (Unicode.Scalar(v) ?? "\u{FFFD}", 3)
        }
        let v = ((b0 & 0x07) << 18) | ((UInt32(b[i + 1]) & 0x3F) << 12) | ((UInt32(b[i + 2]) & 0x3F) << 6)
            | (UInt32(b[i + 3]) & 0x3F)
        return (Unicode.Scalar(v) ?? "\u{FFFD}", 4)
    }

    /// Appends the tokens of `b` to `scratch`.
    static func scan(_ b: UnsafeBufferPointer<UInt8>, lowercase: Bool, into scratch: inout TokenScratch) {
        var runScalars = 0  // scalars in the current run of word characters
        var runStart = scratch.bytes.count
        @inline(__always) func endRun(_ scratch: inout TokenScratch) {
            if runScalars >= 2 {
                scratch.starts.append(scratch.bytes.count)
            } else {
                scratch.bytes.removeSubrange(runStart...)
            }
            runScalars = 0
            runStart = scratch.bytes.count
        }
        @inline(__always) func feed(_ s: Unicode.Scalar, _ scratch: inout TokenScratch) {
            if isWord(s) {
                runScalars += 1
                if s.value < 128 { scratch.bytes.append(UInt8(s.value)) } else { scratch.bytes.append(contentsOf: UTF8.encode(s)!) }
            } else if runScalars > 0 || scratch.bytes.count > runStart {
                endRun(&scratch)
            }
        }
        var i = 0
        let n = b.count
        while i < n {
            let c = b[i]
            if c < 0x80 {
                // ASCII fast path: a whole run of ASCII word bytes at once.
                if isASCIIWord(c) {
                    var j = i + 1
                    while j < n && b[j] < 0x80 && isASCIIWord(b[j]) { j += 1 }
                    let start = scratch.bytes.count
                    scratch.bytes.append(contentsOf: UnsafeBufferPointer(rebasing: b[i..<j]))
                    if lowercase {
                        scratch.bytes.withUnsafeMutableBufferPointer { p in
                            for k in start..<p.count where p[k] &- 65 < 26 { p[k] &+= 32 }
                        }
                    }
                    runScalars += j - i
                    i = j
                } else {
                    if runScalars > 0 { endRun(&scratch) }
                    i += 1
                }
                continue
            }
            let (s, len) = decode(b, i)
            if lowercase && s.properties.changesWhenLowercased {
                if s == "\u{03A3}" {
                    feed(finalSigma(b, i, len) ? "\u{03C2}" : "\u{03C3}", &scratch)
                } else {
                    for l in s.properties.lowercaseMapping.unicodeScalars { feed(l, &scratch) }
                }
            } else {
                feed(s, &scratch)
            }
            i += len
        }
        if runScalars > 0 { endRun(&scratch) }
    }

    /// Python's final-sigma rule: a capital sigma at `i` lowers to ς when a cased letter precedes it and none follows
    /// (case-ignorable characters skipped both ways).
    static func finalSigma(_ b: UnsafeBufferPointer<UInt8>, _ i: Int, _ len: Int) -> Bool {
        // Look back.
        var j = i
        var before = false
        while j > 0 {
            var k = j - 1
            while k > 0 && (b[k] & 0xC0) == 0x80 { k -= 1 }
            let (s, _) = decode(b, k)
            if s.properties.isCaseIgnorable { j = k; continue }
            before = s.properties.isCased
            break
        }
        guard before else { return false }
        var f = i + len
        while f < b.count {
            let (s, l) = decode(b, f)
            if s.properties.isCaseIgnorable { f += l; continue }
            return !s.properties.isCased
        }
        return true
    }
}

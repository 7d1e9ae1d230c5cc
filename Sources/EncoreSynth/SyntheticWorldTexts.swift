import EncoreCore
import Foundation

/// How the written-about world is composed: what share of a document's words come from where.
public struct SyntheticTextConfig: Sendable, Equatable {
    /// The share of words from the genre's own vocabulary.
    public var genreShare: Double = 0.06
    /// The share from the vocabulary of the genre's family (shared with sibling genres).
    public var familyShare: Double = 0.06
    /// The share from other genres' vocabularies (writers compare, quote influences, get it wrong).
    public var otherGenreShare: Double = 0.12
    /// The share from the artist's own recurring words (names, places, nicknames, invented words).
    public var artistShare: Double = 0.05
    /// The probability that a word is misspelled (a letter dropped, doubled or swapped).
    public var misspelling: Double = 0.04
    /// The probability that an artist has a bio.
    public var bioProbability: Double = 0.8
    /// The probability that an artist has a tags document.
    public var tagsProbability: Double = 0.6
    /// The probability that the most popular track has a review (the least popular have about a tenth of it).
    public var reviewProbability: Double = 0.7

    /// The defaults.
    public init() {}
}

/// One document of the written-about world: an artist bio, an artist's tags, or a track review.
public struct SyntheticText: Sendable, Equatable {
    /// `bio`, `review` or `tags`.
    public enum Kind: String, Sendable, Equatable { case bio, review, tags }
    /// The artist or track id.
    public var id: String
    /// The kind.
    public var kind: Kind
    /// The text (no tabs or newlines).
    public var text: String
}

extension SyntheticWorld {
    /// Texts about the world's artists and tracks, composed from the genre's vocabulary, its family's, other genres'
    /// (noise), the artist's own recurring words and general English filler, with misspellings; many tracks have no
    /// text at all. Deterministic for a world (seeded by its seed). The genres stay in the truth files only.
    public func texts(_ config: SyntheticTextConfig = SyntheticTextConfig()) -> [SyntheticText] {
        var rng = SplitMix64(seed: self.config.seed ^ 0x7E47_7E47_0000_0001)
        let c = catalog
        let genres = self.config.genres
        let genreWords = genres.map { SyntheticVocabulary.words(forGenre: $0.name) }
        let familyWords = genres.map { SyntheticVocabulary.words(forFamily: $0.family) }
        let filler = SyntheticVocabulary.filler
        // Each artist's recurring words: invented names and places, drawn once.
        var artistWords: [[String]] = []
        for a in 0..<c.artistCount {
            var words = c.artistNames[a].lowercased().split(whereSeparator: { !$0.isLetter }).map(String.init)
                .filter { $0.count > 2 }
            let extra = 3 + Int(rng.next() % 4)
            for _ in 0..<extra { words.append(SyntheticVocabulary.inventedWord(&rng)) }
            artistWords.append(words)
        }
        func pick(_ list: [String], _ rng: inout SplitMix64) -> String { list[Int(rng.next() % UInt64(list.count))] }
        func word(genre g: Int, artist a: Int, _ rng: inout SplitMix64) -> String {
            let u = rng.nextDouble()
            var w: String
            if u < config.genreShare {
                w = pick(genreWords[g], &rng)
            } else if u < config.genreShare + config.familyShare {
                w = pick(familyWords[g], &rng)
            } else if u < config.genreShare + config.familyShare + config.otherGenreShare {
                w = pick(genreWords[Int(rng.next() % UInt64(genres.count))], &rng)
            } else if u < config.genreShare + config.familyShare + config.otherGenreShare + config.artistShare {
                w = pick(artistWords[a], &rng)
            } else {
                w = pick(filler, &rng)
            }
            if rng.nextDouble() < config.misspelling { w = SyntheticVocabulary.misspell(w, &rng) }
            return w
        }
        func sentence(_ n: Int, genre g: Int, artist a: Int, _ rng: inout SplitMix64) -> String {
            var words: [String] = []
            for i in 0..<n {
                var w = word(genre: g, artist: a, &rng)
                if i == 0, let f = w.first { w = f.uppercased() + w.dropFirst() }
                words.append(w)
            }
            return words.joined(separator: " ") + "."
        }
        var out: [SyntheticText] = []
        for a in 0..<c.artistCount {
            let g = Int(c.artistGenre[a])
            let id = ids.artist(Int32(a))
            if rng.nextDouble() < config.bioProbability {
                let sentences = 3 + Int(rng.next() % 4)
                let text = (0..<sentences).map { _ in sentence(8 + Int(rng.next() % 10), genre: g, artist: a, &rng) }
                out.append(SyntheticText(id: id, kind: .bio, text: text.joined(separator: " ")))
            }
            if rng.nextDouble() < config.tagsProbability {
                let n = 3 + Int(rng.next() % 6)
                var tags: [String] = []
                for _ in 0..<n {
                    let u = rng.nextDouble()
                    tags.append(u < 0.35 ? pick(genreWords[g], &rng)
                                : u < 0.55 ? pick(familyWords[g], &rng)
                                : u < 0.8 ? pick(genreWords[Int(rng.next() % UInt64(genres.count))], &rng)
                                : pick(artistWords[a], &rng))
                }
                out.append(SyntheticText(id: id, kind: .tags, text: tags.joined(separator: ", ")))
            }
        }
        // Reviews: popular tracks are written about more often.
        let ranked = (0..<c.trackCount).sorted { c.trackShare[$0] > c.trackShare[$1] }
        var rank = [Int](repeating: 0, count: c.trackCount)
        for (r, t) in ranked.enumerated() { rank[t] = r }
        for t in 0..<c.trackCount {
            let p = config.reviewProbability * (1 - 0.9 * Double(rank[t]) / Double(max(1, c.trackCount)))
            guard rng.nextDouble() < p else { continue }
            let a = Int(c.trackArtist[t]), g = Int(c.trackGenre[t])
            let sentences = 2 + Int(rng.next() % 3)
            let text = (0..<sentences).map { _ in sentence(7 + Int(rng.next() % 9), genre: g, artist: a, &rng) }
            out.append(SyntheticText(id: ids.track(Int32(t)), kind: .review, text: text.joined(separator: " ")))
        }
        return out
    }

    /// Writes ``texts(_:)`` as `texts.tsv` (`id`, `kind`, `text`) into `directory` (through a temporary file and a
    /// rename) and returns the file written.
    public func writeTexts(to directory: String, config: SyntheticTextConfig = SyntheticTextConfig())
        throws(SyntheticWorldError) -> WrittenFile
    {
        let rows = texts(config)
        var bytes: [UInt8] = Array("id\tkind\ttext\n".utf8)
        for r in rows {
            bytes.append(contentsOf: r.id.utf8); bytes.append(9)
            bytes.append(contentsOf: r.kind.rawValue.utf8); bytes.append(9)
            bytes.append(contentsOf: r.text.utf8); bytes.append(10)
        }
        let path = directory + "/texts.tsv"
        try Self.makeDirectory(directory)
        do {
            try AtomicFile.write(bytes, to: path, as: FileError.self)
        } catch {
            throw .cannotWrite(path: path, reason: error.reason)
        }
        return WrittenFile(name: "texts.tsv", rows: rows.count, bytes: bytes.count)
    }
}

/// The words the written-about world is made of.
enum SyntheticVocabulary {
    static let genres: [String: [String]] = [
        "pop": ["catchy", "chorus", "hook", "chart", "radio", "anthem", "glossy", "singalong", "hit", "bubblegum", "idol", "polished", "earworm", "ballad", "teen", "sparkling", "dancefloor", "mainstream"],
        "rock": ["guitar", "riff", "amplifier", "distortion", "drums", "arena", "power", "chords", "stadium", "rocker", "loud", "solo", "bassline", "garage", "fuzz", "headbang", "roadhouse", "rockers"],
        "hip-hop": ["rap", "rhymes", "beats", "flow", "verse", "mc", "turntable", "sample", "bars", "cypher", "freestyle", "boombap", "trap", "mixtape", "dj", "crew", "hustle", "street"],
        "electronic": ["synth", "synthesizer", "sequencer", "modular", "bleeps", "arpeggio", "laptop", "glitch", "producer", "drum machine", "oscillator", "filter", "edm", "rave", "circuit", "digital", "loops", "festival"],
        "rnb": ["smooth", "falsetto", "slow jam", "groove", "sensual", "harmonies", "vocalist", "silky", "melisma", "quiet storm", "heartbreak", "romance", "croon", "velvet", "lover", "ballads", "rhythm", "contemporary"],
        "indie": ["lofi", "jangly", "bedroom", "diy", "underground", "alternative", "shoegaze", "indie", "label", "cassette", "dreamy", "twee", "fanzine", "college", "quirky", "reverb", "indiepop", "outsider"],
        "latin": ["salsa", "reggaeton", "cumbia", "bachata", "merengue", "conga", "timbales", "clave", "tropical", "spanish", "mariachi", "bolero", "dembow", "caribbean", "fiesta", "corazon", "ritmo", "baile"],
        "country": ["twang", "nashville", "honky", "tonk", "pedal steel", "fiddle", "cowboy", "truck", "heartland", "outlaw", "rodeo", "banjo", "barn", "whiskey", "dirt road", "ranch", "yeehaw", "hometown"],
        "metal": ["heavy", "shred", "thrash", "doom", "blast", "growl", "brutal", "riffage", "double bass", "mosh", "headbanger", "scream", "downtuned", "sludge", "grind", "black", "shredding", "darkness"],
        "house": ["four on the floor", "deep", "jackin", "chicago", "diva", "piano stabs", "club", "disco", "garage", "soulful", "warehouse", "dj set", "vocal house", "groovy", "afterhours", "mix", "handclaps", "filtered"],
        "jazz": ["saxophone", "trumpet", "swing", "improvisation", "bebop", "quartet", "trio", "standards", "modal", "brushes", "upright", "fusion", "big band", "solos", "blue note", "changes", "horn", "combo"],
        "soul": ["gospel", "motown", "stax", "horns", "testify", "church", "southern", "northern", "raw", "emotional", "sweet", "belting", "heartfelt", "spiritual", "choir", "retro", "vintage", "sixties"],
        "folk": ["acoustic", "storyteller", "ballad", "fingerpicking", "traditional", "troubadour", "harmonica", "mandolin", "campfire", "protest", "songwriter", "village", "hymn", "murder ballad", "dulcimer", "unplugged", "pastoral", "wandering"],
        "punk": ["fast", "snotty", "diy", "riot", "hardcore", "anarchy", "safety pin", "mohawk", "three chords", "shout", "pogo", "zine", "snarl", "rebellion", "basement", "straight edge", "raw", "noise"],
        "techno": ["detroit", "berlin", "minimal", "industrial", "hypnotic", "warehouse", "kick", "repetitive", "acid", "303", "909", "machine", "pounding", "relentless", "strobe", "dystopian", "peak time", "rave"],
        "classical": ["orchestra", "symphony", "concerto", "sonata", "violin", "cello", "conductor", "opus", "movement", "quartet", "chamber", "baroque", "romantic", "aria", "overture", "piano", "recital", "score"],
        "reggae": ["dub", "skank", "riddim", "roots", "rasta", "jamaica", "kingston", "offbeat", "bassline", "dancehall", "sound system", "one drop", "echo", "island", "irie", "lovers rock", "toasting", "zion"],
        "blues": ["delta", "twelve bar", "slide", "harp", "juke joint", "mississippi", "shuffle", "bent notes", "sorrow", "chicago", "bottleneck", "lament", "crossroads", "boogie", "moan", "porch", "weary", "bluesman"],
        "funk": ["groove", "slap bass", "syncopated", "brass", "wah", "james brown", "clavinet", "tight", "funky", "horn section", "breakbeat", "strut", "rhythm guitar", "on the one", "disco", "jam", "sweaty", "get down"],
        "ambient": ["drone", "texture", "atmospheric", "calm", "soundscape", "ethereal", "meditative", "field recording", "pads", "slowly", "minimalist", "floating", "spacious", "serene", "haze", "tape loops", "stillness", "immersive"],
    ]

    static let families: [String: [String]] = [
        "pop": ["catchy", "radio", "single", "video", "star", "charts"],
        "rock": ["guitar", "band", "drummer", "riffs", "tour", "amps"],
        "urban": ["groove", "vocals", "beat", "rhythm", "city", "crew"],
        "electronic": ["electronic", "club", "synths", "beats", "producer", "remix"],
        "world": ["rhythm", "dance", "percussion", "island", "tradition", "carnival"],
        "roots": ["acoustic", "story", "roots", "harmonica", "porch", "americana"],
        "jazz": ["improvised", "ensemble", "jazz", "session", "horns", "swing"],
        "classical": ["orchestral", "composer", "performance", "ensemble", "score", "strings"],
    ]

    static let filler: [String] = """
        the a an and of to in on with for from by at as is was were are be been this that these those it its their \
        his her they we our album record song songs track tracks music sound sounds new first second last year years \
        time band singer artist release released debut live show tour fans listeners critics writer review best \
        great good strong little bit long short early late late night summer winter city home road love heart life \
        world people friends family story stories moment moments feel feeling feels still again ever never always \
        often sometimes quite very really more most less much many some every each other another one two three \
        four five side single video label producer studio session sessions recorded recording mix version edition \
        work career influence influences style era scene sound classic modern fresh familiar simple careful warm \
        bright dark soft hard slow quick open closing opening number favourite surprise returns turns makes made \
        takes took brings brought keeps kept finds found feels felt comes came goes went lets lead leads listen
        """.split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init)

    static func words(forGenre name: String) -> [String] {
        genres[name] ?? [name, name + "y", name + "core", name + "wave"]
    }

    static func words(forFamily name: String) -> [String] {
        families[name] ?? [name]
    }

    static let syllables = ["ka", "lo", "ve", "ri", "mon", "sa", "tel", "dra", "vo", "lin", "que", "bar", "zen", "mi",
                            "or", "ta", "nu", "pel", "gra", "sil", "fe", "dor", "ix", "al"]

    /// An invented word of two or three syllables.
    static func inventedWord(_ rng: inout SplitMix64) -> String {
        let n = 2 + Int(rng.next() % 2)
        return (0..<n).map { _ in syllables[Int(rng.next() % UInt64(syllables.count))] }.joined()
    }

    /// `word` with one letter dropped, doubled or swapped with the next.
    static func misspell(_ word: String, _ rng: inout SplitMix64) -> String {
        var c = Array(word)
        guard c.count >= 4 else { return word }
        let i = 1 + Int(rng.next() % UInt64(c.count - 2))
        switch rng.next() % 3 {
        case 0: c.remove(at: i)
        case 1: c.insert(c[i], at: i)
        default: c.swapAt(i, i + 1)
        }
        return String(c)
    }
}

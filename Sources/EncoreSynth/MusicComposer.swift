import EncoreCore
import Foundation

/// The instruments and patterns an artist keeps on every track: General MIDI programs for the lead, chords and bass,
/// a drum kit and a drum pattern, and the rhythms of its bass, chords and lead. Drawn once per artist from its genre
/// family's pools, so a track's audio carries its artist's and its genre's signature.
public struct ArtistPalette: Sendable, Equatable, Hashable {
    /// How the drums play a 4/4 bar; every pattern has the kick on beats 1 and 3 and the snare (or clap, or pedal
    /// hi-hat) on 2 and 4, so the beat is unambiguous.
    public enum DrumPattern: String, Sendable, CaseIterable {
        /// Kick on every beat, clap on 2 and 4, open hi-hat on the off-beats.
        case fourOnTheFloor = "four-on-the-floor"
        /// Kick on 1 and 3, snare on 2 and 4, closed hi-hat on eighths.
        case backbeat
        /// Kick on every beat, snare on 2 and 4, closed hi-hat on eighths, crash every fourth bar.
        case drive
        /// Kick on 1 and 3 and the "and" of 3, snare on 2 and 4, hi-hat on sixteenths.
        case sixteenths
        /// Ride on beats and swung eighths, soft kick on every beat, pedal hi-hat on 2 and 4.
        case swing
    }

    /// How bass or chords fill a bar.
    public enum Rhythm: String, Sendable, CaseIterable {
        /// One note (or chord) held for the bar.
        case whole
        /// On beats 1 and 3.
        case halves
        /// On every beat.
        case quarters
        /// On every eighth.
        case eighths
        /// On the off-beats (the "and" of every beat).
        case offbeats
    }

    /// The lead's General MIDI program (0-based).
    public var lead: UInt8
    /// The chords' program.
    public var chords: UInt8
    /// The bass's program.
    public var bass: UInt8
    /// The drum kit (a preset of bank 128: 0 Standard, 8 Room, 16 Power, 24 Electronic, 25 TR-808, 32 Jazz, 40 Brush,
    /// 48 Orchestra).
    public var drumKit: UInt8
    /// The drum pattern.
    public var drums: DrumPattern
    /// The bass rhythm.
    public var bassRhythm: Rhythm
    /// The chords' rhythm.
    public var chordRhythm: Rhythm
    /// The lead's rhythm: which of a bar's eight eighths start a note (bit i = eighth i); beat 1 always does.
    public var leadRhythm: UInt8

    /// `lead:P,chords:P,bass:P,drums:K` with General MIDI program numbers (0-based) and the kit, then the patterns.
    public var summary: String {
        "lead:\(lead),chords:\(chords),bass:\(bass),drums:\(drumKit),pattern:\(drums.rawValue),"
            + "bass_rhythm:\(bassRhythm.rawValue),chord_rhythm:\(chordRhythm.rawValue)"
    }
}

/// The musical truth of one composed track: what its audio renders, exactly.
public struct ComposedPiece: Sendable, Equatable {
    /// The track's index in the catalog.
    public var track: Int32
    /// The tempo in beats (quarter notes) per minute: exactly `60 000 000 / microsecondsPerQuarter`.
    public var tempoBPM: Double { 60_000_000 / Double(microsecondsPerQuarter) }
    /// The tempo as the MIDI file stores it.
    public var microsecondsPerQuarter: UInt32
    /// The tonic's pitch class, 0-11 with C = 0.
    public var key: Int
    /// Major (`true`) or minor.
    public var major: Bool
    /// The chord roots of the repeating progression, in semitones above the tonic, one chord a bar.
    public var progression: [Int]
    /// The artist's palette.
    public var palette: ArtistPalette
    /// The length to render, in seconds.
    public var seconds: Double
    /// The Standard MIDI File: a tempo track, then drums, bass, chords and lead.
    public var midi: StandardMIDIFile

    /// The key's name spelled with sharps, e.g. `F#`.
    public var keyName: String { ComposedPiece.pitchNames[key] }

    /// Pitch-class names, C = 0.
    public static let pitchNames = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"]
}

/// Composes a short piece for every track of a synthetic world from its traits: its genre's tempo range, mode
/// probability and energy, a random key, and its artist's palette (``ArtistPalette``). Deterministic for a world
/// seed: draws come from the world's `audio` stream (one sub-stream per track, one per artist).
///
/// A piece is drums, bass, chords and a lead over a repeating four-bar progression that starts and ends on the tonic
/// (I-IV-V-I, I-IV-I-V or I-ii-V-I in major; i-iv-V-i, i-iv-i-V or i-VI-V-i in minor, with the dominant major),
/// the bass on the chord roots, so the key is audible; the kick on the beats makes the tempo audible.
public struct MusicComposer: Sendable {
    /// MIDI channels (0-based): drums on channel 10 as General MIDI wants.
    public static let drumChannel: UInt8 = 9, bassChannel: UInt8 = 0, chordChannel: UInt8 = 1, leadChannel: UInt8 = 2
    /// Ticks per quarter note of the written files.
    public static let ticksPerQuarter = 480

    /// The world composed for.
    public let world: SyntheticWorld
    /// The length of each piece in seconds.
    public let seconds: Double
    private let palettes: [ArtistPalette]

    /// A composer for `world`'s tracks, `seconds` long each (an excerpt: the piece covers exactly that span).
    public init(world: SyntheticWorld, seconds: Double = 30) {
        self.world = world
        self.seconds = seconds
        let c = world.catalog
        palettes = (0..<c.artistCount).map { a in
            let genre = world.config.genres[Int(c.artistGenre[a])]
            var rng = SyntheticWorld.rng(seed: world.config.seed, stream: .audio, index: (1 << 40) | UInt64(a))
            return Self.drawPalette(family: genre.family, energy: genre.energy, &rng)
        }
    }

    /// The palette of artist `artist`.
    public func palette(ofArtist artist: Int32) -> ArtistPalette { palettes[Int(artist)] }

    /// Composes track `track`'s piece.
    public func compose(track: Int32) -> ComposedPiece {
        let c = world.catalog
        let artist = c.trackArtist[Int(track)]
        let genre = world.config.genres[Int(c.trackGenre[Int(track)])]
        var rng = SyntheticWorld.rng(seed: world.config.seed, stream: .audio, index: UInt64(track))
        let bpm = genre.tempoMin + rng.nextDouble() * max(0, genre.tempoMax - genre.tempoMin)
        let mpq = UInt32((60_000_000 / bpm).rounded())
        let key = rng.below(12)
        let major = rng.nextDouble() < genre.majorModeProbability
        let progressions = major ? Self.majorProgressions : Self.minorProgressions
        let progression = progressions[rng.below(progressions.count)]
        return Self.compose(
            track: track, microsecondsPerQuarter: mpq, key: key, major: major, progression: progression,
            palette: palettes[Int(artist)], energy: genre.energy, seconds: seconds, rng: &rng)
    }

    // MARK: Harmony

    /// Major progressions: (root in semitones above the tonic, minor chord?), one chord a bar.
    static let majorProgressions: [[(Int, Bool)]] = [
        [(0, false), (5, false), (7, false), (0, false)],  // I IV V I
        [(0, false), (5, false), (0, false), (7, false)],  // I IV I V
        [(0, false), (2, true), (7, false), (0, false)],  // I ii V I
    ]
    /// Minor progressions; the dominant is major (harmonic minor's leading tone).
    static let minorProgressions: [[(Int, Bool)]] = [
        [(0, true), (5, true), (7, false), (0, true)],  // i iv V i
        [(0, true), (5, true), (0, true), (7, false)],  // i iv i V
        [(0, true), (8, false), (7, false), (0, true)],  // i VI V i
    ]

    // MARK: Palettes

    /// Instrument pools per genre family: lead, chords, bass programs and drum kits.
    static func pools(family: String) -> (lead: [UInt8], chords: [UInt8], bass: [UInt8], kits: [UInt8]) {
        switch family {
        case "rock": return ([29, 30, 27, 81], [29, 30, 18, 27], [33, 34, 35], [0, 16, 8])
        case "urban": return ([4, 81, 65, 11, 80], [4, 5, 16, 89], [38, 39, 33], [25, 24, 0])
        case "electronic": return ([80, 81, 84, 87, 98], [88, 89, 90, 94, 50], [38, 39, 87], [24, 25])
        case "world": return ([24, 56, 73, 11, 21], [24, 25, 0, 21], [32, 33], [0, 8])
        case "roots": return ([25, 22, 105, 40, 24], [25, 24, 0, 19], [32, 33], [8, 40, 0])
        case "jazz": return ([65, 66, 56, 11, 0], [0, 4, 26], [32], [32, 40])
        case "classical": return ([40, 73, 71, 68, 0], [48, 49, 0, 46], [42, 43], [48])
        default: return ([80, 0, 56, 11, 81], [4, 0, 88, 89], [33, 38], [0, 24])  // pop and anything else
        }
    }

    static func drawPalette(family: String, energy: Double, _ rng: inout SplitMix64) -> ArtistPalette {
        let p = pools(family: family)
        let drums: [ArtistPalette.DrumPattern]
        let bass: [ArtistPalette.Rhythm]
        let chords: [ArtistPalette.Rhythm]
        switch family {
        case "electronic": (drums, bass, chords) = ([.fourOnTheFloor, .sixteenths], [.eighths, .offbeats, .quarters], [.whole, .offbeats, .halves])
        case "rock": (drums, bass, chords) = ([.drive, .backbeat], [.eighths, .quarters], [.eighths, .halves, .quarters])
        case "jazz": (drums, bass, chords) = ([.swing], [.quarters], [.halves, .offbeats, .quarters])
        case "classical": (drums, bass, chords) = ([.backbeat, .swing], [.halves, .whole, .quarters], [.whole, .halves])
        case "world": (drums, bass, chords) = ([.backbeat, .sixteenths, .fourOnTheFloor], [.quarters, .halves], [.offbeats, .quarters])
        case "urban": (drums, bass, chords) = ([.sixteenths, .backbeat], [.halves, .quarters, .eighths], [.whole, .halves, .offbeats])
        default: (drums, bass, chords) = ([.backbeat, .fourOnTheFloor, .drive], [.quarters, .halves, .eighths], [.whole, .halves, .quarters])
        }
        var lead = UInt8(1)  // beat 1 always starts a note
        let density = 0.25 + 0.5 * energy
        for i in 1..<8 where rng.nextDouble() < density { lead |= UInt8(1) << UInt8(i) }
        return ArtistPalette(
            lead: p.lead[rng.below(p.lead.count)], chords: p.chords[rng.below(p.chords.count)],
            bass: p.bass[rng.below(p.bass.count)], drumKit: p.kits[rng.below(p.kits.count)],
            drums: drums[rng.below(drums.count)], bassRhythm: bass[rng.below(bass.count)],
            chordRhythm: chords[rng.below(chords.count)], leadRhythm: lead)
    }

    // MARK: Composition

    /// Builds the piece's MIDI file from its drawn parameters.
    static func compose(
        track: Int32, microsecondsPerQuarter mpq: UInt32, key: Int, major: Bool, progression: [(Int, Bool)],
        palette: ArtistPalette, energy: Double, seconds: Double, rng: inout SplitMix64
    ) -> ComposedPiece {
        let tpq = ticksPerQuarter
        let step = tpq / 4  // a sixteenth
        let bar = 4 * tpq
        let secondsPerBar = 4 * Double(mpq) / 1_000_000
        let bars = max(1, Int((seconds / secondsPerBar).rounded(.up)) + 1)
        let velocity = UInt8(min(120, 62 + Int(50 * energy)))

        var conductor: [MIDIEvent] = [
            MIDIEvent(tick: 0, .trackName("tempo")),
            MIDIEvent(tick: 0, .timeSignature(numerator: 4, denominatorPower: 2)),
            MIDIEvent(tick: 0, .tempo(microsecondsPerQuarter: mpq)),
        ]
        conductor.sort { $0.order < $1.order }

        func note(_ events: inout [MIDIEvent], _ ch: UInt8, _ key: Int, _ at: Int, _ length: Int, _ vel: UInt8) {
            let k = UInt8(clamping: max(0, min(127, key)))
            events.append(MIDIEvent(tick: at, .noteOn(channel: ch, key: k, velocity: vel)))
            events.append(MIDIEvent(tick: at + max(1, length), .noteOff(channel: ch, key: k)))
        }
        func header(_ name: String, _ ch: UInt8, _ program: UInt8) -> [MIDIEvent] {
            [MIDIEvent(tick: 0, .trackName(name)), MIDIEvent(tick: 0, .programChange(channel: ch, program: program)),
             MIDIEvent(tick: 0, .controlChange(channel: ch, controller: 7, value: 100))]
        }

        // Drums.
        let d = drumChannel
        var drums = header("drums", d, palette.drumKit)
        for b in 0..<bars {
            let t0 = b * bar
            let accent = velocity, soft = UInt8(Double(velocity) * 0.6)
            switch palette.drums {
            case .fourOnTheFloor:
                for beat in 0..<4 { note(&drums, d, 36, t0 + beat * tpq, step, accent) }
                for beat in [1, 3] { note(&drums, d, 39, t0 + beat * tpq, step, accent) }
                for beat in 0..<4 { note(&drums, d, 46, t0 + beat * tpq + 2 * step, step, soft) }
            case .backbeat, .drive:
                let kicks = palette.drums == .drive ? [0, 1, 2, 3] : [0, 2]
                for beat in kicks { note(&drums, d, 36, t0 + beat * tpq, step, accent) }
                for beat in [1, 3] { note(&drums, d, 38, t0 + beat * tpq, step, accent) }
                for e in 0..<8 { note(&drums, d, 42, t0 + e * 2 * step, step, e % 2 == 0 ? soft : soft / 2 + 10) }
                if palette.drums == .drive && b % 4 == 0 { note(&drums, d, 49, t0, 4 * step, accent) }
            case .sixteenths:
                for beat in [0, 2] { note(&drums, d, 36, t0 + beat * tpq, step, accent) }
                note(&drums, d, 36, t0 + 2 * tpq + 2 * step, step, soft)
                for beat in [1, 3] { note(&drums, d, 38, t0 + beat * tpq, step, accent) }
                for s in 0..<16 { note(&drums, d, 42, t0 + s * step, step / 2, s % 4 == 0 ? soft : soft / 2 + 8) }
            case .swing:
                for beat in 0..<4 {
                    note(&drums, d, 51, t0 + beat * tpq, step, soft + 10)
                    note(&drums, d, 36, t0 + beat * tpq, step, soft)
                }
                for beat in [1, 3] {
                    note(&drums, d, 44, t0 + beat * tpq, step, soft)
                    note(&drums, d, 51, t0 + beat * tpq + tpq * 2 / 3, step, soft / 2 + 10)
                }
            }
        }

        // Bass: chord roots between E1 (28) and D#2 (39) plus an octave up: 36...47.
        let bassCh = bassChannel
        var bassEvents = header("bass", bassCh, palette.bass)
        // Chords: close triads between G3 (55) and F#4 (66).
        let chordCh = chordChannel
        var chordEvents = header("chords", chordCh, palette.chords)
        func onsets(_ r: ArtistPalette.Rhythm) -> [(Int, Int)] {  // (start, length) in sixteenths
            switch r {
            case .whole: return [(0, 16)]
            case .halves: return [(0, 8), (8, 8)]
            case .quarters: return (0..<4).map { ($0 * 4, 4) }
            case .eighths: return (0..<8).map { ($0 * 2, 2) }
            case .offbeats: return (0..<4).map { ($0 * 4 + 2, 2) }
            }
        }
        for b in 0..<bars {
            let (root, minor) = progression[b % progression.count]
            let pc = (key + root) % 12
            let bassKey = 36 + pc
            for (s, len) in onsets(palette.bassRhythm) {
                note(&bassEvents, bassCh, bassKey, b * bar + s * step, len * step - step / 4, velocity)
            }
            // The tonic's bass note is held under the first beat of every bar whatever the rhythm: offbeat bass
            // patterns still start their bars on the root.
            if palette.bassRhythm == .offbeats { note(&bassEvents, bassCh, bassKey, b * bar, step, velocity) }
            let tones = [pc, (pc + (minor ? 3 : 4)) % 12, (pc + 7) % 12].map { 55 + ($0 + 12 - 7) % 12 }
            let chordVelocity = UInt8(Double(velocity) * 0.7)
            for (s, len) in onsets(palette.chordRhythm) {
                for k in tones { note(&chordEvents, chordCh, k, b * bar + s * step, len * step - step / 4, chordVelocity) }
            }
        }

        // Lead: a chord tone on beat 1 of each bar, then steps through the scale, on the artist's rhythm, between
        // C5 (72) and B5 (83) shifted to the key.
        let leadCh = leadChannel
        var leadEvents = header("lead", leadCh, palette.lead)
        let scale = major ? [0, 2, 4, 5, 7, 9, 11] : [0, 2, 3, 5, 7, 8, 10]
        var degree = 0
        let starts = (0..<8).filter { palette.leadRhythm & (UInt8(1) << UInt8($0)) != 0 }
        for b in 0..<bars {
            let root = progression[b % progression.count].0
            let dominant = !major && root == 7
            for (n, e) in starts.enumerated() {
                if n == 0 {
                    // A chord tone: the root, third or fifth, as a scale degree of the key.
                    let chordDegrees = [scale.firstIndex(of: root) ?? 0]
                        .flatMap { [$0, $0 + 2, $0 + 4] }
                    degree = chordDegrees[rng.below(3)]
                } else {
                    degree += [-2, -1, -1, 1, 1, 2][rng.below(6)]
                    degree = max(-3, min(9, degree))
                }
                let octave = degree >= 0 ? degree / 7 : -((6 - degree) / 7)
                let idx = degree - 7 * octave
                var pitch = scale[idx]
                if dominant && pitch == 10 { pitch = 11 }  // harmonic minor's leading tone over V
                let keyNote = 72 + key + pitch + 12 * octave - (key >= 6 ? 12 : 0)
                let next = n + 1 < starts.count ? starts[n + 1] : 8
                note(&leadEvents, leadCh, keyNote, b * bar + e * 2 * step, (next - e) * 2 * step - step / 2, velocity)
            }
        }

        let midi = StandardMIDIFile(
            ticksPerQuarter: tpq, tracks: [conductor, drums, bassEvents, chordEvents, leadEvents])
        return ComposedPiece(
            track: track, microsecondsPerQuarter: mpq, key: key, major: major, progression: progression.map(\.0),
            palette: palette, seconds: seconds, midi: midi)
    }
}

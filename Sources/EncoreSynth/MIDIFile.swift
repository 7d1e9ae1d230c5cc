import EncoreCore

/// One timed event of a MIDI track, at an absolute tick.
public struct MIDIEvent: Sendable, Equatable {
    /// What happens.
    public enum Kind: Sendable, Equatable {
        /// A note starts (`velocity` 1...127) on `channel` 0...15.
        case noteOn(channel: UInt8, key: UInt8, velocity: UInt8)
        /// A note stops (written as a note-off with release velocity 64).
        case noteOff(channel: UInt8, key: UInt8)
        /// The channel's instrument becomes General MIDI program `program` (0...127).
        case programChange(channel: UInt8, program: UInt8)
        /// A controller change (volume 7, pan 10, reverb send 91...).
        case controlChange(channel: UInt8, controller: UInt8, value: UInt8)
        /// The tempo, in microseconds per quarter note (meta event 0x51).
        case tempo(microsecondsPerQuarter: UInt32)
        /// The time signature `numerator/2^denominatorPower` (meta event 0x58; 24 clocks a click, 8 32nds a quarter).
        case timeSignature(numerator: UInt8, denominatorPower: UInt8)
        /// The track's name (meta event 0x03).
        case trackName(String)
    }

    /// The absolute time in ticks from the start.
    public var tick: Int
    /// The event.
    public var kind: Kind

    public init(tick: Int, _ kind: Kind) {
        self.tick = tick
        self.kind = kind
    }

    /// Events at the same tick are written meta first, then program and controller changes, note-offs, note-ons.
    var order: Int {
        switch kind {
        case .trackName, .tempo, .timeSignature: return 0
        case .programChange, .controlChange: return 1
        case .noteOff: return 2
        case .noteOn: return 3
        }
    }
}

/// A Standard MIDI File of format 1: a list of tracks sharing one tick resolution. The first track conventionally
/// holds the tempo and time signature.
public struct StandardMIDIFile: Sendable, Equatable {
    /// Ticks per quarter note (the header's division; 1...32767).
    public var ticksPerQuarter: Int
    /// The tracks (each sorted on writing; an end-of-track event is added).
    public var tracks: [[MIDIEvent]]

    public init(ticksPerQuarter: Int, tracks: [[MIDIEvent]]) {
        self.ticksPerQuarter = ticksPerQuarter
        self.tracks = tracks
    }

    /// The events of `track` in the order they are written (by tick, then meta, changes, offs, ons; stable).
    public func sortedEvents(_ track: Int) -> [MIDIEvent] {
        tracks[track].enumerated().sorted { a, b in
            (a.element.tick, a.element.order, a.offset) < (b.element.tick, b.element.order, b.offset)
        }.map(\.element)
    }

    /// The file's bytes: an `MThd` chunk (format 1) and one `MTrk` chunk per track, delta times as variable-length
    /// quantities, no running status.
    public func bytes() -> [UInt8] {
        var out: [UInt8] = Array("MThd".utf8)
        Self.append32(6, to: &out)
        Self.append16(1, to: &out)
        Self.append16(UInt16(tracks.count), to: &out)
        Self.append16(UInt16(max(1, min(32_767, ticksPerQuarter))), to: &out)
        for t in tracks.indices {
            var body: [UInt8] = []
            var last = 0
            for e in sortedEvents(t) {
                let tick = max(e.tick, last)
                Self.appendVLQ(UInt32(tick - last), to: &body)
                last = tick
                Self.append(e.kind, to: &body)
            }
            body += [0x00, 0xFF, 0x2F, 0x00]
            out += Array("MTrk".utf8)
            Self.append32(UInt32(body.count), to: &out)
            out += body
        }
        return out
    }

    /// Writes the file atomically.
    public func write(to path: String) throws(FileError) {
        let data = bytes()
        try AtomicFile.write(to: path, as: FileError.self) { (out) throws(FileError) in try out.write(data, as: FileError.self) }
    }

    static func append(_ kind: MIDIEvent.Kind, to out: inout [UInt8]) {
        switch kind {
        case .noteOn(let c, let k, let v): out += [0x90 | (c & 0x0F), k & 0x7F, max(1, v & 0x7F)]
        case .noteOff(let c, let k): out += [0x80 | (c & 0x0F), k & 0x7F, 64]
        case .programChange(let c, let p): out += [0xC0 | (c & 0x0F), p & 0x7F]
        case .controlChange(let c, let n, let v): out += [0xB0 | (c & 0x0F), n & 0x7F, v & 0x7F]
        case .tempo(let us):
            let v = min(us, 0xFF_FFFF)
            out += [0xFF, 0x51, 0x03, UInt8(v >> 16), UInt8((v >> 8) & 0xFF), UInt8(v & 0xFF)]
        case .timeSignature(let n, let d): out += [0xFF, 0x58, 0x04, n, d, 24, 8]
        case .trackName(let name):
            let text = Array(name.utf8.prefix(127))
            out += [0xFF, 0x03]
            appendVLQ(UInt32(text.count), to: &out)
            out += text
        }
    }

    /// A variable-length quantity: 7 bits a byte, most significant first, the high bit set on all but the last.
    static func appendVLQ(_ value: UInt32, to out: inout [UInt8]) {
        var v = value & 0x0FFF_FFFF
        var stack: [UInt8] = [UInt8(v & 0x7F)]
        v >>= 7
        while v > 0 {
            stack.append(UInt8(v & 0x7F) | 0x80)
            v >>= 7
        }
        out += stack.reversed()
    }

    static func append16(_ v: UInt16, to out: inout [UInt8]) { out += [UInt8(v >> 8), UInt8(v & 0xFF)] }
    static func append32(_ v: UInt32, to out: inout [UInt8]) {
        out += [UInt8(v >> 24), UInt8((v >> 16) & 0xFF), UInt8((v >> 8) & 0xFF), UInt8(v & 0xFF)]
    }
}

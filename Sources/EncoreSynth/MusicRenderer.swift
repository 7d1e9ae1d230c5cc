internal import CFluidSynth
import EncoreAudio
import EncoreCore
import Foundation

/// Renders composed pieces to audio with FluidSynth and a General MIDI SoundFont.
///
/// The renderer is a description (SoundFont, sample rate, gain) that threads share; each thread makes its own
/// ``Synthesizer`` (FluidSynth objects are not shared between threads). FluidSynth keeps loaded sample data in a
/// process-wide cache, so the SoundFont's samples are read from disk once however many synthesizers load it.
///
/// ```swift
/// let renderer = try MusicRenderer(soundFont: MusicRenderer.defaultSoundFont, sampleRate: 22_050)
/// let synth = try renderer.makeSynthesizer()
/// let samples = try synth.render(piece)          // mono, piece.seconds long
/// ```
public struct MusicRenderer: Sendable {
    /// Debian's fluid-soundfont-gm.
    public static let defaultSoundFont = "/usr/share/sounds/sf2/FluidR3_GM.sf2"

    /// The SoundFont file (SF2 or SF3).
    public let soundFont: String
    /// The output sample rate in Hz.
    public let sampleRate: Int
    /// FluidSynth's master gain.
    public let gain: Double
    /// The most voices sounding at once; beyond it FluidSynth stops the least important (released notes first,
    /// drums last). Rendering time grows with it.
    public let polyphony: Int
    /// How FluidSynth interpolates between a sample's points when it plays it at another pitch.
    public let interpolation: Interpolation

    /// FluidSynth's sample interpolation methods.
    public enum Interpolation: Int32, Sendable, CaseIterable {
        /// Straight lines between neighbouring points: the cheapest that keeps notes clean.
        case linear = 1
        /// A fourth-order polynomial (FluidSynth's default): less aliasing of high partials, slower.
        case fourthOrder = 4
        /// A seventh-order polynomial: FluidSynth's best and slowest.
        case seventhOrder = 7
    }

    /// Checks that the SoundFont is a readable file; loading it as a SoundFont happens in ``makeSynthesizer()``.
    public init(
        soundFont: String = MusicRenderer.defaultSoundFont, sampleRate: Int = 22_050, gain: Double = 0.6,
        polyphony: Int = 20, interpolation: Interpolation = .linear
    ) throws(AudioError) {
        guard polyphony >= 1, polyphony <= 1_024 else {
            throw .invalidParameter(name: "polyphony", reason: "\(polyphony) is not in 1...1024")
        }
        guard sampleRate >= 8_000, sampleRate <= 96_000 else {
            throw .invalidParameter(name: "sample rate", reason: "\(sampleRate) Hz is not in 8000...96000 (FluidSynth)")
        }
        guard gain > 0, gain <= 10 else {
            throw .invalidParameter(name: "gain", reason: "\(gain) is not in (0, 10]")
        }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: soundFont, isDirectory: &isDirectory) else {
            throw .file(FileError(path: soundFont, operation: "open the SoundFont", reason: "no such file"))
        }
        guard !isDirectory.boolValue else {
            throw .file(FileError(path: soundFont, operation: "open the SoundFont", reason: "it is a directory"))
        }
        guard FileManager.default.isReadableFile(atPath: soundFont) else {
            throw .file(FileError(path: soundFont, operation: "open the SoundFont", reason: "permission denied"))
        }
        self.soundFont = soundFont
        self.sampleRate = sampleRate
        self.gain = gain
        self.polyphony = polyphony
        self.interpolation = interpolation
        MusicRenderer.silenceLibraryLog
    }

    /// FluidSynth prints its own errors to standard error; Encore reports them as typed errors instead.
    private static let silenceLibraryLog: Void = {
        for level in [FLUID_PANIC, FLUID_ERR, FLUID_WARN, FLUID_INFO, FLUID_DBG] {
            _ = fluid_set_log_function(Int32(level.rawValue), nil, nil)
        }
    }()

    /// A synthesizer with the SoundFont loaded, for use on one thread.
    public func makeSynthesizer() throws(AudioError) -> Synthesizer {
        try Synthesizer(renderer: self)
    }

    /// A SoundFont loaded into FluidSynth, for use on one thread. Every piece is rendered by a new FluidSynth synth
    /// that borrows this SoundFont, so a piece sounds the same whatever was rendered before it.
    ///
    /// A reused synth is not reset by `fluid_synth_system_reset`: its voice objects keep state from their last notes
    /// (a note rendered again differs from its first rendering), and a call's unused frames of a 64-frame block come
    /// out at the start of the next call. Creating a synth costs well under a millisecond;
    /// loading the SoundFont (hundreds of milliseconds) happens once per ``Synthesizer``.
    public final class Synthesizer {
        /// The description it was made from.
        public let renderer: MusicRenderer
        private let settings: OpaquePointer
        private let loader: OpaquePointer
        private let soundFont: OpaquePointer

        init(renderer: MusicRenderer) throws(AudioError) {
            guard let settings = Self.makeSettings(renderer) else {
                throw .invalidParameter(name: "synthesizer", reason: "FluidSynth could not allocate its settings")
            }
            guard let loader = new_fluid_synth(settings) else {
                delete_fluid_settings(settings)
                throw .invalidParameter(name: "synthesizer", reason: "FluidSynth could not create a synth")
            }
            let id = fluid_synth_sfload(loader, renderer.soundFont, 0)
            guard id != FLUID_FAILED, let soundFont = fluid_synth_get_sfont_by_id(loader, id) else {
                delete_fluid_synth(loader)
                delete_fluid_settings(settings)
                throw .unsupported(path: renderer.soundFont, reason: "FluidSynth cannot load it as a SoundFont (SF2/SF3)")
            }
            self.renderer = renderer
            self.settings = settings
            self.loader = loader
            self.soundFont = soundFont
        }

        deinit {
            delete_fluid_synth(loader)
            delete_fluid_settings(settings)
        }

        static func makeSettings(_ renderer: MusicRenderer) -> OpaquePointer? {
            guard let settings = new_fluid_settings() else { return nil }
            _ = fluid_settings_setnum(settings, "synth.sample-rate", Double(renderer.sampleRate))
            _ = fluid_settings_setnum(settings, "synth.gain", renderer.gain)
            _ = fluid_settings_setint(settings, "synth.reverb.active", 0)
            _ = fluid_settings_setint(settings, "synth.chorus.active", 0)
            _ = fluid_settings_setint(settings, "synth.threadsafe-api", 0)
            _ = fluid_settings_setint(settings, "synth.polyphony", Int32(renderer.polyphony))
            return settings
        }

        /// Renders `piece` from its start for `piece.seconds` seconds: mono (the mean of FluidSynth's two channels),
        /// with a 20 ms fade at the end so the excerpt does not end in a click.
        public func render(_ piece: ComposedPiece) throws(AudioError) -> [Float] {
            try render(piece.midi, microsecondsPerQuarter: piece.microsecondsPerQuarter, seconds: piece.seconds)
        }

        /// Renders the events of `midi` (at one constant tempo) for `seconds` seconds, mono.
        public func render(_ midi: StandardMIDIFile, microsecondsPerQuarter: UInt32, seconds: Double)
            throws(AudioError) -> [Float]
        {
            guard seconds > 0, seconds <= 3_600 else {
                throw .invalidParameter(name: "duration", reason: "\(seconds) s is not in (0, 3600]")
            }
            let rate = Double(renderer.sampleRate)
            let total = Int((seconds * rate).rounded())
            let block = Self.blockFrames
            // FluidSynth renders 64 frames at a time and applies events between blocks: events are placed on the
            // nearest block boundary and every request is a whole number of blocks.
            let rendered = (total + block - 1) / block * block
            let framesPerTick = Double(microsecondsPerQuarter) / 1_000_000 / Double(midi.ticksPerQuarter) * rate
            var events: [(frame: Int, order: Int, track: Int, index: Int, kind: MIDIEvent.Kind)] = []
            for t in midi.tracks.indices {
                for (i, e) in midi.sortedEvents(t).enumerated() {
                    let frame = Int((Double(e.tick) * framesPerTick / Double(block)).rounded()) * block
                    events.append((frame, e.order, t, i, e.kind))
                }
            }
            events.sort { ($0.frame, $0.order, $0.track, $0.index) < ($1.frame, $1.order, $1.track, $1.index) }

            guard let synth = new_fluid_synth(settings) else {
                throw .invalidParameter(name: "synthesizer", reason: "FluidSynth could not create a synth")
            }
            defer {
                // The SoundFont belongs to the loader: take it back before the synth would delete it.
                _ = fluid_synth_system_reset(synth)
                _ = fluid_synth_remove_sfont(synth, soundFont)
                delete_fluid_synth(synth)
            }
            guard fluid_synth_add_sfont(synth, soundFont) != FLUID_FAILED else {
                throw .invalidParameter(name: "synthesizer", reason: "FluidSynth could not add the loaded SoundFont")
            }
            _ = fluid_synth_set_interp_method(synth, -1, renderer.interpolation.rawValue)
            var stereo = [Float](repeating: 0, count: 2 * rendered)
            var done = 0
            var failed = false
            stereo.withUnsafeMutableBufferPointer { out in
                guard let base = out.baseAddress else { return }
                func advance(to frame: Int) {
                    while done < frame && !failed {
                        let n = min(frame - done, Self.chunkFrames)
                        let p = UnsafeMutableRawPointer(base + 2 * done)
                        if fluid_synth_write_float(synth, Int32(n), p, 0, 2, p, 1, 2) != FLUID_OK { failed = true }
                        done += n
                    }
                }
                for e in events {
                    if e.frame >= total { break }
                    advance(to: e.frame)
                    apply(e.kind, to: synth)
                }
                advance(to: rendered)
            }
            guard !failed else {
                throw .invalidParameter(name: "synthesizer", reason: "FluidSynth failed to render \(seconds) s")
            }
            var mono = [Float](repeating: 0, count: total)
            for i in 0..<total { mono[i] = 0.5 * (stereo[2 * i] + stereo[2 * i + 1]) }
            let fade = min(total, Int(0.02 * rate))
            for k in 0..<fade { mono[total - 1 - k] *= Float(k) / Float(max(1, fade)) }
            return mono
        }

        /// FluidSynth's block (`FLUID_BUFSIZE`): it renders and applies events 64 frames at a time.
        static let blockFrames = 64
        /// Frames asked of FluidSynth per call (a multiple of ``blockFrames``).
        static let chunkFrames = 4_096

        private func apply(_ kind: MIDIEvent.Kind, to synth: OpaquePointer) {
            switch kind {
            case .noteOn(let c, let k, let v): _ = fluid_synth_noteon(synth, Int32(c), Int32(k), Int32(v))
            case .noteOff(let c, let k): _ = fluid_synth_noteoff(synth, Int32(c), Int32(k))
            case .programChange(let c, let p): _ = fluid_synth_program_change(synth, Int32(c), Int32(p))
            case .controlChange(let c, let n, let v): _ = fluid_synth_cc(synth, Int32(c), Int32(n), Int32(v))
            case .tempo, .timeSignature, .trackName: break
            }
        }
    }
}

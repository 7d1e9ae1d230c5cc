import EncoreAudio
import EncoreCore
import Foundation

/// What ``SyntheticWorld/writeAudio(to:options:progress:)`` renders and how.
public struct AudibleWorldOptions: Sendable {
    /// How many tracks to render: `nil` for every track, else an evenly spaced sample of that many (track
    /// `i * tracks / n` for `i` in `0..<n`).
    public var tracks: Int?
    /// The audio container: `.flac` (the default: about ten times cheaper to encode than Vorbis) or `.ogg`.
    public var format: AudioFileFormat
    /// The sample rate of the rendered audio in Hz.
    public var sampleRate: Int
    /// The length of each excerpt in seconds.
    public var seconds: Double
    /// The General MIDI SoundFont.
    public var soundFont: String
    /// Worker threads (0 = every core); each has its own synthesizer. Does not change the output.
    public var threads: Int

    public init(
        tracks: Int? = nil, format: AudioFileFormat = .flac, sampleRate: Int = 22_050, seconds: Double = 30,
        soundFont: String = MusicRenderer.defaultSoundFont, threads: Int = 0
    ) {
        self.tracks = tracks
        self.format = format
        self.sampleRate = sampleRate
        self.seconds = seconds
        self.soundFont = soundFont
        self.threads = threads
    }
}

/// What was written by ``SyntheticWorld/writeAudio(to:options:progress:)``.
public struct AudibleWorldSummary: Sendable, Equatable {
    /// The tracks rendered, in increasing order.
    public var tracks: [Int32]
    /// Bytes of audio written.
    public var audioBytes: Int
    /// Bytes of MIDI written.
    public var midiBytes: Int
}

extension SyntheticWorld {
    /// The tracks an audio sample of `count` covers (every track for `nil`): evenly spaced over the catalog, so
    /// every part of it (and so most genres and many artists) is represented.
    public func audioTracks(_ count: Int?) -> [Int32] {
        let n = catalog.trackCount
        guard let count, count < n else { return (0..<Int32(n)).map { $0 } }
        return (0..<max(0, count)).map { Int32($0 * n / count) }
    }

    /// The composed pieces' truth as `audio_truth.tsv` text: a header `track tempo key mode instruments` and one row
    /// per piece, tab-separated. `tempo` is the rendered tempo in BPM (six decimals), `key` 0-11 with C = 0, `mode`
    /// 1 for major and 0 for minor, `instruments` the artist's palette (``ArtistPalette/summary``).
    public func audioTruth(_ pieces: [ComposedPiece]) -> String {
        var out = "track\ttempo\tkey\tmode\tinstruments\n"
        for p in pieces {
            out += ids.track(p.track) + "\t" + String(format: "%.6f", p.tempoBPM) + "\t\(p.key)\t\(p.major ? 1 : 0)\t"
                + p.palette.summary + "\n"
        }
        return out
    }

    /// Composes and renders the world's music into `directory`:
    /// `midi/<track>.mid` (Standard MIDI File, format 1), `audio/<track>.<ogg|flac>` (mono excerpt of
    /// `options.seconds`), and `audio_truth.tsv` (see ``audioTruth(_:)``), written last.
    /// - Throws: ``AudioError`` naming the SoundFont or the file that could not be written.
    @discardableResult
    public func writeAudio(
        to directory: String, options: AudibleWorldOptions = AudibleWorldOptions(), progress: ProgressHandler? = nil
    ) throws(AudioError) -> AudibleWorldSummary {
        guard options.format == .ogg || options.format == .flac else {
            throw .invalidParameter(name: "audio format", reason: "'\(options.format.rawValue)' is not ogg or flac")
        }
        if let n = options.tracks, n < 0 {
            throw .invalidParameter(name: "audio tracks", reason: "\(n) is negative")
        }
        guard options.seconds > 0, options.seconds <= 600 else {
            throw .invalidParameter(name: "excerpt length", reason: "\(options.seconds) s is not in (0, 600]")
        }
        let renderer = try MusicRenderer(soundFont: options.soundFont, sampleRate: options.sampleRate)
        let midiDir = directory + "/midi", audioDir = directory + "/audio"
        for dir in [directory, midiDir, audioDir] {
            do {
                try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            } catch {
                throw .file(FileError(path: dir, operation: "create the directory", reason: error.localizedDescription))
            }
        }
        let tracks = audioTracks(options.tracks)
        let composer = MusicComposer(world: self, seconds: options.seconds)
        let threads = max(1, min(options.threads > 0 ? options.threads : Parallel.coreCount, tracks.count))
        let next = AtomicCounter()
        let done = AtomicCounter()
        let pieces = Locked([ComposedPiece?](repeating: nil, count: tracks.count))
        let bytes = Locked((audio: 0, midi: 0))
        let failure = Locked<AudioError?>(nil)
        progress?(Progress(phase: .audio, completed: 0, total: tracks.count))
        let ids = self.ids
        let format = options.format
        Parallel.forEach(threads, threads: threads) { _ in
            do throws(AudioError) {
                let synth = try renderer.makeSynthesizer()
                while failure.withLock({ $0 == nil }) {
                    let i = next.add(1)
                    if i >= tracks.count { break }
                    let piece = composer.compose(track: tracks[i])
                    let name = ids.track(tracks[i])
                    let midi = piece.midi.bytes()
                    let midiPath = midiDir + "/" + name + ".mid"
                    do throws(FileError) {
                        try AtomicFile.write(to: midiPath, as: FileError.self) { (out) throws(FileError) in
                            try out.write(midi, as: FileError.self)
                        }
                    } catch { throw AudioError.file(error) }
                    let samples = try synth.render(piece)
                    let audioPath = audioDir + "/" + name + "." + format.fileExtension
                    var writer = try AudioFileWriter(
                        path: audioPath, format: format, sampleRate: renderer.sampleRate, channels: 1)
                    try writer.write(samples)
                    try writer.close()
                    let attributes = try? FileManager.default.attributesOfItem(atPath: audioPath)
                    let size = attributes?[.size] as? Int ?? 0
                    pieces.withLock { $0[i] = piece }
                    bytes.withLock { $0.audio += size; $0.midi += midi.count }
                    let completed = done.add(1) + 1
                    progress?(Progress(phase: .audio, completed: completed, total: tracks.count))
                }
            } catch {
                failure.withLock { if $0 == nil { $0 = error } }
            }
        }
        if let error = failure.withLock({ $0 }) { throw error }
        let composed = pieces.withLock { $0.compactMap { $0 } }
        let truth = Array(audioTruth(composed).utf8)
        do throws(FileError) {
            try AtomicFile.write(to: directory + "/audio_truth.tsv", as: FileError.self) { (out) throws(FileError) in
                try out.write(truth, as: FileError.self)
            }
        } catch { throw AudioError.file(error) }
        let b = bytes.withLock { $0 }
        return AudibleWorldSummary(tracks: tracks, audioBytes: b.audio, midiBytes: b.midi)
    }
}

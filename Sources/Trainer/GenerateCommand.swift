import ArgumentParser
import Foundation
import Logging
import RecCore

/// `encore-train generate`: writes a deterministic synthetic music world to a directory.
struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Generate a synthetic music world: catalog, users, play log, likes, follows and ground truth.",
        discussion: """
            Writes UTF-8 TSV files with a header line into the output directory:
              plays.tsv         user, item, timestamp, ms_played: one row per play,
                                sorted by time; ms_played < 30000 is a skip
              likes.tsv         user, item, timestamp
              dislikes.tsv      user, item_or_artist, kind (track|artist), timestamp
              follows.tsv       user, artist, timestamp
              tracks.tsv        item, artist, album, genre, release_date, duration_ms
              artists.tsv       artist, name, genre
              albums.tsv        album, artist, release_date
              truth_users.tsv   user, tastes (genre:weight;...), favourite_artists,
                                target_tracks, distinct_tracks
              truth_tracks.tsv  item, genre, popularity, new_release
              texts.tsv         id, kind (bio|review|tags), text: what is written about
                                artists and tracks (genre, artist and filler words,
                                noise; many tracks have none)
              world.json        configuration, time window and counts (written last)
            With --audio, also the world's music (see docs/audio.md):
              midi/<track>.mid  a Standard MIDI File composed from the track's traits
              audio/<track>.flac the MIDI rendered with FluidSynth (mono, 22 050 Hz,
                                30 s; .ogg with --audio-format ogg)
              audio_truth.tsv   track, tempo, key (0-11, C = 0), mode (1 major,
                                0 minor), instruments (written last)
            Timestamps are Unix seconds (UTC). The files depend only on the preset,
            the seed and the overrides, never on --threads.

            Presets:
              tiny        300 users, 800 tracks (unit tests)
              sample      2 000 users, 5 000 tracks, ~100 000 plays
              lastfm360k  360 000 users, 300 000 tracks, ~17.5 million user-track
                          pairs, ~34 million plays (about 20 s and 1.8 GB of memory
                          in a release build on 2 cores, 1.2 GB on disk)
            """)

    @Option(help: ArgumentHelp("The preset: tiny, sample or lastfm360k.", valueName: "name"))
    var preset: String = SyntheticWorldPreset.sample.rawValue

    @Option(name: [.short, .long], help: ArgumentHelp("The output directory (created when missing).", valueName: "dir"))
    var output: String?

    @Option(help: "The random seed (default 42, or the --config file's).")
    var seed: UInt64?

    @Option(help: ArgumentHelp(
        "A JSON object overriding any configuration field of the preset, e.g. {\"skipProbabilityOffTaste\": 0.5} "
            + "(field names as in world.json's config; see --print-config). Flags apply after it.",
        valueName: "file"))
    var config: String?

    @Flag(help: "Print the effective configuration as JSON and exit without generating.")
    var printConfig = false

    @Option(help: "Override the number of users.")
    var users: Int?

    @Option(help: "Override the number of tracks.")
    var tracks: Int?

    @Option(help: "Override the number of artists (at least the number of genres, at most --tracks).")
    var artists: Int?

    @Option(help: "Override the length of the play log in weeks.")
    var weeks: Int?

    @Option(help: "Override the mean number of distinct tracks a user plays.")
    var meanTracksPerUser: Double?

    @Option(help: ArgumentHelp(
        "Override the last day of the play log (YYYY-MM-DD, ending 23:59:59 UTC; or YYYY-MM-DDThh:mm:ssZ).",
        valueName: "date"))
    var endDate: String?

    @Option(help: ArgumentHelp(
        "The share of albums (and artists) whose genre the published catalog names (default 0.7; the rest are empty).",
        valueName: "share"))
    var genreCoverage: Double?

    @Option(help: ArgumentHelp(
        "The share of published genre labels that name a wrong genre (default 0.1).", valueName: "share"))
    var genreErrorRate: Double?

    @Flag(help: "Leave every genre out of tracks.tsv and artists.tsv (the truth stays in truth_tracks.tsv).")
    var withholdGenres = false

    @Option(help: "Worker threads (0 = every core). Does not change the output.")
    var threads: Int = 0

    @Flag(help: "Also compose every track's music as MIDI and render it to audio (midi/, audio/, audio_truth.tsv).")
    var audio = false

    @Option(help: ArgumentHelp(
        "With --audio, render an evenly spaced sample of this many tracks instead of all.", valueName: "n"))
    var audioTracks: Int?

    @Option(help: ArgumentHelp("With --audio, the audio format: flac or ogg (Vorbis).", valueName: "format"))
    var audioFormat: AudioFileFormat = .flac

    @Option(help: ArgumentHelp("With --audio, the General MIDI SoundFont.", valueName: "file"))
    var soundFont: String = MusicRenderer.defaultSoundFont

    func validate() throws {
        guard SyntheticWorldPreset(rawValue: preset) != nil else {
            throw ValidationError(
                "unknown preset '\(preset)'; expected one of: "
                    + SyntheticWorldPreset.allCases.map(\.rawValue).joined(separator: ", "))
        }
        guard threads >= 0 else { throw ValidationError("--threads must be >= 0, got \(threads)") }
        if let endDate, Self.endTimestamp(endDate) == nil {
            throw ValidationError("--end-date '\(endDate)' is not YYYY-MM-DD or YYYY-MM-DDThh:mm:ssZ")
        }
        if output == nil && !printConfig { throw ValidationError("missing --output <dir>") }
        guard audioFormat == .ogg || audioFormat == .flac else {
            throw ValidationError("--audio-format '\(audioFormat.rawValue)' is not ogg or flac")
        }
        if withholdGenres && genreCoverage != nil {
            throw ValidationError("--withhold-genres and --genre-coverage do not go together")
        }
        if let audioTracks, audioTracks < 1 { throw ValidationError("--audio-tracks must be >= 1, got \(audioTracks)") }
        if !audio && (audioTracks != nil || audioFormat != .flac) {
            throw ValidationError("--audio-tracks and --audio-format need --audio")
        }
        do { try makeConfig().validate() } catch { throw ValidationError(error.description) }
    }

    /// The preset's configuration with the `--config` file and then the flags applied.
    func makeConfig() throws(SyntheticWorldError) -> SyntheticWorldConfig {
        var c = SyntheticWorldConfig.preset(SyntheticWorldPreset(rawValue: preset) ?? .sample)
        if let config {
            let data: Data
            do { data = try Data(contentsOf: URL(fileURLWithPath: config)) } catch {
                throw .cannotRead(path: config, reason: error.localizedDescription)
            }
            do { c = try c.overriding(json: data) } catch {
                if case .invalidConfig(let message) = error { throw .invalidConfig("\(config): \(message)") }
                throw error
            }
        }
        if let seed { c.seed = seed }
        if let users { c.users = users }
        if let tracks { c.tracks = tracks }
        if let artists { c.artists = artists }
        if let weeks {
            c.weeks = weeks
            c.newReleaseWeeks = min(c.newReleaseWeeks, max(1, weeks))
        }
        if let meanTracksPerUser { c.meanTracksPerUser = meanTracksPerUser }
        if let genreCoverage { c.catalogGenreCoverage = genreCoverage }
        if let genreErrorRate { c.catalogGenreErrorRate = genreErrorRate }
        if withholdGenres { c.catalogGenreCoverage = 0 }
        if let endDate, let t = Self.endTimestamp(endDate) { c.endTimestamp = t }
        return c
    }

    /// A date means the end of that day (UTC); a full timestamp is taken as it is.
    static func endTimestamp(_ text: String) -> Int64? {
        guard let t = Timestamp.parse(text) else { return nil }
        return text.count == 10 ? t + Timestamp.secondsPerDay - 1 : t
    }

    func run() throws {
        let logger = TrainerLogging.logger()
        let started = Date()
        let progress = GenerateProgress(logger: logger)
        let world: SyntheticWorld
        let files: [SyntheticWorld.WrittenFile]
        let output = self.output ?? ""
        var audioSummary: String?
        do {
            let config = try makeConfig()
            if printConfig {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
                let json = (try? encoder.encode(config)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
                print(json)
                return
            }
            world = try SyntheticWorld.generate(config, threads: threads) { progress.report($0) }
            // texts.tsv and the music first, so world.json stays the last file written.
            let texts = try world.writeTexts(to: output)
            if audio {
                let options = AudibleWorldOptions(tracks: audioTracks, format: audioFormat, soundFont: soundFont, threads: threads)
                let rendered = try world.writeAudio(to: output, options: options) { progress.report($0) }
                audioSummary = "  audio      \(rendered.tracks.count) tracks of \(Int(options.seconds)) s "
                    + "(\(Self.byteCount(rendered.audioBytes)) of \(audioFormat.rawValue), \(Self.byteCount(rendered.midiBytes)) of MIDI) "
                    + "in audio/, midi/ and audio_truth.tsv"
            }
            files = [texts] + (try world.write(to: output, threads: threads) { progress.report($0) })
        } catch {
            FileHandle.standardError.write(Data("encore-train generate: error: \(error)\n".utf8))
            throw ExitCode.failure
        }
        print(Self.summary(world: world, files: files, preset: preset, directory: output,
                           seconds: Date().timeIntervalSince(started)))
        if let audioSummary { print(audioSummary) }
    }

    static func summary(
        world: SyntheticWorld, files: [SyntheticWorld.WrittenFile], preset: String, directory: String, seconds: Double
    ) -> String {
        let c = world.config
        let n = world.counts
        let maxTracks = world.users.distinctTracks.max() ?? 0
        var lines = [
            "Generated synthetic world '\(preset)' (seed \(c.seed)) in \(String(format: "%.1f", seconds)) s into \(directory)",
            "  window     \(Timestamp.isoString(timestamp: c.startTimestamp)) .. "
                + "\(Timestamp.isoString(timestamp: c.endTimestamp)) (\(c.weeks) weeks); new releases since "
                + Timestamp.dateString(timestamp: world.catalog.newReleaseStart),
            "  catalog  \(n.genres) genres, \(n.artists) artists, \(n.albums) albums, \(n.tracks) tracks "
                + "(\(n.newReleaseTracks) new releases)",
            "  users      \(n.users) (distinct tracks: mean "
                + String(format: "%.1f", Double(n.distinctPairs) / Double(max(1, n.users))) + ", max \(maxTracks))",
            "  plays      \(n.plays) (\(String(format: "%.1f", 100 * Double(n.skips) / Double(max(1, n.plays))))% skips), "
                + "\(n.distinctPairs) distinct user-track pairs, \(n.playedTracks) tracks played",
            "  feedback   \(n.likes) likes, \(n.follows) follows, \(n.trackDislikes) track dislikes, "
                + "\(n.artistDislikes) artist dislikes",
            "  files",
        ]
        var total = 0
        for f in files {
            total += f.bytes
            let name = f.name.padding(toLength: 18, withPad: " ", startingAt: 0)
            let rows = f.name.hasSuffix(".tsv") ? "\(f.rows) rows" : ""
            lines.append("    \(name)\(rows.padding(toLength: 18, withPad: " ", startingAt: 0))\(byteCount(f.bytes))")
        }
        lines.append("    total             \("".padding(toLength: 18, withPad: " ", startingAt: 0))\(byteCount(total))")
        return lines.joined(separator: "\n")
    }

    static func byteCount(_ b: Int) -> String {
        if b >= 1 << 30 { return String(format: "%.2f GiB", Double(b) / Double(1 << 30)) }
        if b >= 1 << 20 { return String(format: "%.1f MiB", Double(b) / Double(1 << 20)) }
        if b >= 1 << 10 { return String(format: "%.1f KiB", Double(b) / Double(1 << 10)) }
        return "\(b) B"
    }
}

/// Routes the generator's progress to one ``ProgressReporter`` per phase (a bar with ETA on a terminal, log lines
/// otherwise).
final class GenerateProgress: Sendable {
    private struct State: Sendable {
        var phase: SyntheticWorld.Progress.Phase?
        var reporter: ProgressReporter?
        var best = 0
    }

    private let logger: Logger
    private let state = Locked(State())

    init(logger: Logger) { self.logger = logger }

    func report(_ p: SyntheticWorld.Progress) {
        state.withLock { s in
            if s.phase != p.phase {
                s.phase = p.phase
                s.best = -1
                s.reporter = ProgressReporter(stage: "generate/\(p.phase.rawValue)", total: p.total, logger: logger)
            }
            // Workers report concurrently: keep the bar monotonic and finish it once.
            guard p.completed > s.best else { return }
            s.best = p.completed
            s.reporter?.update(p.completed)
        }
    }
}

extension AudioFileFormat: ExpressibleByArgument {}

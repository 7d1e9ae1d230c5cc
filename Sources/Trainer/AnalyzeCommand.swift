import ArgumentParser
import Foundation
import RecCore

/// `encore-train analyze`: audio descriptors (and log-mel spectrograms) of a file, a folder or a manifest.
struct AnalyzeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "analyze",
        abstract: "Describe audio files (tempo, key, loudness, energy, ...) into an HDF5 features file.",
        discussion: """
            --audio is an audio file, a folder (searched recursively for .wav, .flac, .ogg, .opus and .mp3) or a TSV \
            manifest whose first column is a path. Files are mixed to mono and resampled to --sample-rate; a file \
            that cannot be read is listed under /errors with its reason and the others go on. The layout of the \
            output is described in docs/audio.md.
            """)

    @Option(help: "An audio file, a folder, or a TSV manifest whose first column is a path.")
    var audio: String

    @Option(help: "The HDF5 features file to write.")
    var output: String

    @Flag(help: "Also store each track's log-mel spectrogram (/logmel/data, /logmel/offsets).")
    var logMel = false

    @Option(help: "Samples per second the audio is resampled to.")
    var sampleRate: Int = 22_050

    @Option(help: "Seconds skipped at the start of each file.")
    var offset: Double = 0

    @Option(help: "Seconds analyzed from the offset (default: to the end).")
    var duration: Double?

    @Option(help: "Files analyzed at once.")
    var threads: Int = 1

    func validate() throws {
        guard sampleRate >= 1_000, sampleRate <= 384_000 else { throw ValidationError("--sample-rate \(sampleRate) is not in 1000...384000") }
        guard offset.isFinite, offset >= 0 else { throw ValidationError("--offset must be a non-negative number of seconds") }
        if let duration, !(duration.isFinite && duration > 0) { throw ValidationError("--duration must be a positive number of seconds") }
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
    }

    func run() throws {
        let logger = TrainerLogging.logger()
        let inputs = try AudioInput.discover(audio)
        guard !inputs.isEmpty else { throw ValidationError("\(audio): no audio files found") }
        let options = AnalysisOptions(
            decode: DecodeOptions(sampleRate: sampleRate, offset: offset, duration: duration), keepLogMel: logMel)
        let progress = ProgressReporter(stage: "analyze", total: inputs.count, logger: logger)
        let summary = try AudioBatchAnalysis(options: options, threads: threads).run(inputs, output: output) { done, failed in
            progress.update(done, fields: [("failed", "\(failed)")])
        }
        for failure in summary.failed.prefix(20) { logger.warning("not analyzed", metadata: ["file": .string(failure.reason)]) }
        logger.info("analysis written", metadata: [
            "output": .string(output), "tracks": "\(summary.tracks)", "failed": "\(summary.failed.count)",
            "audio_s": .string(String(format: "%.1f", summary.audioSeconds)),
            "elapsed_s": .string(String(format: "%.1f", summary.elapsedSeconds)),
            "realtime_factor": .string(String(format: "%.1f", summary.audioSeconds / max(summary.elapsedSeconds, 1e-9))),
        ])
    }
}

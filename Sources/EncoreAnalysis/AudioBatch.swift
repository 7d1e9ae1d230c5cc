import EncoreAudio
import EncoreCore
import EncoreStorage
import Foundation

/// Why a batch analysis could not run at all (a single file's failure is recorded in the output instead).
public enum AnalysisError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The input path does not exist or cannot be listed.
    case input(path: String, reason: String)
    /// A manifest line is unusable.
    case manifest(path: String, line: Int, reason: String)
    /// The output file could not be written.
    case output(BundleError)

    public var description: String {
        switch self {
        case .input(let path, let reason): return "\(path): \(reason)"
        case .manifest(let path, let line, let reason): return "\(path):\(line): \(reason)"
        case .output(let error): return error.description
        }
    }
}

/// One input of a batch: the id stored in the features file and the file to read.
public struct AudioInput: Sendable, Equatable {
    /// The id stored in `/tracks/ids` (the path relative to the folder, or the manifest's first column as written).
    public var id: String
    /// The file to decode.
    public var path: String

    /// An input with `id` read from `path`.
    public init(id: String, path: String) {
        self.id = id
        self.path = path
    }

    /// File extensions searched for in folders (case-insensitive).
    public static let audioExtensions: Set<String> = ["wav", "flac", "ogg", "opus", "mp3"]

    /// The inputs named by `path`: an audio file (its id is `path` as given), a folder (searched recursively for
    /// the five formats, ids relative to the folder, sorted), or a TSV manifest whose first column is a path
    /// (relative paths are relative to the manifest's folder; a first line whose first column is `path` is a
    /// header; empty lines and lines starting with `#` are skipped).
    public static func discover(_ path: String) throws(AnalysisError) -> [AudioInput] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw .input(path: path, reason: "no such file or folder")
        }
        if isDirectory.boolValue { return try folder(path) }
        let ext = (path as NSString).pathExtension.lowercased()
        if audioExtensions.contains(ext) { return [AudioInput(id: path, path: path)] }
        return try manifest(path)
    }

    static func folder(_ root: String) throws(AnalysisError) -> [AudioInput] {
        let base = URL(fileURLWithPath: root).standardizedFileURL
        guard let walker = FileManager.default.enumerator(at: base, includingPropertiesForKeys: [.isRegularFileKey]) else {
            throw .input(path: root, reason: "cannot list the folder")
        }
        var found: [AudioInput] = []
        let prefix = base.path.hasSuffix("/") ? base.path : base.path + "/"
        for case let url as URL in walker {
            guard audioExtensions.contains(url.pathExtension.lowercased()) else { continue }
            let full = url.standardizedFileURL.path
            let id = full.hasPrefix(prefix) ? String(full.dropFirst(prefix.count)) : full
            found.append(AudioInput(id: id, path: full))
        }
        return found.sorted { $0.id < $1.id }
    }

    static func manifest(_ path: String) throws(AnalysisError) -> [AudioInput] {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw .input(path: path, reason: "not an audio file (\(Array(audioExtensions).sorted().joined(separator: ", "))) and not a readable UTF-8 manifest")
        }
        let folder = (path as NSString).deletingLastPathComponent
        var inputs: [AudioInput] = []
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.hasSuffix("\r") ? raw.dropLast() : raw
            if line.isEmpty || line.hasPrefix("#") { continue }
            let first = String(line.prefix { $0 != "\t" })
            if index == 0 && first == "path" { continue }
            guard !first.trimmingCharacters(in: .whitespaces).isEmpty else {
                throw .manifest(path: path, line: index + 1, reason: "the first column (a path) is empty")
            }
            let resolved = first.hasPrefix("/") || folder.isEmpty ? first : folder + "/" + first
            inputs.append(AudioInput(id: first, path: resolved))
        }
        return inputs
    }
}

/// What a batch analysis did.
public struct AudioBatchSummary: Sendable {
    /// Tracks analyzed and stored.
    public var tracks: Int
    /// Inputs that failed (listed in the file's `/errors`).
    public var failed: [(id: String, reason: String)]
    /// Seconds of audio analyzed.
    public var audioSeconds: Double
    /// Wall-clock seconds.
    public var elapsedSeconds: Double
}

/// Analyzes a list of audio files into a features file (``AudioFeaturesWriter``), on several threads, in input order;
/// a file that fails is recorded with its reason and the batch goes on.
public struct AudioBatchAnalysis: Sendable {
    /// Decoding and spectrogram settings.
    public var options: AnalysisOptions
    /// Files analyzed at once (each on one thread, with BLAS single-threaded).
    public var threads: Int

    /// A batch with `options` on `threads` threads.
    public init(options: AnalysisOptions = AnalysisOptions(), threads: Int = 1) {
        self.options = options
        self.threads = max(1, threads)
    }

    /// Analyzes `inputs` into the file at `output`; `progress(done, failed)` is called after each group of files.
    public func run(_ inputs: [AudioInput], output: String,
                    progress: (_ done: Int, _ failed: Int) -> Void = { _, _ in }) throws(AnalysisError) -> AudioBatchSummary {
        let start = Date()
        var writer: AudioFeaturesWriter
        do {
            writer = try AudioFeaturesWriter(
                path: output, descriptorNames: AudioDescriptors.names, logMelBands: options.keepLogMel ? options.melBands : nil,
                attributes: [("sample_rate", Int64(options.decode.sampleRate ?? 0)), ("n_fft", Int64(options.nFFT)),
                             ("hop_length", Int64(options.hopLength)), ("mel_bands", Int64(options.melBands))])
        } catch { throw .output(error) }
        var audioSeconds = 0.0
        var failed: [(id: String, reason: String)] = []
        let previousBLASThreads = BLAS.threads
        BLAS.setThreads(1)
        defer { BLAS.setThreads(previousBLASThreads) }
        // Groups of a few files per thread: results are written in input order, and only a group's log-mels are held.
        let group = threads * 4
        var done = 0
        var next = 0
        while next < inputs.count {
            let slice = Array(inputs[next..<min(inputs.count, next + group)])
            let results = Locked([Int: Result<AudioAnalysis, AudioError>]())
            let options = self.options
            Parallel.forEach(slice.count, threads: threads) { i in
                let result: Result<AudioAnalysis, AudioError>
                do throws(AudioError) {
                    result = .success(try AudioAnalyzer.analyze(path: slice[i].path, options: options))
                } catch {
                    result = .failure(error)
                }
                results.withLock { $0[i] = result }
            }
            let finished = results.withLock { $0 }
            for (i, input) in slice.enumerated() {
                switch finished[i] {
                case .success(let analysis):
                    do {
                        try writer.add(id: input.id, descriptors: analysis.descriptors.values, logMel: analysis.logMel)
                    } catch { throw .output(error) }
                    audioSeconds += analysis.descriptors.durationS
                case .failure(let error):
                    writer.addFailure(id: input.id, reason: error.description)
                    failed.append((input.id, error.description))
                case nil:
                    writer.addFailure(id: input.id, reason: "not analyzed")
                    failed.append((input.id, "not analyzed"))
                }
            }
            next += slice.count
            done += slice.count
            progress(done, failed.count)
        }
        let tracks = writer.trackCount
        do { try writer.finish() } catch { throw .output(error) }
        return AudioBatchSummary(tracks: tracks, failed: failed, audioSeconds: audioSeconds,
                                 elapsedSeconds: Date().timeIntervalSince(start))
    }
}

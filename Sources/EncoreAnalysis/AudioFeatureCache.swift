import EncoreAudio
import EncoreCore
import EncoreStorage
import Foundation

/// A folder of per-recording analyses (descriptors and log-mel) keyed by the recording's content, kept from one run
/// to the next so that only new or changed files are decoded and analysed.
///
/// Layout: `<directory>/<settings>/<xxh64>.h5`, where `<settings>` names the analysis settings (sample rate,
/// excerpt, FFT size, hop, mel bands) and `<xxh64>` is the XXH64 of the file's bytes (16 hexadecimal digits). Each
/// entry is a features file (``AudioFeaturesWriter``) with one track whose id is the checksum. A file that cannot be
/// analysed leaves `<xxh64>.failed` holding the reason, so it is not retried until its bytes change. Entries are
/// written to a temporary name and renamed, so an interrupted run leaves no half entry.
public struct AudioFeatureCache: Sendable {
    /// The cache folder (shared by every settings folder).
    public let directory: String
    /// The analysis settings (log-mel is always kept).
    public let options: AnalysisOptions

    /// A cache in `directory` for `options` (`keepLogMel` is forced on).
    public init(directory: String, options: AnalysisOptions) {
        self.directory = directory
        var o = options
        o.keepLogMel = true
        self.options = o
    }

    /// The folder of this cache's settings.
    public var settingsDirectory: String {
        let d = options.decode
        func number(_ x: Double) -> String { x == x.rounded() ? String(Int64(x)) : String(x) }
        let name = "sr\(d.sampleRate ?? 0)-off\(number(d.offset))-dur\(d.duration.map(number) ?? "all")-fft\(options.nFFT)"
            + "-hop\(options.hopLength)-mel\(options.melBands)-v1"
        return (directory as NSString).appendingPathComponent(name)
    }

    /// What ``prepare(_:threads:progress:)`` found and did.
    public struct Summary: Sendable {
        /// The content key (XXH64, hexadecimal) of each input, in input order (`nil` when the file is unreadable).
        public var keys: [String?]
        /// Inputs whose analysis was already cached.
        public var cached: Int
        /// Inputs analysed in this run.
        public var analysed: Int
        /// Inputs that failed (now or in an earlier run, for the same bytes), with the reason, in input order.
        public var failed: [(index: Int, reason: String)]
        /// Seconds of audio analysed in this run.
        public var audioSeconds: Double
    }

    /// Makes sure every input has an entry: hashes every file and analyses those whose content is not cached yet
    /// (each distinct content once), on `threads` threads; `progress(done, total)` counts the files to analyse.
    /// - Throws: ``AnalysisError`` when the cache folder cannot be written.
    public func prepare(_ inputs: [AudioInput], threads: Int = 1,
                        progress: (_ done: Int, _ total: Int) -> Void = { _, _ in }) throws(AnalysisError) -> Summary {
        let folder = settingsDirectory
        do { try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true) } catch {
            throw .input(path: folder, reason: "cannot create the audio cache folder: \(error.localizedDescription)")
        }
        var keys: [String?] = []
        var failed: [(index: Int, reason: String)] = []
        var missing: [String: AudioInput] = [:]
        var order: [String] = []
        var cached = 0
        for (i, input) in inputs.enumerated() {
            let digest: (size: Int64, checksum: UInt64)?
            do { digest = try PublishedModel.digest(ofFile: input.path) } catch {
                keys.append(nil)
                failed.append((i, error.description))
                continue
            }
            guard let digest else {
                keys.append(nil)
                failed.append((i, "\(input.path): no such file"))
                continue
            }
            let key = PublishedModel.hex(digest.checksum)
            keys.append(key)
            if FileManager.default.fileExists(atPath: entryPath(key)) || FileManager.default.fileExists(atPath: failurePath(key)) {
                cached += 1
            } else if missing[key] == nil {
                missing[key] = AudioInput(id: key, path: input.path)
                order.append(key)
            }
        }
        var analysed = 0
        var audioSeconds = 0.0
        progress(0, order.count)
        let batch = AudioBatchAnalysis(options: options, threads: threads)
        let chunk = max(8, threads * 8)
        var next = 0
        while next < order.count {
            let slice = order[next..<min(order.count, next + chunk)].map { missing[$0]! }
            let temporary = (folder as NSString).appendingPathComponent("batch-\(getpid())-\(UInt64.random(in: 0...UInt64.max)).tmp.h5")
            defer { AtomicFile.removeIfPresent(temporary) }
            let summary = try batch.run(slice, output: temporary)
            audioSeconds += summary.audioSeconds
            let features: AudioFeatures
            do { features = try AudioFeatures.read(path: temporary) } catch { throw .output(error) }
            for (row, key) in features.ids.enumerated() {
                try writeEntry(key: key, features: features, row: row)
            }
            for failure in summary.failed {
                try writeText(Self.strip(failure.reason, prefix: missing[failure.id]?.path), to: failurePath(failure.id))
            }
            analysed += slice.count
            next += slice.count
            progress(next, order.count)
        }
        // Reasons of the inputs whose content failed (now or earlier).
        for (i, key) in keys.enumerated() {
            guard let key, FileManager.default.fileExists(atPath: failurePath(key)) else { continue }
            let reason = (try? String(contentsOfFile: failurePath(key), encoding: .utf8)) ?? "analysis failed"
            failed.append((i, "\(inputs[i].path): " + reason))
        }
        failed.sort { $0.index < $1.index }
        return Summary(keys: keys, cached: cached, analysed: analysed, failed: failed, audioSeconds: audioSeconds)
    }

    /// The reason without a leading path of the file that was analysed (each input names its own file).
    static func strip(_ reason: String, prefix path: String?) -> String {
        if let path, reason.hasPrefix(path + ": ") { return String(reason.dropFirst(path.count + 2)) }
        return reason
    }

    /// The entry of a content key.
    public func entryPath(_ key: String) -> String { (settingsDirectory as NSString).appendingPathComponent(key + ".h5") }
    func failurePath(_ key: String) -> String { (settingsDirectory as NSString).appendingPathComponent(key + ".failed") }

    private func writeEntry(key: String, features: AudioFeatures, row: Int) throws(AnalysisError) {
        let path = entryPath(key)
        let temporary = AtomicFile.temporaryPath(for: path)
        let logMel: Matrix?
        do { logMel = try Self.logMel(features, row: row) } catch { throw .output(error) }
        var writer: AudioFeaturesWriter
        do {
            writer = try AudioFeaturesWriter(path: temporary, descriptorNames: AudioDescriptors.names,
                                             logMelBands: options.melBands, attributes: attributes)
        } catch { throw .output(error) }
        do {
            try writer.add(id: key, descriptors: Self.descriptorValues(features.descriptors, row: row), logMel: logMel)
        } catch {
            AtomicFile.removeIfPresent(temporary)
            throw .output(error)
        }
        do {
            try writer.finish()
            try AtomicFile.rename(temporary, to: path, as: BundleError.self)
        } catch {
            AtomicFile.removeIfPresent(temporary)
            throw .output(error)
        }
    }


    private func writeText(_ text: String, to path: String) throws(AnalysisError) {
        do { try AtomicFile.write(Array(text.utf8), to: path, as: BundleError.self) } catch { throw .output(error) }
    }

    var attributes: [(String, Int64)] {
        [("sample_rate", Int64(options.decode.sampleRate ?? 0)), ("n_fft", Int64(options.nFFT)),
         ("hop_length", Int64(options.hopLength)), ("mel_bands", Int64(options.melBands))]
    }

    static func descriptorValues(_ columns: [String: [Float]], row: Int) -> [Double] {
        AudioDescriptors.names.map { name in columns[name].map { Double($0[row]) } ?? .nan }
    }

    static func logMel(_ f: AudioFeatures, row: Int) throws(BundleError) -> Matrix? {
        guard let data = f.logMel, let offsets = f.logMelOffsets, row + 1 < offsets.count else { return nil }
        let a = Int(offsets[row]), b = Int(offsets[row + 1])
        do {
            return try Matrix(rows: b - a, cols: data.cols, storage: Array(data.storage[(a * data.cols)..<(b * data.cols)]))
        } catch {
            throw .shapeMismatch(path: "<features>", object: "/logmel/data", reason: error.description)
        }
    }

    /// Writes a features file with one track per `(id, key)` from the cache (in the order given): the tracks whose
    /// content failed are listed under `/errors`. Returns each stored track's id and descriptor values.
    /// - Throws: ``AnalysisError/output(_:)`` when an entry cannot be read or the file cannot be written.
    public func writeFeatures(_ tracks: [(id: String, key: String)], to output: String)
        throws(AnalysisError) -> [(id: String, descriptors: [Float])] {
        var out: [(id: String, descriptors: [Float])] = []
        let temporary = AtomicFile.temporaryPath(for: output)
        var writer: AudioFeaturesWriter
        do {
            writer = try AudioFeaturesWriter(path: temporary, descriptorNames: AudioDescriptors.names,
                                             logMelBands: options.melBands, attributes: attributes)
        } catch { throw .output(error) }
        for t in tracks {
            let entry = entryPath(t.key)
            if FileManager.default.fileExists(atPath: entry) {
                let values: [Double]
                let logMel: Matrix?
                do throws(BundleError) {
                    let f = try AudioFeatures.read(path: entry)
                    guard f.ids.count == 1 else {
                        throw BundleError.shapeMismatch(path: entry, object: "/tracks/ids", reason: "a cache entry holds \(f.ids.count) tracks, not 1")
                    }
                    values = Self.descriptorValues(f.descriptors, row: 0)
                    logMel = try Self.logMel(f, row: 0)
                } catch {
                    AtomicFile.removeIfPresent(temporary)
                    throw .output(error)
                }
                do { try writer.add(id: t.id, descriptors: values, logMel: logMel) } catch {
                    AtomicFile.removeIfPresent(temporary)
                    throw .output(error)
                }
                out.append((t.id, values.map { Float($0) }))
            } else {
                let reason = (try? String(contentsOfFile: failurePath(t.key), encoding: .utf8)) ?? "not analysed"
                writer.addFailure(id: t.id, reason: reason)
            }
        }
        do {
            try writer.finish()
            try AtomicFile.rename(temporary, to: output, as: BundleError.self)
        } catch {
            AtomicFile.removeIfPresent(temporary)
            throw .output(error)
        }
        return out
    }

}

import Foundation
import Logging
import EncoreCore

/// Runs a job as named stages and remembers which ones finished, so a job that crashed resumes from the last
/// finished stage instead of starting over.
///
/// The state lives in `<workDir>/state.json`: the job's fingerprint (its inputs' sizes and modification times and
/// its options) and the finished stages with their durations. A different fingerprint means different inputs or
/// options: the state is discarded and every stage runs again. Each stage writes its outputs into the work folder
/// itself (atomically), and is marked finished only after its body returns.
final class StageRunner {
    struct State: Codable {
        var fingerprint: String
        var finished: [String: Double]
        var order: [String]
    }

    let workDir: String
    let logger: Logger
    private(set) var state: State
    private let statePath: String
    /// Seconds spent per stage in this run or, for stages skipped on resume, in the run that finished them.
    private(set) var timings: [(stage: String, seconds: Double, resumed: Bool)] = []
    /// Processor seconds (user + system, every thread) spent per stage in this run: on a machine shared with other
    /// work, wall time alone says little about the job.
    private(set) var cpuSeconds: [String: Double] = [:]

    /// The peak resident memory per stage of this run, in bytes, where the system reports it (Linux's `/proc`).
    private(set) var peakResidentBytes: [String: Int] = [:]
    /// Whether every figure of ``peakResidentBytes`` is the stage's own peak; `false` when the peak could not be reset
    /// between stages, so a figure is the highest since the process started.
    private(set) var peaksArePerStage = true

    /// The processor seconds (user + system) the process has used so far.
    static func processCPUSeconds() -> Double {
        var usage = rusage()
        guard getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage) == 0 else { return 0 }
        func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
        return seconds(usage.ru_utime) + seconds(usage.ru_stime)
    }

    /// Opens (or starts) the state of a job in `workDir` with the given fingerprint.
    init(workDir: String, fingerprint: String, logger: Logger) throws {
        self.workDir = workDir
        self.logger = logger
        statePath = (workDir as NSString).appendingPathComponent("state.json")
        try FileManager.default.createDirectory(atPath: workDir, withIntermediateDirectories: true)
        if let data = FileManager.default.contents(atPath: statePath),
           let old = try? JSONDecoder().decode(State.self, from: data), old.fingerprint == fingerprint {
            state = old
            if !old.order.isEmpty {
                logger.info("resuming", metadata: ["work_dir": .string(workDir), "finished": .string(old.order.joined(separator: ","))])
            }
        } else {
            state = State(fingerprint: fingerprint, finished: [:], order: [])
        }
    }

    /// Runs `body` unless `stage` already finished and its `outputs` (files) still exist; `resume` is called
    /// instead to reload them.
    func run(_ stage: String, outputs: [String] = [], resume: () throws -> Void = {}, _ body: () throws -> Void) throws {
        if let seconds = state.finished[stage], outputs.allSatisfy({ FileManager.default.fileExists(atPath: $0) }) {
            try resume()
            timings.append((stage, seconds, true))
            logger.info("stage skipped (finished earlier)", metadata: ["stage": .string(stage)])
            return
        }
        logger.info("stage started", metadata: ["stage": .string(stage)])
        let start = Date()
        let cpuStart = Self.processCPUSeconds()
        ResidentMemory.releaseFreedMemory()
        if !ResidentMemory.resetPeak() { peaksArePerStage = false }
        try body()
        let seconds = Date().timeIntervalSince(start)
        let cpu = Self.processCPUSeconds() - cpuStart
        state.finished[stage] = seconds
        state.order.append(stage)
        try save()
        timings.append((stage, seconds, false))
        cpuSeconds[stage] = cpu
        let peak = ResidentMemory.peakBytes()
        if let peak { peakResidentBytes[stage] = peak }
        logger.info("stage finished", metadata: [
            "stage": .string(stage), "seconds": .string(String(format: "%.2f", seconds)),
            "cpu_s": .string(String(format: "%.2f", cpu)),
            "peak_rss_mib": .string(peak.map { "\($0 >> 20)" } ?? "unknown")])
    }

    private func save() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let data = try encoder.encode(state)
        do {
            try AtomicFile.write(Array(data), to: statePath, as: FileError.self)
        } catch {
            throw WeeklyError("cannot save the job state: \(error)")
        }
    }

    /// A fingerprint of input files (path, size, modification time) and option strings.
    static func fingerprint(files: [String], options: [String]) -> String {
        var parts = options
        for f in files {
            let attrs = try? FileManager.default.attributesOfItem(atPath: f)
            let size = (attrs?[.size] as? NSNumber)?.int64Value ?? -1
            let mtime = (attrs?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? -1
            parts.append("\(f)|\(size)|\(mtime)")
        }
        // FNV-1a 64 over the joined text: stable across runs and platforms.
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in parts.joined(separator: "\n").utf8 { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
        return String(h, radix: 16)
    }
}

/// The process's resident memory as Linux reports it in `/proc/self` (`nil` or `false` elsewhere).
enum ResidentMemory {
    /// The peak resident set size (`VmHWM`) since the process started or the last ``resetPeak()``, in bytes.
    static func peakBytes() -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            // "VmHWM:   123456 kB"
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 2, let kb = Int(fields[1]) else { return nil }
            return kb * 1024
        }
        return nil
    }

    /// glibc's `malloc_trim`, looked up at run time (absent on other C libraries).
    private static let mallocTrim: (@convention(c) (Int) -> Int32)? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "malloc_trim") else { return nil }
        return unsafeBitCast(symbol, to: (@convention(c) (Int) -> Int32).self)
    }()

    /// Hands the heap's free pages back to the system (glibc keeps the memory of freed small and mid-size blocks
    /// otherwise, so one stage's temporaries would stay resident through the next ones); a no-op elsewhere.
    static func releaseFreedMemory() {
        _ = mallocTrim?(0)
    }

    /// Resets the peak to the current resident set (writing `5` to `/proc/self/clear_refs`); `false` when the
    /// system does not allow it.
    @discardableResult
    static func resetPeak() -> Bool {
        let fd = open("/proc/self/clear_refs", O_WRONLY)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        return write(fd, "5", 1) == 1
    }
}

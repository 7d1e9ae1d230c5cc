import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import EncoreCore
import EncoreIndex
import EncoreStorage

/// Opens and checks a candidate model (a published unit or a plain bundle, with its index files) in a short-lived
/// child process, so that a crash inside a C library (libhdf5 reading a damaged file) ends the child, not the
/// process that serves.
///
/// The child is an executable that answers ``subcommand`` (`validate-bundle PATH`): by default the current
/// executable. `encore-serve` and `encore-train` do; a program embedding Encore calls ``exitIfRequested(arguments:)``
/// first thing in its `main`, or points ``executable`` (or the environment variable `ENCORE_VALIDATOR_EXECUTABLE`) at
/// an installed `encore-serve`. The child loads everything the
/// server loads (``ServingModel/load(path:validator:logger:)`` without a validator), searches each loaded index once,
/// prints one JSON line (``Report``) and exits 0; a refused model prints `{"ok":false,"error":...}` and exits 1.
public struct BundleValidator: Sendable {
    /// The hidden subcommand an executable answers with the child's work.
    public static let subcommand = "validate-bundle"
    /// The exit status of a child that refused the model with an error message.
    public static let refusedStatus: Int32 = 1

    /// The executable run as the child.
    public var executable: String
    /// The arguments before the model's path (by default `[validate-bundle]`).
    public var arguments: [String]
    /// How long the child may take before it is killed and the model refused.
    public var timeoutSeconds: Double

    /// The environment variable naming the executable to run as the child instead of the current one.
    public static let executableVariable = "ENCORE_VALIDATOR_EXECUTABLE"

    /// A validator running `executable` with `arguments` and then the path. The default executable is the one
    /// `ENCORE_VALIDATOR_EXECUTABLE` names, else the current executable; in a SwiftPM test run (the current
    /// executable is a `.xctest` bundle, which would run the tests again) it is `encore-serve` beside it.
    public init(executable: String? = nil, arguments: [String] = [BundleValidator.subcommand], timeoutSeconds: Double = 300) {
        self.executable = executable ?? Self.defaultExecutable
        self.arguments = arguments
        self.timeoutSeconds = timeoutSeconds
    }

    /// The executable a validator runs by default (see ``init(executable:arguments:timeoutSeconds:)``).
    public static var defaultExecutable: String {
        if let named = ProcessInfo.processInfo.environment[executableVariable], !named.isEmpty { return named }
        let current = currentExecutable
        if isTestRunner(current) {
            var dir = (current as NSString).deletingLastPathComponent
            // macOS: .../debug/X.xctest/Contents/MacOS/X
            while dir.contains(".xctest") { dir = (dir as NSString).deletingLastPathComponent }
            return (dir as NSString).appendingPathComponent("encore-serve")
        }
        return current
    }

    static func isTestRunner(_ path: String) -> Bool {
        path.contains(".xctest") || path.hasSuffix("swiftpm-testing-helper")
    }

    /// The path of the running executable (`/proc/self/exe` resolved on Linux).
    public static var currentExecutable: String {
        #if os(Linux)
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        if n > 0 { return String(decoding: buffer[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) }
        #endif
        return Bundle.main.executablePath ?? CommandLine.arguments.first ?? "/proc/self/exe"
    }

    /// What the child loaded: the files it read, with their identities, so the parent can check that it loads the
    /// same ones.
    public struct Report: Codable, Sendable, Equatable {
        /// Always `true` in a report (a refusal prints an error object instead).
        public var ok: Bool
        /// The model path given.
        public var path: String
        /// The bundle file read.
        public var bundlePath: String
        /// The published version folder, or `nil` for a plain bundle.
        public var publishedVersion: String?
        /// The number of users and items of the bundle.
        public var users: Int
        /// The number of items.
        public var items: Int
        /// The identity of every file read (the bundle and the loaded index files), by path.
        public var files: [String: FileIdentity]

        enum CodingKeys: String, CodingKey {
            case ok, path, users, items, files
            case bundlePath = "bundle_path"
            case publishedVersion = "published_version"
        }
    }

    /// Runs the child on `path` and waits for it (at most ``timeoutSeconds``).
    /// - Returns: the child's report.
    /// - Throws: ``BundleValidationError``: the model was refused with a message, the child was killed by a signal
    ///   (a crash in a C library), timed out, exited otherwise, or could not be started.
    public func validate(path: String) throws(BundleValidationError) -> Report {
        // A test runner given `validate-bundle PATH` would run the tests again, not validate.
        if Self.isTestRunner(executable) {
            throw .spawnFailed(executable: executable, reason: "it is a test runner, which does not answer \(Self.subcommand); "
                + "set \(Self.executableVariable) to encore-serve or give the validator's executable")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments + [path]
        var environment = ProcessInfo.processInfo.environment
        // A crash is an answer here: no backtrace symbolication (seconds), no core file.
        environment["SWIFT_BACKTRACE"] = "enable=no"
        process.environment = environment
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        let done = DispatchSemaphore(value: 0)
        process.terminationHandler = { _ in done.signal() }
        let collected = Locked<(out: Data, err: Data)>((Data(), Data()))
        let readers = DispatchGroup()
        do {
            try process.run()
        } catch {
            throw .spawnFailed(executable: executable, reason: "\(error)")
        }
        for (pipe, isOut) in [(out, true), (err, false)] {
            readers.enter()
            DispatchQueue.global().async {
                let data = pipe.fileHandleForReading.readDataToEndOfFile()
                collected.withLock { if isOut { $0.out = data } else { $0.err = data } }
                readers.leave()
            }
        }
        if done.wait(timeout: .now() + timeoutSeconds) == .timedOut {
            kill(process.processIdentifier, SIGKILL)
            done.wait()
            _ = readers.wait(timeout: .now() + 5)
            throw .timedOut(path: path, seconds: timeoutSeconds)
        }
        _ = readers.wait(timeout: .now() + 5)
        let (stdout, stderr) = collected.withLock { ($0.out, $0.err) }
        let errorTail = Self.lastLines(stderr)
        switch process.terminationReason {
        case .uncaughtSignal:
            let signal = process.terminationStatus
            throw .crashed(path: path, signal: signal, signalName: Self.signalName(signal), detail: errorTail)
        case .exit:
            let status = process.terminationStatus
            let line = Self.lastLines(stdout, count: 1)
            if status == 0, let report = try? JSONDecoder().decode(Report.self, from: Data(line.utf8)), report.ok {
                return report
            }
            if status == Self.refusedStatus,
               let object = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any],
               let message = object["error"] as? String {
                throw .refused(path: path, message: message)
            }
            throw .unexpectedExit(path: path, status: status, output: line.isEmpty ? errorTail : line)
        @unknown default:
            throw .unexpectedExit(path: path, status: process.terminationStatus, output: errorTail)
        }
    }

    /// The child's work, run in-process: loads the model at `path` as the server would, searches each loaded index
    /// once, and returns the line to print and the exit status.
    public static func check(path: String) -> (line: String, status: Int32) {
        do throws(ServingError) {
            let model = try ServingModel.load(path: path)
            let factors = model.bundle.model.itemFactors
            if model.itemCount > 0 {
                let probe = factors.row(0)
                let indexes: [(any VectorIndex)?] = [model.recommendationIndex, model.environment.space.index]
                var probes = indexes.compactMap { $0 }.map { ($0, probe) }
                for (space, index) in model.spaceIndexes.sorted(by: { $0.key < $1.key }) {
                    if let row = model.contentVectors(space)?.vectors.row(0) { probes.append((index, row)) }
                }
                for (index, query) in probes {
                    do { _ = try index.search(query, k: min(10, index.count), filter: nil) } catch {
                        throw ServingError.model("searching the index: \(error)")
                    }
                }
            }
            var files: [String: FileIdentity] = [:]
            for file in [model.bundlePath] + model.indexFiles.values.sorted() {
                if let id = FileIdentity.of(file) { files[file] = id }
            }
            let report = Report(ok: true, path: path, bundlePath: model.bundlePath, publishedVersion: model.publishedVersion,
                                users: model.bundle.userIDs.count, items: model.itemCount, files: files)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            let data = (try? encoder.encode(report)) ?? Data()
            return (String(decoding: data, as: UTF8.self), 0)
        } catch {
            // The reader's own message (it names the file), as an in-process load would throw it.
            var message = error.description
            if case .bundle(let b) = error { message = b.description }
            let object = ["ok": false, "error": message] as [String: Any]
            let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
            return (String(decoding: data, as: UTF8.self), refusedStatus)
        }
    }

    /// When `arguments` are `[program, validate-bundle, PATH]`, does the child's work and exits the process with its
    /// status; otherwise returns. Call it first thing in the `main` of an executable that a ``BundleValidator`` runs.
    public static func exitIfRequested(arguments: [String] = CommandLine.arguments) {
        guard arguments.count >= 2, arguments[1] == subcommand else { return }
        guard arguments.count == 3 else {
            FileHandle.standardError.write(Data("usage: \(arguments[0]) \(subcommand) PATH\n".utf8))
            exit(64)
        }
        // A crash here is expected now and then: no core file.
        var limit = rlimit(rlim_cur: 0, rlim_max: 0)
        _ = getrlimit(Int32(RLIMIT_CORE.rawValue), &limit)
        limit.rlim_cur = 0
        _ = setrlimit(Int32(RLIMIT_CORE.rawValue), &limit)
        let (line, status) = check(path: arguments[2])
        FileHandle.standardOutput.write(Data((line + "\n").utf8))
        exit(status)
    }

    /// The conventional name of a signal (`SIGSEGV`), or `signal N`.
    public static func signalName(_ signal: Int32) -> String {
        let names: [Int32: String] = [
            SIGSEGV: "SIGSEGV", SIGBUS: "SIGBUS", SIGABRT: "SIGABRT", SIGILL: "SIGILL", SIGFPE: "SIGFPE",
            SIGTRAP: "SIGTRAP", SIGKILL: "SIGKILL", SIGTERM: "SIGTERM", SIGINT: "SIGINT", SIGSYS: "SIGSYS",
        ]
        return names[signal] ?? "signal \(signal)"
    }

    static func lastLines(_ data: Data, count: Int = 3) -> String {
        let text = String(decoding: data, as: UTF8.self)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: true)
        return lines.suffix(count).joined(separator: " | ")
    }
}

/// Why a candidate model was refused by its validating child process.
public enum BundleValidationError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The child read the model and refused it (a checksum mismatch, a malformed bundle): its message.
    case refused(path: String, message: String)
    /// The child was killed by a signal while loading the model: a crash in a C library reading a damaged file.
    case crashed(path: String, signal: Int32, signalName: String, detail: String)
    /// The child did not finish in time and was killed.
    case timedOut(path: String, seconds: Double)
    /// The child exited with an unexpected status (not a validator, or a failure before the load).
    case unexpectedExit(path: String, status: Int32, output: String)
    /// The child could not be started.
    case spawnFailed(executable: String, reason: String)
    /// The model changed between the child's check and the load, again and again.
    case changedDuringValidation(path: String)

    public var description: String {
        switch self {
        case let .refused(_, message):
            return message
        case let .crashed(path, _, name, detail):
            return "\(path): the process validating the model was killed by \(name) while opening it (a damaged file "
                + "crashes the HDF5 library); the model is refused" + (detail.isEmpty ? "" : " (\(detail))")
        case let .timedOut(path, seconds):
            return "\(path): validating the model took longer than \(seconds) s; the model is refused"
        case let .unexpectedExit(path, status, output):
            return "\(path): the validating process exited with status \(status)" + (output.isEmpty ? "" : ": \(output)")
        case let .spawnFailed(executable, reason):
            return "cannot start the validating process \(executable): \(reason)"
        case let .changedDuringValidation(path):
            return "\(path): the model changed while it was being validated, several times in a row"
        }
    }
}

import Foundation
import Logging
import RecCore
import ServeKit
import Testing

/// Corrupt copies of the fixture's published unit, as a new version switched in by its manifest.
struct UnitCorruptor {
    /// What is done to the file's bytes.
    enum Damage: CaseIterable, CustomStringConvertible {
        case bitFlips, truncation, zeroedPage, headerFlips

        var description: String {
            switch self {
            case .bitFlips: return "bit flips"
            case .truncation: return "truncation"
            case .zeroedPage: return "zeroed 4 KiB page"
            case .headerFlips: return "flips in the first 8 KiB"
            }
        }
    }

    /// The unit folder (a copy of the fixture's).
    let unit: String
    /// The version folder of the good model.
    let goodVersion: String
    /// The manifest of the good model.
    let goodManifest: [UInt8]

    init(unit: String) throws {
        self.unit = unit
        goodManifest = Array(try Data(contentsOf: URL(fileURLWithPath: unit + "/current.json")))
        goodVersion = try PublishedModel.open(path: unit).version ?? ""
    }

    /// Switches the unit back to the good version.
    func restore() throws {
        try AtomicFile.write(goodManifest, to: unit + "/current.json", as: FileError.self)
    }

    /// Copies the good version to `v-00000099` with `role`'s file damaged by `damage` (seeded), and switches the
    /// manifest to it, recording the damaged file's real checksum and size when `updateChecksum` is set (so the
    /// reader really parses the bytes) or the good ones otherwise. Returns a description of what was done.
    @discardableResult
    /// `n` distinct positions in `0..<bound` (fewer when `bound` is smaller).
    static func distinctPositions(_ n: Int, below bound: Int, _ rng: inout SplitMix) -> [Int] {
        var seen = Set<Int>()
        while seen.count < min(n, bound) { seen.insert(Int(rng.next() % UInt64(bound))) }
        return seen.sorted()
    }

    @discardableResult
    func corrupt(role: String, damage: Damage, seed: UInt64, updateChecksum: Bool) throws -> String {
        let bad = "v-00000099"
        let fm = FileManager.default
        try? fm.removeItem(atPath: unit + "/" + bad)
        try fm.copyItem(atPath: unit + "/" + goodVersion, toPath: unit + "/" + bad)
        var object = try #require(try JSONSerialization.jsonObject(with: Data(goodManifest)) as? [String: Any])
        var files = try #require(object["files"] as? [[String: Any]])
        var rng = SplitMix(seed: seed)
        var what = ""
        for k in files.indices {
            let path = try #require(files[k]["path"] as? String).replacingOccurrences(of: goodVersion, with: bad)
            files[k]["path"] = path
            guard files[k]["role"] as? String == role else { continue }
            let full = unit + "/" + path
            var bytes = Array(try Data(contentsOf: URL(fileURLWithPath: full)))
            switch damage {
            case .bitFlips:
                // Distinct bytes, so no flip undoes another.
                let n = 1 + Int(rng.next() % 8)
                for at in Self.distinctPositions(n, below: bytes.count, &rng) {
                    bytes[at] ^= UInt8(1) << UInt8(rng.next() % 8)
                }
                what = "\(n) bit flips"
            case .headerFlips:
                let n = 1 + Int(rng.next() % 4)
                for at in Self.distinctPositions(n, below: min(8192, bytes.count), &rng) {
                    bytes[at] ^= UInt8(1 + rng.next() % 255)
                }
                what = "\(n) bytes changed in the first 8 KiB"
            case .truncation:
                let keep = Int(rng.next() % UInt64(bytes.count))
                what = "truncated to \(keep) of \(bytes.count) bytes"
                bytes = Array(bytes.prefix(keep))
            case .zeroedPage:
                // The first page from a random one on that is not all zeros already (zeroing a zero page changes
                // nothing, and an unchanged file rightly loads under its old checksum).
                let pages = max(1, (bytes.count + 4095) / 4096)
                let start = Int(rng.next() % UInt64(pages))
                let page = (0..<pages).lazy.map { (start + $0) % pages }
                    .first { p in bytes[(p * 4096)..<min(bytes.count, p * 4096 + 4096)].contains { $0 != 0 } } ?? start
                for at in (page * 4096)..<min(bytes.count, page * 4096 + 4096) { bytes[at] = 0 }
                what = "page \(page) zeroed"
            }
            #expect(bytes != Array(try Data(contentsOf: URL(fileURLWithPath: full))), "\(what) left \(path) unchanged")
            try Data(bytes).write(to: URL(fileURLWithPath: full))
            if updateChecksum {
                let digest = try #require(try PublishedModel.digest(ofFile: full))
                files[k]["size"] = digest.size
                files[k]["xxh64"] = PublishedModel.hex(digest.checksum)
            }
        }
        object["files"] = files
        object["version"] = bad
        object["sequence"] = 99
        let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted])
        try AtomicFile.write(Array(data), to: unit + "/current.json", as: FileError.self)
        return "\(role): \(damage) (\(what)), checksum \(updateChecksum ? "updated" : "stale"), seed \(seed)"
    }
}

/// SplitMix64: a small seeded generator for the corruptions.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// The answers compared before and after a failed load: recommendations of a few users and similar tracks of a few
/// items.
struct ProbeAnswers: Equatable {
    var recommendations: [[String]]
    var similar: [[String]]

    init(_ engine: RealtimeEngine, users: [String], items: [String]) throws {
        recommendations = try users.map { u in try engine.recommendations(user: u, k: 10).items.map(\.id) }
        // A track without a cf vector (no plays, or factors a damaged bundle made unusable) is refused with 422
        // not_in_space; the probe records that as no neighbours.
        similar = try items.map { i throws(ServingError) -> [String] in
            do throws(ServingError) { return try engine.similar(item: i, k: 10).map(\.id) } catch {
                if case .notInSpace = error { return [] }
                throw error
            }
        }
    }
}

/// A model that crashes libhdf5 is opened in a child process (`encore-serve validate-bundle`): the serving process
/// survives, keeps its model and reports the signal and the path; a server start on it exits with a clear error.
@Suite("Bundle crash isolation", .serialized)
struct BundleIsolationTests {
    static let validator = BundleValidator(timeoutSeconds: 60)

    func engine(unit: String, logDir: String) throws -> RealtimeEngine {
        var logger = Logger(label: "isolation")
        logger.logLevel = .critical
        let model = try ServingModel.load(path: unit, validator: Self.validator, logger: logger)
        return try RealtimeEngine(model: model, logDirectory: logDir, fsync: .never, validator: Self.validator, logger: logger)
    }

    /// The first seeded corruption of the bundle's first 8 KiB (checksum updated) that kills the validating child.
    func findCrash(_ corruptor: UnitCorruptor, tries: Int = 80) throws -> (seed: UInt64, error: BundleValidationError)? {
        for seed in UInt64(1)...UInt64(tries) {
            try corruptor.corrupt(role: "bundle", damage: .headerFlips, seed: seed, updateChecksum: true)
            do {
                _ = try Self.validator.validate(path: corruptor.unit)
            } catch {
                if case .crashed = error { return (seed, error) }
            }
        }
        return nil
    }

    @Test func validatorReportsTheFilesItLoaded() throws {
        let fixture = try ServeFixture.get()
        let dir = try ServeFixture.scratch("validator")
        let unit = try fixture.copyUnit(to: dir)
        let report = try Self.validator.validate(path: unit)
        let opened = try PublishedModel.open(path: unit)
        #expect(report.ok && report.bundlePath == opened.bundlePath && report.publishedVersion == opened.version)
        #expect(report.files[opened.bundlePath] == FileIdentity.of(opened.bundlePath))
        // The bundle and the index files the server loads: items-ip, items-cosine and the fixture's two space indexes
        // (sequence-cosine, hybrid-cosine; users-cosine is not loaded).
        #expect(Set(report.files.keys) == Set([opened.bundlePath] + ["items-ip", "items-cosine", "sequence-cosine", "hybrid-cosine"].map {
            "\(unit)/v-00000001/\($0).hnsw"
        }), "\(report.files.keys)")
        // A missing model is refused by the child with the reader's message.
        let e = #expect(throws: BundleValidationError.self) { _ = try Self.validator.validate(path: dir + "/absent.h5") }
        guard case .refused(_, let message)? = e else { Issue.record("expected a refusal, got \(String(describing: e))"); return }
        #expect(message.contains(dir + "/absent.h5"))
    }

    @Test func crashingBundleIsRefusedAndTheServerKeepsServing() throws {
        let fixture = try ServeFixture.get()
        let dir = try ServeFixture.scratch("isolation")
        let unit = try fixture.copyUnit(to: dir)
        let corruptor = try UnitCorruptor(unit: unit)
        let engine = try engine(unit: unit, logDir: dir + "/log")
        defer { try? engine.close() }
        let users = Array(engine.model.bundle.userIDs.ids.prefix(3)), items = Array(engine.model.bundle.itemIDs.ids.prefix(2))
        let before = try ProbeAnswers(engine, users: users, items: items)
        let version = engine.model.version

        let found = try #require(try findCrash(corruptor), "no corruption of the first 8 KiB crashed libhdf5 in 80 tries")
        guard case .crashed(let path, let signal, let name, _) = found.error else { return }
        #expect(path == unit && signal > 0 && name.hasPrefix("SIG"))
        #expect(found.error.description.contains("\(unit): the process validating the model was killed by \(name)"))

        // The engine's reload (what the watcher and POST /v1/admin/reload call) is refused; the model stays.
        let e = #expect(throws: ServingError.self) { try engine.reload() }
        guard case .validation(.crashed(_, _, let again, _))? = e else { Issue.record("expected a crash, got \(String(describing: e))"); return }
        #expect(again == name)
        #expect(engine.model.version == version)
        #expect(try ProbeAnswers(engine, users: users, items: items) == before)
        #expect(engine.statistics.reloadFailures == 1)

        // A server started on it refuses with the signal and the path, and exits with a status (no crash).
        let result = try runServe(["--bundle", unit, "--log-dir", dir + "/log2", "--insecure-no-auth", "--port", "0",
                                   "--poll-seconds", "0"])
        #expect(result.reason == .exit && result.status != 0, "\(result)")
        #expect(result.stderr.contains("killed by \(name)") && result.stderr.contains(unit), "\(result.stderr)")

        // `encore-train recommend` on it fails the same way instead of crashing.
        let train = (Self.validator.executable as NSString).deletingLastPathComponent + "/encore-train"
        let rec = try run(train, ["recommend", "--bundle", unit, "--user", users[0]])
        #expect(rec.reason == .exit && rec.status != 0, "\(rec)")
        #expect(rec.stderr.contains("killed by \(name)"), "\(rec.stderr)")

        // Once the good version is back, the reload succeeds.
        try corruptor.restore()
        try engine.reload()
        #expect(try ProbeAnswers(engine, users: users, items: items) == before)
    }

    /// The watcher (polling the manifest) meets the crashing version: the server keeps serving, and the failure is
    /// logged with the signal's name.
    @Test func watcherKeepsServingThroughACrashingVersion() async throws {
        let fixture = try ServeFixture.get()
        let dir = try ServeFixture.scratch("isolation-watch")
        let unit = try fixture.copyUnit(to: dir)
        let corruptor = try UnitCorruptor(unit: unit)
        let found = try #require(try findCrash(corruptor))
        try corruptor.restore()
        let engine = try engine(unit: unit, logDir: dir + "/log")
        defer { try? engine.close() }
        let version = engine.model.version
        try corruptor.corrupt(role: "bundle", damage: .headerFlips, seed: found.seed, updateChecksum: true)
        let watcher = BundleWatcher(holder: EngineHolder(engine), interval: .milliseconds(20), logger: Logger(label: "w"))
        let task = Task { try await watcher.run() }
        for _ in 0..<500 where engine.statistics.reloadFailures == 0 { try await Task.sleep(for: .milliseconds(20)) }
        task.cancel()
        _ = try? await task.value
        #expect(engine.statistics.reloadFailures == 1)
        #expect(engine.model.version == version)
        #expect(try engine.recommendations(user: engine.model.bundle.userIDs.id(at: 0), k: 5).items.count == 5)
    }

    /// Seeded corruptions of the bundle and its index files (bit flips, truncations, zeroed pages, flips in the
    /// first 8 KiB), with the manifest's checksums stale (refused before HDF5 reads a byte) or updated (HDF5 and the
    /// index reader see the bytes). Each load either succeeds or fails with a clear error (never a crash of this
    /// process), and the engine answers the probes exactly as before after every failure.
    /// `ENCORE_FUZZ_COUNT` sets the number of corruptions (default 192, about a minute here).
    @Test func fuzzedCorruptionsNeverTakeTheServerDown() throws {
        let count = ProcessInfo.processInfo.environment["ENCORE_FUZZ_COUNT"].flatMap { Int($0) } ?? 192
        let fixture = try ServeFixture.get()
        let dir = try ServeFixture.scratch("fuzz")
        let unit = try fixture.copyUnit(to: dir)
        let corruptor = try UnitCorruptor(unit: unit)
        let engine = try engine(unit: unit, logDir: dir + "/log")
        defer { try? engine.close() }
        let users = Array(engine.model.bundle.userIDs.ids.prefix(3)), items = Array(engine.model.bundle.itemIDs.ids.prefix(2))
        let before = try ProbeAnswers(engine, users: users, items: items)
        let goodVersion = engine.model.version
        let roles = ["bundle", "bundle", "items-ip", "items-cosine"]
        var outcomes: [String: Int] = [:]
        for k in 0..<count {
            let seed = UInt64(k) &* 7919 &+ 17
            let role = roles[k % roles.count]
            let damage = UnitCorruptor.Damage.allCases[(k / roles.count) % UnitCorruptor.Damage.allCases.count]
            let update = (k / (roles.count * UnitCorruptor.Damage.allCases.count)) % 2 == 0
            let what = try corruptor.corrupt(role: role, damage: damage, seed: seed, updateChecksum: update)
            var failure: ServingError?
            do throws(ServingError) { try engine.reload() } catch { failure = error }
            if let error = failure {
                if case .validation(.crashed(let path, _, let name, _)) = error {
                    #expect(path == unit, "\(what)")
                    outcomes["crashed (\(name))", default: 0] += 1
                } else {
                    outcomes["refused", default: 0] += 1
                }
                #expect(!error.description.isEmpty)
                if !update {
                    #expect(error.description.contains("checksum mismatch") || error.description.contains("size mismatch"),
                            "\(what): \(error)")
                }
                #expect(engine.model.version == goodVersion, "\(what)")
                #expect(try ProbeAnswers(engine, users: users, items: items) == before, "\(what)")
            } else {
                // Loaded: only possible when the manifest matches the bytes.
                #expect(update, "a stale checksum was accepted: \(what)")
                if role != "bundle" {
                    // The damaged index is not the one the bundle records: exact search for its role.
                    let status = engine.model.indexStatus.first { $0.role == role }
                    #expect(status?.state != .loaded, "a damaged index was loaded: \(what)")
                }
                let answers = try ProbeAnswers(engine, users: users, items: items)
                #expect(answers.recommendations.allSatisfy { $0.count == 10 }, "\(what)")
                outcomes["loaded", default: 0] += 1
                try corruptor.restore()
                try engine.reload()
                #expect(try ProbeAnswers(engine, users: users, items: items) == before, "\(what)")
            }
        }
        try corruptor.restore()
        let summary = outcomes.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
        print("bundle fuzz: \(count) corruptions: \(summary)")
        #expect(outcomes.values.reduce(0, +) == count)
    }

    struct RunResult: CustomStringConvertible {
        var reason: Process.TerminationReason
        var status: Int32
        var stderr: String
        var description: String { "reason \(reason.rawValue) status \(status): \(stderr.suffix(600))" }
    }

    func runServe(_ arguments: [String]) throws -> RunResult {
        try run(Self.validator.executable, arguments)
    }

    func run(_ executable: String, _ arguments: [String]) throws -> RunResult {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        env["SWIFT_BACKTRACE"] = "enable=no"
        p.environment = env
        let err = Pipe()
        p.standardError = err
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        let data = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return RunResult(reason: p.terminationReason, status: p.terminationStatus, stderr: String(decoding: data, as: UTF8.self))
    }
}

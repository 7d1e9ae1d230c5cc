import Foundation
import Logging
import RecCore
import Testing
@testable import EncoreEventLog
@testable import EncoreServing
import EncoreTestSupport

/// The server's event log against the bundle's `event_log_through`, and group commit across concurrent ingests.
@Suite("Event log and bundle consistency")
struct LogConsistencyServeTests {
    /// A plain copy of the fixture's bundle recording `event_log_through`.
    func bundle(through: UInt64, in dir: String) throws -> String {
        let fixture = try ServeFixture.get()
        let path = try fixture.copyBundle(to: dir)
        var bundle = try ModelBundle.read(from: path)
        bundle.metadata["event_log_through"] = "\(through)"
        try bundle.write(to: path)
        return path
    }

    /// The case: a bundle trained through sequence 1 and an empty log. The start is refused; with
    /// `newEventLog` the log continues at 2, so a dislike survives a restart (it was skipped as "before the cut").
    @Test func anEmptyLogBehindTheBundleIsRefusedUnlessANewLogIsAskedFor() throws {
        let dir = try ServeFixture.scratch("log-behind")
        let path = try bundle(through: 1, in: dir)
        let model = try ServingModel.load(path: path)
        let e = #expect(throws: ServingError.self) {
            _ = try RealtimeEngine(model: model, logDirectory: dir + "/log", fsync: .never)
        }
        let message = e?.description ?? ""
        #expect(message.contains("\(dir)/log: the event log ends at sequence 0 but must reach sequence 1"), "\(message)")
        #expect(message.contains("--new-event-log"))

        let engine = try RealtimeEngine(model: model, logDirectory: dir + "/log", fsync: .never, newEventLog: true)
        let item = model.itemID(model.popular[0])
        let r = try engine.ingest([UserEvent(eventID: "d1", user: "u-new-log", item: item, type: .dislike, msPlayed: nil,
                                             timestamp: ServeFixture.recent)])
        #expect(r.sequences == 2...2)
        #expect(engine.state(user: "u-new-log").dislikedTracks == [item])
        try engine.close()
        let again = try RealtimeEngine(model: model, logDirectory: dir + "/log", fsync: .never)
        defer { try? again.close() }
        #expect(again.state(user: "u-new-log").dislikedTracks == [item])
        #expect(try again.ingest([UserEvent(eventID: "d2", user: "u-new-log", item: item, type: .play, msPlayed: 60_000,
                                            timestamp: ServeFixture.recent)]).sequences == 3...3)
        // A second --new-event-log on the same folder is refused: the log is there.
        #expect(throws: ServingError.self) {
            _ = try RealtimeEngine(model: model, logDirectory: dir + "/log2-absent", fsync: .never, newEventLog: true).close()
            _ = try RealtimeEngine(model: model, logDirectory: dir + "/log", fsync: .never, newEventLog: true)
        }
    }

    /// A reload of a bundle trained through a later sequence than this log holds is refused; the model stays.
    @Test func aReloadAheadOfTheLogIsRefused() throws {
        let dir = try ServeFixture.scratch("log-reload")
        let path = try bundle(through: 0, in: dir)
        let engine = try RealtimeEngine(model: try ServingModel.load(path: path), logDirectory: dir + "/log", fsync: .never)
        defer { try? engine.close() }
        let item = engine.model.itemID(engine.model.popular[0])
        _ = try engine.ingest([UserEvent(eventID: "r1", user: "u", item: item, type: .play, msPlayed: 60_000, timestamp: ServeFixture.recent)])
        let version = engine.model.version
        let ahead = try bundle(through: 5, in: try ServeFixture.scratch("log-reload-ahead"))
        let e = #expect(throws: ServingError.self) { try engine.reload(path: ahead) }
        #expect(e?.description.contains("trained on the event log through sequence 5 but this log ends at 1") == true, "\(String(describing: e))")
        #expect(engine.model.version == version)
    }

    /// Concurrent ingests share fsyncs: with a slow disk, 32 requests at once need far fewer than 32 (they took one
    /// each while the fsync ran under the ingest lock). Each is durable when it returns.
    @Test func concurrentIngestsShareFsyncs() throws {
        let dir = try ServeFixture.scratch("group-commit")
        let fixture = try ServeFixture.get()
        let path = try fixture.copyBundle(to: dir)
        let engine = try RealtimeEngine(model: try ServingModel.load(path: path), logDirectory: dir + "/log", fsync: .always)
        defer { try? engine.close() }
        engine.log.injectFaults(EventLogFaults(fsyncDelayMs: 40))
        let item = engine.model.itemID(engine.model.popular[0])
        let results = Locked<[ClosedRange<UInt64>]>([])
        onThreads(32) { k in
            if let r = try? engine.ingest([UserEvent(eventID: "g\(k)", user: "g\(k % 4)", item: item, type: .play,
                                                     msPlayed: 60_000, timestamp: ServeFixture.recent)]).sequences {
                results.withLock { $0.append(r) }
            }
        }
        #expect(results.withLock { $0.count } == 32)
        #expect(engine.log.fsyncCount <= 8, "\(engine.log.fsyncCount) fsyncs for 32 concurrent ingests")
        #expect(engine.lastSequence == 32)
    }

    /// After a failed fsync the engine refuses every ingest, duplicates included (their first copy may not be on
    /// disk), until it is reopened.
    @Test func afterAFailedFsyncEveryIngestIsRefused() throws {
        let dir = try ServeFixture.scratch("fsync-fails")
        let fixture = try ServeFixture.get()
        let path = try fixture.copyBundle(to: dir)
        let engine = try RealtimeEngine(model: try ServingModel.load(path: path), logDirectory: dir + "/log", fsync: .always)
        defer { try? engine.close() }
        let item = engine.model.itemID(engine.model.popular[0])
        let event = UserEvent(eventID: "f1", user: "uf", item: item, type: .play, msPlayed: 60_000, timestamp: ServeFixture.recent)
        engine.log.injectFaults(EventLogFaults(failNextFsync: true))
        #expect(throws: ServingError.self) { _ = try engine.ingest([event]) }
        let e = #expect(throws: ServingError.self) { _ = try engine.ingest([event]) }
        #expect(e?.description.contains("restart to recover from the log") == true)
    }
}

import Foundation
import Testing

#if canImport(Glibc)
import Glibc
@testable import EncoreCore
@testable import EncoreData
@testable import EncoreEventLog
import EncoreTestSupport
#endif

private func consistencyEvent(_ k: Int) -> UserEvent {
    UserEvent(eventID: "c\(k)", user: "u\(k % 5)", item: "t\(k % 11)", type: .play, msPlayed: 60_000,
              timestamp: 1_700_000_000 + Int64(k))
}

private func withDirectory<R>(_ body: (String) throws -> R) throws -> R {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("encore-eventlog-consistency-\(UUID().uuidString)").path
    defer { try? FileManager.default.removeItem(atPath: dir) }
    return try body(dir)
}

private func segments(_ dir: String) throws -> [String] {
    try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasPrefix("events-") }.sorted().map { dir + "/" + $0 }
}

private func expectLogError(_ body: () throws -> Void) -> EventLogError? {
    do { try body() } catch let e as EventLogError { return e } catch { Issue.record("unexpected error \(error)") }
    return nil
}

/// The log against the bundle's `event_log_through`: a lost stretch is refused (not cut as a torn tail), a new log
/// continues after the bundle's sequence, and fsyncs are shared by concurrent writers.
@Suite("EventLog consistency")
struct EventLogConsistencyTests {
    /// A segment truncated at half looks like a torn tail by itself; with the bundle's sequence beyond the cut it is
    /// refused with the path and offset, and the file is left as it is.
    @Test func truncatedSegmentBehindTheBundleIsRefusedNotCut() throws {
        try withDirectory { (dir: String) throws in
            let log = try EventLog(directory: dir, fsync: .never)
            for b in 0..<20 { try log.append((0..<10).map { consistencyEvent(b * 10 + $0) }) }
            try log.close()
            let path = try #require(try segments(dir).first)
            let size = try #require(try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int)
            // Cut in the middle of a record, at about half the file.
            let half = Int64(size / 2 + 3)
            #expect(truncate(path, off_t(half)) == 0)
            let e = expectLogError { _ = try EventLog(directory: dir, fsync: .never, requiredThrough: 200) }
            guard case .missingRecords(let d, let last, let required, let torn)? = e else {
                Issue.record("expected missingRecords, got \(String(describing: e))")
                return
            }
            #expect(d == dir && required == 200 && last < 200 && last > 50)
            #expect(torn?.path == path)
            let message = e?.description ?? ""
            #expect(message.contains("the event log ends at sequence \(last) but must reach sequence 200"))
            #expect(message.contains("\(path) ends in damage at byte offset \(torn?.offset ?? -1)"))
            #expect(message.contains("not cut"))
            // Nothing was changed.
            let after = try #require(try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int)
            #expect(Int64(after) == half)
            // Without the bundle's requirement it is a torn tail, cut as before.
            let reopened = try EventLog(directory: dir, fsync: .never)
            #expect(reopened.recovery.tornTail != nil)
            #expect(reopened.lastSequence == last)
            try reopened.close()
        }
    }

    @Test func emptyLogBehindTheBundleIsRefused() throws {
        try withDirectory { (dir: String) throws in
            let e = expectLogError { _ = try EventLog(directory: dir, fsync: .never, requiredThrough: 1) }
            #expect(e == .missingRecords(directory: dir, lastSequence: 0, required: 1, tornTail: nil))
            #expect(e?.description.contains("--new-event-log") == true)
            #expect(try segments(dir).isEmpty)
        }
    }

    /// A new log continues after the bundle's sequence, so sequences are never reused; it needs an empty folder.
    @Test func newLogStartsAfterTheBundlesSequence() throws {
        try withDirectory { (dir: String) throws in
            let empty = try EventLog(directory: dir, fsync: .never, requiredThrough: 41, newLogAfter: 41)
            try empty.close()
            // A restart before any event: the new log's first segment says where it starts.
            let log = try EventLog(directory: dir, fsync: .never, requiredThrough: 41)
            #expect(log.lastSequence == 41)
            #expect(try log.append([consistencyEvent(1), consistencyEvent(2)]) == 42...43)
            try log.close()
            #expect(try segments(dir).map { ($0 as NSString).lastPathComponent } == ["events-00000000000000000042.log"])
            let again = try EventLog(directory: dir, fsync: .never, requiredThrough: 41)
            #expect(again.lastSequence == 43)
            #expect(try again.append([consistencyEvent(3)]) == 44...44)
            try again.close()
            var sequences: [UInt64] = []
            try EventLog.read(directory: dir) { sequences.append($0.sequence) }
            #expect(sequences == [42, 43, 44])
            // A bundle trained through an earlier sequence than the log holds: records 11...41 are missing.
            let gap = expectLogError { _ = try EventLog(directory: dir, fsync: .never, requiredThrough: 10) }
            #expect(gap == .missingStart(directory: dir, firstSequence: 42, required: 11))
            let notEmpty = expectLogError { _ = try EventLog(directory: dir, fsync: .never, newLogAfter: 50) }
            #expect(notEmpty == .notEmpty(directory: dir, segments: 1))
            #expect(notEmpty?.description.contains("move it away first") == true)
        }
    }

    /// Writers that wait for durability outside their own lock share fsyncs: with a slow disk, 32 concurrent
    /// appends need far fewer than 32.
    @Test func concurrentAppendsShareOneFsync() throws {
        try withDirectory { (dir: String) throws in
            let log = try EventLog(directory: dir, fsync: .always)
            log.injectFaults(EventLogFaults(fsyncDelayMs: 40))
            onThreads(32) { k in
                _ = try? log.append([consistencyEvent(k)])
            }
            #expect(log.lastSequence == 32)
            #expect(log.fsyncCount <= 8, "\(log.fsyncCount) fsyncs for 32 concurrent appends")
            try log.close()
        }
    }
}

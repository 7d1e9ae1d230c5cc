import Foundation
import Testing


#if canImport(Glibc)
import Glibc
@testable import EncoreCore
@testable import EncoreData
@testable import EncoreEventLog
#endif

/// A fresh directory, removed after `body`.
private func withLogDirectory<R>(_ body: (String) throws -> R) throws -> R {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("encore-eventlog-tests-\(UUID().uuidString)").path
    defer { try? FileManager.default.removeItem(atPath: dir) }
    return try body(dir)
}

private func event(_ k: Int, user: String = "u", type: EventType = .play) -> UserEvent {
    UserEvent(eventID: "e\(k)", user: "\(user)\(k % 7)", item: "t\(k % 13)", type: type,
              msPlayed: k % 3 == 0 ? nil : Int64(k * 1000), timestamp: 1_700_000_000 + Int64(k))
}

private func readAll(_ dir: String, from: UInt64 = 1) throws -> [EventLogRecord] {
    var out: [EventLogRecord] = []
    try EventLog.read(directory: dir, from: from) { out.append($0) }
    return out
}

private func segmentFiles(_ dir: String) throws -> [String] {
    try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasPrefix("events-") }.sorted().map { dir + "/" + $0 }
}

private func fileBytes(_ path: String) throws -> [UInt8] { Array(try Data(contentsOf: URL(fileURLWithPath: path))) }
private func writeBytes(_ bytes: [UInt8], _ path: String) throws { try Data(bytes).write(to: URL(fileURLWithPath: path)) }

@Suite("EventLog")
struct EventLogTests {
    @Test func roundTripAndSequencesContinueAfterReopen() throws {
        try withLogDirectory { dir in
            let log = try EventLog(directory: dir + "/nested/log", fsync: .always)
            #expect(log.lastSequence == 0)
            let batch1 = (0..<5).map { event($0) }
            #expect(try log.append(batch1) == 1...5)
            #expect(try log.append([event(5)]) == 6...6)
            try log.close()
            #expect(throws: EventLogError.closed(directory: dir + "/nested/log")) { try log.append([event(9)]) }

            let again = try EventLog(directory: dir + "/nested/log", fsync: .never)
            #expect(again.lastSequence == 6 && again.recovery.records == 6 && again.recovery.tornTail == nil)
            #expect(try again.append([event(6), event(7)]) == 7...8)
            try again.close()

            let records = try readAll(dir + "/nested/log")
            #expect(records.map(\.sequence) == Array(1...8))
            #expect(records.map(\.event) == (0..<8).map { event($0) })
            #expect(try readAll(dir + "/nested/log", from: 6).map(\.sequence) == [6, 7, 8])
            let files = try segmentFiles(dir + "/nested/log")
            #expect(files.map { ($0 as NSString).lastPathComponent } == ["events-00000000000000000001.log"])
            let bytes = try fileBytes(files[0])
            #expect(Array(bytes[0..<8]) == Array("ENCEVLG1".utf8))
        }
    }

    @Test func invalidAndEmptyBatchesAppendNothing() throws {
        try withLogDirectory { dir in
            let log = try EventLog(directory: dir, fsync: .never)
            #expect(throws: EventLogError.emptyBatch) { try log.append([]) }
            var bad = event(1)
            bad.user = ""
            #expect(throws: EventLogError.invalidEvent(EventValidationError(index: 1, field: "user", message: "must not be empty"))) {
                try log.append([event(0), bad])
            }
            #expect(log.lastSequence == 0)
            try log.append([event(0)])
            try log.close()
            #expect(try readAll(dir).count == 1)
        }
    }

    @Test func secondOpenOfTheSameDirectoryIsRefused() throws {
        try withLogDirectory { dir in
            let log = try EventLog(directory: dir, fsync: .never)
            #expect(throws: EventLogError.locked(path: dir)) { _ = try EventLog(directory: dir) }
            try log.close()
            let again = try EventLog(directory: dir, fsync: .never)
            try again.close()
        }
    }

    @Test func segmentsRollOverAndReadSkipsEarlierOnes() throws {
        try withLogDirectory { dir in
            let log = try EventLog(directory: dir, fsync: .always, segmentBytes: 4096)
            for k in 0..<100 { try log.append([event(2 * k), event(2 * k + 1)]) }
            try log.close()
            let files = try segmentFiles(dir)
            #expect(files.count > 3)
            for f in files { #expect(try fileBytes(f).count <= 4096) }
            // Each file is named after its first record's sequence.
            var seen: [UInt64] = []
            try EventLog.read(directory: dir) { seen.append($0.sequence) }
            #expect(seen == Array(1...200))
            #expect(try readAll(dir, from: 150).map(\.sequence) == Array(150...200))
            #expect(try EventLog.verify(directory: dir).records == 200)
            let reopened = try EventLog(directory: dir, fsync: .never, segmentBytes: 4096)
            #expect(try reopened.append([event(200)]) == 201...201)
            try reopened.close()
        }
    }

    @Test func tornTailAtEveryByteOfTheLastRecordIsCut() throws {
        try withLogDirectory { dir in
            let log = try EventLog(directory: dir, fsync: .never)
            try log.append((0..<3).map { event($0) })
            let before = try fileBytes(try segmentFiles(dir)[0]).count
            try log.append([event(3)])
            try log.close()
            let path = try segmentFiles(dir)[0]
            let full = try fileBytes(path)
            for cut in before..<full.count {
                try writeBytes(Array(full[..<cut]), path)
                // Readers stop quietly at the torn tail.
                #expect(try readAll(dir).count == 3)
                let summary = try EventLog.verify(directory: dir)
                #expect(summary.tornTail?.offset == (cut == before ? nil : Int64(before)))
                // Opening cuts it and the next append continues at sequence 4.
                let reopened = try EventLog(directory: dir, fsync: .never)
                #expect(reopened.lastSequence == 3)
                #expect(reopened.recovery.tornTail?.bytes == (cut == before ? nil : Int64(cut - before)))
                #expect(try fileBytes(path).count == before)
                #expect(try reopened.append([event(3)]) == 4...4)
                try reopened.close()
                // The re-appended record has the same size and the records before it are untouched.
                let now = try fileBytes(path)
                #expect(now.count == full.count && now[..<before] == full[..<before])
                #expect(try readAll(dir).map(\.event) == (0..<4).map { event($0) })
            }
        }
    }

    @Test func damagedLastRecordOrZeroFilledTailIsTorn() throws {
        try withLogDirectory { dir in
            let log = try EventLog(directory: dir, fsync: .never)
            try log.append((0..<3).map { event($0) })
            try log.close()
            let path = try segmentFiles(dir)[0]
            let full = try fileBytes(path)
            // A flipped byte in the last record's payload: indistinguishable from a torn write, cut.
            var flipped = full
            flipped[full.count - 3] ^= 0x40
            try writeBytes(flipped, path)
            #expect(try readAll(dir).count == 2)
            // Zeros after the records (a file extended by a crash).
            try writeBytes(full + [UInt8](repeating: 0, count: 700), path)
            let reopened = try EventLog(directory: dir, fsync: .never)
            #expect(reopened.lastSequence == 3 && reopened.recovery.tornTail?.bytes == 700)
            try reopened.close()
            #expect(try fileBytes(path) == full)
        }
    }

    @Test func flippedByteInAMiddleSegmentIsReportedWithPathAndOffset() throws {
        try withLogDirectory { dir in
            let log = try EventLog(directory: dir, fsync: .never, segmentBytes: 4096)
            for k in 0..<150 { try log.append([event(k)]) }
            try log.close()
            let files = try segmentFiles(dir)
            #expect(files.count >= 3)
            let middle = files[1]
            let original = try fileBytes(middle)
            // Byte 24 + 8 + 20 lies in the first record's payload (its JSON) of the middle segment.
            var damaged = original
            damaged[52] ^= 0x01
            try writeBytes(damaged, middle)
            for attempt in 0..<3 {
                do {
                    switch attempt {
                    case 0: _ = try EventLog(directory: dir, fsync: .never, segmentBytes: 4096)
                    case 1: try EventLog.read(directory: dir) { _ in }
                    default: _ = try EventLog.verify(directory: dir)
                    }
                    Issue.record("corruption not detected (attempt \(attempt))")
                } catch let EventLogError.corrupt(path, offset, reason) {
                    #expect(path == middle && offset == 24, "\(path) \(offset) \(reason)")
                    #expect(reason.contains("checksum"))
                } catch {
                    Issue.record("unexpected error \(error)")
                }
            }
            // Nothing was changed by the failed open.
            #expect(try fileBytes(middle) == damaged)
            // A flipped byte in the first record of the LAST segment with intact records after it is corruption too.
            try writeBytes(original, middle)
            let last = files[files.count - 1]
            var lastBytes = try fileBytes(last)
            #expect(lastBytes.count > 200)
            lastBytes[40] ^= 0x01
            try writeBytes(lastBytes, last)
            #expect {
                _ = try EventLog(directory: dir, fsync: .never, segmentBytes: 4096)
            } throws: { error in
                guard case let EventLogError.corrupt(path, offset, reason)? = error as? EventLogError else { return false }
                return path == last && offset == 24 && reason.contains("intact record follows")
            }
        }
    }

    @Test func missingMiddleSegmentIsAGap() throws {
        try withLogDirectory { dir in
            let log = try EventLog(directory: dir, fsync: .never, segmentBytes: 4096)
            for k in 0..<150 { try log.append([event(k)]) }
            try log.close()
            let files = try segmentFiles(dir)
            try FileManager.default.removeItem(atPath: files[1])
            #expect {
                try EventLog.read(directory: dir) { _ in }
            } throws: { error in
                guard case let EventLogError.corrupt(path, _, reason)? = error as? EventLogError else { return false }
                return path == files[2] && reason.contains("missing")
            }
        }
    }

    @Test func concurrentAppendsAreEachStoredOnceWithContiguousSequences() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("encore-eventlog-tests-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for policy in [FsyncPolicy.always, .interval(milliseconds: 5), .never] {
            try? FileManager.default.removeItem(atPath: dir)
            let log = try EventLog(directory: dir, fsync: policy, segmentBytes: 16 << 10)
            let ranges = try await withThrowingTaskGroup(of: [ClosedRange<UInt64>].self) { group in
                for t in 0..<16 {
                    group.addTask {
                        var mine: [ClosedRange<UInt64>] = []
                        for k in 0..<25 {
                            let batch = (0..<(1 + k % 3)).map { j in
                                UserEvent(eventID: "t\(t)-\(k)-\(j)", user: "u\(t)", item: "i\(k)", type: .play, timestamp: Int64(k))
                            }
                            mine.append(try log.append(batch))
                        }
                        return mine
                    }
                }
                var all: [ClosedRange<UInt64>] = []
                for try await r in group { all += r }
                return all
            }
            try log.close()
            let total = 16 * (0..<25).reduce(0) { $0 + 1 + $1 % 3 }
            let sorted = ranges.sorted { $0.lowerBound < $1.lowerBound }
            #expect(sorted.first?.lowerBound == 1 && sorted.last?.upperBound == UInt64(total))
            for (a, b) in zip(sorted, sorted.dropFirst()) { #expect(a.upperBound + 1 == b.lowerBound) }
            let records = try readAll(dir)
            #expect(records.map(\.sequence) == Array(1...UInt64(total)), "\(policy)")
            #expect(Set(records.map(\.event.eventID)).count == total)
            // A batch's records are contiguous and in order.
            let byID = Dictionary(uniqueKeysWithValues: records.map { ($0.event.eventID, $0.sequence) })
            for t in 0..<16 {
                for k in 0..<25 where k % 3 > 0 {
                    #expect(byID["t\(t)-\(k)-1"]! == byID["t\(t)-\(k)-0"]! + 1)
                }
            }
        }
    }

    @Test func readersWhileAppendingSeeAContiguousPrefix() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("encore-eventlog-tests-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let log = try EventLog(directory: dir, fsync: .never, segmentBytes: 8192)
        let total = 3000
        let writerDone = Locked(false)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                defer { writerDone.withLock { $0 = true } }
                for k in stride(from: 0, to: total, by: 7) {
                    try log.append((k..<min(k + 7, total)).map { event($0) })
                }
            }
            group.addTask {
                // Read until the writer is done; every read is a gapless prefix, never an error.
                var last = 0
                var finalRead = false
                while !finalRead {
                    finalRead = writerDone.withLock { $0 }
                    var n: UInt64 = 0
                    try EventLog.read(directory: dir) { r in
                        n += 1
                        #expect(r.sequence == n)
                        #expect(r.event == event(Int(n) - 1))
                    }
                    #expect(Int(n) >= last)
                    last = Int(n)
                    await Task.yield()
                }
                #expect(last == total)
            }
            try await group.waitForAll()
        }
        try log.close()
        #expect(try readAll(dir).count == total)
    }

    @Test func aFailedWriteIsCutOffAndAFailedFsyncStopsAppends() throws {
        try withLogDirectory { dir in
            let log = try EventLog(directory: dir, fsync: .always)
            try log.append([event(0), event(1)])
            let path = try segmentFiles(dir)[0]
            let size = try fileBytes(path).count
            // A write that stops half-way: nothing of the batch stays, the sequences are not used up.
            log.injectFaults(EventLogFaults(failNextWriteAfter: 150))
            #expect(throws: EventLogError.io(path: path, operation: "write (injected failure)", errno: ENOSPC)) {
                try log.append([event(2), event(3), event(4)])
            }
            #expect(try fileBytes(path).count == size && log.lastSequence == 2)
            #expect(try log.append([event(2)]) == 3...3)
            // A failed fsync: the append reports it and every later append is refused until the log is reopened.
            log.injectFaults(EventLogFaults(failNextFsync: true))
            #expect(throws: EventLogError.io(path: path, operation: "fsync", errno: EIO)) { try log.append([event(3)]) }
            #expect {
                try log.append([event(4)])
            } throws: { error in
                guard case .failed(let d, _)? = error as? EventLogError else { return false }
                return d == dir
            }
            #expect(throws: EventLogError.self) { try log.close() }
            let reopened = try EventLog(directory: dir, fsync: .always)
            #expect(reopened.lastSequence == 4)
            #expect(try reopened.append([event(4)]) == 5...5)
            try reopened.close()
            #expect(try readAll(dir).map(\.event) == (0..<5).map { event($0) })
        }
    }

    @Test func recordsAreFramedAsDocumented() throws {
        try withLogDirectory { dir in
            let log = try EventLog(directory: dir, fsync: .never)
            let e = event(1)
            try log.append([e])
            try log.close()
            let bytes = try fileBytes(try segmentFiles(dir)[0])
            func u32(_ at: Int) -> UInt32 { (0..<4).reduce(UInt32(0)) { $0 | UInt32(bytes[at + $1]) << (8 * UInt32($1)) } }
            func u64(_ at: Int) -> UInt64 { (0..<8).reduce(UInt64(0)) { $0 | UInt64(bytes[at + $1]) << (8 * UInt64($1)) } }
            #expect(u32(8) == 1 && u32(12) == 24 && u64(16) == 1)
            let len = Int(u32(24))
            #expect(bytes.count == 24 + 8 + len)
            #expect(u32(28) == CRC32C.checksum(bytes[32...]))
            #expect(u64(32) == 1)
            #expect(Array(bytes[48...]) == e.jsonBytes)
        }
    }

    @Test func tornSegmentHeaderIsRewritten() throws {
        try withLogDirectory { dir in
            let log = try EventLog(directory: dir, fsync: .never, segmentBytes: 4096)
            for k in 0..<40 { try log.append([event(k)]) }
            let last = log.lastSequence
            try log.close()
            // A crash right after creating the next segment: a partial header.
            let name = dir + "/events-" + String(format: "%020llu", last + 1) + ".log"
            try writeBytes(Array("ENCEV".utf8), name)
            let reopened = try EventLog(directory: dir, fsync: .never, segmentBytes: 4096)
            #expect(reopened.lastSequence == last)
            #expect(try reopened.append([event(99)]) == (last + 1)...(last + 1))
            try reopened.close()
            #expect(try readAll(dir).count == Int(last) + 1)
        }
    }
}

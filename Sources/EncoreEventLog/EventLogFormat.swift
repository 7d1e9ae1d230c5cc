import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import EncoreCore
import EncoreData
import SystemPackage

/// When ``EventLog/append(_:)`` makes the appended records durable.
public enum FsyncPolicy: Sendable, Equatable, CustomStringConvertible {
    /// `fsync` before `append` returns. Concurrent appends share one `fsync` (group commit).
    case always
    /// `fsync` at most every N milliseconds from a background thread; `append` returns after `write()`. A crash of
    /// the machine (not of the process) may lose the last N ms of acknowledged events.
    case interval(milliseconds: Int)
    /// Never `fsync` (the operating system writes the pages back when it likes); for tests and benchmarks.
    case never

    /// Parses `always`, `never` or `interval:<milliseconds>` (milliseconds 1 ... 3 600 000).
    /// - Throws: ``EventLogError/invalidArgument(name:value:expected:)``.
    public init(parsing text: String) throws(EventLogError) {
        let s = text.trimmingCharacters(in: .whitespaces).lowercased()
        if s == "always" { self = .always; return }
        if s == "never" { self = .never; return }
        let expected = "always, never or interval:<milliseconds> (1 ... 3600000)"
        guard s.hasPrefix("interval:"), let ms = Int(s.dropFirst("interval:".count)), ms >= 1, ms <= 3_600_000 else {
            throw .invalidArgument(name: "fsync", value: text, expected: expected)
        }
        self = .interval(milliseconds: ms)
    }

    /// `always`, `never` or `interval:<ms>` (what ``init(parsing:)`` reads).
    public var description: String {
        switch self {
        case .always: return "always"
        case .never: return "never"
        case .interval(let ms): return "interval:\(ms)"
        }
    }
}

/// One record of the log: its sequence number, when it was appended and the event.
public struct EventLogRecord: Sendable, Equatable {
    /// 1, 2, 3, ... over the whole log, across segments, without gaps.
    public var sequence: UInt64
    /// The wall-clock time of the append, in milliseconds since the epoch (records of one batch share it).
    public var appendedAtMs: Int64
    /// The event.
    public var event: UserEvent

    /// A record.
    public init(sequence: UInt64, appendedAtMs: Int64, event: UserEvent) {
        self.sequence = sequence
        self.appendedAtMs = appendedAtMs
        self.event = event
    }
}

/// What went wrong with an event log, naming the file and, for damage, the byte offset.
public enum EventLogError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A system call failed: the path, what was being done and `errno`.
    case io(path: String, operation: String, errno: Int32)
    /// The file is damaged at `offset` (bytes from the start of the file) and the damage is not a torn tail.
    case corrupt(path: String, offset: Int64, reason: String)
    /// An event of the batch is invalid (nothing was appended).
    case invalidEvent(EventValidationError)
    /// `append([])`: a batch needs at least one event.
    case emptyBatch
    /// A record would exceed ``EventLog/maxPayloadBytes``.
    case recordTooLarge(index: Int, bytes: Int, limit: Int)
    /// Another ``EventLog`` (in this or another process) has the directory open for appending.
    case locked(path: String)
    /// The log was closed.
    case closed(directory: String)
    /// An earlier write or `fsync` failed, so what is on disk is unknown; the log refuses appends until reopened
    /// (which recovers from the file contents). The payload describes the first failure.
    case failed(directory: String, cause: String)
    /// A bad option value.
    case invalidArgument(name: String, value: String, expected: String)
    /// The log ends before a sequence it must hold (the bundle's `event_log_through`): acknowledged records are
    /// missing (a lost or truncated log, another log's folder). `tornTail` is damage at the end of the last segment
    /// that would otherwise have been cut as a torn write. Nothing was changed.
    case missingRecords(directory: String, lastSequence: UInt64, required: UInt64, tornTail: EventLogTornTail?)
    /// The log starts after a sequence it must hold: records from `required` to `firstSequence - 1` are missing.
    case missingStart(directory: String, firstSequence: UInt64, required: UInt64)
    /// A new log was asked for in a folder that already holds segments.
    case notEmpty(directory: String, segments: Int)

    public var description: String {
        switch self {
        case let .io(path, operation, errno):
            return "\(path): cannot \(operation): \(FileError.errnoText(errno))"
        case let .corrupt(path, offset, reason):
            return "\(path): corrupt event log at byte offset \(offset): \(reason)"
        case let .invalidEvent(e):
            return "invalid event: \(e.description)"
        case .emptyBatch:
            return "an append needs at least one event"
        case let .recordTooLarge(index, bytes, limit):
            return "event \(index) would make a record of \(bytes) bytes, at most \(limit) are allowed"
        case let .locked(path):
            return "\(path): the event log is already open for appending (by this or another process)"
        case let .closed(directory):
            return "\(directory): the event log is closed"
        case let .failed(directory, cause):
            return "\(directory): the event log refuses appends after an earlier failure (\(cause)); reopen it to recover"
        case let .invalidArgument(name, value, expected):
            return "invalid \(name) '\(value)': expected \(expected)"
        case let .missingRecords(directory, last, required, torn):
            var s = "\(directory): the event log ends at sequence \(last) but must reach sequence \(required) (the "
                + "bundle was trained on the log through it): \(required - last) acknowledged record(s) are missing"
            if let torn {
                s += "; the last segment \(torn.path) ends in damage at byte offset \(torn.offset) (\(torn.bytes) bytes: "
                    + "\(torn.reason)), a lost stretch rather than a torn write, so it is not cut"
            }
            return s + ". Nothing was changed: restore the log, or start a new one (encore-serve --new-event-log, with an empty folder)"
        case let .missingStart(directory, first, required):
            return "\(directory): the event log starts at sequence \(first) but must hold sequence \(required) (the "
                + "bundle was trained on the log through \(required - 1)): records \(required)...\(first - 1) are missing"
        case let .notEmpty(directory, segments):
            return "\(directory): a new event log was asked for but the folder holds \(segments) segment(s); move it away first"
        }
    }
}

extension EventLogError: FileErrorConvertible {
    /// A failed file operation (``io(path:operation:errno:)``); a failure without an error number keeps its reason
    /// in the operation, with `EIO`.
    public init(_ file: FileError) {
        if let code = file.code {
            self = .io(path: file.path, operation: file.operation, errno: code)
        } else {
            self = .io(path: file.path, operation: "\(file.operation) (\(file.reason))", errno: EIO)
        }
    }
}

/// Damage found at the end of the last segment (a torn write): where the intact records end.
public struct EventLogTornTail: Sendable, Equatable, CustomStringConvertible {
    /// The segment file.
    public var path: String
    /// The offset of the first damaged byte: the intact records end here.
    public var offset: Int64
    /// The number of bytes after `offset` (cut by ``EventLog/init(directory:fsync:segmentBytes:)``).
    public var bytes: Int64
    /// What was found there.
    public var reason: String

    public var description: String { "\(path): torn tail of \(bytes) bytes at offset \(offset) (\(reason))" }
}

/// What a scan of a log directory found (``EventLog/verify(directory:)``, ``EventLog/recovery``).
public struct EventLogSummary: Sendable, Equatable, CustomStringConvertible {
    /// The directory.
    public var directory: String
    /// The segment files, oldest first.
    public var segments: [String]
    /// The number of intact records.
    public var records: Int
    /// The first sequence number in the log (0 when it is empty).
    public var firstSequence: UInt64
    /// The last intact sequence number (0 when the log is empty).
    public var lastSequence: UInt64
    /// The bytes of intact records and headers.
    public var bytes: Int64
    /// A torn tail of the last segment, if any (``EventLog/init(directory:fsync:segmentBytes:)`` cuts it).
    public var tornTail: EventLogTornTail?
    /// The intact bytes of the last segment (recovery cuts the segment there).
    var lastSegmentBytes: Int64 = 0

    public var description: String {
        var s = "\(directory): \(segments.count) segment(s), \(records) record(s)"
        if records > 0 { s += ", sequences \(firstSequence)...\(lastSequence)" }
        s += ", \(bytes) bytes"
        if let tornTail { s += "; \(tornTail.description)" }
        return s
    }
}

/// The on-disk format of the event log (see ``EventLog``).
enum EventLogFormat {
    static let magic: [UInt8] = Array("ENCEVLG1".utf8)
    static let version: UInt32 = 1
    static let headerBytes = 24
    /// `u32 length | u32 crc`.
    static let frameBytes = 8
    /// `u64 sequence | i64 appendedAtMs`.
    static let payloadPrefix = 16
    /// The smallest valid payload: the prefix and `{}`.
    static let minPayload = payloadPrefix + 2

    static func segmentName(_ first: UInt64) -> String {
        let digits = String(first)
        return "events-" + String(repeating: "0", count: max(0, 20 - digits.count)) + digits + ".log"
    }

    /// The first sequence of a segment file name `events-<20 digits>.log`, or `nil` for another name.
    static func firstSequence(ofSegment name: String) -> UInt64? {
        guard name.hasPrefix("events-"), name.hasSuffix(".log") else { return nil }
        let digits = name.dropFirst(7).dropLast(4)
        guard digits.count == 20, digits.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        return UInt64(digits)
    }

    static func header(first: UInt64) -> [UInt8] {
        var h = magic
        put32(&h, version)
        put32(&h, UInt32(headerBytes))
        put64(&h, first)
        return h
    }

    @inline(__always) static func put32(_ out: inout [UInt8], _ v: UInt32) {
        out.append(UInt8(truncatingIfNeeded: v)); out.append(UInt8(truncatingIfNeeded: v >> 8))
        out.append(UInt8(truncatingIfNeeded: v >> 16)); out.append(UInt8(truncatingIfNeeded: v >> 24))
    }

    @inline(__always) static func put64(_ out: inout [UInt8], _ v: UInt64) {
        put32(&out, UInt32(truncatingIfNeeded: v)); put32(&out, UInt32(truncatingIfNeeded: v >> 32))
    }

    @inline(__always) static func get32(_ b: UnsafeRawBufferPointer, _ at: Int) -> UInt32 {
        UInt32(b[at]) | UInt32(b[at + 1]) << 8 | UInt32(b[at + 2]) << 16 | UInt32(b[at + 3]) << 24
    }

    @inline(__always) static func get64(_ b: UnsafeRawBufferPointer, _ at: Int) -> UInt64 {
        UInt64(get32(b, at)) | UInt64(get32(b, at + 4)) << 32
    }

    /// The segments of `directory` as (first sequence, path), sorted.
    static func segments(in directory: String) throws(EventLogError) -> [(first: UInt64, path: String)] {
        guard let dir = opendir(directory) else {
            throw .io(path: directory, operation: "list the directory", errno: errno)
        }
        defer { closedir(dir) }
        var out: [(UInt64, String)] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: Int(NAME_MAX) + 1) { String(cString: $0) }
            }
            if let first = firstSequence(ofSegment: name) { out.append((first, directory + "/" + name)) }
        }
        return out.sorted { $0.0 < $1.0 }
    }

    /// The whole content of a file.
    static func readFile(_ path: String) throws(EventLogError) -> [UInt8] {
        let file: FileDescriptor
        do {
            file = try FileDescriptor.open(path, .readOnly, options: [.closeOnExec])
        } catch {
            throw .io(path: path, operation: "open for reading", errno: FileError.code(of: error))
        }
        defer { try? file.close() }
        let size: Int64
        do {
            size = try file.stat().size
        } catch {
            throw .io(path: path, operation: "stat", errno: error.rawValue)
        }
        var out = [UInt8](repeating: 0, count: Int(size))
        var done = 0
        while done < out.count {
            let n: Int
            do {
                n = try out.withUnsafeMutableBytes { try file.read(into: UnsafeMutableRawBufferPointer(rebasing: $0[done...])) }
            } catch {
                throw .io(path: path, operation: "read", errno: FileError.code(of: error))
            }
            if n == 0 { break }  // The file shrank meanwhile.
            done += n
        }
        if done < out.count { out.removeLast(out.count - done) }
        return out
    }

    /// The result of scanning one segment.
    struct SegmentScan {
        /// Where the intact data ends (headers and whole records).
        var validEnd: Int
        /// The number of intact records.
        var records: Int
        /// The sequence after the last intact record.
        var nextSequence: UInt64
        /// Damage at the end (only for the last segment).
        var tornTail: EventLogTornTail?
        /// The segment's header was incomplete (only for the last segment): it holds no record.
        var headerTorn: Bool
    }

    /// Scans the records of one segment.
    ///
    /// - Parameters:
    ///   - expectedFirst: the sequence the segment must start with (`nil` for the first segment of the log).
    ///   - isLast: damage that no intact record follows is a torn tail (reported, not thrown); elsewhere it throws
    ///     ``EventLogError/corrupt(path:offset:reason:)``.
    ///   - visit: called with the payload range of each intact record and its sequence.
    static func scan(
        path: String, bytes: [UInt8], nameFirst: UInt64, expectedFirst: UInt64?, isLast: Bool,
        visit: (_ sequence: UInt64, _ payload: Range<Int>) throws -> Void
    ) throws -> SegmentScan {
        let n = bytes.count
        return try bytes.withUnsafeBytes { b throws -> SegmentScan in
            // Header.
            let expectedHeader = header(first: nameFirst)
            if n < headerBytes {
                if isLast, let expectedFirst, expectedFirst != nameFirst {
                    throw EventLogError.corrupt(
                        path: path, offset: 0,
                        reason: "the segment is named for sequence \(nameFirst), expected \(expectedFirst), and its header is incomplete")
                }
                if isLast && (bytes.allSatisfy { $0 == 0 } || Array(expectedHeader.prefix(n)) == bytes) {
                    return SegmentScan(
                        validEnd: 0, records: 0, nextSequence: nameFirst,
                        tornTail: EventLogTornTail(path: path, offset: 0, bytes: Int64(n),
                                                   reason: "incomplete segment header (\(n) of \(headerBytes) bytes)"),
                        headerTorn: true)
                }
                throw EventLogError.corrupt(path: path, offset: 0,
                                            reason: "the file is \(n) bytes, shorter than the \(headerBytes)-byte header")
            }
            guard Array(bytes[0..<8]) == magic else {
                throw EventLogError.corrupt(path: path, offset: 0, reason: "not an Encore event log segment (bad magic)")
            }
            let v = get32(b, 8)
            guard v == version else {
                throw EventLogError.corrupt(path: path, offset: 8,
                                            reason: "unsupported format version \(v) (this build reads \(version))")
            }
            guard get32(b, 12) == UInt32(headerBytes) else {
                throw EventLogError.corrupt(path: path, offset: 12, reason: "unexpected header size \(get32(b, 12))")
            }
            let first = get64(b, 16)
            guard first == nameFirst, first >= 1 else {
                throw EventLogError.corrupt(path: path, offset: 16,
                                            reason: "the header says the first sequence is \(first), the file name says \(nameFirst)")
            }
            if let expectedFirst, first != expectedFirst {
                throw EventLogError.corrupt(
                    path: path, offset: 16,
                    reason: "the segment starts at sequence \(first), expected \(expectedFirst) (a segment is missing or out of place)")
            }
            var off = headerBytes
            var seq = first
            var records = 0
            while off < n {
                if let problem = frameProblem(b, at: off, expected: seq) {
                    if problem.fatal || !isLast {
                        throw EventLogError.corrupt(path: path, offset: Int64(off), reason: problem.reason)
                    }
                    if let later = findFrame(b, after: off, minSequence: seq) {
                        throw EventLogError.corrupt(
                            path: path, offset: Int64(off),
                            reason: "\(problem.reason); an intact record follows at offset \(later), so this is not a torn tail")
                    }
                    return SegmentScan(
                        validEnd: off, records: records, nextSequence: seq,
                        tornTail: EventLogTornTail(path: path, offset: Int64(off), bytes: Int64(n - off), reason: problem.reason),
                        headerTorn: false)
                }
                let len = Int(get32(b, off))
                try visit(seq, (off + frameBytes)..<(off + frameBytes + len))
                off += frameBytes + len
                seq += 1
                records += 1
            }
            return SegmentScan(validEnd: off, records: records, nextSequence: seq, tornTail: nil, headerTorn: false)
        }
    }

    /// Why the frame at `off` is not an intact record with sequence `expected`, or `nil` if it is. `fatal` problems
    /// (a checksummed record with the wrong sequence) are never a torn tail.
    static func frameProblem(_ b: UnsafeRawBufferPointer, at off: Int, expected: UInt64) -> (reason: String, fatal: Bool)? {
        let n = b.count
        guard n - off >= frameBytes else {
            return ("incomplete record frame (\(n - off) of \(frameBytes) bytes)", false)
        }
        let len = Int(get32(b, off))
        guard len >= minPayload, len <= EventLog.maxPayloadBytes else {
            return ("invalid record length \(len)", false)
        }
        guard off + frameBytes + len <= n else {
            return ("the record of \(len) bytes extends past the end of the file (\(n - off - frameBytes) bytes left)", false)
        }
        let crc = get32(b, off + 4)
        let actual = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: b[(off + frameBytes)..<(off + frameBytes + len)]))
        guard crc == actual else {
            return (String(format: "checksum mismatch (stored %08x, computed %08x)", crc, actual), false)
        }
        let seq = get64(b, off + frameBytes)
        guard seq == expected else {
            return ("the record has sequence \(seq), expected \(expected)", true)
        }
        return nil
    }

    /// The offset of an intact-looking record (plausible length and sequence, matching checksum) after `off`.
    static func findFrame(_ b: UnsafeRawBufferPointer, after off: Int, minSequence: UInt64) -> Int? {
        let n = b.count
        var y = off + 1
        let maxSequence = minSequence + UInt64((n - off) / (frameBytes + minPayload)) + 1
        while y + frameBytes + minPayload <= n {
            let len = Int(get32(b, y))
            if len >= minPayload, len <= EventLog.maxPayloadBytes, y + frameBytes + len <= n {
                let seq = get64(b, y + frameBytes)
                if seq >= minSequence, seq <= maxSequence,
                   CRC32C.checksum(UnsafeRawBufferPointer(rebasing: b[(y + frameBytes)..<(y + frameBytes + len)])) == get32(b, y + 4) {
                    return y
                }
            }
            y += 1
        }
        return nil
    }

    /// Decodes a record payload (checksum already verified).
    static func decode(_ bytes: [UInt8], payload: Range<Int>, path: String) throws(EventLogError) -> EventLogRecord {
        let (seq, at) = bytes.withUnsafeBytes { b in
            (get64(b, payload.lowerBound), Int64(bitPattern: get64(b, payload.lowerBound + 8)))
        }
        let json = bytes[(payload.lowerBound + payloadPrefix)..<payload.upperBound]
        let offset = Int64(payload.lowerBound - frameBytes)
        let value: EventJSON.Value
        do {
            value = try EventJSON.parse(json)
        } catch {
            throw .corrupt(path: path, offset: offset, reason: "the event of record \(seq) is not JSON: \(error.message)")
        }
        do {
            let event = try UserEvent.event(from: value, index: nil, now: nil)
            return EventLogRecord(sequence: seq, appendedAtMs: at, event: event)
        } catch {
            throw .corrupt(path: path, offset: offset, reason: "the event of record \(seq) is invalid: \(error.description)")
        }
    }
}

import Foundation
import Logging
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import EncoreCore
import EncoreData
import SystemPackage

/// An append-only, segmented, length- and checksum-framed log of ``UserEvent``s on local disk.
///
/// ## Format (version 1; all integers little-endian)
///
/// The directory holds segment files `events-<first sequence, 20 digits>.log` (for example
/// `events-00000000000000000001.log`), a `LOCK` file, and nothing else of the log's. A segment is a 24-byte header
///
/// | bytes | content |
/// |---|---|
/// | 0..<8 | magic `ENCEVLG1` |
/// | 8..<12 | u32 format version (1) |
/// | 12..<16 | u32 header size (24) |
/// | 16..<24 | u64 the first sequence of the segment (equal to the file name's) |
///
/// followed by records, each
///
/// | bytes | content |
/// |---|---|
/// | 0..<4 | u32 payload length L (18 ... ``maxPayloadBytes``) |
/// | 4..<8 | u32 CRC-32C (Castagnoli) of the payload |
/// | 8..<16 | payload: u64 sequence |
/// | 16..<24 | payload: i64 appendedAtMs (wall clock, ms since the epoch) |
/// | 24..<8+L | payload: the event as compact JSON (``UserEvent/jsonBytes``) |
///
/// Sequences are 1, 2, 3, ... over the whole log without gaps; each segment's first sequence follows the previous
/// segment's last. A batch is written with one `write` call and never split across segments; a segment rolls over
/// when the next batch would make it larger than `segmentBytes` (a batch larger than that gets a segment of its own).
/// The directory is `fsync`ed when a segment is created.
///
/// ## Durability and recovery
/// With ``FsyncPolicy/always`` an append returns after its records are `fsync`ed; concurrent appends share one
/// `fsync` (group commit). Opening a log scans every segment: damage at the end of the last segment that no intact
/// record follows (a torn write: an incomplete frame, an impossible length, a record running past the end of the
/// file, a checksum mismatch, zeros) is cut off with `ftruncate` and reported in ``recovery``; any other damage (in an
/// earlier segment, or with intact records after it, or a gap in the sequences) fails with
/// ``EventLogError/corrupt(path:offset:reason:)`` naming the file and byte offset, and nothing is changed.
///
/// A crash during an append can leave a prefix of that batch's records; that append never returned, so the client
/// retries with the same `event_id`s and a reader that deduplicates by `event_id` sees each event once.
///
/// ## Concurrency
/// The log is `Sendable`: appends from many threads or tasks are serialized by an internal lock (the `fsync` runs
/// outside it). `append` blocks its thread for the write and, with ``FsyncPolicy/always``, the `fsync`. Only one
/// `EventLog` may have a directory open (an exclusive `flock` on `LOCK`); ``read(directory:from:_:)`` and
/// ``verify(directory:)`` take no lock and may run while the log is appended to (a record being written reads as a
/// torn tail and ends the read).
public final class EventLog: Sendable {
    /// The largest record payload (sequence, time and JSON), in bytes.
    public static let maxPayloadBytes = 64 << 10

    /// The directory of the segments.
    public let directory: String
    /// The durability policy.
    public let fsyncPolicy: FsyncPolicy
    /// The size at which a segment rolls over.
    public let segmentBytes: Int
    /// What opening found: the segments, records, and a torn tail that was cut (``EventLogSummary/tornTail``).
    public let recovery: EventLogSummary

    private let state: Locked<State>
    /// Held for a whole `fsync` so concurrent appends share one (group commit); guards no value.
    private let syncLock = Locked(())
    private let lockFile: OpenFile
    private static let logger = Logger(label: "encore.eventlog")

    private struct State: @unchecked Sendable {
        var segment: OpenFile?
        var segmentPath = ""
        var segmentSize = 0
        var nextSequence: UInt64 = 1
        var writtenThrough: UInt64 = 0
        var syncedThrough: UInt64 = 0
        var failure: String?
        var closed = false
        var timer: DispatchSourceTimer?
        var faults = EventLogFaults()
        var fsyncs = 0
    }

    /// Opens (creating it if needed) the log in `directory` and recovers it.
    ///
    /// - Parameters:
    ///   - directory: the folder of the segments; created with its parents if missing.
    ///   - fsync: when appends are made durable.
    ///   - segmentBytes: the size at which segments roll over (at least 4 KiB).
    ///   - requiredThrough: a bundle's `event_log_through` (0: no requirement): the log must reach this sequence and hold
    ///     every record after it. A log that ends before it is refused with ``EventLogError/missingRecords(directory:lastSequence:required:tornTail:)``
    ///     before anything is cut, so a truncated segment is not mistaken for a torn write.
    ///   - newLogAfter: start a new log whose first sequence is this one plus 1 (sequences are never reused after
    ///     a bundle's `event_log_through`); the folder must hold no segment. `requiredThrough` is then not checked.
    /// - Throws: ``EventLogError``: ``EventLogError/io(path:operation:errno:)`` for a folder that cannot be created
    ///   or a file that cannot be read or written, ``EventLogError/locked(path:)`` when another `EventLog` has it
    ///   open, ``EventLogError/corrupt(path:offset:reason:)`` for damage that is not a torn tail,
    ///   ``EventLogError/invalidArgument(name:value:expected:)`` for a bad `segmentBytes` or interval.
    public init(
        directory: String, fsync: FsyncPolicy = .always, segmentBytes: Int = 64 << 20, requiredThrough: UInt64 = 0,
        newLogAfter: UInt64? = nil
    ) throws(EventLogError) {
        guard segmentBytes >= 4096 else {
            throw .invalidArgument(name: "segmentBytes", value: "\(segmentBytes)", expected: "at least 4096")
        }
        if case .interval(let ms) = fsync, ms < 1 {
            throw .invalidArgument(name: "fsync", value: fsync.description, expected: "an interval of at least 1 ms")
        }
        var dir = directory
        while dir.count > 1 && dir.hasSuffix("/") { dir.removeLast() }
        self.directory = dir
        self.fsyncPolicy = fsync
        self.segmentBytes = segmentBytes
        try Self.makeDirectories(dir)
        // Exclusive lock.
        let lockPath = dir + "/LOCK"
        let lockFile: OpenFile
        do {
            lockFile = OpenFile(try FileDescriptor.open(
                lockPath, .readWrite, options: [.create, .closeOnExec], permissions: FilePermissions(rawValue: 0o644)))
        } catch {
            throw .io(path: lockPath, operation: "open the lock file", errno: FileError.code(of: error))
        }
        if flock(lockFile.descriptor.rawValue, LOCK_EX | LOCK_NB) != 0 {
            let e = errno
            if e == EWOULDBLOCK { throw .locked(path: dir) }
            throw .io(path: lockPath, operation: "lock", errno: e)
        }
        self.lockFile = lockFile

        // Recovery.
        var summary: EventLogSummary
        do {
            summary = try Self.scanDirectory(dir, from: 1, decode: false) { _ in }
        } catch let e as EventLogError {
            throw e
        } catch {
            throw .io(path: dir, operation: "scan (\(error))", errno: EIO)
        }
        var st = State()
        let segments = try EventLogFormat.segments(in: dir)
        if newLogAfter != nil, !segments.isEmpty {
            throw .notEmpty(directory: dir, segments: segments.count)
        }
        if newLogAfter == nil && requiredThrough > 0 {
            // The records that survive recovery (a torn tail is not among them).
            let last = summary.records == 0 ? (segments.first.map { $0.first - 1 } ?? 0) : summary.lastSequence
            if last < requiredThrough {
                throw .missingRecords(directory: dir, lastSequence: last, required: requiredThrough, tornTail: summary.tornTail)
            }
            if let first = segments.first?.first, first > requiredThrough + 1 {
                throw .missingStart(directory: dir, firstSequence: first, required: requiredThrough + 1)
            }
        }
        if let last = segments.last {
            let path = last.path
            let file: OpenFile
            do {
                file = OpenFile(try FileDescriptor.open(path, .writeOnly, options: [.closeOnExec]))
            } catch {
                throw .io(path: path, operation: "open for appending", errno: FileError.code(of: error))
            }
            let fd = file.descriptor
            var size = Int(summary.lastSegmentBytes)
            if let torn = summary.tornTail {
                if size == 0 {
                    // Rewrite an incomplete header.
                    let header = EventLogFormat.header(first: last.first)
                    do { try fd.resize(to: 0) } catch {
                        throw .io(path: path, operation: "truncate", errno: FileError.code(of: error))
                    }
                    try Self.writeAll(fd, header, at: 0, path: path)
                    size = header.count
                } else {
                    do { try fd.resize(to: Int64(size)) } catch {
                        throw .io(path: path, operation: "truncate the torn tail at offset \(size)",
                                  errno: FileError.code(of: error))
                    }
                }
                guard posixFsync(fd.rawValue) == 0 else { throw .io(path: path, operation: "fsync", errno: errno) }
                Self.logger.warning(
                    "event log recovery: cut a torn tail of \(torn.bytes) bytes at offset \(torn.offset) of \(path) (\(torn.reason))")
            }
            st.segment = file
            st.segmentPath = path
            st.segmentSize = size
        }
        st.nextSequence = summary.records == 0 && segments.isEmpty ? 1 : summary.lastSequence + 1
        if summary.records == 0, let first = segments.first?.first { st.nextSequence = first }
        if let after = newLogAfter { st.nextSequence = after + 1 }
        st.writtenThrough = st.nextSequence - 1
        st.syncedThrough = st.nextSequence - 1
        summary.lastSegmentBytes = Int64(st.segmentSize)
        self.recovery = summary
        self.state = Locked(st)
        if newLogAfter != nil {
            // The new log's first segment now, so a restart before any append finds where it starts.
            try state.withLock { (s: inout State) throws(EventLogError) in try roll(&s) }
        }

        if case .interval(let ms) = fsync {
            let timer = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "encore.eventlog.fsync"))
            timer.schedule(deadline: .now() + .milliseconds(ms), repeating: .milliseconds(ms), leeway: .milliseconds(max(1, ms / 10)))
            timer.setEventHandler { [weak self] in self?.backgroundSync() }
            state.withLock { $0.timer = timer }
            timer.resume()
        }
    }

    deinit {
        let timer = state.withLock { s -> DispatchSourceTimer? in
            let t = s.timer
            s.timer = nil
            return t
        }
        timer?.cancel()
        if fsyncPolicy != .never { try? sync() }
    }

    /// The sequence of the last appended record (0 for an empty log).
    public var lastSequence: UInt64 { state.withLock { $0.nextSequence - 1 } }

    /// Appends a batch of events, all or nothing.
    ///
    /// The events are validated (``UserEvent/validate(index:)``), framed with consecutive sequence numbers and
    /// the current wall-clock time, and written with one `write` at the end of the current segment (rolling over
    /// first if the segment would exceed `segmentBytes`). With ``FsyncPolicy/always`` it returns after an `fsync`
    /// that covers the batch.
    ///
    /// - Returns: the sequences given to the events, in order.
    /// - Throws: ``EventLogError/emptyBatch``, ``EventLogError/invalidEvent(_:)``,
    ///   ``EventLogError/recordTooLarge(index:bytes:limit:)`` (nothing written); ``EventLogError/io(path:operation:errno:)``
    ///   when the write fails (the partial write is cut off again; nothing appended); ``EventLogError/closed(directory:)``;
    ///   ``EventLogError/failed(directory:cause:)`` after a failed `fsync` or an uncut partial write.
    @discardableResult
    public func append(_ events: [UserEvent]) throws(EventLogError) -> ClosedRange<UInt64> {
        let range = try write(events)
        try awaitDurability(through: range.upperBound)
        return range
    }

    /// Writes a batch as ``append(_:)`` does, without waiting for the `fsync`: call
    /// ``awaitDurability(through:)`` with the range's upper bound before acknowledging it. Writers that do this outside
    /// their own lock share one `fsync` among all the batches written meanwhile (group commit).
    /// - Returns: the sequences given to the events, in order.
    /// - Throws: as ``append(_:)``, except the `fsync`'s failure.
    @discardableResult
    public func write(_ events: [UserEvent]) throws(EventLogError) -> ClosedRange<UInt64> {
        guard !events.isEmpty else { throw .emptyBatch }
        var jsons: [[UInt8]] = []
        jsons.reserveCapacity(events.count)
        var total = 0
        for (k, e) in events.enumerated() {
            do { try e.validate(index: k) } catch { throw .invalidEvent(error) }
            let json = e.jsonBytes
            let payload = EventLogFormat.payloadPrefix + json.count
            guard payload <= Self.maxPayloadBytes else {
                throw .recordTooLarge(index: k, bytes: payload, limit: Self.maxPayloadBytes)
            }
            total += EventLogFormat.frameBytes + payload
            jsons.append(json)
        }
        let now = Self.wallClockMs()
        let range = try state.withLock { (s: inout State) throws(EventLogError) -> ClosedRange<UInt64> in
            if s.closed { throw .closed(directory: directory) }
            if let f = s.failure { throw .failed(directory: directory, cause: f) }
            if s.segment == nil || (s.segmentSize > EventLogFormat.headerBytes && s.segmentSize + total > segmentBytes) {
                try roll(&s)
            }
            guard let file = s.segment else { throw .closed(directory: directory) }
            var buffer: [UInt8] = []
            buffer.reserveCapacity(total)
            let first = s.nextSequence
            for (k, json) in jsons.enumerated() {
                let start = buffer.count
                EventLogFormat.put32(&buffer, UInt32(EventLogFormat.payloadPrefix + json.count))
                EventLogFormat.put32(&buffer, 0)
                EventLogFormat.put64(&buffer, first + UInt64(k))
                EventLogFormat.put64(&buffer, UInt64(bitPattern: now))
                buffer.append(contentsOf: json)
                let crc = buffer.withUnsafeBytes {
                    CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[(start + EventLogFormat.frameBytes)...]))
                }
                buffer.withUnsafeMutableBytes { b in
                    b[start + 4] = UInt8(truncatingIfNeeded: crc); b[start + 5] = UInt8(truncatingIfNeeded: crc >> 8)
                    b[start + 6] = UInt8(truncatingIfNeeded: crc >> 16); b[start + 7] = UInt8(truncatingIfNeeded: crc >> 24)
                }
            }
            let injected = s.faults.failNextWriteAfter.map { partial -> EventLogError in
                _ = Self.tryWriteAll(file.descriptor, Array(buffer.prefix(partial)), at: s.segmentSize, path: s.segmentPath)
                return .io(path: s.segmentPath, operation: "write (injected failure)", errno: ENOSPC)
            }
            s.faults.failNextWriteAfter = nil
            if let error = injected ?? Self.tryWriteAll(file.descriptor, buffer, at: s.segmentSize, path: s.segmentPath) {
                // Cut whatever part of the batch reached the file, so the batch is all or nothing.
                if (try? file.descriptor.resize(to: Int64(s.segmentSize))) == nil {
                    s.failure = "a failed write could not be cut off: \(error.description)"
                }
                throw error
            }
            s.segmentSize += buffer.count
            s.nextSequence = first + UInt64(events.count)
            s.writtenThrough = s.nextSequence - 1
            return first...(s.nextSequence - 1)
        }
        return range
    }

    /// Returns when the records through `sequence` are as durable as the policy promises: with
    /// ``FsyncPolicy/always`` after an `fsync` covering them (shared with every caller waiting meanwhile), at once
    /// otherwise.
    /// - Throws: ``EventLogError/io(path:operation:errno:)`` when the `fsync` fails, ``EventLogError/failed(directory:cause:)``
    ///   after an earlier failure.
    public func awaitDurability(through sequence: UInt64) throws(EventLogError) {
        if fsyncPolicy == .always {
            try syncThrough(sequence)
        } else if let f = state.withLock({ $0.failure }) {
            throw .failed(directory: directory, cause: f)
        }
    }

    /// The number of `fsync`s of appended records so far (one per group commit; segment roll-overs not counted).
    public var fsyncCount: Int { state.withLock { $0.fsyncs } }

    /// The sequence of the last record written (durable or not yet).
    public var writtenThrough: UInt64 { state.withLock { $0.writtenThrough } }

    /// Makes every appended record durable now (whatever the policy).
    /// - Throws: ``EventLogError/io(path:operation:errno:)`` when `fsync` fails (the log then refuses appends).
    public func sync() throws(EventLogError) {
        let target = state.withLock { $0.writtenThrough }
        try syncThrough(target)
    }

    /// Syncs pending records (unless the policy is ``FsyncPolicy/never``), stops the background `fsync`, closes the
    /// files and releases the directory lock. Appends afterwards throw ``EventLogError/closed(directory:)``; closing
    /// twice does nothing.
    public func close() throws(EventLogError) {
        let (timer, wasClosed) = state.withLock { s -> (DispatchSourceTimer?, Bool) in
            let t = s.timer
            s.timer = nil
            return (t, s.closed)
        }
        timer?.cancel()
        if wasClosed { return }
        var failure: EventLogError?
        if fsyncPolicy != .never {
            do { try sync() } catch { failure = error }
        }
        state.withLock { s in
            s.closed = true
            s.segment = nil
        }
        _ = flock(lockFile.descriptor.rawValue, LOCK_UN)
        if let failure { throw failure }
    }

    // MARK: Reading

    /// Reads every intact record with a sequence of at least `sequence`, in order, calling `body`.
    ///
    /// Segments that end before `sequence` are skipped without being read. A torn tail of the last segment ends the
    /// read quietly (it may be a record being written right now); damage anywhere else throws
    /// ``EventLogError/corrupt(path:offset:reason:)``.
    /// - Throws: ``EventLogError`` (a missing directory is ``EventLogError/io(path:operation:errno:)`` with `ENOENT`)
    ///   or whatever `body` throws.
    public static func read(directory: String, from sequence: UInt64 = 1, _ body: (EventLogRecord) throws -> Void) throws {
        _ = try scanDirectory(directory, from: sequence, decode: true, body)
    }

    /// Checks the whole log without changing it: every segment header, length, checksum, sequence and event.
    /// - Returns: the counts and any torn tail of the last segment.
    /// - Throws: ``EventLogError/corrupt(path:offset:reason:)`` for damage that is not a torn tail, or an I/O error.
    public static func verify(directory: String) throws(EventLogError) -> EventLogSummary {
        do {
            return try scanDirectory(directory, from: 1, decode: true) { _ in }
        } catch let e as EventLogError {
            throw e
        } catch {
            throw .io(path: directory, operation: "verify (\(error))", errno: EIO)
        }
    }

    /// Scans the segments of `directory`, calling `body` for the records from `from` on when `decode` is set.
    static func scanDirectory(
        _ directory: String, from: UInt64, decode: Bool, _ body: (EventLogRecord) throws -> Void
    ) throws -> EventLogSummary {
        let segments = try EventLogFormat.segments(in: directory)
        var summary = EventLogSummary(directory: directory, segments: segments.map(\.path), records: 0,
                                      firstSequence: 0, lastSequence: 0, bytes: 0, tornTail: nil)
        var expected: UInt64? = nil
        for (k, segment) in segments.enumerated() {
            let isLast = k == segments.count - 1
            // Skip a segment whose records all precede `from` (its successor starts at or before `from`), but only
            // when counting is not needed; verification and recovery read everything.
            if decode && from > 1 && !isLast && segments[k + 1].first <= from {
                expected = segments[k + 1].first
                continue
            }
            let bytes = try EventLogFormat.readFile(segment.path)
            let scan = try EventLogFormat.scan(
                path: segment.path, bytes: bytes, nameFirst: segment.first, expectedFirst: expected, isLast: isLast
            ) { seq, payload in
                guard decode, seq >= from else { return }
                try body(EventLogFormat.decode(bytes, payload: payload, path: segment.path))
            }
            if scan.records > 0 {
                if summary.records == 0 { summary.firstSequence = scan.nextSequence - UInt64(scan.records) }
                summary.lastSequence = scan.nextSequence - 1
            }
            summary.records += scan.records
            summary.bytes += Int64(scan.validEnd)
            summary.tornTail = scan.tornTail
            if isLast { summary.lastSegmentBytes = Int64(scan.validEnd) }
            expected = scan.nextSequence
        }
        return summary
    }

    // MARK: Internals

    /// Test hook: makes the next write or fsync fail.
    func injectFaults(_ faults: EventLogFaults) {
        state.withLock { $0.faults = faults }
    }

    /// Syncs the current segment if records up to `target` are not yet durable; concurrent callers share one fsync.
    private func syncThrough(_ target: UInt64) throws(EventLogError) {
        try syncLock.withLock { (_: inout Void) throws(EventLogError) in
            let (synced, file, path, written, failure) = state.withLock { s in
                (s.syncedThrough, s.segment, s.segmentPath, s.writtenThrough, s.failure)
            }
            if let failure { throw .failed(directory: directory, cause: failure) }
            if synced >= target { return }
            guard let file else { return }
            let (failFsync, delayMs) = state.withLock { s -> (Bool, Int) in
                defer { s.faults.failNextFsync = false }
                s.fsyncs += 1
                return (s.faults.failNextFsync, s.faults.fsyncDelayMs)
            }
            if delayMs > 0 { usleep(useconds_t(delayMs * 1000)) }
            if failFsync || posixFsync(file.descriptor.rawValue) != 0 {
                let error = EventLogError.io(path: path, operation: "fsync", errno: failFsync ? EIO : errno)
                state.withLock { $0.failure = $0.failure ?? error.description }
                throw error
            }
            state.withLock { $0.syncedThrough = max($0.syncedThrough, written) }
        }
    }

    private func backgroundSync() {
        do {
            try sync()
        } catch {
            Self.logger.error("event log background fsync failed: \(error.description)")
        }
    }

    /// Closes the current segment (synced unless the policy is `never`) and creates the next one.
    private func roll(_ s: inout State) throws(EventLogError) {
        if let old = s.segment, fsyncPolicy != .never {
            if posixFsync(old.descriptor.rawValue) != 0 {
                let error = EventLogError.io(path: s.segmentPath, operation: "fsync", errno: errno)
                s.failure = error.description
                throw error
            }
            s.syncedThrough = s.writtenThrough
        }
        let path = directory + "/" + EventLogFormat.segmentName(s.nextSequence)
        let file: OpenFile
        do {
            file = OpenFile(try FileDescriptor.open(
                path, .writeOnly, options: [.create, .exclusiveCreate, .closeOnExec],
                permissions: FilePermissions(rawValue: 0o644)))
        } catch {
            throw .io(path: path, operation: "create the segment", errno: FileError.code(of: error))
        }
        let header = EventLogFormat.header(first: s.nextSequence)
        do {
            try Self.writeAll(file.descriptor, header, at: 0, path: path)
        } catch {
            unlink(path)
            throw error
        }
        if fsyncPolicy != .never, posixFsync(file.descriptor.rawValue) != 0 {
            let e = errno
            unlink(path)
            throw .io(path: path, operation: "fsync", errno: e)
        }
        try Self.syncDirectory(directory)
        s.segment = file
        s.segmentPath = path
        s.segmentSize = header.count
    }

    /// `mkdir -p`.
    static func makeDirectories(_ path: String) throws(EventLogError) {
        var prefix = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/", omittingEmptySubsequences: true) {
            prefix += "/" + part
            if mkdir(prefix, 0o755) != 0 {
                let e = errno
                var st = stat()
                guard e == EEXIST, stat(prefix, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR else {
                    throw .io(path: prefix, operation: "create the directory", errno: e == EEXIST ? ENOTDIR : e)
                }
            }
        }
    }

    /// ``writeAll(_:_:at:path:)`` returning its error.
    static func tryWriteAll(_ fd: FileDescriptor, _ bytes: [UInt8], at offset: Int, path: String) -> EventLogError? {
        do {
            try writeAll(fd, bytes, at: offset, path: path)
            return nil
        } catch {
            return error
        }
    }

    static func writeAll(_ fd: FileDescriptor, _ bytes: [UInt8], at offset: Int, path: String) throws(EventLogError) {
        var done = 0
        while done < bytes.count {
            let n: Int
            do {
                n = try bytes.withUnsafeBytes {
                    try fd.write(toAbsoluteOffset: Int64(offset + done), UnsafeRawBufferPointer(rebasing: $0[done...]))
                }
            } catch {
                throw .io(path: path, operation: "write \(bytes.count) bytes at offset \(offset)",
                          errno: FileError.code(of: error))
            }
            if n == 0 { throw .io(path: path, operation: "write (no progress)", errno: EIO) }
            done += n
        }
    }

    static func syncDirectory(_ directory: String) throws(EventLogError) {
        let fd: FileDescriptor
        do {
            fd = try FileDescriptor.open(directory, .readOnly, options: [.directory, .closeOnExec])
        } catch {
            throw .io(path: directory, operation: "open the directory to sync it", errno: FileError.code(of: error))
        }
        defer { try? fd.close() }
        guard posixFsync(fd.rawValue) == 0 else { throw .io(path: directory, operation: "fsync the directory", errno: errno) }
    }

    static func wallClockMs() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }
}

#if canImport(Glibc)
@inline(__always) func posixFsync(_ fd: Int32) -> Int32 { Glibc.fsync(fd) }
#elseif canImport(Darwin)
@inline(__always) func posixFsync(_ fd: Int32) -> Int32 { Darwin.fsync(fd) }
#endif

/// A swift-system file descriptor owned by reference and closed when the last reference goes away: a sync may still
/// be `fsync`ing the segment an append has just rolled away from.
final class OpenFile: Sendable {
    let descriptor: FileDescriptor
    init(_ descriptor: FileDescriptor) { self.descriptor = descriptor }
    deinit { try? descriptor.close() }
}

/// Failures a test can inject into an ``EventLog``.
struct EventLogFaults: Sendable {
    /// The next append writes this many bytes of its batch, then fails with `ENOSPC`.
    var failNextWriteAfter: Int? = nil
    /// The next fsync fails with `EIO`.
    var failNextFsync = false
    /// Every fsync of appended records takes this much longer (a slow disk).
    var fsyncDelayMs = 0
}

import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import EncoreCore

/// One record of the track journal: when it was appended and the track.
public struct TrackJournalRecord: Sendable, Equatable {
    /// 1, 2, 3, ... in append order.
    public var sequence: UInt64
    /// The wall-clock time of the append, in milliseconds since the epoch.
    public var appendedAtMs: Int64
    /// The track as accepted (embedding and text vector normalized).
    public var track: PostedTrack
}

/// The append-only journal of the tracks posted to the server (`tracks.journal` in the event log's folder), so an
/// acknowledged track survives a restart and a bundle reload.
///
/// Layout: a 16-byte header (magic `ENCTRKJ1`, format version 1 and the header size as little-endian u32), then one
/// record per track, framed like the event log's: `u32 payload length | u32 CRC-32C of the payload | payload`, the
/// payload `u64 sequence | i64 appended-at ms | the track as compact JSON` (``PostedTrack``'s snake_case form).
/// Opening scans the file: a damaged last record (a frame running past the end of the file, or a bad checksum on
/// the frame that ends the file) is a torn write and is cut; damage followed by more data is refused, naming the
/// file and the byte offset. A batch is written with one `write` and made durable with `fsync` before it is
/// acknowledged (unless the journal was opened with `sync: false`).
public final class TrackJournal: Sendable {
    /// The journal file.
    public let path: String
    let descriptor: Int32
    let sync: Bool
    let state: Locked<State>

    struct State {
        var nextSequence: UInt64
        var failure: String?
    }

    static let magic: [UInt8] = Array("ENCTRKJ1".utf8)
    static let version: UInt32 = 1
    static let headerBytes = 16
    /// The largest payload accepted when reading (a track with a few thousand floats is far below it).
    static let maxPayload = 16 << 20

    /// The journal's file name inside the event log's folder.
    public static let fileName = "tracks.journal"

    /// Opens (creating when absent) the journal at `path`, cutting a torn last record, and returns it with the
    /// records it holds.
    /// - Throws: ``ServingError/eventLog(_:)`` naming the file (and the offset of damage that is not a torn tail).
    public static func open(path: String, sync: Bool = true) throws(ServingError) -> (journal: TrackJournal, records: [TrackJournalRecord]) {
        let fd = posixOpen(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw .eventLog("\(path): cannot open the track journal: \(FileError.errnoText())") }
        do {
            let bytes = try readAll(fd, path: path)
            var records: [TrackJournalRecord] = []
            var end = 0
            if bytes.isEmpty {
                var header = magic
                put32(&header, version)
                put32(&header, UInt32(headerBytes))
                try writeAll(fd, header, path: path)
                if sync { guard fsync(fd) == 0 else { throw ServingError.eventLog("\(path): fsync: \(FileError.errnoText())") } }
                end = headerBytes
            } else {
                (records, end) = try scan(bytes, path: path)
                if end < bytes.count {
                    guard ftruncate(fd, off_t(end)) == 0 else {
                        throw ServingError.eventLog("\(path): cannot cut the torn tail at offset \(end): \(FileError.errnoText())")
                    }
                    if sync { _ = fsync(fd) }
                }
            }
            guard lseek(fd, off_t(end), SEEK_SET) >= 0 else {
                throw ServingError.eventLog("\(path): cannot seek: \(FileError.errnoText())")
            }
            let journal = TrackJournal(path: path, descriptor: fd, sync: sync, next: (records.last?.sequence ?? 0) + 1)
            return (journal, records)
        } catch let e as ServingError {
            close(fd)
            throw e
        } catch {
            close(fd)
            throw .eventLog("\(path): \(error)")
        }
    }

    private init(path: String, descriptor: Int32, sync: Bool, next: UInt64) {
        self.path = path
        self.descriptor = descriptor
        self.sync = sync
        self.state = Locked(State(nextSequence: next))
    }

    deinit { close(descriptor) }

    /// Appends `tracks` as one write and syncs it; returns their records.
    ///
    /// After a failed write or sync the journal refuses every later append (what is on disk is unknown) until it is
    /// reopened, which recovers from the file.
    /// - Throws: ``ServingError/eventLog(_:)``.
    public func append(_ tracks: [PostedTrack]) throws(ServingError) -> [TrackJournalRecord] {
        try state.withLock { (s: inout State) throws(ServingError) -> [TrackJournalRecord] in
            if let failure = s.failure { throw .eventLog("\(path): the track journal refuses appends after an earlier failure (\(failure))") }
            let now = Int64(Date().timeIntervalSince1970 * 1000)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            var out: [UInt8] = []
            var records: [TrackJournalRecord] = []
            for (k, t) in tracks.enumerated() {
                let json: Data
                do { json = try encoder.encode(t) } catch { throw .eventLog("\(path): cannot encode track \(k): \(error)") }
                var payload: [UInt8] = []
                payload.reserveCapacity(16 + json.count)
                Self.put64(&payload, s.nextSequence + UInt64(k))
                Self.put64(&payload, UInt64(bitPattern: now))
                payload.append(contentsOf: json)
                Self.put32(&out, UInt32(payload.count))
                Self.put32(&out, CRC32C.checksum(payload))
                out.append(contentsOf: payload)
                records.append(TrackJournalRecord(sequence: s.nextSequence + UInt64(k), appendedAtMs: now, track: t))
            }
            do {
                try Self.writeAll(descriptor, out, path: path)
                if sync, fsync(descriptor) != 0 { throw ServingError.eventLog("\(path): fsync: \(FileError.errnoText())") }
            } catch let e as ServingError {
                s.failure = e.description
                throw e
            } catch {
                s.failure = "\(error)"
                throw .eventLog("\(path): \(error)")
            }
            s.nextSequence += UInt64(tracks.count)
            return records
        }
    }

    /// Reads every intact record of the journal at `path` (none when the file is absent), without changing it.
    /// - Throws: ``ServingError/eventLog(_:)`` for damage that is not a torn tail or an unreadable file.
    public static func read(path: String) throws(ServingError) -> [TrackJournalRecord] {
        let fd = posixOpen(path, O_RDONLY | O_CLOEXEC, 0)
        guard fd >= 0 else {
            if errno == ENOENT { return [] }
            throw .eventLog("\(path): cannot open the track journal: \(FileError.errnoText())")
        }
        defer { close(fd) }
        do {
            let bytes = try readAll(fd, path: path)
            if bytes.isEmpty { return [] }
            return try scan(bytes, path: path).records
        } catch let e as ServingError {
            throw e
        } catch {
            throw .eventLog("\(path): \(error)")
        }
    }

    /// The intact records and where they end (a torn last record is left out).
    static func scan(_ bytes: [UInt8], path: String) throws -> (records: [TrackJournalRecord], end: Int) {
        func corrupt(_ offset: Int, _ reason: String) -> ServingError {
            .eventLog("\(path): corrupt track journal at byte offset \(offset): \(reason)")
        }
        guard bytes.count >= headerBytes else {
            if Array(bytes) == Array(headerPrefix(bytes.count)) { return ([], 0) }
            throw corrupt(0, "not a track journal (\(bytes.count) bytes, no header)")
        }
        guard Array(bytes[0..<8]) == magic else { throw corrupt(0, "not a track journal (bad magic)") }
        let version = get32(bytes, 8)
        guard version == Self.version else { throw corrupt(8, "format version \(version), this server reads \(Self.version)") }
        var records: [TrackJournalRecord] = []
        var at = headerBytes
        let decoder = JSONDecoder()
        while at < bytes.count {
            guard bytes.count - at >= 8 else { return (records, at) }  // a torn frame header
            let length = Int(get32(bytes, at)), crc = get32(bytes, at + 4)
            let start = at + 8, end = start + length
            guard length >= 18, length <= maxPayload else {
                if end >= bytes.count { return (records, at) }  // a frame claiming the rest of the file: torn
                throw corrupt(at, "record length \(length) is out of range")
            }
            guard end <= bytes.count else { return (records, at) }  // runs past the end: a torn write
            let payload = bytes[start..<end]
            guard CRC32C.checksum(payload) == crc else {
                if end == bytes.count { return (records, at) }  // the last frame: a torn write
                throw corrupt(at, "checksum mismatch")
            }
            let sequence = get64(bytes, start), ms = Int64(bitPattern: get64(bytes, start + 8))
            let track: PostedTrack
            do { track = try decoder.decode(PostedTrack.self, from: Data(bytes[(start + 16)..<end])) } catch {
                throw corrupt(at, "the record's track does not decode: \(error)")
            }
            records.append(TrackJournalRecord(sequence: sequence, appendedAtMs: ms, track: track))
            at = end
        }
        return (records, at)
    }

    /// `open(2)` (the type's own `open` hides the C function's name).
    static func posixOpen(_ path: String, _ flags: Int32, _ mode: mode_t) -> Int32 {
        #if canImport(Glibc)
        return Glibc.open(path, flags, mode)
        #else
        return Darwin.open(path, flags, mode)
        #endif
    }

    static func headerPrefix(_ n: Int) -> ArraySlice<UInt8> {
        var h = magic
        put32(&h, version)
        put32(&h, UInt32(headerBytes))
        return h.prefix(n)
    }

    static func readAll(_ fd: Int32, path: String) throws -> [UInt8] {
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw ServingError.eventLog("\(path): stat: \(FileError.errnoText())") }
        var out = [UInt8](repeating: 0, count: Int(st.st_size))
        var done = 0
        while done < out.count {
            let n = out.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + done, $0.count - done, off_t(done)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw ServingError.eventLog("\(path): read: \(FileError.errnoText())")
            }
            if n == 0 { break }
            done += n
        }
        if done < out.count { out.removeLast(out.count - done) }
        return out
    }

    static func writeAll(_ fd: Int32, _ bytes: [UInt8], path: String) throws {
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + done, $0.count - done) }
            if n < 0 {
                if errno == EINTR { continue }
                throw ServingError.eventLog("\(path): write: \(FileError.errnoText())")
            }
            done += n
        }
    }

    static func put32(_ out: inout [UInt8], _ v: UInt32) {
        for s in stride(from: 0, to: 32, by: 8) { out.append(UInt8(truncatingIfNeeded: v >> UInt32(s))) }
    }

    static func put64(_ out: inout [UInt8], _ v: UInt64) {
        put32(&out, UInt32(truncatingIfNeeded: v))
        put32(&out, UInt32(truncatingIfNeeded: v >> 32))
    }

    static func get32<C: RandomAccessCollection>(_ b: C, _ at: Int) -> UInt32 where C.Element == UInt8, C.Index == Int {
        UInt32(b[at]) | UInt32(b[at + 1]) << 8 | UInt32(b[at + 2]) << 16 | UInt32(b[at + 3]) << 24
    }

    static func get64<C: RandomAccessCollection>(_ b: C, _ at: Int) -> UInt64 where C.Element == UInt8, C.Index == Int {
        UInt64(get32(b, at)) | UInt64(get32(b, at + 4)) << 32
    }
}

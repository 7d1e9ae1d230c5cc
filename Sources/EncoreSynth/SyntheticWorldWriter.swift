import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import EncoreCore

extension SyntheticWorld {
    /// A file written by ``write(to:threads:progress:)``.
    public struct WrittenFile: Sendable, Codable, Equatable {
        /// The file name inside the output directory.
        public var name: String
        /// Data rows (without the header); 0 for `world.json`.
        public var rows: Int
        /// Size in bytes.
        public var bytes: Int
    }

    /// The contents of `world.json`: the configuration, the time window and the counts.
    public struct Manifest: Sendable, Codable, Equatable {
        /// The manifest format version.
        public var format: Int
        /// What wrote the directory.
        public var generator: String
        /// The first second of the play log (Unix seconds).
        public var startTimestamp: Int64
        /// The last second of the play log (Unix seconds).
        public var endTimestamp: Int64
        /// The first second of the play log, `YYYY-MM-DDThh:mm:ssZ`.
        public var start: String
        /// The last second of the play log, `YYYY-MM-DDThh:mm:ssZ`.
        public var end: String
        /// Tracks released at or after this second are new releases.
        public var newReleaseStart: String
        /// The configuration.
        public var config: SyntheticWorldConfig
        /// The counts.
        public var counts: Counts
        /// The TSV files and their row counts (sizes are left out so the manifest depends on the data only).
        public var files: [FileEntry]

        /// A TSV file of the world.
        public struct FileEntry: Sendable, Codable, Equatable {
            /// The file name.
            public var name: String
            /// Data rows (without the header).
            public var rows: Int
        }

        /// Reads `world.json` from a world directory.
        /// - Throws: ``SyntheticWorldError/cannotRead(path:reason:)`` when it is missing or malformed.
        public static func read(directory: String) throws(SyntheticWorldError) -> Manifest {
            let path = (directory as NSString).appendingPathComponent("world.json")
            do {
                let data = try Data(contentsOf: URL(fileURLWithPath: path))
                return try JSONDecoder().decode(Manifest.self, from: data)
            } catch {
                throw .cannotRead(path: path, reason: "\(error)")
            }
        }
    }

    /// The manifest of this world given the rows of its TSV files.
    public func manifest(files: [WrittenFile]) -> Manifest {
        Manifest(
            format: 1, generator: "encore synthetic world \(Encore.version)",
            startTimestamp: config.startTimestamp, endTimestamp: config.endTimestamp,
            start: Timestamp.isoString(timestamp: config.startTimestamp), end: Timestamp.isoString(timestamp: config.endTimestamp),
            newReleaseStart: Timestamp.isoString(timestamp: catalog.newReleaseStart), config: config, counts: counts,
            files: files.filter { $0.name.hasSuffix(".tsv") }.map { Manifest.FileEntry(name: $0.name, rows: $0.rows) })
    }

    /// Writes the world as TSV files (UTF-8, a header line, tab-separated) and `world.json` into `directory`,
    /// creating it when needed. Existing files of the same names are replaced; `world.json` is written last, so its
    /// presence means the directory is complete.
    ///
    /// Files: `plays.tsv` (user, item, timestamp, ms_played; sorted by timestamp), `likes.tsv` (user, item,
    /// timestamp), `dislikes.tsv` (user, item_or_artist, kind, timestamp), `follows.tsv` (user, artist, timestamp),
    /// `tracks.tsv` (item, artist, album, genre, release_date, duration_ms; the genre as a published catalog has it:
    /// empty or wrong for some albums, see ``catalogLabels``), `artists.tsv` (artist, name, genre, likewise),
    /// `albums.tsv` (album, artist, release_date), `truth_users.tsv` (user, tastes as `genre:weight;...`,
    /// favourite_artists as `a1;a2`, target_tracks, distinct_tracks), `truth_tracks.tsv` (item, genre, popularity,
    /// new_release). The bytes depend only on the configuration.
    ///
    /// Rows are formatted in parallel in fixed-size chunks and written in order through a buffered writer.
    /// - Returns: the files written, with row counts and sizes.
    /// - Throws: ``SyntheticWorldError/cannotCreateDirectory(path:reason:)`` or
    ///   ``SyntheticWorldError/cannotWrite(path:reason:)``.
    @discardableResult
    public func write(
        to directory: String, threads: Int = 0, progress: ProgressHandler? = nil
    ) throws(SyntheticWorldError) -> [WrittenFile] {
        let threads = threads > 0 ? threads : Parallel.coreCount
        try Self.makeDirectory(directory)
        let totalRows = plays.count + likes.count + dislikes.count + follows.count + catalog.trackCount * 2
            + catalog.artistCount + catalog.albumCount + users.count
        let rowsDone = AtomicCounter()
        let report: (Int) -> Void = { n in
            let done = rowsDone.add(n) + n
            progress?(Progress(phase: .writing, completed: done, total: totalRows))
        }
        progress?(Progress(phase: .writing, completed: 0, total: totalRows))
        let ids = self.ids
        let genreNames = config.genres.map { Array($0.name.utf8) }
        var files = [WrittenFile]()
        func table(
            _ name: String, _ header: String, _ rows: Int, _ row: (inout ByteBuffer, Int) -> Void
        ) throws(SyntheticWorldError) {
            let path = (directory as NSString).appendingPathComponent(name)
            let bytes = try Self.writeTable(
                path: path, header: header, rows: rows, threads: threads, report: report, row: row)
            files.append(WrittenFile(name: name, rows: rows, bytes: bytes))
        }

        let p = plays
        try table("plays.tsv", "user\titem\ttimestamp\tms_played", p.count) { b, i in
            b.user(p.users[i], ids); b.tab(); b.track(p.tracks[i], ids); b.tab()
            b.int(p.timestamps[i]); b.tab(); b.int(Int64(p.msPlayed[i])); b.newline()
        }
        try table("likes.tsv", "user\titem\ttimestamp", likes.count) { b, i in
            let l = likes[i]
            b.user(l.user, ids); b.tab(); b.track(l.track, ids); b.tab(); b.int(l.timestamp); b.newline()
        }
        try table("dislikes.tsv", "user\titem_or_artist\tkind\ttimestamp", dislikes.count) { b, i in
            let d = dislikes[i]
            b.user(d.user, ids); b.tab()
            if d.kind == .track { b.track(d.target, ids) } else { b.artist(d.target, ids) }
            b.tab(); b.string(d.kind.rawValue); b.tab(); b.int(d.timestamp); b.newline()
        }
        try table("follows.tsv", "user\tartist\ttimestamp", follows.count) { b, i in
            let f = follows[i]
            b.user(f.user, ids); b.tab(); b.artist(f.artist, ids); b.tab(); b.int(f.timestamp); b.newline()
        }
        let c = catalog
        // The published genres: missing for some albums and artists, wrong for a few (see `catalogLabels`).
        let labels = catalogLabels
        try table("tracks.tsv", "item\tartist\talbum\tgenre\trelease_date\tduration_ms", c.trackCount) { b, i in
            b.track(Int32(i), ids); b.tab(); b.artist(c.trackArtist[i], ids); b.tab(); b.album(c.trackAlbum[i], ids)
            b.tab()
            if labels.trackGenre[i] >= 0 { b.bytes(genreNames[Int(labels.trackGenre[i])]) }
            b.tab(); b.date(c.trackRelease[i]); b.tab()
            b.int(Int64(c.trackDurationMs[i])); b.newline()
        }
        try table("artists.tsv", "artist\tname\tgenre", c.artistCount) { b, i in
            b.artist(Int32(i), ids); b.tab(); b.field(c.artistNames[i]); b.tab()
            if labels.artistGenre[i] >= 0 { b.bytes(genreNames[Int(labels.artistGenre[i])]) }
            b.newline()
        }
        try table("albums.tsv", "album\tartist\trelease_date", c.albumCount) { b, i in
            b.album(Int32(i), ids); b.tab(); b.artist(c.albumArtist[i], ids); b.tab(); b.date(c.albumRelease[i])
            b.newline()
        }
        let u = users
        try table("truth_users.tsv", "user\ttastes\tfavourite_artists\ttarget_tracks\tdistinct_tracks", u.count) { b, i in
            b.user(Int32(i), ids); b.tab()
            let base = i * u.maxTastes
            for k in 0..<u.maxTastes where u.tasteGenres[base + k] >= 0 {
                if k > 0 { b.byte(UInt8(ascii: ";")) }
                b.bytes(genreNames[Int(u.tasteGenres[base + k])]); b.byte(UInt8(ascii: ":"))
                b.fixed(Double(u.tasteWeights[base + k]), decimals: 4)
            }
            b.tab()
            for k in u.favouriteStart[i]..<u.favouriteStart[i + 1] {
                if k > u.favouriteStart[i] { b.byte(UInt8(ascii: ";")) }
                b.artist(u.favourites[k], ids)
            }
            b.tab(); b.int(Int64(u.targetTracks[i])); b.tab(); b.int(Int64(u.distinctTracks[i])); b.newline()
        }
        try table("truth_tracks.tsv", "item\tgenre\tpopularity\tnew_release", c.trackCount) { b, i in
            b.track(Int32(i), ids); b.tab(); b.bytes(genreNames[Int(c.trackGenre[i])]); b.tab()
            b.string(Float(c.popularity(ofTrack: Int32(i))).description); b.tab()
            b.byte(c.trackRelease[i] >= c.newReleaseStart ? UInt8(ascii: "1") : UInt8(ascii: "0")); b.newline()
        }

        // The manifest last.
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let json: Data
        do { json = try encoder.encode(manifest(files: files)) } catch {
            throw .cannotWrite(path: "world.json", reason: "cannot encode the manifest: \(error)")
        }
        let path = (directory as NSString).appendingPathComponent("world.json")
        let sink = try FileSink(path: path)
        var bytes = [UInt8](json)
        bytes.append(UInt8(ascii: "\n"))
        try sink.write(bytes)
        try sink.close()
        files.append(WrittenFile(name: "world.json", rows: 0, bytes: bytes.count))
        return files
    }

    /// Formats `rows` rows in chunks on `threads` threads and writes them in order after the header.
    /// Returns the number of bytes written.
    static func writeTable(
        path: String, header: String, rows: Int, threads: Int, report: (Int) -> Void,
        row: (inout ByteBuffer, Int) -> Void
    ) throws(SyntheticWorldError) -> Int {
        let sink = try FileSink(path: path)
        var written = 0
        var head = Array(header.utf8)
        head.append(UInt8(ascii: "\n"))
        try sink.write(head)
        written += head.count
        let chunk = 1 << 17
        let chunks = (rows + chunk - 1) / chunk
        let wave = max(1, threads) * 2
        var first = 0
        while first < chunks {
            let count = min(wave, chunks - first)
            let slots = OrderedSlots<[UInt8]>(count: count)
            let base = first
            Parallel.forEach(count, threads: threads) { k in
                let lo = (base + k) * chunk, hi = min(rows, lo + chunk)
                var buffer = ByteBuffer(capacity: (hi - lo) * 48)
                for i in lo..<hi { row(&buffer, i) }
                slots.set(k, buffer.storage)
            }
            for (k, bytes) in slots.take().enumerated() {
                try sink.write(bytes)
                written += bytes.count
                report(min(rows, (base + k + 1) * chunk) - (base + k) * chunk)
            }
            first += count
        }
        try sink.close()
        return written
    }

    /// Creates `path` and its missing parents (like `mkdir -p`), naming the component that fails and why.
    static func makeDirectory(_ path: String) throws(SyntheticWorldError) {
        guard !path.isEmpty else { throw .cannotCreateDirectory(path: path, reason: "empty path") }
        var prefix = path.hasPrefix("/") ? "/" : ""
        for part in path.split(separator: "/", omittingEmptySubsequences: true) {
            prefix += (prefix.isEmpty || prefix.hasSuffix("/") ? "" : "/") + part
            var st = stat()
            if stat(prefix, &st) == 0 {
                guard (st.st_mode & S_IFMT) == S_IFDIR else {
                    throw .cannotCreateDirectory(
                        path: path, reason: prefix == path ? "a file of that name exists" : "'\(prefix)' is not a directory")
                }
                continue
            }
            if mkdir(prefix, 0o755) != 0 && errno != EEXIST {
                let reason = FileError.errnoText(errno)
                throw .cannotCreateDirectory(path: path, reason: prefix == path ? reason : "'\(prefix)': \(reason)")
            }
        }
        guard access(path, W_OK | X_OK) == 0 else {
            throw .cannotCreateDirectory(path: path, reason: FileError.errnoText(errno))
        }
    }
}

/// A growable byte buffer with the few formatters the TSV writer needs (no `String` per field).
struct ByteBuffer {
    var storage: [UInt8]

    init(capacity: Int) {
        storage = []
        storage.reserveCapacity(capacity)
    }

    @inline(__always) mutating func byte(_ b: UInt8) { storage.append(b) }
    @inline(__always) mutating func tab() { storage.append(9) }
    @inline(__always) mutating func newline() { storage.append(10) }
    mutating func bytes(_ b: [UInt8]) { storage.append(contentsOf: b) }
    mutating func string(_ s: String) { storage.append(contentsOf: s.utf8) }

    /// A free-text field: tabs, newlines and carriage returns become spaces.
    mutating func field(_ s: String) {
        for b in s.utf8 { storage.append(b == 9 || b == 10 || b == 13 ? 32 : b) }
    }

    /// `value` (>= 0) in decimal, zero-padded to at least `width` digits.
    @inline(__always) mutating func padded(_ value: Int, width: Int) {
        var digits = 1
        var t = value
        while t >= 10 { t /= 10; digits += 1 }
        let w = max(width, digits)
        let base = storage.count
        storage.append(contentsOf: repeatElement(48, count: w))
        var x = value
        var i = base + w - 1
        storage.withUnsafeMutableBufferPointer { s in
            while x > 0 {
                s[i] = UInt8(truncatingIfNeeded: 48 + x % 10)
                x /= 10
                i -= 1
            }
        }
    }

    mutating func int(_ v: Int64) {
        if v < 0 { byte(UInt8(ascii: "-")); padded(Int(-v), width: 1) } else { padded(Int(v), width: 1) }
    }

    mutating func user(_ i: Int32, _ f: SyntheticIDFormat) { byte(UInt8(ascii: "u")); padded(Int(i), width: f.userDigits) }
    mutating func track(_ i: Int32, _ f: SyntheticIDFormat) { byte(UInt8(ascii: "t")); padded(Int(i), width: f.trackDigits) }
    mutating func artist(_ i: Int32, _ f: SyntheticIDFormat) { byte(UInt8(ascii: "a")); padded(Int(i), width: f.artistDigits) }
    mutating func album(_ i: Int32, _ f: SyntheticIDFormat) {
        byte(UInt8(ascii: "a")); byte(UInt8(ascii: "l")); padded(Int(i), width: f.albumDigits)
    }

    /// The UTC date of a timestamp, `YYYY-MM-DD`.
    mutating func date(_ timestamp: Int64) {
        let c = Timestamp.civil(days: Timestamp.floorDiv(timestamp, Timestamp.secondsPerDay))
        padded(Int(c.year), width: 4); byte(UInt8(ascii: "-"))
        padded(Int(c.month), width: 2); byte(UInt8(ascii: "-"))
        padded(Int(c.day), width: 2)
    }

    /// `x` (>= 0) rounded to `decimals` decimals, e.g. `0.6250`.
    mutating func fixed(_ x: Double, decimals: Int) {
        var scale = 1
        for _ in 0..<decimals { scale *= 10 }
        let v = Int((max(0, x) * Double(scale)).rounded())
        padded(v / scale, width: 1)
        byte(UInt8(ascii: "."))
        padded(v % scale, width: decimals)
    }
}

/// An open file written with POSIX `write`, closed on `close()` or when released.
final class FileSink {
    private var fd: Int32
    let path: String

    init(path: String) throws(SyntheticWorldError) {
        self.path = path
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        if fd < 0 { throw .cannotWrite(path: path, reason: FileError.errnoText(errno)) }
    }

    func write(_ bytes: [UInt8]) throws(SyntheticWorldError) {
        let failure: Int32 = bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                #if canImport(Glibc)
                let n = Glibc.write(fd, raw.baseAddress! + offset, raw.count - offset)
                #else
                let n = Darwin.write(fd, raw.baseAddress! + offset, raw.count - offset)
                #endif
                if n < 0 {
                    if errno == EINTR { continue }
                    return errno
                }
                offset += n
            }
            return 0
        }
        if failure != 0 { throw .cannotWrite(path: path, reason: FileError.errnoText(failure)) }
    }

    func close() throws(SyntheticWorldError) {
        guard fd >= 0 else { return }
        #if canImport(Glibc)
        let r = Glibc.close(fd)
        #else
        let r = Darwin.close(fd)
        #endif
        fd = -1
        if r != 0 { throw .cannotWrite(path: path, reason: FileError.errnoText(errno)) }
    }

    deinit {
        if fd >= 0 {
            #if canImport(Glibc)
            _ = Glibc.close(fd)
            #else
            _ = Darwin.close(fd)
            #endif
        }
    }
}

import Foundation

/// An open-addressing hash table interning byte strings (UTF-8 terms) as dense `Int32` ids in insertion order.
///
/// Terms live in one byte arena, so interning a token does not allocate a `String`.
struct TermTable: Sendable {
    /// The bytes of every term, back to back.
    private(set) var arena: [UInt8] = []
    /// Term `i` occupies `starts[i]..<starts[i+1]` in `arena`; `count + 1` entries.
    private(set) var starts: [Int] = [0]
    private var hashes: [UInt64] = []
    /// Slot -> term id, or -1 when empty; the capacity is a power of two.
    private var slots: [Int32]
    private var mask: Int

    /// An empty table sized for about `capacity` terms.
    init(capacity: Int = 1024) {
        var size = 16
        while size < capacity * 2 { size <<= 1 }
        slots = [Int32](repeating: -1, count: size)
        mask = size - 1
    }

    /// The number of terms.
    var count: Int { starts.count - 1 }

    /// A 64-bit hash of the bytes: eight bytes at a time (the last 1-7 zero-padded), each word mixed in by a multiply
    /// and a shift, then MurmurHash3's final mix.
    @inline(__always)
    static func hash(_ bytes: UnsafeBufferPointer<UInt8>) -> UInt64 {
        let n = bytes.count
        var h: UInt64 = 0x9E37_79B9_7F4A_7C15 ^ UInt64(n)
        guard n > 0, let base = bytes.baseAddress else { return h }
        let raw = UnsafeRawPointer(base)
        var i = 0
        while i + 8 <= n {
            h = (h ^ raw.loadUnaligned(fromByteOffset: i, as: UInt64.self)) &* 0xff51_afd7_ed55_8ccd
            h ^= h >> 32
            i += 8
        }
        if i < n {
            var w: UInt64 = 0, shift: UInt64 = 0
            while i < n {
                w |= UInt64(base[i]) << shift
                shift += 8
                i += 1
            }
            h = (h ^ w) &* 0xff51_afd7_ed55_8ccd
            h ^= h >> 32
        }
        h ^= h >> 33
        h = h &* 0xc4ce_b9fe_1a85_ec53
        h ^= h >> 33
        return h
    }

    /// The id of `bytes`, or nil when absent.
    func find(_ bytes: UnsafeBufferPointer<UInt8>) -> Int32? {
        let h = Self.hash(bytes)
        return arena.withUnsafeBufferPointer { a -> Int32? in
            var s = Int(truncatingIfNeeded: h) & mask
            while true {
                let id = slots[s]
                if id < 0 { return nil }
                if hashes[Int(id)] == h && equal(a, Int(id), bytes) { return id }
                s = (s + 1) & mask
            }
        }
    }

    /// The id of `bytes`, adding it when absent.
    mutating func intern(_ bytes: UnsafeBufferPointer<UInt8>) -> Int32 {
        let h = Self.hash(bytes)
        return intern(bytes, hash: h)
    }

    /// ``intern(_:)`` with a precomputed hash.
    mutating func intern(_ bytes: UnsafeBufferPointer<UInt8>, hash h: UInt64) -> Int32 {
        var s = Int(truncatingIfNeeded: h) & mask
        let found: Int32? = arena.withUnsafeBufferPointer { a -> Int32? in
            while true {
                let id = slots[s]
                if id < 0 { return nil }
                if hashes[Int(id)] == h && equal(a, Int(id), bytes) { return id }
                s = (s + 1) & mask
            }
        }
        if let found { return found }
        let id = Int32(count)
        arena.append(contentsOf: bytes)
        starts.append(arena.count)
        hashes.append(h)
        slots[s] = id
        if count * 2 > slots.count { grow() }
        return id
    }

    /// The id of `term`, adding it when absent.
    mutating func intern(_ term: String) -> Int32 {
        var t = term
        return t.withUTF8 { intern($0) }
    }

    /// The id of `term`, or nil.
    func find(_ term: String) -> Int32? {
        var t = term
        return t.withUTF8 { find($0) }
    }

    @inline(__always)
    private func equal(_ a: UnsafeBufferPointer<UInt8>, _ id: Int, _ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        let lo = starts[id], hi = starts[id + 1]
        guard hi - lo == bytes.count else { return false }
        guard let p = a.baseAddress, let q = bytes.baseAddress else { return true }
        return memcmp(p + lo, q, bytes.count) == 0
    }

    private mutating func grow() {
        let size = slots.count * 2
        var fresh = [Int32](repeating: -1, count: size)
        let m = size - 1
        for id in 0..<count {
            var s = Int(truncatingIfNeeded: hashes[id]) & m
            while fresh[s] >= 0 { s = (s + 1) & m }
            fresh[s] = Int32(id)
        }
        slots = fresh
        mask = m
    }

    /// The hash stored for term `id`.
    func storedHash(_ id: Int) -> UInt64 { hashes[id] }

    /// Calls `body` with the bytes of term `id`.
    func withBytes<R>(_ id: Int, _ body: (UnsafeBufferPointer<UInt8>) -> R) -> R {
        arena.withUnsafeBufferPointer { a in
            body(UnsafeBufferPointer(rebasing: a[starts[id]..<starts[id + 1]]))
        }
    }

    /// Term `id` as a string.
    func term(_ id: Int) -> String { withBytes(id) { String(decoding: $0, as: UTF8.self) } }

    /// Whether term `a` sorts before term `b` by bytes (the code-point order of the UTF-8 strings).
    func less(_ a: Int, _ b: Int) -> Bool {
        arena.withUnsafeBufferPointer { p in
            let la = starts[a], ha = starts[a + 1], lb = starts[b], hb = starts[b + 1]
            let n = min(ha - la, hb - lb)
            for i in 0..<n where p[la + i] != p[lb + i] { return p[la + i] < p[lb + i] }
            return ha - la < hb - lb
        }
    }
}

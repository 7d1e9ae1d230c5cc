/// The run of ASCII decimal digits at the start of a byte range, as the parsers of numbers and timestamps read it.
public enum ASCIIDigits {
    /// The value of the digits of `p[start..<end]` up to the first non-digit (wrapping on overflow; callers bound
    /// the length), and the index of that first non-digit (`end` when every byte is a digit).
    @inlinable @inline(__always)
    public static func prefix(_ p: UnsafePointer<UInt8>, from start: Int, to end: Int) -> (value: Int64, end: Int) {
        var v: Int64 = 0
        var i = start
        while i < end {
            let d = p[i] &- 0x30
            if d > 9 { break }
            v = v &* 10 &+ Int64(d)
            i += 1
        }
        return (v, i)
    }
}

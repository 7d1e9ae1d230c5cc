internal import CKernels
import Foundation

// 8-bit scalar quantization of the stored vectors for the graph walk (see VectorQuantization).
//
// Each vector x gets its own scale s = max_i |x_i| / 127 and codes c_i = round(x_i / s) in −127...127 (all 0, with
// s = 0, for a zero vector), so x_i ≈ s c_i within s/2. Codes depend on the vector alone: nothing is fitted, a vector
// added later is coded as well as the first ones, and loading recomputes the same codes from the stored floats.
// A per-dimension range (faiss's SQ8) would fit 64 codes in a cache line with no scale at all, but on collaborative-
// filtering factors a few long vectors stretch every dimension's range: measured on the suite's implicit-raw-64-100k
// set, l2 recall@10 of the first 10 by quantized distance fell to 0.59 (0.97 with per-vector scales), and every
// metric's distances were less accurate (docs/benchmarks.md).
extension HNSWIndex {
    /// Writes the codes and scale of `slot` from its stored vector.
    func encodeSlot(_ slot: Int) {
        Self.encode(vectorPointer(slot), dimension: dimension, into: codePointer(slot), stride: codeStride,
                    scale: codeScalePointer(slot))
    }

    /// The codes (`stride` bytes, zero past `dimension`) and scale of the vector `v`.
    static func encode(
        _ v: UnsafePointer<Float>, dimension: Int, into codes: UnsafeMutablePointer<Int8>, stride: Int,
        scale: UnsafeMutablePointer<Float>
    ) {
        var top: Float = 0
        for i in 0..<dimension { top = max(top, abs(v[i])) }
        let s = top / 127
        if s > 0 && s.isNormal {
            let inv = 127 / top
            for i in 0..<dimension { codes[i] = Int8(max(-127, min(127, (v[i] * inv).rounded()))) }
            scale.pointee = s
        } else {
            // Zero, or so tiny that 1/s overflows: stored as zero (its exact distance is used after the walk).
            for i in 0..<dimension { codes[i] = 0 }
            scale.pointee = 0
        }
        for i in dimension..<stride { codes[i] = 0 }
    }

    /// The decoded codes of `id` (`s c_i`), or nil when `id` is not live or the index is not quantized.
    public func quantizedVector(for id: Int32) -> [Float]? {
        writerLock.lock()
        defer { writerLock.unlock() }
        guard codeStride > 0, let slot = labelToSlot.withLock({ $0[id] }) else { return nil }
        let c = codePointer(Int(slot))
        let s = codeScalePointer(Int(slot)).pointee
        return (0..<dimension).map { s * Float(c[$0]) }
    }

    /// Copies the query in `ctx.query` (already normalized for cosine) into `ctx.quantQuery`, padded with zeros to the
    /// code stride, and returns the quantized form of `exact` (the index's search distance).
    func prepareQuantizedQuery(_ ctx: HNSWSearchContext, exact: Distance) -> Distance {
        ctx.ensureQuantQuery(codeStride)
        let out = ctx.quantQuery
        out.update(from: ctx.query, count: dimension)
        for i in dimension..<codeStride { out[i] = 0 }
        switch exact.kind {
        case .l2: return Distance(kind: .sq8L2, offset: 0, qs: 0)
        default: return Distance(kind: .sq8Dot, offset: exact.offset, qs: 0)
        }
    }

    /// Replaces the distances of the items in `ctx.sorted[0..<n]` (in any order) by the exact `d` from `q` and sorts
    /// them (ties by slot), prefetching each vector a few items ahead.
    func rerankSorted(_ ctx: HNSWSearchContext, count n: Int, _ d: Distance, _ q: UnsafePointer<Float>) {
        let items = ctx.sorted
        let ahead = 4
        let lines = min(dimension * 4, 512)
        for i in 0..<min(ahead, n) { prefetchVector(Int(items[i].slot), bytes: lines) }
        for i in 0..<n {
            if i + ahead < n { prefetchVector(Int(items[i + ahead].slot), bytes: lines) }
            items[i].distance = distance(d, q, Int(items[i].slot))
        }
        var buffer = UnsafeMutableBufferPointer(start: items, count: n)
        buffer.sort { (a: HNSWItem, b: HNSWItem) -> Bool in
            if a.distance != b.distance { return a.distance < b.distance }
            return a.slot < b.slot
        }
    }

    @inline(__always)
    func prefetchVector(_ slot: Int, bytes: Int) {
        let v = record(slot) + vectorOffset
        var o = 0
        while o < bytes {
            encore_prefetch(v + o)
            o += 64
        }
    }
}

/// The 8-bit code kernels of CKernels on arrays, at a chosen kernel level (for tests that compare the versions).
enum SQ8Kernels {
    /// `Σ q_i c_i` with the kernels of at most `level` (0 portable, 1 or more AVX2+FMA when the CPU has it); the
    /// lengths must be equal and a multiple of 16.
    static func dot(level: Int, _ q: [Float], _ codes: [Int8]) -> Float {
        precondition(q.count == codes.count && codes.count % 16 == 0)
        return encore_sq8_dot_at(Int32(level), q, codes, codes.count)
    }

    /// `Σ (q_i − s c_i)²`, as ``dot(level:_:_:)``.
    static func l2(level: Int, _ q: [Float], _ s: Float, _ codes: [Int8]) -> Float {
        precondition(q.count == codes.count && codes.count % 16 == 0)
        return encore_sq8_l2_at(Int32(level), q, s, codes, codes.count)
    }

    /// The codes (padded with zeros to `stride`) and scale of `v`, as the index stores them.
    static func encode(_ v: [Float], stride: Int) -> (codes: [Int8], scale: Float) {
        var codes = [Int8](repeating: 0, count: stride)
        var scale: Float = 0
        v.withUnsafeBufferPointer { vb in
            codes.withUnsafeMutableBufferPointer { cb in
                HNSWIndex.encode(vb.baseAddress!, dimension: v.count, into: cb.baseAddress!, stride: stride, scale: &scale)
            }
        }
        return (codes, scale)
    }
}

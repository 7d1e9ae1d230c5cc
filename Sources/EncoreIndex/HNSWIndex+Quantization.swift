internal import CKernels
import Foundation

// 8-bit scalar quantization of the stored vectors for the graph walk (see VectorQuantization).
//
// Each dimension i has a midpoint m_i and a step s_i = (max_i − min_i) / 254 over the vectors the quantizer is fitted
// on; a value x_i is stored as c_i = clamp(round((x_i − m_i) / s_i), −127, 127) (0 when s_i is 0), standing for
// m_i + s_i c_i. Per-dimension ranges need no per-vector scale, so a 64-dimensional vector's codes are exactly one
// cache line; their absolute error is the same for every vector, which is what ranking by an absolute distance needs
// (a per-vector scale spends its precision on short vectors, whose distances matter least).
extension HNSWIndex {
    /// Fits the per-dimension ranges over every valid slot, writes every valid slot's codes, then publishes the
    /// quantizer (release store). Writer lock held; runs once.
    func fitQuantizer() {
        precondition(codeStride > 0 && !quantizerReady)
        let slots = slotCount
        var lo = [Float](repeating: .infinity, count: dimension)
        var hi = [Float](repeating: -.infinity, count: dimension)
        var any = false
        for s in 0..<slots {
            let f = flags(s)
            guard f & HNSWIndex.validFlag != 0, f & HNSWIndex.freeFlag == 0 else { continue }
            let v = vectorPointer(s)
            for i in 0..<dimension {
                lo[i] = min(lo[i], v[i])
                hi[i] = max(hi[i], v[i])
            }
            any = true
        }
        guard any else { return }
        var mid = [Float](repeating: 0, count: dimension)
        var step = [Float](repeating: 0, count: dimension)
        for i in 0..<dimension {
            mid[i] = lo[i] / 2 + hi[i] / 2
            step[i] = (hi[i] / 2 - lo[i] / 2) / 127
        }
        installQuantizer(mid: mid, step: step)
    }

    /// Sets the quantizer's parameters, encodes every valid slot and publishes it. Writer lock held (or the index not
    /// yet shared, while loading).
    func installQuantizer(mid: [Float], step: [Float]) {
        for i in 0..<dimension {
            quantMid[i] = mid[i]
            quantStep[i] = step[i].isFinite ? step[i] : 0
        }
        for s in 0..<slotCount {
            let f = flags(s)
            guard f & HNSWIndex.validFlag != 0, f & HNSWIndex.freeFlag == 0 else { continue }
            encodeSlot(s)
        }
        encore_store_release_i32(quantizerReadyCell, 1)
    }

    /// Writes the codes of `slot` from its stored vector (the quantizer's parameters set).
    func encodeSlot(_ slot: Int) {
        let v = vectorPointer(slot)
        let c = codePointer(slot)
        for i in 0..<dimension {
            c[i] = Self.code(v[i], mid: quantMid[i], step: quantStep[i])
        }
        for i in dimension..<codeStride { c[i] = 0 }
    }

    /// The code of `x` for a dimension with midpoint `mid` and step `step`.
    @inline(__always)
    static func code(_ x: Float, mid: Float, step: Float) -> Int8 {
        guard step > 0 else { return 0 }
        let t = ((x - mid) / step).rounded()
        return Int8(max(-127, min(127, t)))
    }

    /// The fitted per-dimension midpoints and steps, or nil while the quantizer is not fitted (or the index is not
    /// quantized).
    public var quantizerParameters: (midpoints: [Float], steps: [Float])? {
        guard codeStride > 0, quantizerReady else { return nil }
        return (Array(UnsafeBufferPointer(start: quantMid, count: dimension)),
                Array(UnsafeBufferPointer(start: quantStep, count: dimension)))
    }

    /// The decoded codes of `id` (`m_i + s_i c_i`), or nil when `id` is not live or the quantizer is not fitted.
    public func quantizedVector(for id: Int32) -> [Float]? {
        writerLock.lock()
        defer { writerLock.unlock() }
        guard codeStride > 0, quantizerReady, let slot = labelToSlot.withLock({ $0[id] }) else { return nil }
        let c = codePointer(Int(slot))
        return (0..<dimension).map { quantMid[$0] + quantStep[$0] * Float(c[$0]) }
    }

    /// Prepares the query in `ctx.query` for the quantized distance of `exact` (the index's search distance) into
    /// `ctx.quantQuery`, and returns that distance.
    func prepareQuantizedQuery(_ ctx: HNSWSearchContext, exact: Distance) -> Distance {
        ctx.ensureQuantQuery(codeStride)
        let q = ctx.query
        let out = ctx.quantQuery
        switch exact.kind {
        case .l2:
            for i in 0..<dimension { out[i] = q[i] - quantMid[i] }
            for i in dimension..<codeStride { out[i] = 0 }
            return Distance(kind: .sq8L2, offset: 0, qs: 0)
        default:
            var base: Float = 0
            for i in 0..<dimension {
                out[i] = q[i] * quantStep[i]
                base += q[i] * quantMid[i]
            }
            for i in dimension..<codeStride { out[i] = 0 }
            return Distance(kind: .sq8Dot, offset: exact.offset, qs: base)
        }
    }

    /// Replaces the distances of the items in `ctx.sorted[0..<n]` by the exact `d` from `q` and sorts them (ties by
    /// slot), reading each vector a few items ahead.
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
    /// `Σ a_i c_i` with the kernels of at most `level` (0 portable, 1 or more AVX2+FMA when the CPU has it); the
    /// lengths must be equal and a multiple of 16.
    static func dot(level: Int, _ a: [Float], _ codes: [Int8]) -> Float {
        precondition(a.count == codes.count && codes.count % 16 == 0)
        return encore_sq8_dot_at(Int32(level), a, codes, codes.count)
    }

    /// `Σ (b_i − s_i c_i)²`, as ``dot(level:_:_:)``.
    static func l2(level: Int, _ b: [Float], _ s: [Float], _ codes: [Int8]) -> Float {
        precondition(b.count == codes.count && s.count == codes.count && codes.count % 16 == 0)
        return encore_sq8_l2_at(Int32(level), b, s, codes, codes.count)
    }
}

internal import CEbur128

/// Measures loudness as EBU R128 / ITU-R BS.1770-4 define it, through libebur128, block by block.
///
/// Feed it interleaved float frames at the file's own sample rate and channel count (before any mixdown), then read
/// ``integratedLoudness()`` (LUFS, gated: EBU mode I) and, when asked for at creation, ``loudnessRange()`` (LU).
/// Channels follow libebur128's default map: left, right, centre, (LFE, not counted), left surround, right surround;
/// a mono file counts as one front channel, so a mono signal reads 3 LU below the same signal on two channels.
///
/// ```swift
/// let meter = try LoudnessMeter(sampleRate: 44_100, channels: 2)
/// try meter.add(block)                      // repeat for every decoded block
/// let lufs = meter.integratedLoudness()     // nil: too quiet to measure
/// ```
public final class LoudnessMeter {
    /// Samples per second per channel.
    public let sampleRate: Int
    /// Interleaved channels per frame.
    public let channels: Int
    /// Whether the meter also keeps what ``loudnessRange()`` needs.
    public let measuresRange: Bool
    /// Frames added so far.
    public private(set) var frames = 0
    private var state: UnsafeMutablePointer<ebur128_state>?

    /// Creates a meter; `loudnessRange` also keeps the short-term blocks that loudness range needs.
    public init(sampleRate: Int, channels: Int, loudnessRange: Bool = false) throws(AudioError) {
        guard sampleRate >= 16, sampleRate <= 2_822_400 else {
            throw .invalidParameter(name: "sample rate", reason: "\(sampleRate) Hz is not in 16...2822400")
        }
        guard channels > 0, channels <= 64 else {
            throw .invalidParameter(name: "channels", reason: "\(channels) is not in 1...64")
        }
        var mode = Int32(EBUR128_MODE_I.rawValue)
        if loudnessRange { mode |= Int32(EBUR128_MODE_LRA.rawValue) }
        guard let state = ebur128_init(UInt32(channels), UInt(sampleRate), mode) else {
            throw .invalidParameter(
                name: "loudness meter", reason: "libebur128 cannot measure \(channels) channels at \(sampleRate) Hz")
        }
        self.sampleRate = sampleRate
        self.channels = channels
        self.measuresRange = loudnessRange
        self.state = state
    }

    /// Adds interleaved frames (`samples.count` must be a multiple of ``channels``).
    public func add(_ samples: UnsafeBufferPointer<Float>) throws(AudioError) {
        guard samples.count % channels == 0 else {
            throw .invalidParameter(name: "samples", reason: "\(samples.count) is not a multiple of \(channels) channels")
        }
        guard let base = samples.baseAddress, samples.count > 0, let state else { return }
        let n = samples.count / channels
        let status = ebur128_add_frames_float(state, base, n)
        guard status == Int32(EBUR128_SUCCESS.rawValue) else {
            throw .invalidParameter(name: "loudness meter", reason: "libebur128 could not add \(n) frames (error \(status))")
        }
        frames += n
    }

    /// Adds interleaved frames (`samples.count` must be a multiple of ``channels``).
    public func add(_ samples: [Float]) throws(AudioError) {
        try samples.withUnsafeBufferPointer { (buffer) throws(AudioError) in try add(buffer) }
    }

    /// The integrated (gated) loudness of everything added, in LUFS; `nil` when every 400 ms block is below the
    /// absolute gate of -70 LUFS (silence, or less than 400 ms of audio): too quiet to measure.
    public func integratedLoudness() -> Double? {
        guard let state else { return nil }
        var value = 0.0
        guard ebur128_loudness_global(state, &value) == Int32(EBUR128_SUCCESS.rawValue), value.isFinite else {
            return nil
        }
        return value
    }

    /// The loudness range (EBU Tech 3342) in LU; `nil` when the meter was made without `loudnessRange`. Less than
    /// about 3 s of audio reads 0.
    public func loudnessRange() -> Double? {
        guard measuresRange, let state else { return nil }
        var value = 0.0
        guard ebur128_loudness_range(state, &value) == Int32(EBUR128_SUCCESS.rawValue), value.isFinite else {
            return nil
        }
        return value
    }

    deinit {
        if state != nil { ebur128_destroy(&state) }
    }
}

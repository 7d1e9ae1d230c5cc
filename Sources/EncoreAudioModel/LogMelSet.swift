/// Log-mel spectrograms of many tracks in one array, as `analyze --log-mel` writes them: the frames of every track
/// one after another (`frames x bands`, dB), and each track's frames at `offsets[i]..<offsets[i + 1]`.
public struct LogMelSet: Sendable, Equatable {
    /// Track ids, one per track.
    public var ids: [String]
    /// `frames x bands` values, row-major.
    public var data: [Float]
    /// `ids.count + 1` frame offsets, starting at 0, non-decreasing, ending at the frame count.
    public var offsets: [Int]
    /// Mel bands per frame.
    public var bands: Int
    /// Frames per second of audio (sample rate / hop length).
    public var framesPerSecond: Double
    /// Where the set was read from, for error messages.
    public var source: String

    /// A set over the given arrays; call ``validate()`` before training on it.
    public init(ids: [String], data: [Float], offsets: [Int], bands: Int, framesPerSecond: Double,
                source: String = "<in memory>") {
        self.ids = ids
        self.data = data
        self.offsets = offsets
        self.bands = bands
        self.framesPerSecond = framesPerSecond
        self.source = source
    }

    /// The number of tracks.
    public var trackCount: Int { ids.count }

    /// The frame count of track `i`.
    public func frames(of i: Int) -> Int { offsets[i + 1] - offsets[i] }

    /// Checks the offsets against the ids and the data, and that every value is finite and every track has frames.
    ///
    /// - Throws: ``AudioModelError/invalidInput(path:reason:)`` naming the track (and the frame of a NaN or
    ///   infinite value).
    public func validate() throws(AudioModelError) {
        guard bands >= 1 else { throw .invalidInput(path: source, reason: "the log-mel data has no bands") }
        guard framesPerSecond > 0, framesPerSecond.isFinite else {
            throw .invalidInput(path: source, reason: "frames per second must be positive (got \(framesPerSecond))")
        }
        guard offsets.count == ids.count + 1 else {
            throw .invalidInput(path: source, reason: "/logmel/offsets has \(offsets.count) entries for \(ids.count) tracks (expected \(ids.count + 1))")
        }
        guard data.count % bands == 0 else {
            throw .invalidInput(path: source, reason: "/logmel/data holds \(data.count) values, not a whole number of \(bands)-band frames")
        }
        let frameCount = data.count / bands
        guard offsets.first == 0, offsets.last == frameCount else {
            throw .invalidInput(path: source, reason: "/logmel/offsets must start at 0 and end at the frame count \(frameCount) (got \(offsets.first ?? -1) and \(offsets.last ?? -1))")
        }
        var seen = Set<String>()
        for i in 0..<ids.count {
            guard seen.insert(ids[i]).inserted else {
                throw .invalidInput(path: source, reason: "track id '\(ids[i])' appears twice in /tracks/ids")
            }
            guard offsets[i + 1] >= offsets[i] else {
                throw .invalidInput(path: source, reason: "/logmel/offsets decreases at track \(i) ('\(ids[i])')")
            }
            guard offsets[i + 1] > offsets[i] else {
                throw .invalidInput(path: source, reason: "track '\(ids[i])' has no log-mel frames")
            }
        }
        for i in 0..<ids.count {
            for f in offsets[i]..<offsets[i + 1] {
                for b in 0..<bands where !data[f * bands + b].isFinite {
                    throw .invalidInput(
                        path: source,
                        reason: "track '\(ids[i])' has a non-finite log-mel value (\(data[f * bands + b])) at frame \(f - offsets[i]), band \(b)")
                }
            }
        }
    }
}

internal import CHDF5
import EncoreCore

/// The features file `encore-train analyze` writes (HDF5, readable with h5py):
///
/// - `/tracks/ids` (strings) and `/tracks/duration_s` (float32), one per analyzed track;
/// - `/descriptors/<name>` (float32, one per track) for each descriptor name given;
/// - with log-mel: `/logmel/data` (frames x bands, float32 dB) and `/logmel/offsets` (int64, tracks + 1), track `i`
///   being `data[offsets[i]:offsets[i+1]]`;
/// - `/errors/ids` and `/errors/reasons` (strings): the inputs that failed and why;
/// - attributes on `/`: `format` (`encore-audio-features`) and the integer settings given (sample rate, FFT size...).
///
/// The writer knows nothing of audio: the analysis (EncoreAnalysis) hands it names, values and matrices.
///
/// Tracks are added one at a time; only the log-mel rows are written as they come, so memory stays bounded by one
/// track's spectrogram plus one float per track and descriptor.
public struct AudioFeaturesWriter: ~Copyable {
    /// The file being written.
    public let path: String
    private var file: HDF5File
    private let logMelBands: Int?
    private var ids: [String] = []
    private let names: [String]
    private var columns: [[Float]]
    private var offsets: [Int64] = [0]
    private var errorIDs: [String] = []
    private var errorReasons: [String] = []

    /// Creates (or replaces) the file for the descriptors `descriptorNames` (`duration_s` among them is also
    /// written as `/tracks/duration_s`); `logMelBands` is the band count when log-mel spectrograms are stored, and
    /// `attributes` are stored on the root group.
    public init(path: String, descriptorNames: [String], logMelBands: Int?,
                attributes: [(String, Int64)] = []) throws(BundleError) {
        let file = try HDF5File.create(at: path, overwrite: true)
        try file.setAttribute("format", string: "encore-audio-features", on: "/")
        for (name, value) in attributes { try file.setAttribute(name, scalar: value, on: "/") }
        if let bands = logMelBands { try file.createGrowable(Float.self, cols: bands, at: "/logmel/data") }
        self.path = path
        self.names = descriptorNames
        self.columns = Array(repeating: [], count: descriptorNames.count)
        self.logMelBands = logMelBands
        self.file = file
    }

    /// Tracks added so far.
    public var trackCount: Int { ids.count }
    /// Failures recorded so far.
    public var errorCount: Int { errorIDs.count }

    /// Adds a track under `id`: its descriptor values (in the order of the names) and its log-mel frames.
    public mutating func add(id: String, descriptors: [Double], logMel: Matrix?) throws(BundleError) {
        guard descriptors.count == names.count else {
            throw .shapeMismatch(path: path, object: "/descriptors", reason: "track \(id) has \(descriptors.count) values for \(names.count) descriptors")
        }
        if let bands = logMelBands {
            guard let logMel, logMel.cols == bands else {
                throw .invalidData(path: path, object: "/logmel/data", reason: "track \(id) has no \(bands)-band log-mel spectrogram")
            }
            try file.appendRows(logMel.storage, cols: bands, at: "/logmel/data")
            offsets.append(offsets[offsets.count - 1] + Int64(logMel.rows))
        }
        ids.append(id)
        for (i, v) in descriptors.enumerated() { columns[i].append(Float(v)) }
    }

    /// Records that input `id` failed, and why.
    public mutating func addFailure(id: String, reason: String) {
        errorIDs.append(id)
        errorReasons.append(reason)
    }

    /// Writes the per-track datasets and closes the file.
    public consuming func finish() throws(BundleError) {
        try file.write(strings: ids, at: "/tracks/ids")
        for (name, column) in zip(names, columns) {
            if name == "duration_s" { try file.write(column, shape: [column.count], at: "/tracks/duration_s") }
            try file.write(column, shape: [column.count], at: "/descriptors/" + name)
        }
        if logMelBands != nil { try file.write(offsets, shape: [offsets.count], at: "/logmel/offsets") }
        try file.write(strings: errorIDs, at: "/errors/ids")
        try file.write(strings: errorReasons, at: "/errors/reasons")
        try file.close()
    }
}

/// A features file read back whole.
public struct AudioFeatures: Sendable {
    /// Track ids, in file order.
    public var ids: [String]
    /// Each descriptor's values by name (`duration_s`, `tempo_bpm`, ...), one per track.
    public var descriptors: [String: [Float]]
    /// The log-mel frames of all tracks (frames x bands), when stored.
    public var logMel: Matrix?
    /// The first frame of each track in ``logMel`` (tracks + 1 values), when stored.
    public var logMelOffsets: [Int64]?
    /// The inputs that failed, with their reasons.
    public var errors: [(id: String, reason: String)]
    /// The sample rate the log-mel frames were computed at (`sample_rate` on `/logmel` or the root), when stored
    /// and positive.
    public var sampleRate: Double?
    /// The hop between log-mel frames in samples (`hop_length` on `/logmel` or the root), when stored and positive.
    public var hopLength: Double?

    /// Reads the file at `path`. `/tracks/ids` is required; `/descriptors`, `/errors` and the log-mel datasets are
    /// read when present (a file written by another tool may hold the log-mel alone).
    public static func read(path: String) throws(BundleError) -> AudioFeatures {
        var file = try HDF5File.open(at: path)
        let ids = try file.readStrings(at: "/tracks/ids").values
        var descriptors: [String: [Float]] = [:]
        for name in file.exists("/descriptors") ? try file.children(of: "/descriptors") : [] {
            let values = try file.read(Float.self, at: "/descriptors/" + name).values
            guard values.count == ids.count else {
                throw .shapeMismatch(path: path, object: "/descriptors/" + name, reason: "\(values.count) values for \(ids.count) tracks")
            }
            descriptors[name] = values
        }
        var logMel: Matrix?, offsets: [Int64]?
        if file.exists("/logmel/data") {
            logMel = try file.readMatrix(at: "/logmel/data")
            offsets = try file.read(Int64.self, at: "/logmel/offsets").values
        }
        var errorIDs: [String] = [], reasons: [String] = []
        if file.exists("/errors/ids") {
            errorIDs = try file.readStrings(at: "/errors/ids").values
            reasons = try file.readStrings(at: "/errors/reasons").values
        }
        let rate = positiveNumber(file, "sample_rate"), hop = positiveNumber(file, "hop_length")
        try file.close()
        return AudioFeatures(ids: ids, descriptors: descriptors, logMel: logMel, logMelOffsets: offsets,
                             errors: Array(zip(errorIDs, reasons)).map { (id: $0.0, reason: $0.1) },
                             sampleRate: rate, hopLength: hop)
    }

    /// A positive numeric attribute of `/logmel` or the root, whatever its numeric type (analyze writes int64;
    /// 0 means "not fixed").
    private static func positiveNumber(_ file: borrowing HDF5File, _ name: String) -> Double? {
        for object in ["/logmel", "/"] where file.exists(object) && file.hasAttribute(name, on: object) {
            var value: Double?
            if let v = try? file.scalarAttribute(Int64.self, name, on: object) {
                value = Double(v)
            } else if let v = try? file.scalarAttribute(Double.self, name, on: object) {
                value = v
            } else if let v = try? file.scalarAttribute(Int32.self, name, on: object) {
                value = Double(v)
            }
            if let value, value > 0 { return value }
        }
        return nil
    }
}

import EncoreCore
import EncoreHybrid

/// Vectors for some of a bundle's items: the rows of ``vectors`` belong to the items ``items`` (indices into the
/// bundle's item ids, strictly increasing).
public struct ItemVectorSet: Sendable, Equatable {
    /// The items that have a vector, ascending.
    public var items: [Int32]
    /// One row per entry of ``items``.
    public var vectors: Matrix

    /// A set from item indices and their rows.
    /// - Throws: ``BundleError/shapeMismatch(path:object:reason:)`` when the counts differ,
    ///   ``BundleError/invalidData(path:object:reason:)`` when the items are not strictly increasing and non-negative.
    public init(items: [Int32], vectors: Matrix, object: String = "<item vectors>") throws(BundleError) {
        guard items.count == vectors.rows else {
            throw .shapeMismatch(path: "<in memory>", object: object, reason: "\(vectors.rows) rows for \(items.count) items")
        }
        for k in items.indices where items[k] < 0 || (k > 0 && items[k] <= items[k - 1]) {
            throw .invalidData(path: "<in memory>", object: object, reason: "item indices must be non-negative and strictly increasing (entry \(k))")
        }
        self.items = items
        self.vectors = vectors
    }

    /// The rows of `ids` that name an item of `itemIDs`, in item order (ids that are not items are left out; when an
    /// id appears twice its first row is kept).
    public static func aligning(ids: [String], rows: Matrix, to itemIDs: IDMap) -> ItemVectorSet {
        var pairs: [(item: Int32, row: Int)] = []
        var seen = Set<Int32>()
        for (r, id) in ids.enumerated() {
            if let i = itemIDs.index(of: id), seen.insert(i).inserted { pairs.append((i, r)) }
        }
        pairs.sort { $0.item < $1.item }
        var m = Matrix(rows: pairs.count, cols: rows.cols)
        for (k, p) in pairs.enumerated() { m.setRow(k, rows.row(p.row)) }
        // Cannot fail: the items are distinct, sorted and as many as the rows.
        return ItemVectorSet(unchecked: pairs.map(\.item), vectors: m)
    }

    init(unchecked items: [Int32], vectors: Matrix) {
        self.items = items
        self.vectors = vectors
    }

    /// The number of items with a vector.
    public var count: Int { items.count }
    /// The vectors' dimension.
    public var dimension: Int { vectors.cols }

    /// The vectors aligned to all `itemCount` items: zero rows where an item has none, and the presence mask.
    public func aligned(itemCount: Int) -> (vectors: Matrix, present: [Bool]) {
        var m = Matrix(rows: itemCount, cols: vectors.cols)
        var present = [Bool](repeating: false, count: itemCount)
        for (k, i) in items.enumerated() where Int(i) < itemCount {
            m.setRow(Int(i), vectors.row(k))
            present[Int(i)] = true
        }
        return (m, present)
    }

    /// The row of `item`, or `nil` when it has none.
    public func vector(of item: Int32) -> [Float]? {
        var lo = 0, hi = items.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if items[mid] < item { lo = mid + 1 } else { hi = mid }
        }
        return lo < items.count && items[lo] == item ? vectors.row(lo) : nil
    }
}

/// The content spaces of a bundle: what the audio says (embeddings and descriptors), what is written about the
/// tracks (text vectors) and what they are played with (sequence vectors). Each space covers some of the items.
public struct ContentSpaces: Sendable, Equatable {
    /// Audio embeddings (L2-normalized rows), `/audio/embeddings`.
    public var audioEmbeddings: ItemVectorSet?
    /// The audio model's prediction of each track's CF vector (`/audio/cf_predicted`), when it has a CF head; same
    /// items as ``audioEmbeddings``.
    public var audioCFPredicted: ItemVectorSet?
    /// Audio descriptors (one column per name of ``descriptorNames``), `/audio/descriptors`.
    public var audioDescriptors: ItemVectorSet?
    /// The names of the descriptor columns (`tempo_bpm`, `key`, ...).
    public var descriptorNames: [String] = []
    /// Text vectors, `/text/vectors`.
    public var text: ItemVectorSet?
    /// Per row of ``text``: whether the track took its artist's vector (it has no text of its own).
    public var textInherited: [Bool] = []
    /// Sequence (skip-gram) vectors, `/sequence/vectors`.
    public var sequence: ItemVectorSet?
    /// The hybrid item space, `/hybrid/vectors`: each track's learned CF vector, its content prediction, or their
    /// blend by evidence (see EncoreHybrid's `EvidenceBlend`); tracks with neither are absent.
    public var hybrid: ItemVectorSet?
    /// Per row of ``hybrid``: where the vector came from (`learned`, `blended(0.67 learned; text+artist)`,
    /// `predicted(audio+text)`), `/hybrid/provenance`.
    public var hybridProvenance: [String] = []
    /// The fitted cold-start model's parameters, `/hybrid/model`: what a server needs to predict a CF vector for a
    /// track it is sent (stored only with ``hybrid``).
    public var hybridModel: ColdStartParameters?

    /// Empty spaces.
    public init() {}

    /// Whether no space is present.
    public var isEmpty: Bool {
        audioEmbeddings == nil && audioDescriptors == nil && text == nil && sequence == nil && hybrid == nil
    }
}

/// Storage of ``ContentSpaces`` in a bundle (each group optional; a bundle without them reads as before):
///
/// | object | kind | content |
/// |---|---|---|
/// | `/audio/ids` | dataset `[n]` | strings: the item ids (of `/ids/items`) of the rows below, in item order |
/// | `/audio/embeddings` | dataset `[n, dim]` | float32, L2-normalized rows |
/// | `/audio/cf_predicted` | dataset `[n, factors]` | float32 (optional): the audio model's CF-head output |
/// | `/audio/descriptors` | dataset `[n, d]` | float32, one column per descriptor |
/// | `/audio/descriptor_names` | dataset `[d]` | strings: the descriptor of each column (`tempo_bpm`, `key`, ...) |
/// | `/text/ids`, `/text/vectors` | datasets `[n]`, `[n, dim]` | item ids and their text (LSA) vectors |
/// | `/text/inherited` | dataset `[n]` | uint8, 1 where the track took its artist's vector |
/// | `/sequence/ids`, `/sequence/vectors` | datasets `[n]`, `[n, dim]` | item ids and their skip-gram vectors |
/// | `/hybrid/ids`, `/hybrid/vectors` | datasets `[n]`, `[n, factors]` | item ids and their hybrid (CF-space) vectors |
/// | `/hybrid/provenance` | dataset `[n]` | strings: where each hybrid vector came from |
/// | `/hybrid/model` | group (optional), attributes `min_listeners` (int64), `prior_listeners` (float64) | the cold-start model |
/// | `/hybrid/model/sources`, `/hybrid/model/weights` | datasets `[s]` | source names (content spaces, then `artist`) and their combination weights (float32) |
/// | `/hybrid/model/mean` | dataset `[factors]` | float32: the warm tracks' mean CF vector `μ` |
/// | `/hybrid/model/ridges/<space>/{input_mean,output_mean,coefficients}` | datasets `[d]`, `[factors]`, `[d, factors]` | float32: each used content space's ridge (attribute `lambda`, float64, on the group) |
///
/// `/audio/embeddings` and `/audio/descriptors` share `/audio/ids`; either may be absent.
enum ContentLayout {
    static let audio = "/audio"
    static let audioIDs = "/audio/ids"
    static let audioEmbeddings = "/audio/embeddings"
    static let audioCFPredicted = "/audio/cf_predicted"
    static let audioDescriptors = "/audio/descriptors"
    static let descriptorNames = "/audio/descriptor_names"
    static let text = "/text"
    static let textIDs = "/text/ids"
    static let textVectors = "/text/vectors"
    static let textInherited = "/text/inherited"
    static let sequence = "/sequence"
    static let sequenceIDs = "/sequence/ids"
    static let sequenceVectors = "/sequence/vectors"
    static let hybrid = "/hybrid"
    static let hybridIDs = "/hybrid/ids"
    static let hybridVectors = "/hybrid/vectors"
    static let hybridProvenance = "/hybrid/provenance"
    static let hybridModel = "/hybrid/model"
    static let hybridModelSources = "/hybrid/model/sources"
    static let hybridModelWeights = "/hybrid/model/weights"
    static let hybridModelMean = "/hybrid/model/mean"
    static let hybridModelRidges = "/hybrid/model/ridges"
}

extension ContentSpaces {
    /// Checks the spaces fit a bundle of `items` items and can be stored.
    func validate(items: Int, path: String) throws(BundleError) {
        func check(_ set: ItemVectorSet?, _ object: String) throws(BundleError) {
            guard let set else { return }
            guard set.items.count == set.vectors.rows else {
                throw .shapeMismatch(path: path, object: object, reason: "\(set.vectors.rows) rows for \(set.items.count) items")
            }
            for (k, i) in set.items.enumerated() where i < 0 || Int(i) >= items || (k > 0 && i <= set.items[k - 1]) {
                throw .invalidData(path: path, object: object, reason: "entry \(k) names item \(i): items must be distinct, ascending and below \(items)")
            }
            if let bad = set.vectors.storage.firstIndex(where: { !$0.isFinite }) {
                throw .invalidData(path: path, object: object, reason: "value \(bad) (row \(bad / max(1, set.vectors.cols))) is not finite")
            }
        }
        try check(audioEmbeddings, ContentLayout.audioEmbeddings)
        try check(audioCFPredicted, ContentLayout.audioCFPredicted)
        try check(audioDescriptors, ContentLayout.audioDescriptors)
        try check(text, ContentLayout.textVectors)
        try check(sequence, ContentLayout.sequenceVectors)
        try check(hybrid, ContentLayout.hybridVectors)
        if let h = hybrid, let m = hybridModel, m.factors != h.dimension {
            throw .shapeMismatch(path: path, object: ContentLayout.hybridModelMean,
                                 reason: "the cold-start model predicts \(m.factors) factors, the hybrid vectors have \(h.dimension)")
        }
        if let h = hybrid, hybridProvenance.count != h.count {
            throw .shapeMismatch(path: path, object: ContentLayout.hybridProvenance, reason: "\(hybridProvenance.count) provenances for \(h.count) hybrid vectors")
        }
        if let e = audioEmbeddings, let d = audioDescriptors, e.items != d.items {
            throw .shapeMismatch(path: path, object: ContentLayout.audioIDs, reason: "the audio embeddings and descriptors cover different items (\(e.count) and \(d.count))")
        }
        if let p = audioCFPredicted, p.items != audioEmbeddings?.items {
            throw .shapeMismatch(path: path, object: ContentLayout.audioCFPredicted, reason: "the CF predictions cover other items than the audio embeddings")
        }
        if let d = audioDescriptors, descriptorNames.count != d.dimension {
            throw .shapeMismatch(path: path, object: ContentLayout.descriptorNames, reason: "\(descriptorNames.count) names for \(d.dimension) descriptor columns")
        }
        if let t = text, textInherited.count != t.count {
            throw .shapeMismatch(path: path, object: ContentLayout.textInherited, reason: "\(textInherited.count) marks for \(t.count) text vectors")
        }
    }
}

extension ContentSpaces {
    /// Writes the spaces alone to an HDF5 file at `path` (atomically), in the bundle's layout, ids from `itemIDs`.
    public func write(to path: String, itemIDs: IDMap) throws(BundleError) {
        try validate(items: itemIDs.count, path: path)
        try AudioModelFiles.atomically(path) { (file: borrowing HDF5File) throws(BundleError) in
            try file.setAttribute("encore_version", string: Encore.version, on: "/")
            try file.write(self, itemIDs: itemIDs)
        }
    }

    /// Reads spaces written by ``write(to:itemIDs:)`` (or a bundle's), checking every id against `itemIDs`; `nil`
    /// when the file holds none.
    public static func read(from path: String, itemIDs: IDMap) throws(BundleError) -> ContentSpaces? {
        var file = try HDF5File.open(at: path)
        let spaces = try file.readContentSpaces(itemIDs: itemIDs)
        try file.close()
        return spaces
    }
}

extension HDF5File {
    func write(_ spaces: ContentSpaces, itemIDs: IDMap) throws(BundleError) {
        func ids(_ set: ItemVectorSet) -> [String] { set.items.map { itemIDs.id(at: $0) } }
        if let audio = spaces.audioEmbeddings ?? spaces.audioDescriptors {
            try createGroup(ContentLayout.audio)
            try write(strings: ids(audio), at: ContentLayout.audioIDs)
            if let e = spaces.audioEmbeddings { try write(e.vectors, at: ContentLayout.audioEmbeddings) }
            if let p = spaces.audioCFPredicted { try write(p.vectors, at: ContentLayout.audioCFPredicted) }
            if let d = spaces.audioDescriptors {
                try write(d.vectors, at: ContentLayout.audioDescriptors)
                try write(strings: spaces.descriptorNames, at: ContentLayout.descriptorNames)
            }
        }
        if let t = spaces.text {
            try createGroup(ContentLayout.text)
            try write(strings: ids(t), at: ContentLayout.textIDs)
            try write(t.vectors, at: ContentLayout.textVectors)
            try write(spaces.textInherited.map { UInt8($0 ? 1 : 0) }, shape: [t.count], at: ContentLayout.textInherited)
        }
        if let s = spaces.sequence {
            try createGroup(ContentLayout.sequence)
            try write(strings: ids(s), at: ContentLayout.sequenceIDs)
            try write(s.vectors, at: ContentLayout.sequenceVectors)
        }
        if let h = spaces.hybrid {
            try createGroup(ContentLayout.hybrid)
            try write(strings: ids(h), at: ContentLayout.hybridIDs)
            try write(h.vectors, at: ContentLayout.hybridVectors)
            try write(strings: spaces.hybridProvenance, at: ContentLayout.hybridProvenance)
            if let m = spaces.hybridModel { try write(m) }
        }
    }

    /// Writes the cold-start model's parameters under `/hybrid/model`.
    func write(_ m: ColdStartParameters) throws(BundleError) {
        try createGroup(ContentLayout.hybridModel)
        try setAttribute("min_listeners", scalar: Int64(m.minListeners), on: ContentLayout.hybridModel)
        try setAttribute("prior_listeners", scalar: m.priorListeners, on: ContentLayout.hybridModel)
        try write(strings: m.sourceNames, at: ContentLayout.hybridModelSources)
        try write(m.weights, shape: [m.weights.count], at: ContentLayout.hybridModelWeights)
        try write(m.mean, shape: [m.mean.count], at: ContentLayout.hybridModelMean)
        try createGroup(ContentLayout.hybridModelRidges)
        for (name, ridge) in m.ridges.sorted(by: { $0.key < $1.key }) {
            let g = ContentLayout.hybridModelRidges + "/" + name
            try createGroup(g)
            try setAttribute("lambda", scalar: Double(ridge.lambda), on: g)
            try write(ridge.inputMean, shape: [ridge.inputMean.count], at: g + "/input_mean")
            try write(ridge.outputMean, shape: [ridge.outputMean.count], at: g + "/output_mean")
            try write(ridge.coefficients, at: g + "/coefficients")
        }
    }

    /// Reads `/hybrid/model`, checking its parts agree (`nil` when the bundle has none: bundles before it).
    func readHybridModel() throws(BundleError) -> ColdStartParameters? {
        let root = ContentLayout.hybridModel
        guard exists(root) else { return nil }
        for o in [ContentLayout.hybridModelSources, ContentLayout.hybridModelWeights, ContentLayout.hybridModelMean] where !exists(o) {
            throw .missingObject(path: path, object: o)
        }
        let minListeners = try scalarAttribute(Int64.self, "min_listeners", on: root)
        let prior = try scalarAttribute(Double.self, "prior_listeners", on: root)
        let sources = try readStrings(at: ContentLayout.hybridModelSources).values
        let weights = try read(Float.self, at: ContentLayout.hybridModelWeights).values
        let mean = try read(Float.self, at: ContentLayout.hybridModelMean).values
        var ridges: [String: RidgeRegression] = [:]
        if exists(ContentLayout.hybridModelRidges) {
            for name in try children(of: ContentLayout.hybridModelRidges) {
                let g = ContentLayout.hybridModelRidges + "/" + name
                let input = try read(Float.self, at: g + "/input_mean").values
                let output = try read(Float.self, at: g + "/output_mean").values
                let shape = try shape(of: g + "/coefficients")
                guard shape == [input.count, output.count] else {
                    throw .shapeMismatch(path: path, object: g + "/coefficients",
                                         reason: "shape \(shape), expected [\(input.count), \(output.count)] (input_mean x output_mean)")
                }
                let lambda = try scalarAttribute(Double.self, "lambda", on: g)
                let coefficients = try readMatrix(at: g + "/coefficients")
                do {
                    ridges[name] = try RidgeRegression(
                        inputMean: input, outputMean: output, coefficients: coefficients, lambda: Float(lambda))
                } catch {
                    throw .invalidData(path: path, object: g, reason: error.description)
                }
            }
        }
        do {
            return try ColdStartParameters(
                sourceNames: sources, weights: weights, mean: mean, ridges: ridges, minListeners: Int(minListeners),
                priorListeners: prior)
        } catch {
            throw .invalidData(path: path, object: root, reason: error.description)
        }
    }

    /// Reads the content spaces, checking that every id is an item of the bundle (once, in item order) and that
    /// every dataset has one row per id; `nil` when the bundle has none.
    func readContentSpaces(itemIDs: IDMap) throws(BundleError) -> ContentSpaces? {
        func items(_ object: String) throws(BundleError) -> [Int32] {
            let ids = try readStrings(at: object).values
            var out: [Int32] = []
            out.reserveCapacity(ids.count)
            for (k, id) in ids.enumerated() {
                guard let i = itemIDs.index(of: id) else {
                    throw .invalidData(path: path, object: object, reason: "entry \(k) ('\(id)') is not an item of /ids/items")
                }
                guard out.last.map({ $0 < i }) ?? true else {
                    throw .invalidData(path: path, object: object, reason: "entry \(k) ('\(id)') is repeated or out of the items' order")
                }
                out.append(i)
            }
            return out
        }
        func rows(_ object: String, _ items: [Int32]) throws(BundleError) -> ItemVectorSet {
            let shape = try shape(of: object)
            guard shape.count == 2, shape[0] == items.count else {
                throw .shapeMismatch(path: path, object: object, reason: "shape \(shape), expected [\(items.count), dim] (one row per id)")
            }
            return ItemVectorSet(unchecked: items, vectors: try readMatrix(at: object))
        }
        var spaces = ContentSpaces()
        if exists(ContentLayout.audio) {
            guard exists(ContentLayout.audioIDs) else { throw .missingObject(path: path, object: ContentLayout.audioIDs) }
            let ids = try items(ContentLayout.audioIDs)
            if exists(ContentLayout.audioEmbeddings) { spaces.audioEmbeddings = try rows(ContentLayout.audioEmbeddings, ids) }
            if exists(ContentLayout.audioCFPredicted) { spaces.audioCFPredicted = try rows(ContentLayout.audioCFPredicted, ids) }
            if exists(ContentLayout.audioDescriptors) {
                spaces.audioDescriptors = try rows(ContentLayout.audioDescriptors, ids)
                guard exists(ContentLayout.descriptorNames) else { throw .missingObject(path: path, object: ContentLayout.descriptorNames) }
                spaces.descriptorNames = try readStrings(at: ContentLayout.descriptorNames).values
            }
        }
        if exists(ContentLayout.text) {
            for o in [ContentLayout.textIDs, ContentLayout.textVectors] where !exists(o) { throw .missingObject(path: path, object: o) }
            let t = try rows(ContentLayout.textVectors, try items(ContentLayout.textIDs))
            spaces.text = t
            if exists(ContentLayout.textInherited) {
                let marks = try read(UInt8.self, at: ContentLayout.textInherited).values
                guard marks.count == t.count else {
                    throw .shapeMismatch(path: path, object: ContentLayout.textInherited, reason: "\(marks.count) marks for \(t.count) ids")
                }
                spaces.textInherited = marks.map { $0 != 0 }
            } else {
                spaces.textInherited = [Bool](repeating: false, count: t.count)
            }
        }
        if exists(ContentLayout.sequence) {
            for o in [ContentLayout.sequenceIDs, ContentLayout.sequenceVectors] where !exists(o) { throw .missingObject(path: path, object: o) }
            spaces.sequence = try rows(ContentLayout.sequenceVectors, try items(ContentLayout.sequenceIDs))
        }
        if exists(ContentLayout.hybrid) {
            for o in [ContentLayout.hybridIDs, ContentLayout.hybridVectors, ContentLayout.hybridProvenance] where !exists(o) {
                throw .missingObject(path: path, object: o)
            }
            spaces.hybrid = try rows(ContentLayout.hybridVectors, try items(ContentLayout.hybridIDs))
            spaces.hybridProvenance = try readStrings(at: ContentLayout.hybridProvenance).values
            spaces.hybridModel = try readHybridModel()
        }
        if spaces.isEmpty { return nil }
        try spaces.validate(items: itemIDs.count, path: path)
        return spaces
    }
}

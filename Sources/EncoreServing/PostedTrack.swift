import Foundation
import EncoreCore
import EncoreData

/// A catalogue track sent to the server (`POST /v1/tracks`): its metadata and, optionally, its content.
///
/// The JSON form (also what the track journal stores) uses snake_case names: `id`, `artist`, `album`,
/// `release_date`, `duration_ms`, `explicit`, `flagged`, and `content` with `descriptors` (name → number),
/// `embedding` (the audio embedding, in the bundle's `/audio/embeddings` space) and `text_vector` (a vector of the
/// bundle's `/text/vectors` space). Raw `text` is refused: the bundle holds the text vectors, not the text model
/// (vocabulary, weights and SVD) that made them, so the server cannot compute a vector from text.
public struct PostedTrack: Sendable, Equatable, Codable {
    /// The external track id.
    public var id: String
    /// The external artist id (the catalog's `artist_ids`; an artist the bundle does not know gives no prior).
    public var artist: String?
    /// The album, as given.
    public var album: String?
    /// The release date (`YYYY-MM-DD` or an ISO-8601 time), as given.
    public var releaseDate: String?
    /// The duration in milliseconds.
    public var durationMs: Int64?
    /// Whether the track is explicit.
    public var explicit: Bool?
    /// Whether the track must never be suggested.
    public var flagged: Bool?
    /// Audio descriptors by name (`tempo_bpm`, `key`, ...).
    public var descriptors: [String: Float]?
    /// The audio embedding (L2-normalized when accepted).
    public var embedding: [Float]?
    /// The text vector (L2-normalized when accepted).
    public var textVector: [Float]?

    /// A track from its parts.
    public init(
        id: String, artist: String? = nil, album: String? = nil, releaseDate: String? = nil, durationMs: Int64? = nil,
        explicit: Bool? = nil, flagged: Bool? = nil, descriptors: [String: Float]? = nil, embedding: [Float]? = nil,
        textVector: [Float]? = nil
    ) {
        self.id = id
        self.artist = artist
        self.album = album
        self.releaseDate = releaseDate
        self.durationMs = durationMs
        self.explicit = explicit
        self.flagged = flagged
        self.descriptors = descriptors
        self.embedding = embedding
        self.textVector = textVector
    }

    enum CodingKeys: String, CodingKey {
        case id, artist, album, explicit, flagged, descriptors, embedding
        case releaseDate = "release_date", durationMs = "duration_ms", textVector = "text_vector"
    }

    /// The most tracks one request may carry.
    public static let maxTracksPerRequest = 1000
    /// The most bytes of a track, artist or album id.
    public static let maxIDBytes = UserEvent.maxIDBytes
    /// The most descriptors of one track.
    public static let maxDescriptors = 256
}

/// Why a posted track was refused: the field at fault, the track's position in the batch and a message.
public struct TrackValidationError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The field, e.g. `content.embedding` or `duration_ms` (`tracks` for the batch itself).
    public var field: String
    /// The track's position in the batch, when the error is about one track.
    public var index: Int?
    /// What was wrong.
    public var message: String

    /// An error.
    public init(field: String, index: Int?, message: String) {
        self.field = field
        self.index = index
        self.message = message
    }

    public var description: String {
        (index.map { "track \($0): " } ?? "") + "\(field): \(message)"
    }
}

extension PostedTrack {
    /// Decodes a batch: one track object, an array of them, or `{"tracks": [...]}`, with at most `maxTracks` tracks.
    ///
    /// Every field is checked for its type (an unknown field is refused, so a misspelt one cannot pass silently),
    /// numbers must be finite, ids non-empty and at most ``maxIDBytes`` bytes without control characters, a track id
    /// given once per batch. Dimensions are checked against the model by the engine.
    /// - Throws: ``TrackValidationError`` naming the field and the track.
    public static func decodeBatch(_ bytes: [UInt8], maxTracks: Int = maxTracksPerRequest) throws(TrackValidationError) -> [PostedTrack] {
        guard let first = bytes.first(where: { !($0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09) }) else {
            throw TrackValidationError(field: "tracks", index: nil, message: "the body is empty: expected a track, an array of tracks or {\"tracks\": [...]}")
        }
        // A single track object is track 0 of the batch in error messages, as in the other two forms.
        let single = first == UInt8(ascii: "{")
            && !(((try? JSONSerialization.jsonObject(with: Data(bytes))) as? [String: Any])?.keys.contains("tracks") ?? false)
        func placed(_ e: TrackValidationError) -> TrackValidationError {
            guard single, e.index == nil, e.field != "tracks" else { return e }
            return TrackValidationError(field: e.field, index: 0, message: e.message)
        }
        let tracks: [PostedTrack]
        do {
            if first == UInt8(ascii: "[") {
                tracks = try JSONDecoder().decode([TrackInput].self, from: Data(bytes)).map(\.track)
            } else if first == UInt8(ascii: "{") {
                tracks = try JSONDecoder().decode(BatchInput.self, from: Data(bytes)).tracks
            } else {
                throw TrackValidationError(field: "tracks", index: nil, message: "expected a track object, an array of tracks or {\"tracks\": [...]}")
            }
        } catch let e as TrackValidationError {
            throw placed(e)
        } catch let e as DecodingError {
            throw placed(Self.describe(e))
        } catch {
            throw TrackValidationError(field: "tracks", index: nil, message: "the body is not valid JSON: \(error)")
        }
        guard !tracks.isEmpty else {
            throw TrackValidationError(field: "tracks", index: nil, message: "the batch is empty: send at least one track")
        }
        guard tracks.count <= maxTracks else {
            throw TrackValidationError(field: "tracks", index: nil, message: "the batch has \(tracks.count) tracks, at most \(maxTracks) are allowed")
        }
        var seen: [String: Int] = [:]
        for (k, t) in tracks.enumerated() {
            if let earlier = seen.updateValue(k, forKey: t.id) {
                throw TrackValidationError(field: "id", index: k, message: "'\(t.id)' is also track \(earlier) of the batch: send each track once")
            }
        }
        return tracks
    }

    /// A decoding error as a validation error naming the field (the path below the track) and the track.
    static func describe(_ e: DecodingError) -> TrackValidationError {
        let (path, reason): ([any CodingKey], String)
        switch e {
        case .typeMismatch(let type, let c):
            path = c.codingPath
            reason = "must be \(Self.typeName(type))"
        case .valueNotFound(let type, let c):
            path = c.codingPath
            reason = "must be \(Self.typeName(type)), not null"
        case .keyNotFound(let key, let c):
            path = c.codingPath + [key]
            reason = "is required"
        case .dataCorrupted(let c):
            path = c.codingPath
            let d = c.debugDescription.lowercased()
            reason = d.contains("fit") || d.contains("number") || d.contains("representable")
                ? "must be a finite number within the range of Float32 (\(c.debugDescription))"
                : "is not valid JSON: \(c.debugDescription) (a number beyond a double's range, such as 1e999, is refused this way too)"
        @unknown default:
            return TrackValidationError(field: "tracks", index: nil, message: "\(e)")
        }
        return Self.locate(path, reason)
    }

    static func typeName(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: return "a string"
        case is Bool.Type: return "true or false"
        case is Int64.Type, is Int.Type: return "an integer"
        case is Float.Type, is Double.Type: return "a number"
        case is [Float].Type: return "an array of numbers"
        default: return "of the documented type"
        }
    }

    /// The track index and the field path of a coding path (`tracks`, index, then the track's keys).
    static func locate(_ path: [any CodingKey], _ reason: String) -> TrackValidationError {
        var keys = path[...]
        if keys.first?.stringValue == "tracks", keys.first?.intValue == nil { keys = keys.dropFirst() }
        var index: Int?
        if let i = keys.first?.intValue { index = i; keys = keys.dropFirst() }
        var field = ""
        for k in keys {
            if let i = k.intValue { field += "[\(i)]" } else { field += (field.isEmpty ? "" : ".") + k.stringValue }
        }
        return TrackValidationError(field: field.isEmpty ? "tracks" : field, index: index, message: "\(field.isEmpty ? "the value" : field) \(reason)")
    }
}

/// Any JSON object key.
struct AnyKey: CodingKey {
    var stringValue: String
    var intValue: Int?
    init(_ s: String) { stringValue = s }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { stringValue = "\(intValue)"; self.intValue = intValue }
}

/// `{"tracks": [...]}` or a single track object.
struct BatchInput: Decodable {
    var tracks: [PostedTrack]

    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: AnyKey.self)
        if c.contains(AnyKey("tracks")) {
            if let other = c.allKeys.first(where: { $0.stringValue != "tracks" }) {
                throw TrackValidationError(field: other.stringValue, index: nil,
                                           message: "unknown field '\(other.stringValue)' beside 'tracks'")
            }
            tracks = try c.decode([TrackInput].self, forKey: AnyKey("tracks")).map(\.track)
        } else {
            tracks = [try TrackInput(from: decoder).track]
        }
    }
}

/// One track, decoded field by field with the checks of ``PostedTrack/decodeBatch(_:maxTracks:)``.
struct TrackInput: Decodable {
    var track: PostedTrack

    static let fields: Set<String> = ["id", "artist", "album", "release_date", "duration_ms", "explicit", "flagged", "content"]
    static let contentFields: Set<String> = ["descriptors", "embedding", "text_vector", "text"]

    init(from decoder: any Decoder) throws {
        let index = decoder.codingPath.last?.intValue
        func fail(_ field: String, _ message: String) -> TrackValidationError {
            TrackValidationError(field: field, index: index, message: message)
        }
        let c = try decoder.container(keyedBy: AnyKey.self)
        for k in c.allKeys where !Self.fields.contains(k.stringValue) {
            throw fail(k.stringValue, "unknown field '\(k.stringValue)' (expected \(Self.fields.sorted().joined(separator: ", ")))")
        }
        func string(_ name: String) throws -> String? {
            guard c.contains(AnyKey(name)), try !c.decodeNil(forKey: AnyKey(name)) else { return nil }
            let s = try c.decode(String.self, forKey: AnyKey(name))
            try Self.checkID(s, field: name, fail: fail)
            return s
        }
        guard c.contains(AnyKey("id")) else { throw fail("id", "id is required") }
        guard let id = try string("id") else { throw fail("id", "id must be a non-empty string, not null") }
        var t = PostedTrack(id: id)
        t.artist = try string("artist")
        t.album = try string("album")
        if let r = try string("release_date") {
            guard Timestamp.parse(r) != nil else {
                throw fail("release_date", "release_date '\(r)' is not a date (YYYY-MM-DD or an ISO-8601 time)")
            }
            t.releaseDate = r
        }
        if c.contains(AnyKey("duration_ms")), try !c.decodeNil(forKey: AnyKey("duration_ms")) {
            let d = try c.decode(Int64.self, forKey: AnyKey("duration_ms"))
            guard (0...86_400_000).contains(d) else { throw fail("duration_ms", "duration_ms must be in 0...86400000 (a day), got \(d)") }
            t.durationMs = d
        }
        if c.contains(AnyKey("explicit")), try !c.decodeNil(forKey: AnyKey("explicit")) {
            t.explicit = try c.decode(Bool.self, forKey: AnyKey("explicit"))
        }
        if c.contains(AnyKey("flagged")), try !c.decodeNil(forKey: AnyKey("flagged")) {
            t.flagged = try c.decode(Bool.self, forKey: AnyKey("flagged"))
        }
        if c.contains(AnyKey("content")), try !c.decodeNil(forKey: AnyKey("content")) {
            let content = try c.nestedContainer(keyedBy: AnyKey.self, forKey: AnyKey("content"))
            for k in content.allKeys where !Self.contentFields.contains(k.stringValue) {
                throw fail("content.\(k.stringValue)", "unknown field 'content.\(k.stringValue)' (expected descriptors, embedding or text_vector)")
            }
            if content.contains(AnyKey("text")) {
                throw fail("content.text", "raw text cannot be turned into a vector here: the bundle holds the text vectors "
                    + "(/text/vectors), not the text model that made them; send content.text_vector (a vector of that space) instead")
            }
            if content.contains(AnyKey("descriptors")), try !content.decodeNil(forKey: AnyKey("descriptors")) {
                let d = try content.nestedContainer(keyedBy: AnyKey.self, forKey: AnyKey("descriptors"))
                guard d.allKeys.count <= PostedTrack.maxDescriptors else {
                    throw fail("content.descriptors", "content.descriptors has \(d.allKeys.count) entries, at most \(PostedTrack.maxDescriptors) are allowed")
                }
                var values: [String: Float] = [:]
                for k in d.allKeys {
                    let name = k.stringValue
                    guard !name.isEmpty, name.utf8.count <= 64,
                          name.utf8.allSatisfy({ ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x5F })
                    else {
                        throw fail("content.descriptors", "descriptor name '\(name)' must be 1 to 64 of a-z, 0-9 and _")
                    }
                    // Read as Double: a value beyond Float32's range is then named here (JSONDecoder would refuse
                    // the whole body as invalid JSON).
                    let v = try d.decode(Double.self, forKey: k)
                    guard Float(v).isFinite else {
                        throw fail("content.descriptors.\(name)", "content.descriptors.\(name) must be a finite number within the range of Float32, got \(v)")
                    }
                    values[name] = Float(v)
                }
                t.descriptors = values
            }
            func vector(_ name: String) throws -> [Float]? {
                guard content.contains(AnyKey(name)), try !content.decodeNil(forKey: AnyKey(name)) else { return nil }
                let raw = try content.decode([Double].self, forKey: AnyKey(name))
                let field = "content.\(name)"
                guard !raw.isEmpty else { throw fail(field, "\(field) is empty") }
                let v = raw.map { Float($0) }
                if let bad = v.firstIndex(where: { !$0.isFinite }) {
                    throw fail("\(field)[\(bad)]", "\(field)[\(bad)] must be a finite number within the range of Float32, got \(raw[bad])")
                }
                let norm = v.reduce(Float(0)) { $0 + $1 * $1 }.squareRoot()
                guard norm > 0, norm.isFinite else { throw fail(field, "\(field) must have a non-zero, finite norm") }
                return v.map { $0 / norm }
            }
            t.embedding = try vector("embedding")
            t.textVector = try vector("text_vector")
        }
        track = t
    }

    static func checkID(_ s: String, field: String, fail: (String, String) -> TrackValidationError) throws {
        guard !s.isEmpty else { throw fail(field, "\(field) must not be empty") }
        guard s.utf8.count <= PostedTrack.maxIDBytes else {
            throw fail(field, "\(field) has \(s.utf8.count) bytes, at most \(PostedTrack.maxIDBytes) are allowed")
        }
        guard !s.unicodeScalars.contains(where: { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) }) else {
            throw fail(field, "\(field) must not contain control characters")
        }
    }
}

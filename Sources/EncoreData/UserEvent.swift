import Foundation
import EncoreCore

/// The kind of a ``UserEvent``. The raw values are the JSON spellings.
public enum EventType: String, Sendable, Codable, CaseIterable, Hashable {
    /// The user played the track (``UserEvent/msPlayed`` says how long; under 30 s it counts as a skip).
    case play
    /// The user skipped the track.
    case skip
    /// The user liked the track.
    case like
    /// The user withdrew a like of the track.
    case unlike
    /// The user disliked the track (it is never suggested to them again).
    case dislike
    /// The user withdrew a dislike of the track.
    case undislike
    /// The user follows the artist; ``UserEvent/item`` is the artist id.
    case followArtist = "follow_artist"
    /// The user stopped following the artist; ``UserEvent/item`` is the artist id.
    case unfollowArtist = "unfollow_artist"
    /// The user added the track to one of their playlists.
    case playlistAdd = "playlist_add"

    /// Whether ``UserEvent/item`` names an artist rather than a track.
    public var targetsArtist: Bool { self == .followArtist || self == .unfollowArtist }
}

/// Why an event or a batch of events was refused: the position in the batch, the JSON member and the reason.
public struct EventValidationError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The position of the offending event in the batch (0-based), or `nil` when the batch as a whole is at fault.
    public var index: Int?
    /// The JSON member at fault (`"event_id"`, `"user"`, `"item"`, `"type"`, `"ms_played"`, `"timestamp"`,
    /// `"events"` for the batch itself, or the name of an unknown member), or `nil` for a syntax error or an element
    /// that is not an object.
    public var field: String?
    /// What is wrong, for a person.
    public var message: String

    /// An error.
    public init(index: Int?, field: String?, message: String) {
        self.index = index
        self.field = field
        self.message = message
    }

    /// For example `event 3, "ms_played": must be a non-negative integer, got -5`.
    public var description: String {
        var parts: [String] = []
        if let index { parts.append("event \(index)") }
        if let field { parts.append("\"\(field)\"") }
        return parts.isEmpty ? message : parts.joined(separator: ", ") + ": " + message
    }
}

/// One listening event, as POSTed to `/v1/events` and as stored in the ``EventLog``.
///
/// (Named `UserEvent`, not `ListeningEvent`: RecCore already has a ``ListeningEvent`` — an item index, a time and a
/// play count — that ``UserHistory`` is built from.)
///
/// JSON form (compact, as the log stores it):
/// `{"event_id":"e1","user":"u42","item":"t7","type":"play","ms_played":185000,"timestamp":1718000000}`.
///
/// Validation rules (``decodeBatch(_:now:maxEvents:)``, ``validate()``):
/// - `event_id`: a string of 1 to ``maxEventIDBytes`` UTF-8 bytes, chosen by the client so that a retry is
///   idempotent.
/// - `user`, `item`: strings of 1 to ``maxIDBytes`` bytes. `item` is the track id, or the artist id for
///   `follow_artist` / `unfollow_artist`.
/// - No id may contain a control character (tab, newline, NUL, ...): ids end up in TSV files and HDF5 strings.
/// - `type`: one of the ``EventType`` raw values.
/// - `ms_played`: optional (absent or `null`), else an integer >= 0.
/// - `timestamp`: optional (absent or `null` means the caller's `now`), else an integer number of seconds since the
///   epoch or a string with the play-log loader's rules (integer seconds, `YYYY-MM-DD`, or
///   `YYYY-MM-DDTHH:MM:SS[.fff][Z|±HH:MM]`), within 1970 ... 9999.
/// - Any other member is refused (a misspelt `ms_played` must not pass silently).
public struct UserEvent: Sendable, Codable, Equatable, Hashable {
    /// The client-chosen id of the event (JSON `event_id`), unique per event; at most ``maxEventIDBytes`` bytes.
    public var eventID: String
    /// The external user id.
    public var user: String
    /// The track id; for ``EventType/followArtist`` and ``EventType/unfollowArtist`` the artist id.
    public var item: String
    /// What happened.
    public var type: EventType
    /// How long the track played, in milliseconds (JSON `ms_played`); plays shorter than 30 000 ms count as skips.
    public var msPlayed: Int64?
    /// When, in seconds since the epoch.
    public var timestamp: Int64

    /// The longest `event_id`, in UTF-8 bytes.
    public static let maxEventIDBytes = 128
    /// The longest `user` or `item`, in UTF-8 bytes.
    public static let maxIDBytes = 256
    /// The shortest play that counts as a play (shorter ones are skips), in milliseconds: the threshold of
    /// ``EventRules/standard``.
    public static let minimumPlayMs: Int64 = EventRules.standard.minimumListenMs
    /// The latest accepted timestamp: 9999-12-31T23:59:59Z.
    public static let maxTimestamp: Int64 = 253_402_300_799

    /// An event (not validated: see ``validate()``).
    public init(eventID: String, user: String, item: String, type: EventType, msPlayed: Int64? = nil, timestamp: Int64) {
        self.eventID = eventID
        self.user = user
        self.item = item
        self.type = type
        self.msPlayed = msPlayed
        self.timestamp = timestamp
    }

    /// Whether the event counts as a play of `item`: a ``EventType/play`` of at least 30 s (or of unknown length).
    public var countsAsPlay: Bool { EventRules.standard.isListen(self) }

    /// Whether the event counts as a skip: a ``EventType/skip``, or a ``EventType/play`` shorter than 30 s.
    public var countsAsSkip: Bool { EventRules.standard.isSkip(self) }

    // MARK: Validation

    /// Checks every field against the rules above.
    /// - Parameter index: the position reported in the error.
    /// - Throws: ``EventValidationError`` naming the field.
    public func validate(index: Int? = nil) throws(EventValidationError) {
        try Self.checkID(eventID, field: "event_id", limit: Self.maxEventIDBytes, index: index)
        try Self.checkID(user, field: "user", limit: Self.maxIDBytes, index: index)
        try Self.checkID(item, field: "item", limit: Self.maxIDBytes, index: index)
        if let msPlayed, msPlayed < 0 {
            throw EventValidationError(index: index, field: "ms_played", message: "must be >= 0, got \(msPlayed)")
        }
        try Self.checkTimestamp(timestamp, index: index)
    }

    static func checkID(_ s: String, field: String, limit: Int, index: Int?) throws(EventValidationError) {
        let n = s.utf8.count
        guard n > 0 else { throw EventValidationError(index: index, field: field, message: "must not be empty") }
        guard n <= limit else {
            throw EventValidationError(index: index, field: field, message: "is \(n) bytes long, at most \(limit) are allowed")
        }
        if s.unicodeScalars.contains(where: { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) }) {
            throw EventValidationError(index: index, field: field,
                                       message: "must not contain control characters (tab, newline, NUL, C1 controls, ...)")
        }
    }

    static func checkTimestamp(_ t: Int64, index: Int?) throws(EventValidationError) {
        guard t >= 0 else {
            throw EventValidationError(index: index, field: "timestamp", message: "must not be before 1970, got \(t)")
        }
        guard t <= maxTimestamp else {
            let hint = t <= maxTimestamp * 1000 ? " (milliseconds? the timestamp is in seconds)" : ""
            throw EventValidationError(index: index, field: "timestamp",
                                       message: "\(t) is after the year 9999\(hint)")
        }
    }

    // MARK: Decoding

    /// Decodes and validates a request body: one event object, an array of event objects, `{"events": [...]}`, or
    /// event objects one per line (JSON lines).
    ///
    /// - Parameters:
    ///   - body: the UTF-8 JSON bytes.
    ///   - now: the timestamp (seconds since the epoch) of events without one.
    ///   - maxEvents: the most events accepted in one batch.
    ///   - rules: when given, its plausibility window applies: an event more than
    ///     ``EventRules/maximumFutureSeconds`` ahead of `now` is refused (field `"timestamp"`). The server passes its
    ///     rules; `nil` checks no window.
    /// - Returns: the events in order (at least one).
    /// - Throws: ``EventValidationError``: a syntax error (``EventValidationError/field`` `nil`, the message names
    ///   the byte offset), an empty or oversized batch (field `"events"`), or the first invalid event (its index and
    ///   field). Nothing is returned unless every event is valid.
    public static func decodeBatch(
        _ body: [UInt8], now: Int64, maxEvents: Int = 1000, rules: EventRules? = nil
    ) throws(EventValidationError) -> [UserEvent] {
        let values: [EventJSON.Value]
        do {
            values = try EventJSON.parseSequence(body)
        } catch {
            throw EventValidationError(index: nil, field: nil,
                                       message: "malformed JSON at byte \(error.offset): \(error.message)")
        }
        var elements: [EventJSON.Value]
        if values.count == 1 {
            switch values[0] {
            case .array(let a):
                elements = a
            case .object(let members) where members.contains(where: { $0.0 == "events" }):
                guard members.count == 1, case .array(let a) = members[0].1 else {
                    throw EventValidationError(
                        index: nil, field: "events",
                        message: "expected {\"events\": [...]} with an array of events and no other member")
                }
                elements = a
            case .object:
                elements = values
            default:
                throw EventValidationError(
                    index: nil, field: nil,
                    message: "expected an event object, an array of events or {\"events\": [...]}, got \(values[0].typeName)")
            }
        } else {
            elements = values
        }
        guard !elements.isEmpty else {
            throw EventValidationError(index: nil, field: "events", message: "the batch holds no events")
        }
        guard elements.count <= maxEvents else {
            throw EventValidationError(
                index: maxEvents, field: "events",
                message: "the batch holds \(elements.count) events, at most \(maxEvents) are accepted")
        }
        var events: [UserEvent] = []
        events.reserveCapacity(elements.count)
        for (k, v) in elements.enumerated() {
            let e = try event(from: v, index: k, now: now)
            if let rules, !rules.isPlausible(timestamp: e.timestamp, now: now) {
                throw EventValidationError(
                    index: k, field: "timestamp",
                    message: "\(e.timestamp) (\(Timestamp.isoString(timestamp: e.timestamp))) is more than "
                        + "\(rules.maximumFutureSeconds) s ahead of the server clock (\(Timestamp.isoString(timestamp: now)))")
            }
            events.append(e)
        }
        return events
    }

    /// Decodes and validates one event object.
    package static func event(from value: EventJSON.Value, index: Int?, now: Int64?) throws(EventValidationError) -> UserEvent {
        guard case .object(let members) = value else {
            throw EventValidationError(index: index, field: nil, message: "expected an event object, got \(value.typeName)")
        }
        var eventID: String?, user: String?, item: String?, type: EventType?, ms: Int64?, time: Int64?
        func string(_ v: EventJSON.Value, _ field: String) throws(EventValidationError) -> String {
            guard case .string(let s) = v else {
                throw EventValidationError(index: index, field: field, message: "must be a string, got \(v.typeName)")
            }
            return s
        }
        for (key, v) in members {
            switch key {
            case "event_id": eventID = try string(v, key)
            case "user": user = try string(v, key)
            case "item": item = try string(v, key)
            case "type":
                let s = try string(v, key)
                guard let t = EventType(rawValue: s) else {
                    throw EventValidationError(
                        index: index, field: key,
                        message: "unknown type \"\(s)\", expected one of "
                            + EventType.allCases.map(\.rawValue).joined(separator: ", "))
                }
                type = t
            case "ms_played":
                switch v {
                case .null: ms = nil
                case .integer(let n):
                    guard n >= 0 else {
                        throw EventValidationError(index: index, field: key, message: "must be >= 0, got \(n)")
                    }
                    ms = n
                default:
                    throw EventValidationError(index: index, field: key,
                                               message: "must be a non-negative integer (milliseconds), got \(v.typeName)")
                }
            case "timestamp":
                switch v {
                case .null: time = nil
                case .integer(let n): time = n
                case .string(let s):
                    guard let t = parseTimestamp(s) else {
                        throw EventValidationError(
                            index: index, field: key,
                            message: "\"\(s)\" is not a timestamp (integer seconds, YYYY-MM-DD or "
                                + "YYYY-MM-DDTHH:MM:SS[.fff][Z|+HH:MM])")
                    }
                    time = t
                default:
                    throw EventValidationError(
                        index: index, field: key,
                        message: "must be an integer number of seconds or an ISO-8601 string, got \(v.typeName)")
                }
            default:
                throw EventValidationError(
                    index: index, field: key,
                    message: "unknown member (expected event_id, user, item, type, ms_played, timestamp)")
            }
        }
        guard let eventID else { throw EventValidationError(index: index, field: "event_id", message: "is missing") }
        guard let user else { throw EventValidationError(index: index, field: "user", message: "is missing") }
        guard let item else { throw EventValidationError(index: index, field: "item", message: "is missing") }
        guard let type else { throw EventValidationError(index: index, field: "type", message: "is missing") }
        guard let timestamp = time ?? now else {
            throw EventValidationError(index: index, field: "timestamp", message: "is missing")
        }
        let e = UserEvent(eventID: eventID, user: user, item: item, type: type, msPlayed: ms, timestamp: timestamp)
        try e.validate(index: index)
        return e
    }

    /// Parses a timestamp string with the play-log loader's rules.
    public static func parseTimestamp(_ s: String) -> Int64? {
        Timestamp.parse(s)
    }

    // MARK: Encoding

    /// The compact JSON object the log stores: members in the order `event_id`, `user`, `item`, `type`,
    /// `ms_played` (omitted when `nil`), `timestamp` (integer seconds).
    public var jsonBytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(64 + eventID.utf8.count + user.utf8.count + item.utf8.count)
        appendJSON(to: &out)
        return out
    }

    /// Appends ``jsonBytes`` to `out`.
    func appendJSON(to out: inout [UInt8]) {
        out.append(contentsOf: #"{"event_id":"#.utf8)
        EventJSON.appendString(eventID, to: &out)
        out.append(contentsOf: #","user":"#.utf8)
        EventJSON.appendString(user, to: &out)
        out.append(contentsOf: #","item":"#.utf8)
        EventJSON.appendString(item, to: &out)
        out.append(contentsOf: #","type":""#.utf8)
        out.append(contentsOf: type.rawValue.utf8)
        out.append(0x22)
        if let msPlayed {
            out.append(contentsOf: #","ms_played":"#.utf8)
            out.append(contentsOf: String(msPlayed).utf8)
        }
        out.append(contentsOf: #","timestamp":"#.utf8)
        out.append(contentsOf: String(timestamp).utf8)
        out.append(UInt8(ascii: "}"))
    }

    // MARK: Codable

    enum CodingKeys: String, CodingKey {
        case eventID = "event_id", user, item, type, msPlayed = "ms_played", timestamp
    }

    /// Decodes the JSON form; `timestamp` may be an integer or a string (loader rules) and is required here.
    /// The decoded event is validated (a `DecodingError.dataCorrupted` names the field).
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        eventID = try c.decode(String.self, forKey: .eventID)
        user = try c.decode(String.self, forKey: .user)
        item = try c.decode(String.self, forKey: .item)
        type = try c.decode(EventType.self, forKey: .type)
        msPlayed = try c.decodeIfPresent(Int64.self, forKey: .msPlayed)
        if let n = try? c.decode(Int64.self, forKey: .timestamp) {
            timestamp = n
        } else {
            let s = try c.decode(String.self, forKey: .timestamp)
            guard let t = Self.parseTimestamp(s) else {
                throw DecodingError.dataCorruptedError(forKey: .timestamp, in: c, debugDescription: "\"\(s)\" is not a timestamp")
            }
            timestamp = t
        }
        do {
            try validate()
        } catch {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: error.description))
        }
    }

    /// Encodes the JSON form (`ms_played` omitted when `nil`, `timestamp` as integer seconds).
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(eventID, forKey: .eventID)
        try c.encode(user, forKey: .user)
        try c.encode(item, forKey: .item)
        try c.encode(type, forKey: .type)
        try c.encodeIfPresent(msPlayed, forKey: .msPlayed)
        try c.encode(timestamp, forKey: .timestamp)
    }
}

/// An id compared by its UTF-8 bytes, not by Unicode canonical equivalence: the NFC and NFD spellings of `café` are
/// two ids, as they are two byte strings in the event log and to every client.
public struct ExactID: Hashable, Sendable {
    /// The id's UTF-8 bytes.
    public let bytes: [UInt8]
    /// The id of `text`, byte for byte.
    public init(_ text: String) { bytes = Array(text.utf8) }
}

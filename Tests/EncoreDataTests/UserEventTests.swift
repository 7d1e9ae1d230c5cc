import Foundation
import Testing
@testable import EncoreCore
@testable import EncoreData
@testable import EncoreEventLog


/// Decodes `json` expecting a validation error and returns it.
private func decodeError(_ json: String, now: Int64 = 1_700_000_000, maxEvents: Int = 1000) -> EventValidationError? {
    do {
        _ = try UserEvent.decodeBatch(Array(json.utf8), now: now, maxEvents: maxEvents)
        return nil
    } catch {
        return error
    }
}

@Suite("UserEvent decoding and validation")
struct UserEventTests {
    @Test func decodesOneObjectAnArrayAWrapperAndJSONLines() throws {
        let one = #"{"event_id":"e1","user":"u1","item":"t1","type":"play","ms_played":31000,"timestamp":1700000000}"#
        let e = UserEvent(eventID: "e1", user: "u1", item: "t1", type: .play, msPlayed: 31000, timestamp: 1_700_000_000)
        #expect(try UserEvent.decodeBatch(Array(one.utf8), now: 5) == [e])
        #expect(try UserEvent.decodeBatch(Array("[\(one), \(one)]".utf8), now: 5) == [e, e])
        #expect(try UserEvent.decodeBatch(Array(#"{"events": [\#(one)]}"#.utf8), now: 5) == [e])
        #expect(try UserEvent.decodeBatch(Array("\(one)\n\(one)\n".utf8), now: 5) == [e, e])
    }

    @Test func missingTimestampIsNowAndISOStringsFollowTheLoader() throws {
        let a = try UserEvent.decodeBatch(Array(#"{"event_id":"e","user":"u","item":"i","type":"like"}"#.utf8), now: 42)
        #expect(a[0].timestamp == 42 && a[0].msPlayed == nil)
        let b = try UserEvent.decodeBatch(
            Array(#"{"event_id":"e","user":"u","item":"i","type":"skip","timestamp":"2024-06-10T12:00:00+02:00"}"#.utf8), now: 0)
        #expect(b[0].timestamp == 1_718_013_600)
        let c = try UserEvent.decodeBatch(
            Array(#"{"event_id":"e","user":"u","item":"i","type":"skip","timestamp":"2024-06-10"}"#.utf8), now: 0)
        #expect(c[0].timestamp == 1_717_977_600)
        let d = try UserEvent.decodeBatch(
            Array(#"{"event_id":"e","user":"u","item":"i","type":"follow_artist","timestamp":null,"ms_played":null}"#.utf8), now: 7)
        #expect(d[0].timestamp == 7 && d[0].type == .followArtist)
    }

    @Test func eventsFarAheadOfTheClockAreRefused() throws {
        let now: Int64 = 1_800_000_000
        func body(_ t: Int64) -> [UInt8] {
            Array(#"{"event_id":"e","user":"u","item":"t","type":"play","timestamp":\#(t)}"#.utf8)
        }
        // An hour ahead (clock skew) is accepted; two days ahead is not, and neither is the year 9999.
        #expect(try UserEvent.decodeBatch(body(now + 3_600), now: now, rules: .standard).first?.timestamp == now + 3_600)
        for t in [now + 2 * 86_400, UserEvent.maxTimestamp] {
            do {
                _ = try UserEvent.decodeBatch(body(t), now: now, rules: .standard)
                Issue.record("accepted an event at \(t)")
            } catch {
                #expect(error.field == "timestamp" && error.index == 0)
                #expect(error.message.contains("more than 86400 s ahead of the server clock (2027-01-15T08:00:00Z)"), "\(error.message)")
            }
        }
        // The window is the rules': a wider one accepts two days ahead.
        let lenient = EventRules(maximumFutureSeconds: 3 * 86_400)
        #expect(try UserEvent.decodeBatch(body(now + 2 * 86_400), now: now, rules: lenient).count == 1)
    }

    @Test func c1ControlCharactersAreRefusedInIDs() throws {
        for id in ["a\u{85}b", "x\u{9F}", "\u{80}"] {
            let e = UserEvent(eventID: "e", user: id, item: "t", type: .play, timestamp: 1)
            do {
                try e.validate()
                Issue.record("accepted a user id with a C1 control character")
            } catch {
                #expect(error.field == "user" && error.message.contains("C1 controls"), "\(error.message)")
            }
        }
        // Characters just past the C1 block are ordinary text.
        try UserEvent(eventID: "e", user: "\u{A0}café", item: "t", type: .play, timestamp: 1).validate()
        #expect(ExactID("caf\u{E9}") != ExactID("cafe\u{301}") && "caf\u{E9}" == "cafe\u{301}")
    }

    @Test func countsAsPlayUsesThe30SecondRule() {
        func ev(_ t: EventType, _ ms: Int64?) -> UserEvent { UserEvent(eventID: "e", user: "u", item: "i", type: t, msPlayed: ms, timestamp: 0) }
        #expect(ev(.play, 30_000).countsAsPlay)
        #expect(ev(.play, nil).countsAsPlay)
        #expect(!ev(.play, 29_999).countsAsPlay && ev(.play, 29_999).countsAsSkip)
        #expect(!ev(.skip, 100_000).countsAsPlay && ev(.skip, nil).countsAsSkip)
        #expect(!ev(.like, 100_000).countsAsPlay && !ev(.like, nil).countsAsSkip)
    }

    @Test func everyValidationErrorNamesItsFieldAndIndex() {
        let ok = #"{"event_id":"e","user":"u","item":"i","type":"play"}"#
        func at1(_ bad: String) -> EventValidationError? { decodeError("[\(ok), \(bad)]") }
        let cases: [(String, String)] = [
            (#"{"user":"u","item":"i","type":"play"}"#, "event_id"),
            (#"{"event_id":"","user":"u","item":"i","type":"play"}"#, "event_id"),
            (#"{"event_id":"\#(String(repeating: "x", count: 129))","user":"u","item":"i","type":"play"}"#, "event_id"),
            (#"{"event_id":"e","item":"i","type":"play"}"#, "user"),
            (#"{"event_id":"e","user":"a\tb","item":"i","type":"play"}"#, "user"),
            (#"{"event_id":"e","user":"u","type":"play"}"#, "item"),
            (#"{"event_id":"e","user":"u","item":"i","type":"stream"}"#, "type"),
            (#"{"event_id":"e","user":"u","item":"i"}"#, "type"),
            (#"{"event_id":"e","user":"u","item":"i","type":"play","ms_played":-1}"#, "ms_played"),
            (#"{"event_id":"e","user":"u","item":"i","type":"play","ms_played":1.5}"#, "ms_played"),
            (#"{"event_id":"e","user":"u","item":"i","type":"play","ms_played":"100"}"#, "ms_played"),
            (#"{"event_id":"e","user":"u","item":"i","type":"play","timestamp":"yesterday"}"#, "timestamp"),
            (#"{"event_id":"e","user":"u","item":"i","type":"play","timestamp":"2024-02-30"}"#, "timestamp"),
            (#"{"event_id":"e","user":"u","item":"i","type":"play","timestamp":1700000000000}"#, "timestamp"),
            (#"{"event_id":"e","user":"u","item":"i","type":"play","timestamp":-5}"#, "timestamp"),
            (#"{"event_id":"e","user":"u","item":"i","type":"play","timestamp":true}"#, "timestamp"),
            (#"{"event_id":7,"user":"u","item":"i","type":"play"}"#, "event_id"),
            (#"{"event_id":"e","user":["u"],"item":"i","type":"play"}"#, "user"),
            (#"{"event_id":"e","user":"u","item":"i","type":"play","ms_playd":40000}"#, "ms_playd"),
        ]
        for (bad, field) in cases {
            let e = at1(bad)
            #expect(e?.index == 1 && e?.field == field, "\(bad) -> \(String(describing: e))")
            #expect(e.map { $0.description.contains("event 1") && $0.description.contains(field) } == true)
        }
        // An element that is not an object.
        let notObject = at1("42")
        #expect(notObject?.index == 1 && notObject?.field == nil)
    }

    @Test func batchLevelErrors() {
        let ok = #"{"event_id":"e","user":"u","item":"i","type":"play"}"#
        let tooMany = decodeError("[\(ok),\(ok),\(ok)]", maxEvents: 2)
        #expect(tooMany?.field == "events" && tooMany?.index == 2)
        #expect(decodeError("[]")?.field == "events")
        #expect(decodeError(#"{"events": 3}"#)?.field == "events")
        #expect(decodeError("42")?.field == nil)
        for malformed in ["", "{", #"{"event_id":"e",}"#, "[\(ok)", "\(ok) x", #"{"a":1,"a":2}"#, "\"\u{01}\"", "[01]",
                          #"{"event_id":"e\q"}"#, String(repeating: "[", count: 100)] {
            let e = decodeError(malformed)
            #expect(e != nil && e?.field == nil && e?.index == nil && e!.message.contains("malformed JSON"), "\(malformed)")
        }
    }

    @Test func jsonRoundTripWithEscapes() throws {
        let e = UserEvent(eventID: "é\"\\/✓", user: "user 😀", item: "t", type: .playlistAdd, msPlayed: nil, timestamp: 12)
        let back = try UserEvent.decodeBatch(e.jsonBytes, now: 0)
        #expect(back == [e])
        let coded = try JSONDecoder().decode(UserEvent.self, from: JSONEncoder().encode(e))
        #expect(coded == e)
        let surrogate = try UserEvent.decodeBatch(Array(#"{"event_id":"\ud83d\ude00","user":"u","item":"i","type":"unlike"}"#.utf8), now: 0)
        #expect(surrogate[0].eventID == "😀")
    }

    @Test func mutatedBodiesDecodeOrFailCleanly() throws {
        let body = Array(#"[{"event_id":"e1","user":"ü1","item":"t1","type":"play","ms_played":31000,"timestamp":"2024-06-10T12:00:00Z"},{"event_id":"e2","user":"u2","item":"a\"1","type":"follow_artist","timestamp":null}]"#.utf8)
        #expect(try UserEvent.decodeBatch(body, now: 0).count == 2)
        // Every prefix of a valid body but the whole is malformed.
        for cut in 0..<body.count {
            #expect(throws: EventValidationError.self) { try UserEvent.decodeBatch(Array(body[..<cut]), now: 0) }
        }
        // Seeded random byte edits: never a crash; whatever decodes is valid.
        var rng = SplitMix64(seed: 99)
        var decoded = 0
        for _ in 0..<3000 {
            var b = body
            for _ in 0..<(1 + Int(rng.next() % 3)) {
                let at = Int(rng.next() % UInt64(b.count))
                switch rng.next() % 3 {
                case 0: b[at] = UInt8(truncatingIfNeeded: rng.next())
                case 1: b.remove(at: at)
                default:
                    let noise = Array(#"{}[]",:0\"#.utf8)
                    b.insert(noise[Int(rng.next() % UInt64(noise.count))], at: at)
                }
            }
            if let events = try? UserEvent.decodeBatch(b, now: 5) {
                decoded += 1
                for e in events { #expect(throws: Never.self) { try e.validate() } }
            }
        }
        #expect(decoded > 0)
    }

    @Test func crc32cKnownAnswer() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        #expect(CRC32C.checksum([UInt8]()) == 0)
        let long = (0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        // Slice-by-8 agrees with the bytewise tail loop split at any point.
        let whole = CRC32C.checksum(long)
        let split = long.withUnsafeBytes { b in
            CRC32C.checksum(UnsafeRawBufferPointer(rebasing: b[13...]), continuing: CRC32C.checksum(UnsafeRawBufferPointer(rebasing: b[..<13])))
        }
        #expect(whole == split)
    }

    @Test func fsyncPolicyParsing() throws {
        #expect(try FsyncPolicy(parsing: "always") == .always)
        #expect(try FsyncPolicy(parsing: " NEVER ") == .never)
        #expect(try FsyncPolicy(parsing: "interval:100") == .interval(milliseconds: 100))
        #expect(FsyncPolicy.interval(milliseconds: 5).description == "interval:5")
        for bad in ["", "sometimes", "interval:", "interval:0", "interval:-3", "interval:x", "interval:99999999"] {
            #expect(throws: EventLogError.self) { try FsyncPolicy(parsing: bad) }
        }
    }
}

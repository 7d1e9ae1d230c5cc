import Foundation

/// A small, strict JSON reader and writer for listening events (RFC 8259).
///
/// The reader keeps integers exact (`Int64`), rejects duplicate object keys, raw control characters in strings,
/// invalid UTF-8, nesting deeper than ``maxDepth`` and trailing garbage, and reports the byte offset of a syntax
/// error. Events are small, so values are materialized.
package enum EventJSON {
    /// A parsed JSON value.
    package indirect enum Value: Equatable {
        case null
        case bool(Bool)
        /// An integer literal that fits in `Int64`.
        case integer(Int64)
        /// Any other number (a fraction, an exponent, or an integer out of `Int64` range).
        case number(Double)
        case string(String)
        case array([Value])
        /// The members in document order.
        case object([(String, Value)])

        package static func == (a: Value, b: Value) -> Bool {
            switch (a, b) {
            case (.null, .null): return true
            case let (.bool(x), .bool(y)): return x == y
            case let (.integer(x), .integer(y)): return x == y
            case let (.number(x), .number(y)): return x == y
            case let (.string(x), .string(y)): return x == y
            case let (.array(x), .array(y)): return x == y
            case let (.object(x), .object(y)):
                return x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
            default: return false
            }
        }

        /// The JSON type name used in error messages.
        package var typeName: String {
            switch self {
            case .null: return "null"
            case .bool: return "a boolean"
            case .integer, .number: return "a number"
            case .string: return "a string"
            case .array: return "an array"
            case .object: return "an object"
            }
        }
    }

    /// A syntax error at a byte offset.
    package struct SyntaxError: Error, Equatable {
        package var offset: Int
        package var message: String
    }

    /// The deepest nesting accepted.
    static let maxDepth = 32

    /// Parses every top-level value of `bytes`: one value, or several separated by white space (JSON lines).
    package static func parseSequence(_ bytes: [UInt8]) throws(SyntaxError) -> [Value] {
        var p = Parser(bytes: bytes)
        var values: [Value] = []
        p.skipSpace()
        if p.i == bytes.count { throw SyntaxError(offset: 0, message: "the body is empty") }
        while p.i < bytes.count {
            values.append(try p.value(depth: 0))
            let end = p.i
            p.skipSpace()
            if p.i < bytes.count && p.i == end {
                throw SyntaxError(offset: p.i, message: "expected white space or the end of the input after a value")
            }
        }
        return values
    }

    /// Parses exactly one value.
    package static func parse(_ bytes: [UInt8]) throws(SyntaxError) -> Value {
        try parse(bytes[...])
    }

    /// Parses exactly one value from a slice (offsets in errors are relative to the slice start).
    package static func parse(_ bytes: ArraySlice<UInt8>) throws(SyntaxError) -> Value {
        var p = Parser(bytes: Array(bytes))
        p.skipSpace()
        let v = try p.value(depth: 0)
        p.skipSpace()
        if p.i != p.bytes.count { throw SyntaxError(offset: p.i, message: "unexpected data after the value") }
        return v
    }

    struct Parser {
        let bytes: [UInt8]
        var i = 0

        init(bytes: [UInt8]) { self.bytes = bytes }

        mutating func skipSpace() {
            while i < bytes.count {
                switch bytes[i] {
                case 0x20, 0x09, 0x0A, 0x0D: i += 1
                default: return
                }
            }
        }

        func error(_ message: String) -> SyntaxError { SyntaxError(offset: i, message: message) }

        mutating func value(depth: Int) throws(SyntaxError) -> Value {
            guard depth < EventJSON.maxDepth else { throw error("nesting deeper than \(EventJSON.maxDepth) levels") }
            guard i < bytes.count else { throw error("unexpected end of input, expected a value") }
            switch bytes[i] {
            case UInt8(ascii: "{"): return try object(depth: depth)
            case UInt8(ascii: "["): return try array(depth: depth)
            case UInt8(ascii: "\""): return .string(try string())
            case UInt8(ascii: "t"): try literal("true"); return .bool(true)
            case UInt8(ascii: "f"): try literal("false"); return .bool(false)
            case UInt8(ascii: "n"): try literal("null"); return .null
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try number()
            default: throw error("unexpected character \(Self.show(bytes[i])), expected a value")
            }
        }

        static func show(_ b: UInt8) -> String {
            b >= 0x20 && b < 0x7F ? "'\(Character(Unicode.Scalar(b)))'" : String(format: "0x%02X", b)
        }

        mutating func literal(_ word: String) throws(SyntaxError) {
            for b in word.utf8 {
                guard i < bytes.count, bytes[i] == b else { throw error("invalid literal, expected '\(word)'") }
                i += 1
            }
        }

        mutating func object(depth: Int) throws(SyntaxError) -> Value {
            i += 1
            var members: [(String, Value)] = []
            var seen = Set<String>()
            skipSpace()
            if i < bytes.count && bytes[i] == UInt8(ascii: "}") { i += 1; return .object(members) }
            while true {
                skipSpace()
                guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") else { throw error("expected a member name in quotes") }
                let keyOffset = i
                let key = try string()
                guard seen.insert(key).inserted else {
                    throw SyntaxError(offset: keyOffset, message: "duplicate member \"\(key)\"")
                }
                skipSpace()
                guard i < bytes.count, bytes[i] == UInt8(ascii: ":") else { throw error("expected ':' after a member name") }
                i += 1
                skipSpace()
                members.append((key, try value(depth: depth + 1)))
                skipSpace()
                guard i < bytes.count else { throw error("unexpected end of input inside an object") }
                if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
                if bytes[i] == UInt8(ascii: "}") { i += 1; return .object(members) }
                throw error("expected ',' or '}' in an object")
            }
        }

        mutating func array(depth: Int) throws(SyntaxError) -> Value {
            i += 1
            var elements: [Value] = []
            skipSpace()
            if i < bytes.count && bytes[i] == UInt8(ascii: "]") { i += 1; return .array(elements) }
            while true {
                skipSpace()
                elements.append(try value(depth: depth + 1))
                skipSpace()
                guard i < bytes.count else { throw error("unexpected end of input inside an array") }
                if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
                if bytes[i] == UInt8(ascii: "]") { i += 1; return .array(elements) }
                throw error("expected ',' or ']' in an array")
            }
        }

        mutating func hex4() throws(SyntaxError) -> UInt32 {
            guard i + 4 <= bytes.count else { throw error("truncated \\u escape") }
            var v: UInt32 = 0
            for _ in 0..<4 {
                let b = bytes[i]
                let d: UInt32
                switch b {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): d = UInt32(b - 0x30)
                case UInt8(ascii: "a")...UInt8(ascii: "f"): d = UInt32(b - 0x61 + 10)
                case UInt8(ascii: "A")...UInt8(ascii: "F"): d = UInt32(b - 0x41 + 10)
                default: throw error("invalid hexadecimal digit in a \\u escape")
                }
                v = v << 4 | d
                i += 1
            }
            return v
        }

        mutating func string() throws(SyntaxError) -> String {
            let start = i
            i += 1
            var out: [UInt8] = []
            var plainStart = i
            while true {
                guard i < bytes.count else {
                    throw SyntaxError(offset: start, message: "unterminated string")
                }
                let b = bytes[i]
                if b == UInt8(ascii: "\"") {
                    out.append(contentsOf: bytes[plainStart..<i])
                    i += 1
                    break
                }
                if b < 0x20 { throw error("raw control character \(Self.show(b)) in a string (escape it)") }
                if b != UInt8(ascii: "\\") { i += 1; continue }
                out.append(contentsOf: bytes[plainStart..<i])
                i += 1
                guard i < bytes.count else { throw SyntaxError(offset: start, message: "unterminated string") }
                let e = bytes[i]
                i += 1
                switch e {
                case UInt8(ascii: "\""): out.append(0x22)
                case UInt8(ascii: "\\"): out.append(0x5C)
                case UInt8(ascii: "/"): out.append(0x2F)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try hex4()
                    if (0xD800...0xDBFF).contains(scalar) {
                        guard i + 1 < bytes.count, bytes[i] == UInt8(ascii: "\\"), bytes[i + 1] == UInt8(ascii: "u")
                        else { throw error("unpaired surrogate in a \\u escape") }
                        i += 2
                        let low = try hex4()
                        guard (0xDC00...0xDFFF).contains(low) else { throw error("unpaired surrogate in a \\u escape") }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else if (0xDC00...0xDFFF).contains(scalar) {
                        throw error("unpaired surrogate in a \\u escape")
                    }
                    guard let u = Unicode.Scalar(scalar) else { throw error("invalid \\u escape") }
                    out.append(contentsOf: Array(String(Character(u)).utf8))
                default:
                    i -= 1
                    throw error("invalid escape \\\(Self.show(e))")
                }
                plainStart = i
            }
            guard let s = String(bytes: out, encoding: .utf8) else {
                throw SyntaxError(offset: start, message: "a string is not valid UTF-8")
            }
            return s
        }

        mutating func number() throws(SyntaxError) -> Value {
            let start = i
            if bytes[i] == UInt8(ascii: "-") { i += 1 }
            func isDigit(_ k: Int) -> Bool { k < bytes.count && bytes[k] >= 0x30 && bytes[k] <= 0x39 }
            guard isDigit(i) else { throw error("expected a digit") }
            if bytes[i] == UInt8(ascii: "0") {
                i += 1
                if isDigit(i) { throw error("leading zeros are not allowed in a number") }
            } else {
                while isDigit(i) { i += 1 }
            }
            var integral = true
            if i < bytes.count && bytes[i] == UInt8(ascii: ".") {
                integral = false
                i += 1
                guard isDigit(i) else { throw error("expected a digit after '.'") }
                while isDigit(i) { i += 1 }
            }
            if i < bytes.count && (bytes[i] == UInt8(ascii: "e") || bytes[i] == UInt8(ascii: "E")) {
                integral = false
                i += 1
                if i < bytes.count && (bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-")) { i += 1 }
                guard isDigit(i) else { throw error("expected a digit in the exponent") }
                while isDigit(i) { i += 1 }
            }
            let text = String(decoding: bytes[start..<i], as: UTF8.self)
            if integral, let v = Int64(text) { return .integer(v) }
            guard let d = Double(text) else { throw SyntaxError(offset: start, message: "invalid number") }
            return .number(d)
        }
    }

    // MARK: Writing

    /// Appends `s` as a JSON string literal (quotes included) to `out`.
    package static func appendString(_ s: String, to out: inout [UInt8]) {
        out.append(0x22)
        for b in s.utf8 {
            switch b {
            case 0x22: out.append(0x5C); out.append(0x22)
            case 0x5C: out.append(0x5C); out.append(0x5C)
            case 0x0A: out.append(0x5C); out.append(UInt8(ascii: "n"))
            case 0x0D: out.append(0x5C); out.append(UInt8(ascii: "r"))
            case 0x09: out.append(0x5C); out.append(UInt8(ascii: "t"))
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                out.append(contentsOf: Array("\\u00".utf8))
                out.append(hex[Int(b >> 4)])
                out.append(hex[Int(b & 15)])
            default: out.append(b)
            }
        }
        out.append(0x22)
    }
}

import Foundation
import Hummingbird
import EncoreServing

/// An error answered as JSON: `{"error": {"code": ..., "message": ..., "field": ..., "index": ...}}`.
public struct APIError: HTTPResponseError, Sendable {
    /// The HTTP status.
    public var status: HTTPResponse.Status
    /// A stable machine-readable code (`invalid_event`, `unauthorized`, `body_too_large`, ...).
    public var code: String
    /// A human-readable message.
    public var message: String
    /// The request field at fault, when one is.
    public var field: String?
    /// The position of the faulty event in a batch, when one is.
    public var index: Int?
    /// Extra response headers (`Retry-After`, `WWW-Authenticate`).
    public var headers: HTTPFields

    /// An error.
    public init(_ status: HTTPResponse.Status, code: String, message: String, field: String? = nil, index: Int? = nil,
                headers: HTTPFields = [:]) {
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.index = index
        self.headers = headers
    }

    struct Body: Encodable {
        struct Inner: Encodable {
            var code: String
            var message: String
            var field: String?
            var index: Int?
        }
        var error: Inner
    }

    /// The JSON body.
    public var jsonBody: [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data = (try? encoder.encode(Body(error: .init(code: code, message: message, field: field, index: index))))
            ?? Data(#"{"error":{"code":"internal","message":"error encoding failed"}}"#.utf8)
        return [UInt8](data)
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var fields = headers
        fields[.contentType] = "application/json; charset=utf-8"
        return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: jsonBody)))
    }

    /// The API error of an engine error.
    static func from(_ e: ServingError) -> APIError {
        switch e {
        case .unknownItem(let id): return APIError(.notFound, code: "unknown_item", message: "unknown item '\(id)'", field: "item")
        case .invalidParameter(let name, let message):
            return APIError(.badRequest, code: "invalid_parameter", message: message, field: name)
        case .eventLog(let m): return APIError(.serviceUnavailable, code: "event_log", message: m)
        case .bundle(let b): return APIError(.internalServerError, code: "bundle", message: b.description)
        case .validation(let v): return APIError(.internalServerError, code: "bundle", message: v.description)
        case .invalidTrack(let t):
            return APIError(.badRequest, code: "invalid_track", message: t.description, field: t.field, index: t.index)
        case .notInSpace: return APIError(.unprocessableContent, code: "not_in_space", message: e.description, field: "space")
        case .noFeatures: return APIError(.notFound, code: "no_features", message: e.description, field: "item")
        case .model(let m): return APIError(.internalServerError, code: "model", message: m)
        }
    }
}

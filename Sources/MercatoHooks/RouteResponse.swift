public import Foundation

/// What a plugin route answers: JSON, or a file download (CSV export, ...).
public enum RouteResponse: Sendable, Equatable {
    /// A JSON body with `status` (200 unless told).
    case json(JSONValue, status: Int = 200)
    /// A download: the bytes, their media type, and the file name the browser saves them as.
    case file(Data, contentType: String, filename: String)
}

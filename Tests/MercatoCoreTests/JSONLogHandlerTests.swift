import Foundation
import Logging
@testable import MercatoCore
import MercatoHooks
import Synchronization
import Testing

/// The server's log line: one JSON object, keys sorted, secrets redacted whoever passes them.
@Suite("The JSON log line")
struct JSONLogHandlerTests {
    final class Lines: Sendable {
        let all = Mutex<[String]>([])
    }

    func logger(_ lines: Lines, metadata: Logger.Metadata = [:]) -> Logger {
        var logger = Logger(label: "mercato.test") { label in
            JSONLogHandler(label: label, level: .debug) { line in lines.all.withLock { $0.append(line) } }
        }
        for (key, value) in metadata { logger[metadataKey: key] = value }
        return logger
    }

    func object(_ line: String) throws -> [String: Any] {
        try #require(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
    }

    /// The log line's `ts`, and every time the API, events and plugins write (`PluginSupport.timestamp`).
    @Test func theTimestampIsRFC3339WithMillisecondsInUTC() throws {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        formatter.timeZone = TimeZone(identifier: "UTC")
        // Whole milliseconds (a binary fraction rounds differently in the formatter), across a
        // leap day, the turn of a year and a year's first millisecond.
        var times: [Double] = [0, 951_782_400_000, 1_703_980_799_999, 1_704_067_200_000, 1_796_000_000_123]
        var random = SystemRandomNumberGenerator()
        for _ in 0..<500 { times.append(Double(Int64.random(in: 0...4_102_444_800_000, using: &random))) }
        for millis in times {
            let date = Date(timeIntervalSince1970: millis / 1000 + 0.0001)
            #expect(PluginSupport.timestamp(date) == formatter.string(from: date), "at \(millis) ms")
        }
        #expect(PluginSupport.timestamp(Date(timeIntervalSince1970: 1_796_000_000.5)) == "2026-11-30T00:53:20.500Z")
        // The same text as Foundation's format style, which the API's times were written with
        // before (any fraction of a second, not only whole milliseconds).
        for _ in 0..<500 {
            let date = Date(timeIntervalSince1970: Double.random(in: 0...4_102_444_800, using: &random))
            #expect(PluginSupport.timestamp(date) == date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true)), "at \(date.timeIntervalSince1970)")
        }
    }

    /// Sortable ids (`inb_`, plugins' keys) are written as before: the milliseconds and the
    /// randomness (or a suffix) in base 36, zero-padded to 9 and 13 characters, so they sort by time.
    @Test func sortableIDsKeepTheirFormAndOrder() throws {
        func before(_ prefix: String, _ millis: UInt64, _ tail: String) -> String {
            let m = String(millis, radix: 36)
            return prefix + "_" + String(repeating: "0", count: max(0, 9 - m.count)) + m + String(repeating: "0", count: max(0, 13 - tail.count)) + tail
        }
        var random = SystemRandomNumberGenerator()
        var previous = ""
        let times = ([UInt64(0), 1, 35, 36, 1_796_000_000_123, 101_559_956_668_415]
            + (0..<300).map({ _ in UInt64.random(in: 0...4_102_444_800_000, using: &random) })).sorted()
        for millis in times {
            let date = Date(timeIntervalSince1970: Double(millis) / 1000 + 0.0001)
            let suffix = String(UInt64.random(in: 0...UInt64.max, using: &random), radix: 36)
            #expect(PluginSupport.sortableID("inb", at: date, suffix: suffix) == before("inb", millis, suffix))
            #expect(PluginSupport.sortableID("x", at: date, suffix: "7") == before("x", millis, "7"))
            let made = PluginSupport.sortableID("inb", at: date)
            #expect(made.count == 26, "\(made)")
            #expect(made.dropFirst(4).allSatisfy { $0.isNumber || ("a"..."z").contains($0) }, "\(made)")
            #expect(made.prefix(13) == before("inb", millis, "").prefix(13))
            #expect(made.prefix(13) >= previous.prefix(13), "\(made) after \(previous)")
            previous = made
        }
    }

    /// Header values lose the spaces and tabs around them as Foundation's trimming of
    /// `.whitespaces` took them, and nothing else.
    @Test func blanksAroundAHeaderValueAreTrimmedAsFoundationTrimsThem() {
        for text in ["", " ", "\t \t", "abc", "  abc", "abc \t", " \ta b\tc  ", "a", "é ü ", " 1796000000 ", "\n1\n", "\u{00A0}x"] {
            let foundation = text.trimmingCharacters(in: CharacterSet(charactersIn: " \t"))
            #expect(String(PluginSupport.trimmingBlanks(text)) == foundation, "\(text.debugDescription)")
            #expect(String(PluginSupport.trimmingBlanks(Substring(text))) == foundation)
        }
    }

    @Test func aLineIsOneSortedObjectWithEverySecretKeyRedacted() throws {
        let lines = Lines()
        let log = logger(lines, metadata: ["request_id": "req_1", "api_token": "mt_live_abc"])
        log.info("served \"x\"\n", metadata: ["status": "200", "Authorization": "Bearer abc", "request_id": "req_2",
                                            "nested": .dictionary(["client_secret": "s3cr3t", "n": .array(["1", "2"])]),
                                            "msg": "overridden?"])
        let line = try #require(lines.all.withLock { $0.first })
        #expect(!line.contains("mt_live_abc") && !line.contains("Bearer abc") && !line.contains("s3cr3t"))
        #expect(!line.contains("\n"))
        let fields = try object(line)
        #expect(fields["msg"] as? String == "served \"x\"\n")
        #expect(fields["level"] as? String == "info")
        #expect(fields["label"] as? String == "mercato.test")
        #expect(fields["request_id"] as? String == "req_2")
        #expect(fields["status"] as? String == "200")
        #expect(fields["api_token"] as? String == "[redacted]")
        #expect(fields["Authorization"] as? String == "[redacted]")
        #expect((fields["nested"] as? [String: Any])?["client_secret"] as? String == "[redacted]")
        #expect((fields["nested"] as? [String: Any])?["n"] as? [String] == ["1", "2"])
        // Without the handler's own metadata the event's is written as it is.
        let plain = Lines()
        logger(plain).warning("w", metadata: ["password": "hunter2", "path": "/x"])
        // Keys sorted; `/` not escaped.
        let line2 = try #require(plain.all.withLock { $0.first })
        #expect(line2.wholeMatch(of: /\{"label":"mercato\.test","level":"warning","msg":"w","password":"\[redacted\]","path":"\/x","ts":"[0-9T:.\-]{23}Z"\}/) != nil,
                "\(line2)")
        // The keys checked without the remembered answers are ones the words would pass.
        for key in JSONLogHandler.plainKeys { #expect(!JSONLogHandler.isSecret(key), "\(key)") }
        // A line of only those keys plus one secret key still redacts it.
        let mixed = Lines()
        logger(mixed).info("request", metadata: ["method": "POST", "route": "/r", "status": "200", "session_cookie": "c00kie"])
        let line3 = try #require(mixed.all.withLock { $0.first })
        #expect(try object(line3)["session_cookie"] as? String == "[redacted]" && !line3.contains("c00kie"))
    }

    /// The request line's own writer writes what the generic path writes, byte for byte (but
    /// the time), and leaves the line to it when the handler has metadata of its own.
    @Test func theRequestLineIsTheGenericLine() throws {
        func handler(_ lines: Lines, level: Logger.Level = .debug) -> JSONLogHandler {
            JSONLogHandler(label: "mercato.test", level: level) { line in lines.all.withLock { $0.append(line) } }
        }
        func withoutTime(_ line: String) -> String { line.replacing(/"ts":"[^"]*"/, with: "\"ts\":\"\"") }
        let cases = [
            JSONLogHandler.RequestLine(method: "POST", route: "/api/v1/apps/commands", status: 200, durationMilliseconds: 0.397, requestID: "req_01abc"),
            JSONLogHandler.RequestLine(method: "GET", route: "unmatched", status: 404, durationMilliseconds: 12, requestID: "client.id:1-2_3"),
            JSONLogHandler.RequestLine(method: "PATCH", route: "/x/\"é\"\\{id}\u{1}", status: 413, durationMilliseconds: 1234.567, requestID: "r"),
        ]
        for line in cases {
            let fast = Lines(), generic = Lines()
            #expect(handler(fast).logRequest(line))
            Logger(label: "mercato.test") { _ in handler(generic) }.info("request", metadata: line.metadata)
            let a = try #require(fast.all.withLock { $0.first }), b = try #require(generic.all.withLock { $0.first })
            #expect(withoutTime(a) == withoutTime(b))
            #expect(a.wholeMatch(of: /.*"ts":"[0-9T:.\-]{23}Z"\}/) != nil, "\(a)")
        }
        // Below the handler's level: nothing written, nothing left to write.
        let quiet = Lines()
        #expect(handler(quiet, level: .warning).logRequest(cases[0]))
        #expect(quiet.all.withLock { $0.isEmpty })
        // With metadata of its own the handler leaves the line to the generic path.
        var tagged = handler(Lines())
        tagged[metadataKey: "node"] = "a"
        #expect(!tagged.logRequest(cases[0]))
    }

    /// A line reaches the file whole with its newline, also when the pipe takes it in several
    /// writes; a write that fails drops the line without stopping the process.
    @Test func linesAreWrittenWholeWithTheirNewline() throws {
        var fds: [Int32] = [0, 0]
        try #require(pipe(&fds) == 0)
        // A line larger than a pipe's buffer (64 KiB) is written in parts while it is read.
        let long = String(repeating: "x", count: 200_000) + "é"
        let readEnd = fds[0]
        let reader = Thread {
            var got: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 65_536)
            while true {
                let n = read(readEnd, &buffer, buffer.count)
                if n <= 0 { break }
                got += buffer[..<n]
            }
            Self.received.withLock { $0 = got }
        }
        reader.start()
        for line in ["{\"a\":1}", "", long] {
            var line = line
            line.withUTF8 { JSONLogHandler.writeLine($0, to: fds[1]) }
        }
        close(fds[1])
        while Self.received.withLock({ $0 == nil }) { usleep(1_000) }
        close(fds[0])
        #expect(Self.received.withLock { $0 } == Array("{\"a\":1}\n\n\(long)\n".utf8))
        // Written where it cannot be (no such descriptor: EBADF): the line is dropped, nothing else happens.
        var text = "lost"
        text.withUTF8 { JSONLogHandler.writeLine($0, to: -1) }
    }

    static let received = Mutex<[UInt8]?>(nil)
}

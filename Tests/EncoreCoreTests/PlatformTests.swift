import Dispatch
import Foundation
import Testing
@testable import EncoreCore
import EncoreTestSupport

/// The platform layer: the lock, errno text, the atomic write and the memory map.
@Suite struct PlatformTests {
    @Test func lockedCountsEveryIncrementFromManyThreads() {
        let counter = Locked(0)
        let threads = 16, increments = 10_000
        DispatchQueue.concurrentPerform(iterations: threads) { _ in
            for _ in 0..<increments { counter.withLock { $0 += 1 } }
        }
        #expect(counter.value == threads * increments)
    }

    @Test func lockedReturnsTheClosureValueAndRethrowsTypedErrors() {
        let names = Locked(["a"])
        let count = names.withLock { names -> Int in
            names.append("b")
            return names.count
        }
        #expect(count == 2)
        #expect(throws: FileError(path: "p", operation: "read", reason: "no")) {
            try names.withLock { (_: inout [String]) throws(FileError) in
                throw FileError(path: "p", operation: "read", reason: "no")
            }
        }
        #expect(names.value == ["a", "b"])
    }

    @Test func errnoTextIsTheSystemText() {
        #expect(FileError.errnoText(2).contains("No such file"))
        #expect(FileError.errnoText(2).hasSuffix("(errno 2)"))
        let error = FileError(path: "/x", operation: "open the file", errno: 2)
        #expect(error.code == 2)
        #expect(error.description.hasPrefix("/x: cannot open the file: No such file"))
    }

    @Test func atomicWriteReplacesTheFile() throws {
        let dir = makeTemporaryDirectory("platform")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/out.bin"
        try AtomicFile.write([1, 2, 3], to: path, as: FileError.self)
        #expect(FileManager.default.contents(atPath: path) == Data([1, 2, 3]))
        let bytes = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 * 7) }
        try AtomicFile.write(bytes, to: path, as: FileError.self)
        #expect(FileManager.default.contents(atPath: path) == Data(bytes))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["out.bin"])
    }

    @Test func atomicWriteIntoAMissingDirectoryNamesThePathAndLeavesNothing() throws {
        let dir = makeTemporaryDirectory("platform")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/missing/out.bin"
        let error = #expect(throws: FileError.self) { try AtomicFile.write([1], to: path, as: FileError.self) }
        #expect(error?.path == path)
        #expect(error?.description.contains(path) == true)
        #expect(error?.description.contains("does not exist") == true)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).isEmpty)
    }

    @Test func atomicWriteRemovesTheTemporaryFileWhenTheBodyFails() throws {
        let dir = makeTemporaryDirectory("platform")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/out.bin"
        try AtomicFile.write([9], to: path, as: FileError.self)
        let failure = FileError(path: path, operation: "encode", reason: "test failure")
        #expect(throws: failure) {
            try AtomicFile.write(to: path, as: FileError.self) { (out) throws(FileError) in
                try out.write([1, 2], as: FileError.self)
                throw failure
            }
        }
        #expect(FileManager.default.contents(atPath: path) == Data([9]))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["out.bin"])
    }

    @Test func atomicWriteOverADirectoryFailsAndLeavesNoTemporaryFile() throws {
        let dir = makeTemporaryDirectory("platform")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/taken"
        try FileManager.default.createDirectory(atPath: path + "/inside", withIntermediateDirectories: true)
        let error = #expect(throws: FileError.self) { try AtomicFile.write([1], to: path, as: FileError.self) }
        #expect(error?.description.hasPrefix(path + ": cannot rename") == true)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["taken"])
    }

    @Test func mappedFileHoldsTheFileBytes() throws {
        let dir = makeTemporaryDirectory("platform")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/data.bin"
        let bytes = (0..<70_000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 5) }
        #expect(FileManager.default.createFile(atPath: path, contents: Data(bytes)))
        let file = try MappedFile(path: path, access: .sequential)
        #expect(file.path == path)
        #expect(file.bytes.count == bytes.count)
        #expect(Array(file.bytes) == bytes)
    }

    @Test func mappedFileOfAnEmptyFileIsEmpty() throws {
        let dir = makeTemporaryDirectory("platform")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/empty"
        #expect(FileManager.default.createFile(atPath: path, contents: Data()))
        let file = try MappedFile(path: path)
        #expect(file.bytes.isEmpty)
    }

    @Test func mappedFileErrorsNameThePath() throws {
        let dir = makeTemporaryDirectory("platform")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let missing = dir + "/none.bin"
        let error = #expect(throws: FileError.self) { _ = try MappedFile(path: missing) }
        #expect(error?.path == missing)
        #expect(error?.code == ENOENT)
        #expect(error?.description.hasPrefix(missing + ":") == true)
        #expect(error?.description.lowercased().contains("no such file") == true)
        let directory = #expect(throws: FileError.self) { _ = try MappedFile(path: dir) }
        #expect(directory?.description.contains("not a regular file") == true)
    }
}

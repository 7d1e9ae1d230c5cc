import Foundation

/// The Python interpreter tests use to read Encore's HDF5 files with h5py.
public enum TestPython {
    /// `ENCORE_PYTHON`, else `python3` on the PATH.
    public static let interpreter = ProcessInfo.processInfo.environment["ENCORE_PYTHON"] ?? "python3"
    /// Set by CI: a missing h5py is then a failure instead of a skip.
    public static let h5pyRequired = ProcessInfo.processInfo.environment["ENCORE_REQUIRE_H5PY"] == "1"
    /// Whether the interpreter can import h5py and numpy.
    public static let hasH5py: Bool = (try? run(["-c", "import h5py, numpy"]).status) == 0
    /// Whether an h5py check should run: h5py is there, or CI requires it (and ``h5pyMissing`` fails the test).
    public static var shouldRun: Bool { h5pyRequired || hasH5py }
    /// The failure to record when h5py is required but cannot be imported, else `nil`.
    public static var h5pyMissing: String? {
        hasH5py ? nil : "ENCORE_REQUIRE_H5PY=1 but '\(interpreter)' cannot import h5py and numpy "
            + "(pip install h5py numpy, or point ENCORE_PYTHON at an interpreter that can)"
    }

    /// Runs the interpreter with `arguments`; returns the exit status and the combined output.
    public static func run(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [interpreter] + arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}

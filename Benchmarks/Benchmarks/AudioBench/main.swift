// The Swift side of Benchmarks/compare_audio.py.
//
//   AudioBench numerics OUT FILE...   decode each file and write OUT/<i>.{samples,logmel,mfcc,chroma}.npy
//   AudioBench time REPEATS FILE...   per-stage wall and CPU seconds over all files (medians of REPEATS runs), as JSON
//   AudioBench rtf THREADS FILE...    decode + log-mel + MFCC of all files on THREADS threads, as JSON
import Foundation
import RecCore

func seconds(_ body: () throws -> Void) rethrows -> Double {
    try measured(body).wall
}

/// Wall seconds and the process's CPU seconds of `body` (on a shared machine the CPU time is the steadier figure).
func measured(_ body: () throws -> Void) rethrows -> (wall: Double, cpu: Double) {
    func cpuNow() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
    }
    let start = DispatchTime.now().uptimeNanoseconds, cpuStart = cpuNow()
    try body()
    return (Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9, cpuNow() - cpuStart)
}

func median(_ xs: [Double]) -> Double { let s = xs.sorted(); return s[s.count / 2] }

/// The spectrogram stage: STFT, mel, dB, MFCC of decoded samples.
func spectrogramStage(_ y: [Float], mel: MelSpectrogram, mfcc: MFCC) throws -> (Matrix, Matrix) {
    let logMel = mel.logMel(y)
    return (logMel, try mfcc(logMel))
}

let args = CommandLine.arguments
guard args.count >= 4 else {
    FileHandle.standardError.write(Data("usage: AudioBench numerics OUT FILE... | time REPEATS FILE... | rtf THREADS FILE...\n".utf8))
    exit(2)
}
BLAS.setThreads(1)
let mel = try MelSpectrogram(sampleRate: 22_050)
let mfcc = try MFCC()
let chroma = try Chroma(sampleRate: 22_050)
let files = Array(args[3...])

switch args[1] {
case "numerics":
    let out = args[2]
    for (i, file) in files.enumerated() {
        let y = try AudioDecoder.decode(path: file)
        let (logMel, coefficients) = try spectrogramStage(y, mel: mel, mfcc: mfcc)
        let c = try chroma(mel.stft.powerSpectrogram(y))
        try NumPyArray.write(try Matrix(rows: 1, cols: y.count, storage: y), to: "\(out)/\(i).samples.npy", oneDimensional: true)
        try NumPyArray.write(logMel, to: "\(out)/\(i).logmel.npy")
        try NumPyArray.write(coefficients, to: "\(out)/\(i).mfcc.npy")
        try NumPyArray.write(c, to: "\(out)/\(i).chroma.npy")
    }
case "time":
    let repeats = Int(args[2]) ?? 3
    var decode: [(wall: Double, cpu: Double)] = [], spectral = decode, pipeline = decode
    for _ in 0..<repeats {
        var decoded: [[Float]] = []
        decode.append(try measured { for f in files { decoded.append(try AudioDecoder.decode(path: f)) } })
        spectral.append(try measured { for y in decoded { _ = try spectrogramStage(y, mel: mel, mfcc: mfcc) } })
        pipeline.append(try measured {
            for f in files { _ = try spectrogramStage(try AudioDecoder.decode(path: f), mel: mel, mfcc: mfcc) }
        })
    }
    let fields = [("decode", decode), ("spectral", spectral), ("pipeline", pipeline)].flatMap { name, runs in
        ["\"\(name)_s\": \(median(runs.map(\.wall)))", "\"\(name)_cpu_s\": \(median(runs.map(\.cpu)))"]
    }
    print("{" + fields.joined(separator: ", ") + "}")
case "rtf":
    let threads = Int(args[2]) ?? 1
    let audio = Locked(0.0)
    let wall = seconds {
        Parallel.forEach(files.count, threads: threads) { i in
            guard let y = try? AudioDecoder.decode(path: files[i]), (try? spectrogramStage(y, mel: mel, mfcc: mfcc)) != nil
            else { return }
            audio.withLock { $0 += Double(y.count) / 22_050 }
        }
    }
    let total = audio.withLock { $0 }
    print("{\"threads\": \(threads), \"audio_s\": \(total), \"wall_s\": \(wall), \"rtf\": \(total / wall)}")
default:
    FileHandle.standardError.write(Data("unknown mode \(args[1])\n".utf8))
    exit(2)
}

import ArgumentParser
import Foundation
import RecCore

/// `encore-train audio-model-bench` (hidden): the Encore side of Benchmarks/compare_audio_model.py. A fresh model of
/// the given shape runs on one fixed batch: its weights, outputs, loss gradients and the weights after one AdamW step
/// are written for comparison with a peer, then training steps (forward, loss, backward, AdamW) and evaluation-mode
/// forward passes on the same batch are timed.
struct AudioModelBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audio-model-bench",
        abstract: "Run and time the audio CNN on one fixed batch (for Benchmarks/compare_audio_model.py).",
        discussion: """
            The batch file holds /input [rows, frames, bands] and optionally /targets [rows, factors] (a CF head of \
            that width is added). Rows i and i + rows/2 are the two views of NT-Xent; the loss is NT-Xent plus the \
            cosine CF loss. Writes the fresh model to --model-output and the outputs, gradients and timings to \
            --output.
            """,
        shouldDisplay: false)

    @Option(help: "The batch file (/input, optional /targets).")
    var batch: String

    @Option(help: "Where to write the outputs, gradients and timings (.h5).")
    var output: String

    @Option(help: "Where to write the freshly initialized model (.h5, the model file format).")
    var modelOutput: String

    @OptionGroup var network: AudioNetworkOptions

    @Option(help: "Seed of the initial weights.")
    var seed: UInt64 = 42

    @Option(help: "OpenBLAS threads.")
    var threads: Int = 2

    @Option(help: "NT-Xent temperature.")
    var temperature: Float = 0.5

    @Option(help: "Learning rate of the AdamW steps.")
    var learningRate: Float = 1e-3

    @Option(help: "Timed training steps (after one untimed).")
    var trainSteps: Int = 10

    @Option(help: "Timed evaluation-mode forward passes (after one untimed).")
    var inferenceSteps: Int = 10

    func run() throws {
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
        let (input, targets) = try AudioModelBenchFiles.readBatch(from: batch)
        guard input.shape[0] >= 2, input.shape[0] % 2 == 0 else {
            throw ValidationError("\(batch): /input needs an even number of rows (two views per example), found \(input.shape[0])")
        }
        var config = AudioModelConfiguration()
        config.bands = input.shape[2]
        try network.apply(to: &config)
        config.cfFactors = targets?.shape[1] ?? 0
        config.seed = seed
        let model = try AudioEmbeddingModel(configuration: config)
        BLAS.setThreads(threads)
        try AudioModelFiles.write(
            AudioModelSnapshot(configuration: config, objective: targets == nil ? .contrastive : .both,
                               cropFrames: input.shape[1], framesPerSecond: 22_050.0 / 512, temperature: temperature,
                               featureMean: model.featureMean, featureStd: model.featureStd, weights: model.weights(),
                               history: []),
            to: modelOutput)
        let named = model.namedParameters
        let optimizer = AdamW(parameterSizes: named.map { $0.1.value.count })

        /// The loss of a training-mode output (NT-Xent, plus the cosine CF loss with targets), its gradients left in
        /// the parameters.
        func lossAndBackward(_ out: AudioModelOutput) -> Double {
            let contrastive = Losses.ntXent(embeddings: out.embeddings, temperature: temperature)
            var value = contrastive.value
            var cfGrad: Tensor? = nil
            if let targets, let cf = out.cf {
                let r = Losses.cosine(prediction: cf, targets: targets.data,
                                      hasTarget: [Bool](repeating: true, count: cf.shape[0]))
                value += r.value
                cfGrad = r.gradient
            }
            model.zeroGrad()
            model.backward(embeddingGrad: contrastive.gradient, cfGrad: cfGrad)
            return value
        }

        func step() throws -> Double {
            let value = lossAndBackward(try model.forward(input, training: true))
            optimizer.update(named.map(\.1), learningRate: learningRate)
            return value
        }

        var arrays: [(path: String, values: [Float], shape: [Int])] = []
        // One step by hand, to record its intermediate values.
        let out = try model.forward(input, training: true)
        arrays.append(("/train/embeddings", out.embeddings.data, out.embeddings.shape))
        if let cf = out.cf { arrays.append(("/train/cf", cf.data, cf.shape)) }
        arrays.append(("/train/loss", [Float(lossAndBackward(out))], [1]))
        for (name, p) in named { arrays.append(("/grads/\(name)", p.grad, p.shape)) }
        for (name, p) in model.namedBuffers { arrays.append(("/buffers/\(name)", p.value, p.shape)) }
        optimizer.update(named.map(\.1), learningRate: learningRate)
        for (name, p) in named { arrays.append(("/step/\(name)", p.value, p.shape)) }
        let evaluation = try model.forward(input, training: false)
        arrays.append(("/eval/embeddings", evaluation.embeddings.data, evaluation.embeddings.shape))
        if let cf = evaluation.cf { arrays.append(("/eval/cf", cf.data, cf.shape)) }

        var trainSeconds: [Float] = []
        for _ in 0..<trainSteps {
            let started = DispatchTime.now().uptimeNanoseconds
            _ = try step()
            trainSeconds.append(Float(Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9))
        }
        _ = try model.forward(input, training: false)
        var inferenceSeconds: [Float] = []
        for _ in 0..<inferenceSteps {
            let started = DispatchTime.now().uptimeNanoseconds
            _ = try model.forward(input, training: false)
            inferenceSeconds.append(Float(Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9))
        }
        arrays.append(("/timing/train_seconds", trainSeconds, [trainSeconds.count]))
        arrays.append(("/timing/inference_seconds", inferenceSeconds, [inferenceSeconds.count]))
        try AudioModelBenchFiles.writeArrays(arrays, to: output)
        func median(_ v: [Float]) -> Double { v.isEmpty ? .nan : Double(v.sorted()[v.count / 2]) }
        let rows = Double(input.shape[0])
        print(String(format: "audio-model-bench: %d rows x %d frames, %d parameters; train %.1f samples/s, inference %.1f samples/s (medians)",
                     input.shape[0], input.shape[1], model.parameterCount, rows / median(trainSeconds),
                     rows / median(inferenceSeconds)))
    }
}

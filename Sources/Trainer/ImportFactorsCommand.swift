import ArgumentParser
import Foundation
import RecCore

/// `encore-train import-factors`: a bundle from factors trained elsewhere.
struct ImportFactorsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import-factors",
        abstract: "Build a bundle from factors trained elsewhere: the Spark job's .npy shards, or implicit's saved .npz model.",
        discussion: """
            --users and --items each take a directory of .npy shards with an .ids file beside each (what the Spark \
            job writes), a .npy file (ids from --user-ids/--item-ids or the .ids file beside it), or implicit's \
            saved model (.npz: user_factors and item_factors; ids from the id files, else the row numbers). The \
            bundle holds the factors unchanged; with --interactions it also holds the weighted training matrix, so \
            served recommendations leave out played tracks and new plays are folded in as training weighted them.
            """)

    @Option(help: "The user factors: a directory of .npy shards, a .npy file or an implicit .npz model.")
    var users: String

    @Option(help: "The item factors: a directory of .npy shards, a .npy file or an implicit .npz model.")
    var items: String

    @Option(help: "Where to write the bundle (.h5).")
    var output: String

    @Option(help: "User ids, one a line, in the order of the user factors' rows.")
    var userIds: String?

    @Option(help: "Item ids, one a line, in the order of the item factors' rows.")
    var itemIds: String?

    @Option(help: "The fold-in's L2 regularization (default: the .npz model's, else 0.01).")
    var regularization: Float?

    @Option(help: "The fold-in's confidence scale (default: the .npz model's, else 1).")
    var alpha: Float?

    @Option(help: ArgumentHelp(
        "The fold-in's least confidence of an observed pair (default: 0 for an implicit .npz model, implicit's rule; "
            + "else 1, the rule of Spark's 1 + alpha * r)."))
    var confidenceFloor: Float?

    @Option(help: "The interactions the factors were trained on (see --format), weighted with --weighting.")
    var interactions: String?

    @OptionGroup var inputFormat: InputFormatOptions
    @OptionGroup var weightingOptions: WeightingOptions

    func validate() throws {
        if let regularization, !(regularization >= 0 && regularization.isFinite) {
            throw ValidationError("--regularization must be >= 0, got \(regularization)")
        }
        if let alpha, !(alpha > 0 && alpha.isFinite) { throw ValidationError("--alpha must be > 0, got \(alpha)") }
        if let confidenceFloor, !(confidenceFloor >= 0 && confidenceFloor.isFinite) {
            throw ValidationError("--confidence-floor must be >= 0, got \(confidenceFloor)")
        }
    }

    func run() throws {
        let logger = TrainerLogging.logger()
        let u = try FactorImport.readSide(path: users, ids: userIds, arrayName: "user_factors", what: "user")
        let i = try FactorImport.readSide(path: items, ids: itemIds, arrayName: "item_factors", what: "item")
        let recorded = try FactorImport.implicitParameters(path: users)
        var matrix: CSRMatrix?
        var confidence: ConfidenceContext?
        var weightingName = "none"
        if let interactions {
            let weighting = try weightingOptions.confidenceWeighting()
            let log = try inputFormat.load(interactions, logger: logger)
            let (raw, skipped) = try FactorImport.interactionMatrix(log, userIDs: u.ids, itemIDs: i.ids, source: interactions)
            if skipped > 0 {
                logger.warning("interaction rows left out: their user or item is not in the factors", metadata: ["rows": "\(skipped)"])
            }
            matrix = weighting.apply(toUserItems: raw)
            confidence = ConfidenceContext(weighting: weighting, rawUserItems: raw)
            weightingName = "\(weighting)"
        }
        let bundle = try FactorImport.bundle(
            users: u, items: i, regularization: regularization ?? recorded.regularization ?? 0.01,
            alpha: alpha ?? recorded.alpha ?? 1,
            confidenceFloor: confidenceFloor ?? (users.hasSuffix(".npz") ? 0 : 1),
            interactions: matrix, confidence: confidence,
            metadata: [
                "command": "import-factors", "users": users, "items": items, "weighting": weightingName,
                "created_at": ISO8601DateFormatter().string(from: Date()),
            ],
            source: users)
        try bundle.write(to: output)
        logger.info("bundle written", metadata: [
            "path": .string(output), "users": "\(u.ids.count)", "items": "\(i.ids.count)", "factors": "\(u.factors.cols)",
            "interactions": "\(matrix?.nnz ?? 0)",
        ])
    }
}

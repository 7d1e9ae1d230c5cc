import ArgumentParser
import RecCore

/// `encore-train`: Encore's batch job.
@main
struct EncoreTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "encore-train",
        abstract: "Encore's batch job: generate data, fit models, evaluate them, and recommend.",
        subcommands: [GenerateCommand.self, SplitCommand.self, FitCommand.self, EvaluateCommand.self, RecommendCommand.self, WeeklyCommand.self, ExportCommand.self, EventsCommand.self,
                      AnnBenchCommand.self, AnalyzeCommand.self, TextCommand.self, SequencesCommand.self, TrainAudioCommand.self, EmbedCommand.self,
                      AudioModelBenchCommand.self, ImportFactorsCommand.self, PlaylistsCommand.self, AssembleShardsCommand.self, InspectCommand.self]
    )

    /// `encore-train validate-bundle PATH` is the child a `BundleValidator` runs (hidden); anything else is a command.
    static func main() {
        BundleValidator.exitIfRequested()
        main(nil)
    }
}

import ArgumentParser
@testable import Trainer

/// Runs `encore-train` subcommands in process, the way the executable parses and runs them.
func run(_ arguments: [String]) throws {
    var command = try EncoreTrain.parseAsRoot(arguments)
    try command.run()
}

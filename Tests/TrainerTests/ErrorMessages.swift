import ArgumentParser
@testable import Trainer
@testable import EncoreWeekly

/// The message `encore-train` prints for the error `body` throws (parse, validation or run), or nil when it throws
/// nothing.
func errorMessage(_ body: () throws -> Void) -> String? {
    do {
        try body()
        return nil
    } catch {
        return EncoreTrain.message(for: error)
    }
}

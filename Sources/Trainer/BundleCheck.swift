import Foundation
import RecCore

/// Opens a model in a child process (`encore-train validate-bundle PATH`) before a command reads it, so a damaged
/// file that crashes the HDF5 library ends the child with a clear message instead of this command.
enum BundleCheck {
    /// Validates the model at `path`; throws a ``TrainerError`` naming the crash, timeout or error.
    static func validate(_ path: String) throws {
        do {
            _ = try BundleValidator().validate(path: path)
        } catch {
            throw TrainerError(error.description)
        }
    }
}

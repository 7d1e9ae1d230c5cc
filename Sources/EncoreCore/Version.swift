/// Facts about this build of Encore.
public enum Encore {
    /// The library version, written into every bundle and checked when one is read.
    public static let version = "0.1.0"
    /// The bundle format version. A reader accepts bundles of this format version only.
    public static let bundleFormatVersion: Int32 = 1
}

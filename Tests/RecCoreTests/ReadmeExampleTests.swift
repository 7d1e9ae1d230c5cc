import Foundation
import RecCore
import Testing

// The README's library example, as written there. The test below checks that the README still shows exactly this
// code, so the example compiles against the one library product whenever the tests build.

/// The body of the README's example (everything after `import RecCore`).
@discardableResult
func readmeExample() throws -> Any {

    let (log, _) = try DelimitedLoader.load(path: "plays.tsv", format: .encorePlays)
    let userItems = ConfidenceWeighting.bm25Default.apply(toUserItems: log.matrix())
    var model = ImplicitALS(parameters: ALSParameters(factors: 64, regularization: 0.05, iterations: 15))
    try model.fit(userItems) { print("iteration \($0.iteration): \($0.seconds) s") }

    let user = log.userIDs.index(of: "u000448")!
    let top = try model.recommend(user: user, k: 10, userItems: userItems)          // played tracks excluded
    let similar = try model.similarItems(to: top.items[0], k: 10)                    // cosine over item factors
    let history = ImplicitALS.history(of: user, in: userItems)
    let why = try model.explain(item: top.items[0], items: history.items, values: history.values)
    let fresh = try model.foldIn(items: [3, 17, 42], values: [5, 1, 2])              // a new user, in microseconds

    try ModelBundle(userIDs: log.userIDs, itemIDs: log.itemIDs, model: model, userItems: userItems).write(to: "m.h5")
    return (why, fresh, similar)
}

@Suite("README library example")
struct ReadmeExampleTests {
    @Test("the README shows the example this file compiles")
    func readmeMatchesCompiledExample() throws {
        let here = URL(fileURLWithPath: #filePath)
        let root = here.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let readme = try String(contentsOf: root.appendingPathComponent("README.md"), encoding: .utf8)
        let source = try String(contentsOf: here, encoding: .utf8)
        let opening = "## The library (`RecCore`)\n```swift\n"
        let start = try #require(readme.range(of: opening), "README has no library example section")
        let end = try #require(readme.range(of: "```\n", range: start.upperBound..<readme.endIndex))
        let example = String(readme[start.upperBound..<end.lowerBound])
        #expect(example.hasPrefix("import RecCore\n"))
        let bodyStart = try #require(source.range(of: "func readmeExample() throws -> Any {\n"))
        let bodyEnd = try #require(source.range(of: "\n    return (why, fresh, similar)", range: bodyStart.upperBound..<source.endIndex))
        let compiled = source[bodyStart.upperBound..<bodyEnd.lowerBound].split(separator: "\n", omittingEmptySubsequences: false)
            .map { $0.hasPrefix("    ") ? String($0.dropFirst(4)) : String($0) }
        let shown = example.split(separator: "\n", omittingEmptySubsequences: false).dropFirst().map(String.init)
        #expect(Array(shown.dropLast()) == compiled, "README's library example differs from Tests/RecCoreTests/ReadmeExampleTests.swift")
    }
}

import Foundation

/// A small self-contained HTML page (inline CSS and SVG, no scripts or external files) for job reports.
struct HTMLReport {
    private var body: [String] = []
    let title: String

    init(title: String) { self.title = title }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    mutating func heading(_ text: String) { body.append("<h2>\(Self.escape(text))</h2>") }

    mutating func paragraph(_ text: String) { body.append("<p>\(Self.escape(text))</p>") }

    mutating func table(header: [String], rows: [[String]]) {
        var html = "<table><tr>" + header.map { "<th>\(Self.escape($0))</th>" }.joined() + "</tr>"
        for row in rows { html += "<tr>" + row.map { "<td>\(Self.escape($0))</td>" }.joined() + "</tr>" }
        body.append(html + "</table>")
    }

    /// A horizontal bar chart of labeled values.
    mutating func barChart(title: String, bars: [(label: String, value: Double)], unit: String = "") {
        let width = 640.0, barHeight = 22.0, labelWidth = 170.0
        let maxValue = max(bars.map(\.value).max() ?? 1, 1e-12)
        let height = Double(bars.count) * (barHeight + 6) + 30
        var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\">"
        svg += "<text x=\"0\" y=\"16\" font-weight=\"bold\">\(Self.escape(title))</text>"
        for (i, bar) in bars.enumerated() {
            let y = 28 + Double(i) * (barHeight + 6)
            let w = (width - labelWidth - 90) * bar.value / maxValue
            svg += "<text x=\"0\" y=\"\(y + 15)\" font-size=\"12\">\(Self.escape(bar.label))</text>"
            svg += "<rect x=\"\(labelWidth)\" y=\"\(y)\" width=\"\(max(0, w))\" height=\"\(barHeight)\" fill=\"#3b7dd8\"/>"
            let value = bar.value == bar.value.rounded() && abs(bar.value) < 1e9
                ? String(Int(bar.value)) : String(format: "%.4g", bar.value)
            svg += "<text x=\"\(labelWidth + max(0, w) + 6)\" y=\"\(y + 15)\" font-size=\"12\">\(value)\(Self.escape(unit))</text>"
        }
        body.append(svg + "</svg>")
    }

    /// A histogram of integer values (for example playlist sizes), one bar per distinct value or per bucket.
    mutating func histogram(title: String, values: [Int], buckets: Int = 12) {
        guard let lo = values.min(), let hi = values.max() else {
            paragraph("\(title): no data")
            return
        }
        let span = max(1, hi - lo + 1)
        let n = min(buckets, span)
        let size = (span + n - 1) / n
        var counts = [Int](repeating: 0, count: n)
        for v in values { counts[min(n - 1, (v - lo) / size)] += 1 }
        let bars = counts.enumerated().map { i, c -> (String, Double) in
            let a = lo + i * size, b = min(hi, a + size - 1)
            return (a == b ? "\(a)" : "\(a)–\(b)", Double(c))
        }
        barChart(title: title, bars: bars)
    }

    func render() -> String {
        """
        <!doctype html>
        <html><head><meta charset="utf-8"><title>\(Self.escape(title))</title>
        <style>body{font-family:sans-serif;max-width:900px;margin:2em auto;color:#222}
        table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 10px;text-align:right}
        th{background:#f0f0f0}td:first-child,th:first-child{text-align:left}svg{display:block;margin:1em 0}</style>
        </head><body><h1>\(Self.escape(title))</h1>
        \(body.joined(separator: "\n"))
        </body></html>
        """
    }
}

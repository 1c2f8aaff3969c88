import Foundation

/// Training curves read from a run's `metrics.jsonl`.
public struct TrainingCurves: Sendable, Equatable {
    /// (step, training loss) for every logged step.
    public var train: [(step: Int, value: Double)]
    /// (step, validation loss), including step 0 (the model before training) when logged.
    public var validation: [(step: Int, value: Double)]

    public static func == (a: TrainingCurves, b: TrainingCurves) -> Bool {
        a.train.elementsEqual(b.train, by: { $0 == $1 }) && a.validation.elementsEqual(b.validation, by: { $0 == $1 })
    }

    public init(train: [(step: Int, value: Double)] = [], validation: [(step: Int, value: Double)] = []) {
        self.train = train
        self.validation = validation
    }

    /// Reads `metrics.jsonl`; nil when the file is absent. Lines that are not JSON objects are skipped
    /// (a run killed mid-write can leave a partial last line).
    public static func load(_ path: String) -> TrainingCurves? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        var c = TrainingCurves()
        for line in data.split(separator: UInt8(ascii: "\n")) {
            guard let obj = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any],
                  let step = (obj["step"] as? NSNumber)?.intValue else { continue }
            if let l = (obj["loss"] as? NSNumber)?.doubleValue, l.isFinite { c.train.append((step, l)) }
            if let v = (obj["val_loss"] as? NSNumber)?.doubleValue, v.isFinite { c.validation.append((step, v)) }
        }
        // A resumed run logs some steps twice; keep the last of each.
        func dedupe(_ xs: [(step: Int, value: Double)]) -> [(step: Int, value: Double)] {
            var last: [Int: Double] = [:]
            for x in xs { last[x.step] = x.value }
            return last.keys.sorted().map { ($0, last[$0]!) }
        }
        c.train = dedupe(c.train)
        c.validation = dedupe(c.validation)
        return c
    }
}

/// One question shown in the report's sample table.
public struct ReportSample: Sendable {
    public var id: String
    public var question: String
    public var references: [String]
    /// Answers in the order of `EvalReport.columns` (nil: that model was not run).
    public var answers: [String?]
    public var f1: [Double?]
    /// One row per QA item (the first `limit`), with each run's answer and F1 in run order.
    public static func rows(items: [EvalItem], runs: [[EvalItemResult]], limit: Int = .max) -> [ReportSample] {
        items.indices.filter { items[$0].kind == .qa }.prefix(limit).map { i in
            ReportSample(id: items[i].id, question: items[i].question, references: items[i].references,
                         answers: runs.map { $0[i].prediction }, f1: runs.map { $0[i].f1 })
        }
    }

    public init(id: String, question: String, references: [String], answers: [String?], f1: [Double?]) {
        self.id = id
        self.question = question
        self.references = references
        self.answers = answers
        self.f1 = f1
    }
}

/// A self-contained HTML page (inline CSS and SVG, no scripts, no network) showing the
/// training curves, the metrics of each evaluated model side by side, and sample answers.
public struct EvalReport: Sendable {
    public var title: String
    /// (label, value) lines under the title: model, adapter, data, date.
    public var facts: [(String, String)]
    /// Model labels, e.g. ["base", "adapted"], and their metrics in the same order.
    public var columns: [String]
    public var metrics: [EvalMetrics]
    public var curves: TrainingCurves?
    public var samples: [ReportSample]

    public init(title: String, facts: [(String, String)], columns: [String], metrics: [EvalMetrics],
                curves: TrainingCurves?, samples: [ReportSample]) {
        self.title = title
        self.facts = facts
        self.columns = columns
        self.metrics = metrics
        self.curves = curves
        self.samples = samples
    }

    static let colors = ["#9aa5b1", "#2f6fdf", "#e07b39", "#3aa876"]

    public func html() -> String {
        var h = """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8"><title>\(esc(title))</title>
        <style>
        body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans","Noto Sans CJK SC",sans-serif;margin:24px auto;max-width:1100px;color:#1f2933;padding:0 16px}
        h1{font-size:24px;margin-bottom:4px} h2{font-size:18px;margin-top:32px;border-bottom:1px solid #e4e7eb;padding-bottom:4px}
        .facts{color:#52606d;font-size:14px} .facts b{color:#1f2933}
        table{border-collapse:collapse;font-size:14px;width:100%} td,th{border:1px solid #e4e7eb;padding:6px 8px;vertical-align:top;text-align:left;overflow-wrap:anywhere}
        th{background:#f5f7fa} td.num{text-align:right;font-variant-numeric:tabular-nums}
        .legend span{display:inline-block;margin-right:16px;font-size:13px} .sw{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:-1px}
        .muted{color:#9aa5b1} .small{font-size:12px}
        </style></head><body>
        <h1>\(esc(title))</h1>
        <div class="facts">\(facts.map { "<b>\(esc($0.0)):</b> \(esc($0.1))" }.joined(separator: " &nbsp;·&nbsp; "))</div>

        """
        if let curves, !curves.train.isEmpty || !curves.validation.isEmpty {
            h += "<h2>Training</h2>\n" + lossChart(curves) + "\n"
        }
        if !metrics.isEmpty {
            h += "<h2>Metrics</h2>\n" + legend() + metricBars() + metricTable()
        }
        if !samples.isEmpty {
            h += "<h2>Sample answers</h2>\n" + sampleTable()
        }
        h += "<p class=\"muted small\">Written by langtune. Exact match and F1: SQuAD v1.1 rules (Turkish-aware lower-casing), CMRC 2018 rules for Chinese; chrF and BLEU as sacrebleu's corpus scores; ROUGE-L F-measure; language fidelity: answers in the expected language or with no evidence of another (docs/EVALUATION.md).</p>\n"
        h += "</body></html>\n"
        return h
    }

    func esc(_ s: String) -> String {
        var o = ""
        for c in s.unicodeScalars {
            switch c {
            case "&": o += "&amp;"
            case "<": o += "&lt;"
            case ">": o += "&gt;"
            case "\"": o += "&quot;"
            default: o.unicodeScalars.append(c)
            }
        }
        return o
    }

    func fmt(_ v: Double?, _ digits: Int = 1) -> String {
        guard let v, v.isFinite else { return "–" }
        return String(format: "%.\(digits)f", v)
    }

    func legend() -> String {
        "<div class=\"legend\">" + columns.enumerated().map { i, c in
            "<span><i class=\"sw\" style=\"background:\(Self.colors[i % Self.colors.count])\"></i>\(esc(c))</span>"
        }.joined() + "</div>\n"
    }

    static var barMetrics: [(String, KeyPath<EvalMetrics, Double?>)] {
        [("Exact match", \.exactMatch), ("F1", \.f1), ("chrF", \.chrf), ("BLEU", \.bleu), ("ROUGE-L", \.rougeL),
         ("Language fidelity", \.languageFidelity)]
    }

    /// Horizontal bars on a 0-100 scale, one group per metric, one bar per model.
    func metricBars() -> String {
        let rows = Self.barMetrics.filter { m in metrics.contains { $0[keyPath: m.1] != nil } }
        guard !rows.isEmpty else { return "" }
        let barH = 16, gap = 4, groupGap = 14, labelW = 150, plotW = 700
        let groupH = columns.count * (barH + gap) + groupGap
        let height = rows.count * groupH + 30
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(labelW + plotW + 80)\" height=\"\(height)\" role=\"img\" aria-label=\"metrics\">\n"
        for tick in stride(from: 0, through: 100, by: 20) {
            let x = labelW + plotW * tick / 100
            s += "<line x1=\"\(x)\" y1=\"0\" x2=\"\(x)\" y2=\"\(height - 20)\" stroke=\"#e4e7eb\"/>"
            s += "<text x=\"\(x)\" y=\"\(height - 6)\" font-size=\"11\" text-anchor=\"middle\" fill=\"#7b8794\">\(tick)</text>\n"
        }
        for (r, (name, kp)) in rows.enumerated() {
            let y0 = r * groupH
            s += "<text x=\"\(labelW - 8)\" y=\"\(y0 + (columns.count * (barH + gap)) / 2 + 4)\" font-size=\"13\" text-anchor=\"end\" fill=\"#1f2933\">\(esc(name))</text>\n"
            for (i, m) in metrics.enumerated() {
                let v = m[keyPath: kp] ?? 0
                let w = max(0, min(100, v)) / 100 * Double(plotW)
                let y = y0 + i * (barH + gap)
                s += "<rect x=\"\(labelW)\" y=\"\(y)\" width=\"\(String(format: "%.1f", w))\" height=\"\(barH)\" fill=\"\(Self.colors[i % Self.colors.count])\"/>"
                s += "<text x=\"\(labelW + Int(w) + 6)\" y=\"\(y + barH - 3)\" font-size=\"12\" fill=\"#1f2933\">\(fmt(m[keyPath: kp]))</text>\n"
            }
        }
        return s + "</svg>\n"
    }

    func metricTable() -> String {
        var s = "<table><tr><th>metric</th>" + columns.map { "<th>\(esc($0))</th>" }.joined() + "</tr>\n"
        s += "<tr><td>examples</td>" + metrics.map { "<td class=\"num\">\($0.examples)</td>" }.joined() + "</tr>\n"
        s += "<tr><td>perplexity of the reference answers (lower is better)</td>" + metrics.map { "<td class=\"num\">\(fmt($0.perplexity, 3))</td>" }.joined() + "</tr>\n"
        for (name, kp) in Self.barMetrics + [("Answers in English", \EvalMetrics.englishRate)] {
            s += "<tr><td>\(esc(name))</td>" + metrics.map { "<td class=\"num\">\(fmt($0[keyPath: kp], 2))</td>" }.joined() + "</tr>\n"
        }
        return s + "</table>\n"
    }

    func sampleTable() -> String {
        // Fixed layout: answers share the width evenly, however short one model's answers are.
        let answerWidth = columns.isEmpty ? 0 : 50 / columns.count
        var s = "<table style=\"table-layout:fixed\"><colgroup><col style=\"width:30%\"><col style=\"width:20%\">"
            + columns.map { _ in "<col style=\"width:\(answerWidth)%\">" }.joined() + "</colgroup>"
        s += "<tr><th>question</th><th>reference</th>" + columns.map { "<th>\(esc($0))</th>" }.joined() + "</tr>\n"
        for r in samples {
            s += "<tr><td>\(esc(r.question))<div class=\"muted small\">\(esc(r.id))</div></td><td>\(esc(r.references.joined(separator: " | ")))</td>"
            for (i, a) in r.answers.enumerated() {
                let f = i < r.f1.count ? r.f1[i] : nil
                s += "<td>\(a.map(esc) ?? "<span class=\"muted\">–</span>")"
                if let f { s += "<div class=\"muted small\">F1 \(fmt(f))</div>" }
                s += "</td>"
            }
            s += "</tr>\n"
        }
        return s + "</table>\n"
    }

    /// Training loss per step (line) and validation loss (line with dots), shared axes.
    func lossChart(_ c: TrainingCurves) -> String {
        let W = 900, H = 320, left = 60, right = 20, top = 16, bottom = 40
        let all = c.train.map(\.value) + c.validation.map(\.value)
        let steps = c.train.map(\.step) + c.validation.map(\.step)
        let maxStep = max(steps.max() ?? 1, 1)
        let minStep = steps.min() ?? 0
        var lo = all.min() ?? 0, hi = all.max() ?? 1
        if hi - lo < 1e-9 { hi += 0.5; lo -= 0.5 }
        lo = max(0, lo - (hi - lo) * 0.05)
        hi += (hi - lo) * 0.05
        func x(_ s: Int) -> Double { Double(left) + Double(s - minStep) / Double(max(maxStep - minStep, 1)) * Double(W - left - right) }
        func y(_ v: Double) -> Double { Double(top) + (hi - v) / (hi - lo) * Double(H - top - bottom) }
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(W)\" height=\"\(H)\" role=\"img\" aria-label=\"loss curves\">\n"
        for k in 0...4 {
            let v = lo + (hi - lo) * Double(k) / 4
            s += "<line x1=\"\(left)\" y1=\"\(String(format: "%.1f", y(v)))\" x2=\"\(W - right)\" y2=\"\(String(format: "%.1f", y(v)))\" stroke=\"#e4e7eb\"/>"
            s += "<text x=\"\(left - 6)\" y=\"\(String(format: "%.1f", y(v) + 4))\" font-size=\"11\" text-anchor=\"end\" fill=\"#7b8794\">\(String(format: "%.2f", v))</text>\n"
        }
        for k in 0...5 {
            let st = minStep + (maxStep - minStep) * k / 5
            s += "<text x=\"\(String(format: "%.1f", x(st)))\" y=\"\(H - bottom + 16)\" font-size=\"11\" text-anchor=\"middle\" fill=\"#7b8794\">\(st)</text>"
        }
        s += "<text x=\"\((W + left) / 2)\" y=\"\(H - 6)\" font-size=\"12\" text-anchor=\"middle\" fill=\"#52606d\">step</text>\n"
        s += "<text x=\"14\" y=\"\(H / 2)\" font-size=\"12\" text-anchor=\"middle\" fill=\"#52606d\" transform=\"rotate(-90 14 \(H / 2))\">loss</text>\n"
        func path(_ pts: [(step: Int, value: Double)]) -> String {
            pts.enumerated().map { i, p in (i == 0 ? "M" : "L") + String(format: "%.1f %.1f", x(p.step), y(p.value)) }.joined(separator: " ")
        }
        if c.train.count > 1 {
            s += "<path d=\"\(path(c.train))\" fill=\"none\" stroke=\"#2f6fdf\" stroke-width=\"1.5\" opacity=\"0.85\"/>\n"
        }
        if !c.validation.isEmpty {
            s += "<path d=\"\(path(c.validation))\" fill=\"none\" stroke=\"#e07b39\" stroke-width=\"2\"/>\n"
            for p in c.validation {
                s += "<circle cx=\"\(String(format: "%.1f", x(p.step)))\" cy=\"\(String(format: "%.1f", y(p.value)))\" r=\"4\" fill=\"#e07b39\"><title>step \(p.step): \(String(format: "%.4f", p.value))</title></circle>"
            }
            s += "\n"
        }
        s += "<rect x=\"\(W - right - 190)\" y=\"\(top + 4)\" width=\"180\" height=\"44\" fill=\"white\" stroke=\"#e4e7eb\"/>"
        s += "<line x1=\"\(W - right - 180)\" y1=\"\(top + 18)\" x2=\"\(W - right - 156)\" y2=\"\(top + 18)\" stroke=\"#2f6fdf\" stroke-width=\"2\"/><text x=\"\(W - right - 150)\" y=\"\(top + 22)\" font-size=\"12\">training loss</text>"
        s += "<line x1=\"\(W - right - 180)\" y1=\"\(top + 36)\" x2=\"\(W - right - 156)\" y2=\"\(top + 36)\" stroke=\"#e07b39\" stroke-width=\"2\"/><text x=\"\(W - right - 150)\" y=\"\(top + 40)\" font-size=\"12\">validation loss</text>\n"
        return s + "</svg>"
    }
}

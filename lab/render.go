package lab

import (
	"bytes"
	"html/template"
	"math"
	"strconv"
	"time"
)

// render returns report.html for res: one self-contained page (inline
// style and SVG, no script, no request leaves it), the table first, then
// a section per row, then the machine.
func render(res *Results) ([]byte, error) {
	type figureView struct {
		Figure
		Shown, BaselineShown string
	}
	type plotView struct {
		Title string
		SVG   template.HTML
	}
	type tableView struct {
		Caption string
		Head    []string
		Rows    [][]string
	}
	type rowView struct {
		*Row
		Figures []figureView
		Plots   []plotView
		Tables  []tableView
	}
	var views []rowView
	for _, row := range res.Rows {
		v := rowView{Row: row}
		for _, f := range res.Figures {
			if f.Row != row.ID {
				continue
			}
			fv := figureView{Figure: f, Shown: number(f.Value)}
			if f.BaselineValue != nil {
				fv.BaselineShown = number(*f.BaselineValue)
			}
			v.Figures = append(v.Figures, fv)
		}
		for _, p := range row.plots {
			// The SVG comes from gonum/plot, drawn from the lab's own
			// numbers and labels, with its text escaped by the library.
			v.Plots = append(v.Plots, plotView{p.title, template.HTML(p.svg)})
		}
		for _, t := range row.tables {
			v.Tables = append(v.Tables, tableView{t.caption, t.head, t.rows})
		}
		views = append(views, v)
	}
	var b bytes.Buffer
	err := reportTemplate.Execute(&b, map[string]any{
		"R": res, "Rows": views,
		"Started": res.Started.Format(time.RFC3339),
		"Took":    (time.Duration(res.Seconds * float64(time.Second))).Round(time.Second).String(),
	})
	return b.Bytes(), err
}

// number formats a figure for people: three significant digits, no
// exponent for ordinary sizes.
func number(v float64) string {
	switch a := math.Abs(v); {
	case v == math.Trunc(v) && a < 1e9:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case a >= 1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	default:
		return strconv.FormatFloat(v, 'g', 3, 64)
	}
}

var reportTemplate = template.Must(template.New("report").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>Sesame lab: sessions versus tokens, measured</title>
<style>
:root { --fg:#1b1f24; --muted:#57606a; --line:#d0d7de; --bg:#fff; --soft:#f6f8fa; --accent:#1f5fa8; }
* { box-sizing: border-box; }
body { margin:0; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; color:var(--fg); background:var(--bg); }
main { max-width: 980px; margin: 0 auto; padding: 16px; }
h1 { font-size: 1.6rem; line-height:1.25; margin: 8px 0 4px; }
h2 { font-size: 1.3rem; margin: 32px 0 8px; padding-top: 8px; border-top: 1px solid var(--line); }
h3 { font-size: 1rem; margin: 16px 0 6px; }
p.lead { color: var(--muted); margin-top: 0; }
code { font: 0.9em ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; background: var(--soft); padding: 1px 4px; border-radius: 4px; overflow-wrap: anywhere; }
table { border-collapse: collapse; width: 100%; margin: 8px 0 16px; font-size: 0.92rem; }
th, td { border: 1px solid var(--line); padding: 6px 8px; text-align: left; vertical-align: top; }
th { background: var(--soft); }
caption { text-align: left; color: var(--muted); padding: 4px 0; caption-side: top; }
td.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
.verdict { font-weight: 600; }
blockquote { margin: 8px 0; padding: 6px 12px; border-left: 4px solid var(--line); color: var(--muted); background: var(--soft); }
figure { margin: 12px 0 20px; }
figure svg { width: 100%; height: auto; max-height: 480px; display: block; background: #fff; }
figcaption { color: var(--muted); font-size: 0.9rem; }
.scroll { overflow-x: auto; }
ul.notes { color: var(--muted); font-size: 0.92rem; padding-left: 20px; }
a { color: var(--accent); }
@media (max-width: 700px) {
  body { font-size: 15px; }
  main { padding: 10px; }
  table.summary thead { display: none; }
  table.summary, table.summary tbody, table.summary tr, table.summary td { display: block; width: 100%; }
  table.summary tr { border: 1px solid var(--line); margin-bottom: 12px; }
  table.summary td { border: none; border-top: 1px solid var(--line); }
  table.summary td::before { content: attr(data-label); display: block; font-weight: 600; color: var(--muted); font-size: 0.8rem; }
  table.summary td:first-child { border-top: none; background: var(--soft); font-weight: 700; }
}
</style>
</head>
<body>
<main>
<h1>Sessions versus tokens, measured on this machine</h1>
<p class="lead">Sesame's lab measured each row of the classic comparison table with the real server{{if .R.Quick}} (a <code>--quick</code> run: shorter, fewer sessions){{end}}. Every speed stands beside a bare <code>net/http</code> handler measured in the same run. Stores compared: {{range $i, $s := .R.Stores}}{{if $i}}, {{end}}{{$s}}{{end}}.</p>

<table class="summary" id="summary">
<thead><tr><th>Row</th><th>The textbook says</th><th>Measured here</th><th>Verdict</th></tr></thead>
<tbody>
{{range .Rows}}<tr data-row="{{.ID}}">
<td data-label="Row"><a href="#{{.ID}}">{{.Title}}</a></td>
<td data-label="The textbook says">{{.Textbook}}</td>
<td data-label="Measured here" class="measured">{{.Measured}}</td>
<td data-label="Verdict" class="verdict">{{.Verdict}}</td>
</tr>
{{end}}</tbody>
</table>

{{range .Rows}}
<section id="{{.ID}}" data-row="{{.ID}}">
<h2>{{.Title}}</h2>
<blockquote><strong>The textbook says:</strong> {{.Textbook}}</blockquote>
<p><strong>Measured here:</strong> {{.Measured}}</p>
<p class="verdict">Verdict: {{.Verdict}}</p>
{{if .Figures}}<div class="scroll"><table class="figures">
<caption>Figures (also in results.json)</caption>
<thead><tr><th>figure</th><th>value</th><th>unit</th><th>baseline (same run)</th></tr></thead>
<tbody>
{{range .Figures}}<tr><td>{{.Name}}</td><td class="num value" data-value="{{.Value}}">{{.Shown}}</td><td>{{.Unit}}</td><td>{{if .Baseline}}{{.Baseline}}{{if .BaselineShown}}: {{.BaselineShown}}{{end}}{{else}}—{{end}}</td></tr>
{{end}}</tbody></table></div>{{end}}
{{range .Plots}}<figure>{{.SVG}}<figcaption>{{.Title}}</figcaption></figure>
{{end}}
{{range .Tables}}<div class="scroll"><table>
<caption>{{.Caption}}</caption>
<thead><tr>{{range .Head}}<th>{{.}}</th>{{end}}</tr></thead>
<tbody>{{range .Rows}}<tr>{{range .}}<td>{{.}}</td>{{end}}</tr>
{{end}}</tbody></table></div>
{{end}}
{{if .Notes}}<ul class="notes">{{range .Notes}}<li>{{.}}</li>{{end}}</ul>{{end}}
<p>Rerun this row: <code>{{.Command}}</code> (the whole report: <code>{{$.R.Command}}</code>).</p>
</section>
{{end}}

<section id="machine">
<h2>The machine</h2>
<div class="scroll"><table>
<tbody>
<tr><th>CPU</th><td>{{.R.Machine.CPU}}</td></tr>
<tr><th>Cores</th><td>{{.R.Machine.Cores}}</td></tr>
<tr><th>Memory</th><td>{{.R.Machine.MemoryMiB}} MiB</td></tr>
<tr><th>OS</th><td>{{.R.Machine.OS}}{{if .R.Machine.Kernel}} (Linux {{.R.Machine.Kernel}}){{end}}</td></tr>
<tr><th>Go</th><td>{{.R.Machine.Go}}</td></tr>
<tr><th>Commit</th><td><code>{{.R.Machine.Commit}}</code>{{if .R.Machine.Modified}} with uncommitted changes{{end}}</td></tr>
<tr><th>Started</th><td>{{.Started}}, took {{.Took}}</td></tr>
<tr><th>Command</th><td><code>{{.R.Command}}</code></td></tr>
</tbody></table></div>
<p>Every server measured is a process of its own started from the same executable (<code>sesame serve</code>, and the bare handler <code>sesame lab bare</code>), so that its CPU time is read from <code>/proc/PID/stat</code>. The load generator shares the machine; ratios travel better than absolute numbers. The code that made each figure is in the <code>lab</code> package of the Sesame repository.</p>
</section>
</main>
</body>
</html>
`))

package report

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"html/template"
	"os"
	"path/filepath"
	"regexp"

	"github.com/mismatch-rl/mismatch/internal/provenance"
	"github.com/mismatch-rl/mismatch/internal/safefile"
)

// Page is a self-contained HTML report: figures are inlined as SVG (with
// their PNG as a data link), so it opens with no network and no other file.
type Page struct {
	Title string
	parts []template.HTML
}

// Heading adds a section heading.
func (p *Page) Heading(text string) {
	p.parts = append(p.parts, template.HTML("<h2>"+template.HTMLEscapeString(text)+"</h2>"))
}

// Paragraph adds a paragraph of text.
func (p *Page) Paragraph(text string) {
	p.parts = append(p.parts, template.HTML("<p>"+template.HTMLEscapeString(text)+"</p>"))
}

// Pre adds preformatted text, such as a configuration.
func (p *Page) Pre(text string) {
	p.parts = append(p.parts, template.HTML("<pre>"+template.HTMLEscapeString(text)+"</pre>"))
}

// Figure adds a figure with a caption.
func (p *Page) Figure(f Figure, caption string) {
	var b bytes.Buffer
	b.WriteString(`<figure id="fig-` + template.HTMLEscapeString(f.Name) + `">`)
	WriteSVGInline(&b, f.SVG)
	b.WriteString("<figcaption>" + template.HTMLEscapeString(caption) + ` (<a download="` + template.HTMLEscapeString(f.Name) +
		`.png" href="data:image/png;base64,` + base64.StdEncoding.EncodeToString(f.PNG) + `">PNG</a>)</figcaption></figure>`)
	p.parts = append(p.parts, template.HTML(b.String()))
}

// Provenance adds the section that says which program, command and
// machine made the directory's results (provenance.json's records).
func (p *Page) Provenance(dir string) {
	rs, err := provenance.Read(dir)
	if err != nil || len(rs) == 0 {
		return
	}
	p.Heading("Provenance")
	p.Table(provenance.Rows(rs))
}

// Table adds a table.
func (p *Page) Table(header []string, rows [][]string) {
	var b bytes.Buffer
	b.WriteString("<table><tr>")
	for _, h := range header {
		b.WriteString("<th>" + template.HTMLEscapeString(h) + "</th>")
	}
	b.WriteString("</tr>\n")
	for _, r := range rows {
		b.WriteString("<tr>")
		for _, c := range r {
			b.WriteString("<td>" + template.HTMLEscapeString(c) + "</td>")
		}
		b.WriteString("</tr>\n")
	}
	b.WriteString("</table>")
	p.parts = append(p.parts, template.HTML(b.String()))
}

// Write saves the page atomically.
func (p *Page) Write(path string) error {
	var out bytes.Buffer
	err := pageTemplate.Execute(&out, struct {
		Title string
		Parts []template.HTML
	}{p.Title, p.parts})
	if err != nil {
		return err
	}
	return safefile.WriteBytes(filepath.Clean(path), out.Bytes())
}

var pageTemplate = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}}</title>
<style>` + css + `</style></head><body>
<h1>{{.Title}}</h1>
{{range .Parts}}{{.}}
{{end}}</body></html>
`))

const css = `body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;font-size:90%;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f3f3f3}pre{background:#f7f7f7;padding:1em;overflow:auto}figure{margin:1em 0}
figure svg{max-width:100%;height:auto}figcaption{font-size:90%;color:#555}`

var external = regexp.MustCompile(`(?i)(src|href)\s*=\s*"(https?:|//|file:)|@import|url\(\s*['"]?https?:`)

// CheckOffline reports whether the HTML page at path inlines exactly
// figures SVG figures and refers to nothing outside itself, so that it
// shows everything with no network and no other file.
func CheckOffline(path string, figures int) error {
	html, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if n := bytes.Count(html, []byte("<svg")); n != figures {
		return fmt.Errorf("%s inlines %d SVG figures, want %d", path, n, figures)
	}
	if m := external.Find(html); m != nil {
		return fmt.Errorf("%s refers to an outside resource: %s", path, m)
	}
	return nil
}

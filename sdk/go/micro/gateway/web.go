package gateway

import (
	"html/template"
	"net/http"
	"slices"
	"strings"
)

// indexEntry is one service on micro web's index page.
type indexEntry struct {
	Name string // as the path names it, without the namespace
	Web  bool   // some node serves HTTP (WebAddressKey): the name links to it
}

var indexPage = template.Must(template.New("index").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>micro web</title></head>
<body><h1>Services</h1>
<ul id="services">
{{range .}}<li>{{if .Web}}<a href="/{{.Name}}/">{{.Name}}</a>{{else}}{{.Name}}{{end}}</li>
{{else}}<li>no service is registered</li>
{{end}}</ul>
</body></html>
`))

// index is micro web's page at /: the services of the namespace, those with web nodes linked.
func (g *Gateway) index(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		writeError(w, http.StatusMethodNotAllowed, "", "", "the index answers GET")
		return
	}
	svcs, err := g.opts.Registry.ListServices()
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "", "", "listing services: "+err.Error())
		return
	}
	byName := map[string]bool{}
	for _, s := range svcs {
		name := s.Name
		if g.opts.Namespace != "" {
			var ok bool
			if name, ok = strings.CutPrefix(s.Name, g.opts.Namespace+"."); !ok {
				continue
			}
		}
		web := byName[name]
		for _, n := range s.Nodes {
			web = web || n.Metadata[WebAddressKey] != ""
		}
		byName[name] = web
	}
	entries := make([]indexEntry, 0, len(byName))
	for name, web := range byName {
		entries = append(entries, indexEntry{Name: name, Web: web})
	}
	slices.SortFunc(entries, func(a, b indexEntry) int { return strings.Compare(a.Name, b.Name) })
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	indexPage.Execute(w, entries)
}

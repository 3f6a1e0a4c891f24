package main

import (
	"encoding/json"
	"html/template"
	"net/http"
)

var page = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>example</title></head>
<body><h1>example</h1>
<p>Served by node <code id="node">{{.}}</code>.</p>
<form id="call" action="call" method="get">
<label>Name <input name="name" value="hobo"></label> <button type="submit">Call Example.Call</button>
</form>
<pre id="answer"></pre>
<script>
document.getElementById("call").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const name = new FormData(ev.target).get("name");
  const rsp = await fetch("call?name=" + encodeURIComponent(name));
  document.getElementById("answer").textContent = await rsp.text();
});
</script>
</body></html>
`))

// webPage is the example's web side, for micro web: a page with a form that calls
// Example.Call, and "call?name=NAME" answering its JSON. Links are relative, so the page works
// behind micro web's /example/ prefix.
func webPage(ex *Example) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		page.Execute(w, ex.Node)
	})
	mux.HandleFunc("GET /call", func(w http.ResponseWriter, r *http.Request) {
		var rsp Response
		if err := ex.Call(r.Context(), &Request{Name: r.URL.Query().Get("name")}, &rsp); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Micro-Md-Node", ex.Node)
		json.NewEncoder(w).Encode(rsp)
	})
	return mux
}

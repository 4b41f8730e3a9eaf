// Package static embeds the CSS and JavaScript the pages use. No CDN: the
// binary carries everything.
package static

import (
	"embed"
	"net/http"
)

//go:embed *.css *.js
var files embed.FS

// Handler serves the embedded files under /static/.
func Handler() http.Handler {
	fs := http.StripPrefix("/static/", http.FileServer(http.FS(files)))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		fs.ServeHTTP(w, r)
	})
}

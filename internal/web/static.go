package web

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io"
	"io/fs"
	"net/http"
	"path"
	"strings"
)

//go:embed static
var staticFS embed.FS

// staticFiles serves the embedded static folder under /static/{version}/,
// where version hashes the whole folder: any change gives every file a new
// URL, so browsers may cache them for a year, and the relative url()s in the
// vendored CSS keep working.
type staticFiles struct {
	fsys    fs.FS
	version string
}

func loadStatic() (*staticFiles, error) {
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	err = fs.WalkDir(sub, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		f, err := sub.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		io.WriteString(h, p+"\x00")
		_, err = io.Copy(h, f)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &staticFiles{fsys: sub, version: hex.EncodeToString(h.Sum(nil))[:16]}, nil
}

func (s *staticFiles) url(name string) string {
	return "/static/" + s.version + "/" + strings.TrimPrefix(name, "/")
}

var staticTypes = map[string]string{
	".css":   "text/css; charset=utf-8",
	".js":    "text/javascript; charset=utf-8",
	".svg":   "image/svg+xml",
	".png":   "image/png",
	".jpg":   "image/jpeg",
	".gif":   "image/gif",
	".webp":  "image/webp",
	".ico":   "image/x-icon",
	".woff2": "font/woff2",
	".md":    "text/plain; charset=utf-8",
}

func (s *Server) serveStatic(w http.ResponseWriter, r *http.Request) {
	name := path.Clean(r.PathValue("path"))
	ctype, ok := staticTypes[path.Ext(name)]
	if !ok || strings.HasPrefix(name, ".") {
		s.renderError(w, r, errNotFound)
		return
	}
	f, err := s.static.fsys.Open(name)
	if err != nil {
		s.renderError(w, r, errNotFound)
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || fi.IsDir() {
		s.renderError(w, r, errNotFound)
		return
	}
	if r.PathValue("version") == s.static.version {
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		// A page from another release (a rolling upgrade) still gets the
		// file, but nobody caches it under the wrong version.
		w.Header().Set("Cache-Control", "no-cache")
	}
	w.Header().Set("Content-Type", ctype)
	http.ServeContent(w, r, "", fi.ModTime(), f.(io.ReadSeeker))
}

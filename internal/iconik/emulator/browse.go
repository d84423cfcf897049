package emulator

import (
	_ "embed"
	"html/template"
	"net/http"
)

//go:embed browse.html
var browseHTML string

var browseTmpl = template.Must(template.New("browse").Parse(browseHTML))

type browseFile struct {
	Storage, Path, Status, Checksum string
	Size                            int64
}

type browseAsset struct {
	ID, Title, Status, Description string
	Keyframes                      []string
	Files                          []browseFile
}

type browseCollection struct {
	ID, Title, Status string
	Children          []*browseCollection
	Assets            []browseAsset
}

type browseJob struct {
	ID, Title, Type, Status, Message string
	Progress                         int64
}

type browsePage struct {
	Roots    []*browseCollection
	Loose    []browseAsset
	Jobs     []browseJob
	Storages []doc
}

// serveBrowse renders the tenant as a page: collections as a tree with their
// assets (keyframe, description, files) and the jobs.
func (s *Server) serveBrowse(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	page := s.browseData()
	s.mu.Unlock()
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := browseTmpl.Execute(w, page); err != nil {
		s.log.Warn("iconik emulator: rendering browse page", "err", err)
	}
}

func (s *Server) browseData() browsePage {
	var p browsePage
	asset := func(a doc) browseAsset {
		ba := browseAsset{ID: str(a, "id"), Title: str(a, "title"), Status: str(a, "status")}
		if v := s.st.get(kValues, "assets/"+ba.ID); v != nil {
			if vals, ok := v["values"].(map[string]any); ok {
				if d, ok := vals["description"].(map[string]any); ok {
					if fvs, ok := d["field_values"].([]any); ok && len(fvs) > 0 {
						if m, ok := fvs[0].(map[string]any); ok {
							ba.Description, _ = m["value"].(string)
						}
					}
				}
			}
		}
		for _, k := range s.st.list(kKeyframes, func(d doc) bool { return str(d, "asset_id") == ba.ID }) {
			ba.Keyframes = append(ba.Keyframes, "/_keyframes/"+str(k, "id")+".jpg")
		}
		for _, f := range s.st.list(kFiles, func(d doc) bool { return str(d, "asset_id") == ba.ID }) {
			bf := browseFile{Path: str(f, "_key"), Status: str(f, "status"), Checksum: str(f, "checksum"), Size: num(f, "size")}
			if st := s.st.get(kStorages, str(f, "storage_id")); st != nil {
				bf.Storage = str(st, "name")
			}
			ba.Files = append(ba.Files, bf)
		}
		return ba
	}
	var build func(c doc, depth int) *browseCollection
	build = func(c doc, depth int) *browseCollection {
		bc := &browseCollection{ID: str(c, "id"), Title: str(c, "title"), Status: str(c, "status")}
		if depth > 64 {
			return bc
		}
		for _, m := range s.st.Contents[bc.ID] {
			d := s.st.get(m.ObjectType, m.ObjectID)
			if d == nil {
				continue
			}
			if m.ObjectType == kCollections {
				bc.Children = append(bc.Children, build(d, depth+1))
			} else {
				bc.Assets = append(bc.Assets, asset(d))
			}
		}
		return bc
	}
	for _, c := range s.st.list(kCollections, func(d doc) bool { return str(d, "parent_id") == "" }) {
		p.Roots = append(p.Roots, build(c, 0))
	}
	for _, a := range s.st.list(kAssets, func(d doc) bool { in, _ := d["in_collections"].([]any); return len(in) == 0 }) {
		p.Loose = append(p.Loose, asset(a))
	}
	jobs := s.st.list(kJobs, nil)
	for i := len(jobs) - 1; i >= 0; i-- {
		j := jobs[i]
		msg := str(j, "error_message")
		if msg == "" {
			msg = str(j, "message")
		}
		p.Jobs = append(p.Jobs, browseJob{ID: str(j, "id"), Title: str(j, "title"), Type: str(j, "type"),
			Status: str(j, "status"), Message: msg, Progress: jobProgress(j)})
	}
	for _, st := range s.st.list(kStorages, nil) {
		p.Storages = append(p.Storages, renderStorage(st))
	}
	return p
}

// ServeHTTP makes the server usable directly as a handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

var _ http.Handler = (*Server)(nil)

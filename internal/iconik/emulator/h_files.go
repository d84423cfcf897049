package emulator

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/ferryhq/ferry/internal/iconik/emulator/dataplane"
)

// ---- formats ----

func (s *Server) formatCreate(c *call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.st.live(kAssets, c.param("asset_id"))
	if a == nil {
		c.fail(http.StatusNotFound, "Asset does not exist")
		return
	}
	b := c.body
	t := now()
	d := doc{"id": newID(), "asset_id": str(a, "id"), "name": b["name"], "user_id": c.user.ID,
		"version_id": a["default_version_id"], "metadata": []any{}, "storage_methods": []any{},
		"components": []any{}, "status": "ACTIVE", "archive_status": "NOT_ARCHIVED", "is_online": false,
		"warnings": []any{}, "date_created": t, "date_modified": t, "date_deleted": nil, "deleted_by_user": nil}
	for _, k := range []string{"user_id", "version_id", "metadata", "storage_methods", "status", "archive_status", "is_online"} {
		if v, ok := b[k]; ok && v != nil {
			d[k] = v
		}
	}
	if comps, ok := b["components"].([]any); ok {
		for _, comp := range comps {
			if m, ok := comp.(map[string]any); ok {
				if str(m, "id") == "" {
					m["id"] = newID()
				}
			}
		}
		d["components"] = comps
	}
	s.st.put(kFormats, d)
	if !s.commit(c) {
		return
	}
	c.json(http.StatusCreated, public(d))
}

// assetOrNotFound answers 404 with msg when the path's asset does not exist.
func (s *Server) assetOrNotFound(c *call, msg string) bool {
	if s.st.live(kAssets, c.param("asset_id")) == nil {
		c.fail(http.StatusNotFound, msg)
		return false
	}
	return true
}

func (s *Server) formatList(c *call) {
	s.mu.Lock()
	if !s.assetOrNotFound(c, "Formats for this asset don't exist") {
		s.mu.Unlock()
		return
	}
	docs := s.st.list(kFormats, func(d doc) bool { return str(d, "asset_id") == c.param("asset_id") })
	s.mu.Unlock()
	c.cursorList(docs, public)
}

// formatGet finds a format by id or by name (GET .../formats/ORIGINAL/).
func (s *Server) formatGet(c *call) {
	s.mu.Lock()
	want := c.param("format_id")
	var found doc
	for _, d := range s.st.list(kFormats, func(d doc) bool { return str(d, "asset_id") == c.param("asset_id") }) {
		if str(d, "id") == want || str(d, "name") == want && str(d, "status") != "DELETED" {
			found = d
		}
	}
	s.mu.Unlock()
	if found == nil {
		c.fail(http.StatusNotFound, "Format for this asset doesn't exist")
		return
	}
	c.json(http.StatusOK, public(found))
}

// ---- file sets ----

func (s *Server) fileSetCreate(c *call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.st.live(kAssets, c.param("asset_id"))
	if a == nil {
		c.fail(http.StatusNotFound, "Asset does not exist")
		return
	}
	b := c.body
	if f := s.st.get(kFormats, str(b, "format_id")); f == nil || str(f, "asset_id") != str(a, "id") {
		c.invalid(map[string]string{"format_id": "Format does not exist."})
		return
	}
	if sid := str(b, "storage_id"); sid != "" && s.st.get(kStorages, sid) == nil {
		c.invalid(map[string]string{"storage_id": "Storage does not exist."})
		return
	}
	t := now()
	d := doc{"id": newID(), "asset_id": str(a, "id"), "format_id": b["format_id"], "name": b["name"],
		"base_dir": b["base_dir"], "component_ids": b["component_ids"], "storage_id": b["storage_id"],
		"version_id": a["default_version_id"], "status": "ACTIVE", "is_archive": false, "archive_file_set_id": nil,
		"original_storage_id": nil, "date_created": t, "date_modified": t, "date_deleted": nil, "deleted_by_user": nil}
	for _, k := range []string{"version_id", "status", "is_archive"} {
		if v, ok := b[k]; ok && v != nil {
			d[k] = v
		}
	}
	s.st.put(kFileSets, d)
	if !s.commit(c) {
		return
	}
	out := public(d)
	out["file_count"] = 0 // a new file set holds no files yet
	c.json(http.StatusCreated, out)
}

func (s *Server) renderFileSet(d doc) doc {
	out := public(d)
	out["file_count"] = s.fileCount()[str(d, "id")]
	return out
}

func (s *Server) fileSetList(c *call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.assetOrNotFound(c, "FileSets for this asset don't exist") {
		return
	}
	docs := s.st.list(kFileSets, func(d doc) bool { return str(d, "asset_id") == c.param("asset_id") })
	counts := s.fileCount()
	c.cursorList(docs, func(d doc) doc {
		out := public(d)
		out["file_count"] = counts[str(d, "id")]
		return out
	})
}

func (s *Server) fileSetDelete(c *call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.st.get(kFileSets, c.param("file_set_id"))
	if d == nil || str(d, "asset_id") != c.param("asset_id") {
		c.fail(http.StatusNotFound, "File set for this asset doesn't exist")
		return
	}
	if !c.queryBool("keep_source", false) {
		s.deleteObjects(d)
	}
	if c.queryBool("immediately", false) {
		s.st.del(kFileSets, str(d, "id"))
		if !s.commit(c) {
			return
		}
		c.noContent(http.StatusNoContent)
		return
	}
	d["status"], d["date_deleted"], d["deleted_by_user"] = "DELETED", now(), c.user.ID
	if !s.commit(c) {
		return
	}
	c.json(http.StatusOK, s.renderFileSet(d))
}

func (s *Server) fileSetPurge(c *call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.st.get(kFileSets, c.param("file_set_id"))
	if d == nil || str(d, "asset_id") != c.param("asset_id") {
		c.fail(http.StatusNotFound, "File set for this asset doesn't exist")
		return
	}
	s.st.del(kFileSets, str(d, "id"))
	if !s.commit(c) {
		return
	}
	c.noContent(http.StatusNoContent)
}

// ---- files ----

var filePatchable = []string{"status", "size", "checksum", "name", "original_name", "directory_path",
	"file_date_created", "file_date_modified", "type", "parent_id"}

// objectKey is where a file's bytes live in its storage:
// settings.path + directory_path + name, "/"-separated, without empty parts.
func objectKey(storage doc, dir, name string) string {
	set, _ := storage["settings"].(map[string]any)
	var parts []string
	for _, p := range []string{str(set, "path"), dir, name} {
		for _, seg := range strings.Split(strings.ReplaceAll(p, "\\", "/"), "/") {
			if seg != "" && seg != "." {
				parts = append(parts, seg)
			}
		}
	}
	return strings.Join(parts, "/")
}

func (s *Server) planeStorage(d doc) dataplane.Storage {
	set, _ := d["settings"].(map[string]any)
	return dataplane.Storage{ID: str(d, "id"), Method: str(d, "method"), Dir: s.storageDir(str(d, "id")), Settings: set}
}

var uploadMethods = []string{"S3", "GCS", "AZURE", "B2"}

// refreshUploadFields asks the data plane for fresh upload URLs of an open file.
func (s *Server) refreshUploadFields(f, storage doc) {
	for _, k := range []string{"upload_url", "multipart_upload_url", "upload_credentials", "upload_filename", "upload_method"} {
		f[k] = nil
	}
	if storage == nil || str(f, "status") != "OPEN" || !containsStr(uploadMethods, str(storage, "method")) {
		return
	}
	uf, err := s.plane.UploadFields(s.planeStorage(storage), str(f, "_key"), num(f, "size"))
	if err != nil {
		// iconik leaves upload_url empty when signing fails; the client
		// re-requests with generate_signed_post_url=true.
		s.log.Warn("iconik emulator: signing upload URLs", "file", str(f, "id"), "storage", str(storage, "name"), "err", err)
		return
	}
	f["upload_url"], f["multipart_upload_url"], f["upload_filename"], f["upload_method"] =
		strPtr(uf.UploadURL), strPtr(uf.MultipartUploadURL), strPtr(uf.UploadFilename), strPtr(uf.UploadMethod)
	if uf.UploadCredentials != nil {
		f["upload_credentials"] = uf.UploadCredentials
	}
}

func containsStr(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

func (s *Server) renderFile(d doc) doc {
	out := public(d)
	if fs := s.st.get(kFileSets, str(d, "file_set_id")); fs != nil {
		out["file_set_status"] = fs["status"]
	}
	if f := s.st.get(kFormats, str(d, "format_id")); f != nil {
		out["format_status"] = f["status"]
	}
	return out
}

func (s *Server) fileCreate(c *call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.st.live(kAssets, c.param("asset_id"))
	if a == nil {
		c.fail(http.StatusNotFound, "Asset does not exist")
		return
	}
	b := c.body
	var fileSet doc
	if id := str(b, "file_set_id"); id != "" {
		if fileSet = s.st.get(kFileSets, id); fileSet == nil || str(fileSet, "asset_id") != str(a, "id") {
			c.invalid(map[string]string{"file_set_id": "File set does not exist."})
			return
		}
	}
	if id := str(b, "format_id"); id != "" {
		if f := s.st.get(kFormats, id); f == nil || str(f, "asset_id") != str(a, "id") {
			c.invalid(map[string]string{"format_id": "Format does not exist."})
			return
		}
	}
	storageID := str(b, "storage_id")
	if storageID == "" && fileSet != nil {
		storageID = str(fileSet, "storage_id")
	}
	var storage doc
	if storageID != "" {
		if storage = s.st.get(kStorages, storageID); storage == nil {
			c.invalid(map[string]string{"storage_id": "Storage does not exist."})
			return
		}
	}
	for _, p := range []string{"directory_path", "name", "original_name"} {
		for _, seg := range strings.Split(strings.ReplaceAll(str(b, p), "\\", "/"), "/") {
			if seg == ".." {
				c.invalid(map[string]string{p: "Must not contain \"..\"."})
				return
			}
		}
	}
	if b["size"] != nil && num(b, "size") < 0 {
		c.invalid(map[string]string{"size": "Must be greater than or equal to 0."})
		return
	}
	name := str(b, "name")
	if name == "" {
		name = str(b, "original_name")
	}
	t := now()
	d := doc{"id": newID(), "asset_id": str(a, "id"), "original_name": b["original_name"], "name": name,
		"directory_path": b["directory_path"], "type": b["type"], "size": num(b, "size"), "storage_id": strPtr(storageID),
		"storage_method": nil, "file_set_id": b["file_set_id"], "format_id": b["format_id"],
		"version_id": a["default_version_id"], "checksum": b["checksum"], "status": "OPEN",
		"file_date_created": b["file_date_created"], "file_date_modified": b["file_date_modified"],
		"date_created": t, "date_modified": t, "parent_id": nil, "user_id": c.user.ID, "system_domain_id": nil, "url": nil}
	if v, ok := b["status"]; ok && v != nil {
		d["status"] = v
	}
	if v, ok := b["version_id"]; ok && v != nil {
		d["version_id"] = v
	}
	if d["file_set_id"] == nil && fileSet != nil {
		d["file_set_id"] = str(fileSet, "id")
	}
	if storage != nil {
		d["storage_method"] = storage["method"]
		d["_key"] = objectKey(storage, str(b, "directory_path"), name)
	}
	s.refreshUploadFields(d, storage)
	s.st.put(kFiles, d)
	if !s.commit(c) {
		return
	}
	c.json(http.StatusCreated, s.renderFile(d))
}

// fileOf resolves asset_id/file_id; it answers 404 itself.
func (s *Server) fileOf(c *call, notFoundMsg string) doc {
	f := s.st.get(kFiles, c.param("file_id"))
	if f == nil || str(f, "asset_id") != c.param("asset_id") || s.st.live(kAssets, c.param("asset_id")) == nil {
		c.fail(http.StatusNotFound, notFoundMsg)
		return nil
	}
	return f
}

func (s *Server) fileList(c *call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.assetOrNotFound(c, "Files for this asset don't exist") {
		return
	}
	docs := s.st.list(kFiles, func(d doc) bool { return str(d, "asset_id") == c.param("asset_id") })
	c.cursorList(docs, s.renderFile)
}

func (s *Server) fileGet(c *call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.fileOf(c, "File for this asset doesn't exist")
	if f == nil {
		return
	}
	if c.queryBool("generate_signed_post_url", false) {
		s.refreshUploadFields(f, s.st.get(kStorages, str(f, "storage_id")))
		if !s.commit(c) {
			return
		}
	}
	c.json(http.StatusOK, s.renderFile(f))
}

func (s *Server) filePatch(c *call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.fileOf(c, "File for this asset doesn't exist")
	if f == nil {
		return
	}
	for _, k := range []string{"original_name", "directory_path", "type"} {
		if v, ok := c.body[k]; ok && v == nil {
			c.invalid(map[string]string{k: "Field may not be null."})
			return
		}
	}
	for _, k := range filePatchable {
		if v, ok := c.body[k]; ok {
			if k == "size" {
				v = num(c.body, "size")
			}
			f[k] = v
		}
	}
	if st := s.st.get(kStorages, str(f, "storage_id")); st != nil {
		f["_key"] = objectKey(st, str(f, "directory_path"), str(f, "name"))
	}
	f["date_modified"] = now()
	if !s.commit(c) {
		return
	}
	c.json(http.StatusOK, s.renderFile(f))
}

func (s *Server) fileDelete(c *call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.fileOf(c, "File for this asset doesn't exist")
	if f == nil {
		return
	}
	s.st.del(kFiles, str(f, "id"))
	if !s.commit(c) {
		return
	}
	c.noContent(http.StatusNoContent)
}

// ---- upload helpers (data plane) ----

// uploadTarget resolves the file and its storage for an upload helper,
// requiring one of methods; it answers errors itself.
func (s *Server) uploadTarget(c *call, methods ...string) (doc, dataplane.Storage, bool) {
	f := s.fileOf(c, "File or asset not found")
	if f == nil {
		return nil, dataplane.Storage{}, false
	}
	st := s.st.get(kStorages, str(f, "storage_id"))
	if st == nil {
		c.fail(http.StatusBadRequest, "File has no storage")
		return nil, dataplane.Storage{}, false
	}
	if !containsStr(methods, str(st, "method")) {
		c.fail(http.StatusBadRequest, fmt.Sprintf("This call is for %s storages; the file's storage is %s", strings.Join(methods, "/"), str(st, "method")))
		return nil, dataplane.Storage{}, false
	}
	return f, s.planeStorage(st), true
}

func (c *call) planeFailed(what string, err error) {
	c.s.log.Warn("iconik emulator: data plane", "call", what, "err", err)
	c.fail(http.StatusBadRequest, fmt.Sprintf("%s failed: %v", what, err))
}

func (s *Server) multipartPartURLs(c *call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := strconv.Atoi(c.q.Get("parts_num"))
	if err != nil || n < 1 || n > 10000 {
		c.invalid(map[string]string{"parts_num": "Must be between 1 and 10000."})
		return
	}
	f, st, ok := s.uploadTarget(c, "S3", "GCS")
	if !ok {
		return
	}
	per, ok := c.perPage(10)
	if !ok {
		return
	}
	page, _ := strconv.Atoi(c.q.Get("page"))
	page = max(page, 1)
	var parts []int
	for i := (page-1)*per + 1; i <= min(page*per, n); i++ {
		parts = append(parts, i)
	}
	if st.Method == "GCS" {
		s.gcsPartURLs(c, f, st, parts)
		return
	}
	urls, err := s.plane.S3PartURLs(st, str(f, "_key"), c.q.Get("upload_id"), parts, nil)
	if err != nil {
		c.planeFailed("presigning part URLs", err)
		return
	}
	objs := []any{}
	for _, u := range urls {
		objs = append(objs, map[string]any{"number": u.Number, "url": u.URL, "key": str(f, "_key"), "delete_url": nil, "download_url": nil})
	}
	c.json(http.StatusOK, map[string]any{"objects": objs})
}

func (s *Server) multipartS3Parts(c *call) {
	uploadID := str(c.body, "upload_id")
	rawParts, ok := c.body["parts"].([]any)
	errs := map[string]string{}
	if uploadID == "" {
		errs["upload_id"] = "Missing data for required field."
	}
	if !ok {
		errs["parts"] = "Missing data for required field."
	}
	var parts []int
	md5s := map[int]string{}
	for _, p := range rawParts {
		m, _ := p.(map[string]any)
		n := num(m, "part_number")
		if n < 1 || n > 10000 {
			errs["parts"] = "part_number must be between 1 and 10000."
			break
		}
		parts = append(parts, int(n))
		if cs := str(m, "checksum"); cs != "" {
			md5s[int(n)] = cs
		}
	}
	if len(errs) > 0 {
		c.invalid(errs)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	f, st, ok := s.uploadTarget(c, "S3")
	if !ok {
		return
	}
	urls, err := s.plane.S3PartURLs(st, str(f, "_key"), uploadID, parts, md5s)
	if err != nil {
		c.planeFailed("presigning part URLs", err)
		return
	}
	out := []any{}
	for _, u := range urls {
		out = append(out, map[string]any{"part_number": u.Number, "url": u.URL, "checksum": strPtr(md5s[u.Number])})
	}
	c.json(http.StatusOK, map[string]any{"upload_id": uploadID, "parts": out})
}

func (s *Server) multipartURLs(c *call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	uploadID := c.q.Get("upload_id")
	if uploadID == "" {
		c.invalid(map[string]string{"upload_id": "Missing data for required field."})
		return
	}
	f, st, ok := s.uploadTarget(c, "S3")
	if !ok {
		return
	}
	complete, abort, err := s.plane.S3MultipartURLs(st, str(f, "_key"), uploadID)
	if err != nil {
		c.planeFailed("presigning multipart URLs", err)
		return
	}
	listParts := []any{}
	if u, err := s.plane.S3ListPartsURL(st, str(f, "_key"), uploadID); err == nil {
		listParts = append(listParts, u)
	}
	c.json(http.StatusOK, map[string]any{"complete_url": complete, "abort_url": abort, "list_parts_url": listParts})
}

func (s *Server) multipartCleanup(c *call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, st, ok := s.uploadTarget(c, "S3", "GCS")
	if !ok {
		return
	}
	if st.Method == "GCS" {
		s.gcsCleanup(c, f, st)
		return
	}
	if abort, set := c.body["abort_upload"].(bool); (abort || !set) && st.Method == "S3" {
		if uploadID := str(c.body, "upload_id"); uploadID != "" {
			if err := s.plane.S3Abort(st, str(f, "_key"), uploadID); err != nil {
				c.planeFailed("aborting the multipart upload", err)
				return
			}
		}
	}
	c.json(http.StatusOK, map[string]any{})
}

func (s *Server) b2Start(c *call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, st, ok := s.uploadTarget(c, "B2")
	if !ok {
		return
	}
	var large dataplane.B2Large
	var err error
	if id := str(c.body, "upload_file_id"); id != "" {
		large, err = s.plane.B2ResumeLarge(st, str(f, "_key"), id)
	} else {
		large, err = s.plane.B2StartLarge(st, str(f, "_key"))
	}
	if err != nil {
		c.planeFailed("starting the B2 large file", err)
		return
	}
	c.json(http.StatusOK, map[string]any{"upload_file_id": large.UploadFileID, "upload_url": large.UploadURL,
		"authorization_token": large.AuthorizationToken, "status": "OK", "error": nil, "error_code": nil})
}

func (s *Server) b2Finish(c *call) {
	var sha1s []string
	for _, v := range c.body["sha1_list"].([]any) {
		sha1s = append(sha1s, fmt.Sprint(v))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, st, ok := s.uploadTarget(c, "B2")
	if !ok {
		return
	}
	if err := s.plane.B2FinishLarge(st, str(c.body, "upload_file_id"), sha1s); err != nil {
		c.planeFailed("finishing the B2 large file", err)
		return
	}
	c.json(http.StatusOK, map[string]any{})
}

func (s *Server) b2Cancel(c *call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, st, ok := s.uploadTarget(c, "B2")
	if !ok {
		return
	}
	if err := s.plane.B2CancelLarge(st, str(c.body, "upload_file_id")); err != nil {
		c.planeFailed("cancelling the B2 large file", err)
		return
	}
	c.json(http.StatusOK, map[string]any{})
}

// ---- keyframes ----

// ignoredByStorage reports whether the storage's transcode_ignore patterns
// (shell globs, case-insensitive) match the file's name.
func ignoredByStorage(storage doc, name string) bool {
	set, _ := storage["settings"].(map[string]any)
	pats, _ := set["transcode_ignore"].([]any)
	for _, p := range pats {
		if ok, err := path.Match(strings.ToLower(fmt.Sprint(p)), strings.ToLower(name)); err == nil && ok {
			return true
		}
	}
	return false
}

func (s *Server) keyframesCreate(c *call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.fileOf(c, "File or asset not found")
	if f == nil {
		return
	}
	storage := s.st.get(kStorages, str(f, "storage_id"))
	useIgnore, set := c.body["use_storage_transcode_ignore_pattern"].(bool)
	if (useIgnore || !set) && storage != nil && ignoredByStorage(storage, str(f, "name")) {
		c.noContent(http.StatusNoContent)
		return
	}
	job := s.newJob(map[string]any{"type": "TRANSCODE", "status": "READY", "title": "Keyframes for " + str(f, "name"),
		"object_type": kAssets, "object_id": str(f, "asset_id"),
		"metadata": map[string]any{"file_id": str(f, "id"), "storage_id": f["storage_id"]}}, c.user.ID)
	if p := num(c.body, "priority"); p > 0 {
		job["priority"] = p
	}
	job["_file_id"] = str(f, "id")
	s.st.put(kJobs, job)
	if !s.commit(c) {
		return
	}
	s.startTranscode(str(job, "id"))
	c.json(http.StatusOK, map[string]any{"job_id": str(job, "id")})
}

func (s *Server) keyframeList(c *call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.st.live(kAssets, c.param("asset_id")) == nil {
		c.fail(http.StatusNotFound, "Keyframes for this asset don't exist")
		return
	}
	docs := s.st.list(kKeyframes, func(d doc) bool { return str(d, "asset_id") == c.param("asset_id") })
	base := s.baseURL
	c.cursorList(docs, func(d doc) doc {
		out := public(d)
		out["url"] = base + "/_keyframes/" + str(d, "id") + ".jpg"
		return out
	})
}

var errNoStorage = errors.New("the file has no storage")

// fileCount counts files per file set in one pass over the files.
func (s *Server) fileCount() map[string]int {
	n := map[string]int{}
	for _, f := range s.st.Objects[kFiles] {
		if id := str(f, "file_set_id"); id != "" {
			n[id]++
		}
	}
	return n
}

// deleteObjects removes the stored objects of a file set's files, as iconik
// does when a file set is deleted. Only the built-in plane's objects (files
// under the storage's Dir, contract B) are removed; an external S3 server's
// objects are left alone.
func (s *Server) deleteObjects(fileSet doc) {
	for _, f := range s.st.Objects[kFiles] {
		if str(f, "file_set_id") != str(fileSet, "id") || str(f, "_key") == "" {
			continue
		}
		st := s.st.get(kStorages, str(f, "storage_id"))
		if st == nil {
			continue
		}
		key := filepath.FromSlash(str(f, "_key"))
		if !filepath.IsLocal(key) {
			continue
		}
		p := filepath.Join(s.storageDir(str(st, "id")), key)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			if err := os.Remove(p); err != nil {
				s.log.Warn("iconik emulator: deleting a file set's object", "file", str(f, "id"), "err", err)
			}
		}
	}
}

package emulator

import (
	"fmt"
	"math"
	"net/http"
	"slices"
	"sort"
	"strings"
)

// ---- jobs ----

var jobPatchable = []string{"status", "title", "type", "object_type", "object_id", "parent_id", "progress_processed",
	"progress_total", "message", "error_message", "metadata", "related_objects", "started_at", "completed_at",
	"custom_type", "job_context", "action_context", "has_children"}

var terminalJobStatuses = []string{"FINISHED", "FINISHED_WITH_WARNING", "FAILED", "ABORTED", "SKIPPED"}

// renderJob adds the computed progress: round(100*processed/total).
func renderJob(d doc) doc {
	out := public(d)
	out["progress"] = jobProgress(d)
	if ro, _ := out["related_objects"].([]any); len(ro) == 0 {
		out["related_objects"] = nil // the spec wants at least one item when present
	}
	return out
}

func jobProgress(d doc) int64 {
	total, done := num(d, "progress_total"), num(d, "progress_processed")
	if total <= 0 {
		return 0
	}
	return min(100, max(0, int64(math.Round(100*float64(done)/float64(total)))))
}

func (s *Server) newJob(b map[string]any, userID string) doc {
	t := now()
	d := doc{
		"id": newID(), "status": b["status"], "title": b["title"], "type": b["type"], "object_type": nil, "object_id": nil,
		"parent_id": nil, "progress_processed": 0, "progress_total": 0, "message": nil, "error_message": nil,
		"metadata": map[string]any{}, "related_objects": []any{}, "started_at": nil, "completed_at": nil,
		"priority": 5, "has_children": false, "created_by": userID, "date_created": t, "date_modified": t,
		"steps": []any{}, "children_progress": map[string]any{}, "job_context": map[string]any{},
		"action_context": nil, "custom_type": nil,
	}
	s.applyJobPatch(d, b, false)
	return d
}

func (s *Server) applyJobPatch(d doc, b map[string]any, mergeMetadata bool) {
	for _, k := range jobPatchable {
		v, ok := b[k]
		if !ok {
			continue
		}
		if k == "metadata" && mergeMetadata {
			old, _ := d["metadata"].(map[string]any)
			if nm, ok := v.(map[string]any); ok && old != nil {
				for mk, mv := range nm {
					old[mk] = mv
				}
				continue
			}
		}
		d[k] = v
	}
	st := str(d, "status")
	if st == "STARTED" && d["started_at"] == nil {
		d["started_at"] = now()
	}
	if slices.Contains(terminalJobStatuses, st) && d["completed_at"] == nil {
		d["completed_at"] = now()
	}
	d["date_modified"] = now()
	if pid := str(d, "parent_id"); pid != "" {
		if p := s.st.get(kJobs, pid); p != nil {
			p["has_children"] = true
		}
	}
}

func (s *Server) jobCreate(c *call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.newJob(c.body, c.user.ID)
	s.st.put(kJobs, d)
	if !s.commit(c) {
		return
	}
	c.json(http.StatusCreated, renderJob(d))
}

func (s *Server) jobPatch(c *call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.st.get(kJobs, c.param("job_id"))
	if d == nil {
		c.fail(http.StatusNotFound, "Job does not exist")
		return
	}
	for _, k := range []string{"status", "title", "type"} {
		if v, ok := c.body[k]; ok && v == nil {
			c.invalid(map[string]string{k: "Field may not be null."})
			return
		}
	}
	s.applyJobPatch(d, c.body, c.queryBool("merge_metadata", false))
	if !s.commit(c) {
		return
	}
	c.json(http.StatusOK, renderJob(d))
}

func (s *Server) jobGet(c *call) {
	s.mu.Lock()
	d := s.st.get(kJobs, c.param("job_id"))
	var out doc
	if d != nil {
		out = renderJob(d)
	}
	s.mu.Unlock()
	if d == nil {
		c.fail(http.StatusNotFound, "Job does not exist")
		return
	}
	c.json(http.StatusOK, out)
}

func (s *Server) jobList(c *call) {
	s.mu.Lock()
	docs := s.st.list(kJobs, func(d doc) bool {
		for _, f := range []string{"type", "status", "parent_id", "object_type", "created_by"} {
			if !inList(c.q.Get(f), str(d, f)) {
				return false
			}
		}
		if q := c.q.Get("object_id"); q != "" && !inList(q, str(d, "object_id")) && !relatedTo(d, q) {
			return false
		}
		return inList(c.q.Get("ids"), str(d, "id"))
	})
	slices.Reverse(docs) // newest first, as iconik's job list
	items := make([]any, len(docs))
	for i, d := range docs {
		items[i] = renderJob(d)
	}
	s.mu.Unlock()
	c.pageList(items, true)
}

// ---- metadata ----

// fieldTypes are the field types clients use (CONTRACT.md §2.11).
var fieldTypes = []string{"integer", "float", "boolean", "string", "string_exact", "text", "date", "datetime", "tag_cloud", "url", "drop_down", "email"}

var fieldProps = []string{"label", "field_type", "description", "multi", "options", "required", "read_only", "auto_set",
	"hide_if_not_set", "is_block_field", "is_warning_field", "representative", "sortable", "use_as_facet",
	"external_id", "source_url", "min_value", "max_value"}

func (s *Server) fieldCreate(c *call) {
	b := c.body
	if ft := str(b, "field_type"); !slices.Contains(fieldTypes, ft) {
		c.invalid(map[string]string{"field_type": "Must be one of: " + strings.Join(fieldTypes, ", ") + "."})
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	name := str(b, "name")
	if s.st.get(kFields, name) != nil {
		c.invalid(map[string]string{"name": fmt.Sprintf("Field with name %s already exists.", name)})
		return
	}
	t := now()
	d := doc{"id": name, "name": name, "description": nil, "multi": false, "options": []any{}, "required": false,
		"read_only": false, "auto_set": false, "hide_if_not_set": false, "is_block_field": false,
		"is_warning_field": false, "representative": false, "sortable": false, "use_as_facet": false,
		"external_id": nil, "source_url": nil, "min_value": nil, "max_value": nil, "mapped_field_name": nil,
		"date_created": t, "date_modified": t}
	for _, k := range fieldProps {
		if v, ok := b[k]; ok {
			d[k] = v
		}
	}
	s.st.put(kFields, d)
	if !s.commit(c) {
		return
	}
	c.json(http.StatusCreated, renderField(d))
}

func renderField(d doc) doc {
	out := public(d)
	delete(out, "id") // fields are named, not numbered
	return out
}

func (s *Server) fieldGet(c *call) {
	s.mu.Lock()
	d := s.st.get(kFields, c.param("field_name"))
	s.mu.Unlock()
	if d == nil {
		c.fail(http.StatusNotFound, "Metadata field doesn't exist")
		return
	}
	c.json(http.StatusOK, renderField(d))
}

func (s *Server) fieldList(c *call) {
	per := 500
	if v := c.q.Get("per_page"); v != "" {
		n := 0
		if _, err := fmt.Sscan(v, &n); err != nil || n < 1 {
			c.invalid(map[string]string{"per_page": "Must be greater than or equal to 1."})
			return
		}
		per = n
	}
	s.mu.Lock()
	docs := s.st.list(kFields, nil)
	s.mu.Unlock()
	sort.Slice(docs, func(i, j int) bool { return str(docs[i], "name") < str(docs[j], "name") })
	after := c.q.Get("last_field_name")
	objs := []any{}
	var last string
	more := false
	for _, d := range docs {
		if after != "" && str(d, "name") <= after {
			continue
		}
		if len(objs) == per {
			more = true
			break
		}
		objs = append(objs, renderField(d))
		last = str(d, "name")
	}
	var next any
	if more {
		q := c.r.URL.Query()
		q.Set("last_field_name", last)
		next = c.r.URL.Path + "?" + q.Encode()
	}
	c.json(http.StatusOK, map[string]any{"objects": objs, "per_page": per, "total": len(docs), "next_url": next})
}

// viewFields checks a body's view_fields against the known fields.
func (s *Server) viewFields(c *call) ([]any, bool) {
	raw, _ := c.body["view_fields"].([]any)
	out := []any{}
	for _, vf := range raw {
		m, ok := vf.(map[string]any)
		if !ok || str(m, "name") == "" {
			c.invalid(map[string]string{"view_fields": "Each view field needs a name."})
			return nil, false
		}
		if s.st.get(kFields, str(m, "name")) == nil {
			c.invalid(map[string]string{"view_fields": fmt.Sprintf("Metadata field %s doesn't exist.", str(m, "name"))})
			return nil, false
		}
		out = append(out, m)
	}
	return out, true
}

// renderView returns a view with each view field merged with its field
// definition (MetadataViewSchema lists full fields).
func (s *Server) renderView(d doc) doc {
	out := public(d)
	merged := []any{}
	vfs, _ := d["view_fields"].([]any)
	for _, vf := range vfs {
		m, _ := vf.(map[string]any)
		full := map[string]any{}
		if f := s.st.get(kFields, str(m, "name")); f != nil {
			for k, v := range renderField(f) {
				full[k] = v
			}
		}
		for k, v := range m {
			if v != nil {
				full[k] = v
			}
		}
		merged = append(merged, full)
	}
	out["view_fields"] = merged
	return out
}

func (s *Server) viewCreate(c *call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	vfs, ok := s.viewFields(c)
	if !ok {
		return
	}
	t := now()
	d := doc{"id": newID(), "name": c.body["name"], "description": c.body["description"], "view_fields": vfs,
		"date_created": t, "date_modified": t}
	s.st.put(kViews, d)
	if !s.commit(c) {
		return
	}
	c.json(http.StatusCreated, s.renderView(d))
}

func (s *Server) viewUpdate(c *call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.st.get(kViews, c.param("view_id"))
	if d == nil {
		c.fail(http.StatusNotFound, "Metadata view doesn't exist")
		return
	}
	if _, ok := c.body["view_fields"]; ok {
		vfs, ok := s.viewFields(c)
		if !ok {
			return
		}
		d["view_fields"] = vfs
	}
	for _, k := range []string{"name", "description"} {
		if v, ok := c.body[k]; ok {
			d[k] = v
		}
	}
	d["date_modified"] = now()
	if !s.commit(c) {
		return
	}
	c.json(http.StatusOK, s.renderView(d))
}

func (s *Server) viewGet(c *call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.st.get(kViews, c.param("view_id"))
	if d == nil {
		c.fail(http.StatusNotFound, "Metadata view doesn't exist")
		return
	}
	c.json(http.StatusOK, s.renderView(d))
}

func (s *Server) viewList(c *call) {
	s.mu.Lock()
	docs := s.st.list(kViews, nil)
	objs := make([]any, len(docs))
	for i, d := range docs {
		objs[i] = public(d)
	}
	s.mu.Unlock()
	c.json(http.StatusOK, map[string]any{"objects": objs})
}

// valuesTarget resolves the object and view of a metadata values call.
func (s *Server) valuesTarget(c *call) (obj, view doc, ok bool) {
	ot := c.param("object_type")
	if ot != kAssets && ot != kCollections {
		c.fail(http.StatusBadRequest, "object_type must be assets or collections")
		return nil, nil, false
	}
	obj = s.st.live(ot, c.param("object_id"))
	if obj == nil {
		c.fail(http.StatusNotFound, "Object does not exist")
		return nil, nil, false
	}
	view = s.st.get(kViews, c.param("view_id"))
	if view == nil {
		c.fail(http.StatusNotFound, "Metadata view doesn't exist")
		return nil, nil, false
	}
	return obj, view, true
}

func viewFieldNames(view doc) []string {
	var names []string
	vfs, _ := view["view_fields"].([]any)
	for _, vf := range vfs {
		if m, ok := vf.(map[string]any); ok {
			names = append(names, str(m, "name"))
		}
	}
	return names
}

func (s *Server) valuesPut(c *call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	obj, view, ok := s.valuesTarget(c)
	if !ok {
		return
	}
	mv, ok := checkMetadataValues(c, view)
	if !ok {
		return
	}
	d := s.st.writeValues(c.param("object_type"), c.param("object_id"), mv, now())
	if !s.commit(c) {
		return
	}
	c.json(http.StatusOK, s.renderValues(c, obj, view, d))
}

func (s *Server) renderValues(c *call, obj, view, d doc) doc {
	out := map[string]any{}
	var vals map[string]any
	if d != nil {
		vals, _ = d["values"].(map[string]any)
	}
	for _, name := range viewFieldNames(view) {
		if v, ok := vals[name]; ok {
			out[name] = v
		} else {
			out[name] = map[string]any{"field_values": []any{}}
		}
	}
	res := doc{"object_id": c.param("object_id"), "object_type": c.param("object_type"),
		"version_id": obj["default_version_id"], "metadata_values": out, "job_id": nil,
		"date_created": nil, "date_modified": nil}
	if d != nil {
		res["date_created"], res["date_modified"] = d["date_created"], d["date_modified"]
	}
	return res
}

func (s *Server) valuesGet(c *call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	obj, view, ok := s.valuesTarget(c)
	if !ok {
		return
	}
	d := s.st.get(kValues, c.param("object_type")+"/"+c.param("object_id"))
	c.json(http.StatusOK, s.renderValues(c, obj, view, d))
}

// ---- search ----

func (s *Server) search(c *call) {
	types := []string{kAssets, kCollections}
	if dt, ok := c.body["doc_types"].([]any); ok && len(dt) > 0 {
		types = nil
		for _, t := range dt {
			types = append(types, fmt.Sprint(t))
		}
	}
	query := strings.ToLower(strings.TrimSpace(str(c.body, "query")))
	filter, _ := c.body["filter"].(map[string]any)
	if filter != nil && str(filter, "operator") == "" {
		c.invalid(map[string]string{"filter": "operator: Missing data for required field."})
		return
	}
	s.mu.Lock()
	var items []any
	for _, kind := range []string{kCollections, kAssets} {
		if !slices.Contains(types, kind) {
			continue
		}
		for _, d := range s.st.list(kind, nil) {
			if !s.visible(d) {
				continue // not indexed yet
			}
			if query != "" && query != "*" && !strings.Contains(strings.ToLower(str(d, "title")), query) {
				continue
			}
			if !matchFilter(d, filter) {
				continue
			}
			if str(d, "status") == "DELETED" && !filterNames(filter, "status") {
				continue
			}
			out := public(d)
			out["object_type"] = kind
			items = append(items, out)
		}
	}
	s.mu.Unlock()
	c.pageList(items, true)
}

func filterNames(f map[string]any, name string) bool {
	terms, _ := f["terms"].([]any)
	for _, t := range terms {
		if m, ok := t.(map[string]any); ok && str(m, "name") == name {
			return true
		}
	}
	return false
}

// matchFilter evaluates iconik's {operator, terms, filters} against d.
func matchFilter(d doc, f map[string]any) bool {
	if f == nil {
		return true
	}
	or := strings.EqualFold(str(f, "operator"), "OR")
	var results []bool
	terms, _ := f["terms"].([]any)
	for _, t := range terms {
		m, _ := t.(map[string]any)
		results = append(results, matchTerm(d, m))
	}
	subs, _ := f["filters"].([]any)
	for _, sub := range subs {
		m, _ := sub.(map[string]any)
		results = append(results, matchFilter(d, m))
	}
	if len(results) == 0 {
		return true
	}
	if or {
		return slices.Contains(results, true)
	}
	return !slices.Contains(results, false)
}

func matchTerm(d doc, t map[string]any) bool {
	name := str(t, "name")
	lower := strings.HasSuffix(name, ".lower")
	name = strings.TrimSuffix(name, ".lower")
	var vals []string
	switch v := d[name].(type) {
	case []any:
		for _, x := range v {
			vals = append(vals, fmt.Sprint(x))
		}
	case nil:
	default:
		vals = []string{fmt.Sprint(v)}
	}
	if name == "parent_id" && d["object_type"] == nil {
		if in, ok := d["in_collections"].([]any); ok && str(d, "parent_id") == "" {
			for _, x := range in {
				vals = append(vals, fmt.Sprint(x))
			}
		}
	}
	if ex, ok := t["exists"].(bool); ok {
		return (len(vals) > 0) == ex
	}
	if ms, ok := t["missing"].(bool); ok {
		return (len(vals) == 0) == ms
	}
	want := []string{}
	if v, ok := t["value"]; ok && v != nil {
		want = append(want, fmt.Sprint(v))
	}
	if vin, ok := t["value_in"].([]any); ok {
		for _, x := range vin {
			want = append(want, fmt.Sprint(x))
		}
	}
	for _, v := range vals {
		for _, w := range want {
			if v == w || lower && strings.EqualFold(v, w) {
				return true
			}
		}
	}
	return false
}

// relatedTo reports whether one of a job's related_objects is in ids (a
// comma-separated list): a bulk transcode job is found from any of its
// assets [INF].
func relatedTo(d doc, ids string) bool {
	ro, _ := d["related_objects"].([]any)
	for _, o := range ro {
		if m, ok := o.(map[string]any); ok && inList(ids, str(m, "object_id")) {
			return true
		}
	}
	return false
}

// writeValues sets metadata values of one object at t (the single PUT and an
// applied batch both write this way) and returns the object's values record.
func (st *state) writeValues(objectType, objectID string, mv map[string]any, t string) doc {
	key := objectType + "/" + objectID
	d := st.get(kValues, key)
	if d == nil {
		d = doc{"id": key, "_object_id": objectID, "values": map[string]any{}, "date_created": t}
		st.put(kValues, d)
	}
	vals, _ := d["values"].(map[string]any)
	for k, v := range mv {
		vals[k] = v
	}
	d["date_modified"] = t
	d["_writes"] = num(d, "_writes") + 1
	return d
}

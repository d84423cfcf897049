package emulator

import (
	"fmt"
	"net/http"
	"slices"
	"time"
)

// The two calls that act on many assets at once: batch metadata values
// (202, applied later) and bulk keyframes (one transcode job for all).

// kBatches holds batch metadata updates answered 202 and not yet applied.
// They are part of the state on disk, so a batch iconik accepted survives a
// restart of the emulator and is applied then.
const kBatches = "metadata_batches"

// defaultBatchDelay is how long an accepted batch metadata update waits
// before it is applied when Options.BatchDelay is zero: long enough that a
// client reading the values straight after the 202 can see them missing, as
// with iconik's queue, short enough for tests.
const defaultBatchDelay = 100 * time.Millisecond

// checkMetadataValues checks a metadata_values body against a view's fields
// and answers 400 itself.
func checkMetadataValues(c *call, view doc) (map[string]any, bool) {
	mv, ok := c.body["metadata_values"].(map[string]any)
	if !ok {
		c.invalid(map[string]string{"metadata_values": "Not a valid mapping type."})
		return nil, false
	}
	names := viewFieldNames(view)
	for name, v := range mv {
		if !slices.Contains(names, name) {
			c.invalid(map[string]string{"metadata_values": fmt.Sprintf("Field %s is not in view %s.", name, str(view, "name"))})
			return nil, false
		}
		m, ok := v.(map[string]any)
		if _, isList := m["field_values"].([]any); !ok || !isList {
			c.invalid(map[string]string{"metadata_values": fmt.Sprintf("Field %s needs {\"field_values\": [...]}.", name)})
			return nil, false
		}
	}
	return mv, true
}

// stringList reads a list of strings as decoded from a body or the state.
func stringList(v any) ([]string, bool) {
	switch l := v.(type) {
	case []string:
		return l, true
	case []any:
		out := make([]string, 0, len(l))
		for _, x := range l {
			s, ok := x.(string)
			if !ok {
				return nil, false
			}
			out = append(out, s)
		}
		return out, true
	}
	return nil, false
}

// valuesBatchPut schedules the same metadata values for many objects
// (MetadataValuesBatchSchema) and answers 202; applyBatch writes them later.
func (s *Server) valuesBatchPut(c *call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ot := c.param("object_type")
	if ot != kAssets && ot != kCollections {
		c.fail(http.StatusBadRequest, "object_type must be assets or collections")
		return
	}
	view := s.st.get(kViews, c.param("view_id"))
	if view == nil {
		c.fail(http.StatusNotFound, "Metadata view doesn't exist")
		return
	}
	mv, ok := checkMetadataValues(c, view)
	if !ok {
		return
	}
	ids, ok := stringList(c.body["object_ids"])
	if !ok || len(ids) == 0 {
		c.invalid(map[string]string{"object_ids": "A list of at least one object id is required."})
		return
	}
	for _, id := range ids {
		if s.st.live(ot, id) == nil {
			c.invalid(map[string]string{"object_ids": fmt.Sprintf("Object %s does not exist.", id)})
			return
		}
	}
	b := doc{"id": newID(), "object_type": ot, "object_ids": ids, "view_id": c.param("view_id"), "values": mv, "date_created": now()}
	s.st.put(kBatches, b)
	if !s.commit(c) {
		return
	}
	s.scheduleBatch(str(b, "id"))
	c.noContent(http.StatusAccepted)
}

// scheduleBatch applies an accepted batch after the batch delay, unless the
// emulator stops first (then the next start applies it).
func (s *Server) scheduleBatch(id string) {
	d := s.opts.BatchDelay
	if d == 0 {
		d = defaultBatchDelay
	}
	s.jobs.Add(1)
	go func() {
		defer s.jobs.Done()
		select {
		case <-time.After(max(d, 0)):
		case <-s.ctx.Done():
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		s.applyBatch(id)
	}()
}

// applyBatch writes a batch's values to each of its objects that still
// lives, counting the write (MetadataWrites), and forgets the batch.
func (s *Server) applyBatch(id string) {
	b := s.st.get(kBatches, id)
	if b == nil {
		return
	}
	ot := str(b, "object_type")
	ids, _ := stringList(b["object_ids"])
	mv, _ := b["values"].(map[string]any)
	t := now()
	for _, oid := range ids {
		if s.st.live(ot, oid) == nil {
			continue
		}
		s.st.writeValues(ot, oid, mv, t)
	}
	s.st.del(kBatches, id)
	s.markDirty()
}

// resumeBatches schedules the batches a previous process accepted and did
// not apply.
func (s *Server) resumeBatches() {
	s.mu.Lock()
	pending := s.st.list(kBatches, nil)
	s.mu.Unlock()
	for _, b := range pending {
		s.scheduleBatch(str(b, "id"))
	}
}

// keyframesBulk starts one transcode job for the CLOSED files of many
// assets (BulkTranscodeSchema). Files the storage's transcode-ignore
// patterns match are left out, as the per-file call's 204 does; the job
// names the first asset as its object and every asset in related_objects.
// The spec declares a bare 200; the emulator says which job it started, as
// the per-file call does ({"job_id"}, null when every file was ignored).
func (s *Server) keyframesBulk(c *call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ot := str(c.body, "object_type"); ot != kAssets {
		c.invalid(map[string]string{"object_type": "The emulator transcodes assets only."})
		return
	}
	ids, ok := stringList(c.body["object_ids"])
	if !ok || len(ids) == 0 || len(ids) > 500 {
		c.invalid(map[string]string{"object_ids": "Between 1 and 500 asset ids are required."})
		return
	}
	formatName := str(c.body, "format_name")
	if formatName == "" {
		formatName = "ORIGINAL"
	}
	var fileIDs []string
	var related []any
	for _, id := range ids {
		a := s.st.live(kAssets, id)
		if a == nil {
			c.invalid(map[string]string{"object_ids": fmt.Sprintf("Asset %s does not exist.", id)})
			return
		}
		f := s.closedFileOf(id, formatName)
		if f == nil {
			c.invalid(map[string]string{"object_ids": fmt.Sprintf("Asset %s has no CLOSED file in format %s.", id, formatName)})
			return
		}
		if st := s.st.get(kStorages, str(f, "storage_id")); st != nil && ignoredByStorage(st, str(f, "name")) {
			continue
		}
		fileIDs = append(fileIDs, str(f, "id"))
		related = append(related, map[string]any{"object_id": id, "object_type": kAssets})
	}
	if len(fileIDs) == 0 {
		c.json(http.StatusOK, map[string]any{"job_id": nil})
		return
	}
	first, _ := related[0].(map[string]any)
	job := s.newJob(map[string]any{"type": "TRANSCODE", "status": "READY", "title": fmt.Sprintf("Keyframes for %d assets", len(fileIDs)),
		"object_type": kAssets, "object_id": first["object_id"], "related_objects": related}, c.user.ID)
	if p := num(c.body, "priority"); p > 0 {
		job["priority"] = p
	}
	job["_file_ids"] = fileIDs
	s.st.put(kJobs, job)
	if !s.commit(c) {
		return
	}
	s.startTranscode(str(job, "id"))
	c.json(http.StatusOK, map[string]any{"job_id": str(job, "id")})
}

// closedFileOf returns the newest CLOSED file of an asset's format named
// formatName, or nil.
func (s *Server) closedFileOf(assetID, formatName string) doc {
	var format doc
	for _, fm := range s.st.list(kFormats, func(d doc) bool { return str(d, "asset_id") == assetID && str(d, "name") == formatName }) {
		format = fm
	}
	if format == nil {
		return nil
	}
	var out doc
	for _, f := range s.st.list(kFiles, func(d doc) bool {
		return str(d, "asset_id") == assetID && str(d, "format_id") == str(format, "id") && str(d, "status") == "CLOSED"
	}) {
		out = f
	}
	return out
}

package emulator

import (
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// ---- users, auth ----

func (s *Server) userDoc(u *user, appID string) doc {
	return doc{
		"id": u.ID, "email": u.Email, "first_name": u.FirstName, "last_name": u.LastName,
		"type": u.Type, "status": u.Status, "is_admin": u.IsAdmin, "is_super_admin": false,
		"groups": []any{}, "app_id": appID, "date_created": u.Created, "date_modified": u.Created,
		"system_domain_id": nil, "photo": nil, "phone": nil, "description": nil,
	}
}

func (s *Server) userCurrent(c *call) { c.json(http.StatusOK, s.userDoc(c.user, c.tok.AppID)) }

func (s *Server) userCurrentRoles(c *call) {
	c.json(http.StatusOK, map[string]any{"objects": s.rolesOf(c.tok, c.user)})
}

func (s *Server) userHasRole(c *call) {
	s.mu.Lock()
	u := s.st.userByID(c.param("user_id"))
	var has bool
	if u != nil {
		for _, t := range s.st.Tokens {
			if t.UserID == u.ID && slices.Contains(s.rolesOf(t, u), c.param("role")) {
				has = true
			}
		}
		has = has || u.IsAdmin && slices.Contains(allSpecRoles(), c.param("role"))
	}
	s.mu.Unlock()
	if !has {
		c.fail(http.StatusNotFound, "User does not have this role")
		return
	}
	c.json(http.StatusOK, map[string]any{})
}

func (s *Server) authToken(c *call) { c.json(http.StatusOK, map[string]any{}) }

// ---- storages ----

// secretSettings are storage settings iconik never returns in clear.
var secretSettings = []string{"secret_key", "json_key", "connection_string", "authorization_token", "password", "account_key", "sas_token", "private_key"}

func renderStorage(d doc) doc {
	out := public(d)
	settings := map[string]any{}
	if m, ok := d["settings"].(map[string]any); ok {
		for k, v := range m {
			if slices.Contains(secretSettings, k) && v != "" && v != nil {
				v = "********"
			}
			settings[k] = v
		}
	}
	out["settings"] = settings
	return out
}

// inList reports whether a filter value (comma-separated list) admits v.
func inList(filter, v string) bool {
	if filter == "" {
		return true
	}
	return slices.Contains(strings.Split(filter, ","), v)
}

func (s *Server) storageList(c *call) {
	s.mu.Lock()
	docs := s.st.list(kStorages, func(d doc) bool {
		return inList(c.q.Get("purpose"), str(d, "purpose")) && inList(c.q.Get("method"), str(d, "method")) &&
			inList(c.q.Get("status"), str(d, "status")) && inList(c.q.Get("name"), str(d, "name")) &&
			inList(c.q.Get("id"), str(d, "id")) && inList(c.q.Get("ids"), str(d, "id"))
	})
	items := make([]any, len(docs))
	for i, d := range docs {
		items[i] = renderStorage(d)
	}
	s.mu.Unlock()
	c.pageList(items, false)
}

func (s *Server) storageGet(c *call) {
	s.getOne(c, kStorages, "storage_id", "Storage doesn't exist", renderStorage)
}

// getOne answers a GET of one object: 404 with missing when the id is unknown,
// else 200 with render(object). render runs under the lock, since the object
// is shared with requests that change it.
func (s *Server) getOne(c *call, kind, param, missing string, render func(doc) doc) {
	s.mu.Lock()
	var out doc
	if d := s.st.get(kind, c.param(param)); d != nil {
		out = render(d)
	}
	s.mu.Unlock()
	if out == nil {
		c.fail(http.StatusNotFound, missing)
		return
	}
	c.json(http.StatusOK, out)
}

func (s *Server) storagePermissions(c *call) {
	s.mu.Lock()
	d := s.st.get(kStorages, c.param("storage_id"))
	s.mu.Unlock()
	if d == nil {
		c.fail(http.StatusNotFound, "Storage does not exist")
		return
	}
	set, _ := d["settings"].(map[string]any)
	c.json(http.StatusOK, map[string]any{
		"read_access": boolean(set, "read"), "write_access": boolean(set, "write"),
		"delete_access": boolean(set, "delete"), "cors": true,
		"read_access_error": nil, "write_access_error": nil, "delete_access_error": nil,
		"cors_error": nil, "error_message": nil,
	})
}

func (s *Server) storageMatching(c *call) {
	s.mu.Lock()
	docs := s.st.list(kStorages, func(d doc) bool {
		return str(d, "purpose") == c.param("purpose") && str(d, "status") == "ACTIVE" && inList(c.q.Get("storage_id"), str(d, "id"))
	})
	s.mu.Unlock()
	if len(docs) == 0 {
		c.fail(http.StatusNotFound, "No matching storage exists")
		return
	}
	c.json(http.StatusOK, renderStorage(docs[0]))
}

// ---- collections ----

// visible reports whether a collection or asset created at d's time is
// already indexed, given the index lag fault.
func (s *Server) visible(d doc) bool {
	lag := s.opts.Faults.IndexLag
	if lag <= 0 {
		return true
	}
	t, ok := parseTimestamp(str(d, "date_created"))
	return !ok || time.Since(t) >= lag
}

func (s *Server) collectionCreate(c *call) {
	b := c.body
	s.mu.Lock()
	defer s.mu.Unlock()
	parentID := str(b, "parent_id")
	var parents []any
	if parentID != "" {
		p := s.st.live(kCollections, parentID)
		if p == nil {
			c.invalid(map[string]string{"parent_id": "Collection does not exist."})
			return
		}
		if ps, ok := p["parents"].([]any); ok {
			parents = append(parents, ps...)
		}
		parents = append(parents, parentID)
	}
	if sid := str(b, "storage_id"); sid != "" && s.st.get(kStorages, sid) == nil {
		c.invalid(map[string]string{"storage_id": "Storage does not exist."})
		return
	}
	isRoot := parentID == ""
	if v, ok := b["is_root"].(bool); ok {
		isRoot = v
	}
	status := str(b, "status")
	if status == "" {
		status = "ACTIVE"
	}
	t := now()
	inCollections := []any{}
	if parentID != "" {
		inCollections = []any{parentID}
	}
	if parents == nil {
		parents = []any{}
	}
	d := doc{
		"id": newID(), "title": b["title"], "parent_id": strPtr(parentID), "parents": parents,
		"in_collections": inCollections, "is_root": isRoot, "status": status,
		"external_id": b["external_id"], "category": b["category"], "storage_id": b["storage_id"],
		"custom_keyframe": b["custom_keyframe"], "custom_poster": b["custom_poster"],
		"keyframe_asset_ids": []any{}, "keyframes": []any{}, "object_type": "collections",
		"created_by_user": c.user.ID, "date_created": t, "date_modified": t,
		"date_deleted": nil, "deleted_by_user": nil, "favoured": false, "metadata": map[string]any{},
		"permissions": []any{"read", "write", "delete"}, "project_id": nil, "custom_order_status": "DISABLED",
	}
	s.st.put(kCollections, d)
	if parentID != "" {
		s.st.Contents[parentID] = append(s.st.Contents[parentID], content{ObjectID: str(d, "id"), ObjectType: kCollections, Added: time.Now()})
	}
	if !s.commit(c) {
		return
	}
	c.json(http.StatusCreated, public(d))
}

// commit records that a call changed the state (the caller holds s.mu).
// The answer the call writes next is held back by serveAPI until the change
// is on disk. It reports whether the call may answer (always, today).
func (s *Server) commit(c *call) bool {
	c.gen = s.commitLocked()
	return true
}

func (s *Server) collectionList(c *call) {
	s.mu.Lock()
	docs := s.st.list(kCollections, func(d doc) bool {
		if v := c.q.Get("is_root"); v != "" && (v == "true") != boolean(d, "is_root") {
			return false
		}
		if st := c.q.Get("status"); st != "" {
			return inList(st, str(d, "status"))
		}
		return str(d, "status") != "DELETED"
	})
	items := make([]any, len(docs))
	for i, d := range docs {
		items[i] = public(d)
	}
	s.mu.Unlock()
	c.pageList(items, true)
}

func (s *Server) collectionGet(c *call) {
	s.getOne(c, kCollections, "collection_id", "Collection does not exist", public)
}

func (s *Server) collectionDelete(c *call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.st.get(kCollections, c.param("collection_id"))
	if d == nil {
		c.fail(http.StatusNotFound, "Collection does not exist")
		return
	}
	s.deleteCollection(d, c.user.ID, now())
	if !s.commit(c) {
		return
	}
	c.noContent(http.StatusAccepted)
}

// deleteCollection moves a collection and the collections under it to the
// delete queue (its sub-collections are its folders: they go with it [INF]);
// assets stay, since an asset may belong to other collections too.
func (s *Server) deleteCollection(d doc, userID, at string) {
	d["status"], d["date_deleted"], d["deleted_by_user"] = "DELETED", at, userID
	for _, m := range s.st.Contents[str(d, "id")] {
		if m.ObjectType != kCollections {
			continue
		}
		if sub := s.st.get(kCollections, m.ObjectID); sub != nil && str(sub, "status") != "DELETED" {
			s.deleteCollection(sub, userID, at)
		}
	}
}

// liveMembers lists a collection's members that still exist and are not deleted.
func (s *Server) liveMembers(collID string) []doc {
	var out []doc
	for _, m := range s.st.Contents[collID] {
		d := s.st.get(m.ObjectType, m.ObjectID)
		if d != nil && str(d, "status") != "DELETED" {
			out = append(out, d)
		}
	}
	return out
}

func (s *Server) collectionPurge(c *call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := c.param("collection_id")
	d := s.st.get(kCollections, id)
	if d == nil {
		c.fail(http.StatusNotFound, "Collection does not exist")
		return
	}
	if len(s.liveMembers(id)) > 0 {
		c.fail(http.StatusForbidden, "Collection is not empty")
		return
	}
	s.st.del(kCollections, id)
	delete(s.st.Contents, id)
	s.removeMembership(id)
	if !s.commit(c) {
		return
	}
	c.json(http.StatusAccepted, map[string]any{"status": "PURGED", "job_id": nil})
}

// removeMembership takes an object out of every collection's contents.
func (s *Server) removeMembership(objectID string) {
	for coll, ms := range s.st.Contents {
		s.st.Contents[coll] = slices.DeleteFunc(ms, func(m content) bool { return m.ObjectID == objectID })
	}
}

func (s *Server) contentsList(c *call) {
	s.mu.Lock()
	id := c.param("collection_id")
	if s.st.live(kCollections, id) == nil {
		s.mu.Unlock()
		c.fail(http.StatusNotFound, "Collection does not exist")
		return
	}
	types := c.q.Get("object_types")
	lag := s.opts.Faults.IndexLag
	var items []any
	for _, m := range s.st.Contents[id] {
		if !inList(types, m.ObjectType) || !inList(c.q.Get("object_ids"), m.ObjectID) {
			continue
		}
		if lag > 0 && time.Since(m.Added) < lag {
			continue // the index has not caught up yet
		}
		d := s.st.get(m.ObjectType, m.ObjectID)
		if d == nil || str(d, "status") == "DELETED" {
			continue
		}
		if ext := c.q.Get("external_id"); ext != "" && str(d, "external_id") != ext {
			continue
		}
		out := public(d)
		out["object_type"] = m.ObjectType
		items = append(items, out)
	}
	s.mu.Unlock()
	c.pageList(items, false)
}

func (s *Server) contentsAdd(c *call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := c.param("collection_id")
	coll := s.st.live(kCollections, id)
	if coll == nil {
		c.fail(http.StatusNotFound, "Collection not found")
		return
	}
	objID, objType := str(c.body, "object_id"), str(c.body, "object_type")
	if objType != kAssets && objType != kCollections {
		c.invalid(map[string]string{"object_type": "Must be one of: assets, collections."})
		return
	}
	obj := s.st.get(objType, objID)
	if obj == nil {
		c.invalid(map[string]string{"object_id": "Object does not exist."})
		return
	}
	s.addMember(id, objID, objType, obj)
	if !s.commit(c) {
		return
	}
	c.json(http.StatusCreated, map[string]any{"collection_id": id, "object_id": objID, "object_type": objType, "date_created": now()})
}

// addMember puts an object into a collection once.
func (s *Server) addMember(collID, objID, objType string, obj doc) {
	for _, m := range s.st.Contents[collID] {
		if m.ObjectID == objID {
			return
		}
	}
	s.st.Contents[collID] = append(s.st.Contents[collID], content{ObjectID: objID, ObjectType: objType, Added: time.Now()})
	in, _ := obj["in_collections"].([]any)
	if !slices.Contains(in, any(collID)) {
		obj["in_collections"] = append(in, collID)
	}
}

func (s *Server) collectionFullPath(c *call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.st.get(kCollections, c.param("collection_id"))
	if d == nil {
		c.fail(http.StatusNotFound, "Collection does not exist")
		return
	}
	var titles []string
	if ps, ok := d["parents"].([]any); ok {
		for _, p := range ps {
			if pd := s.st.get(kCollections, p.(string)); pd != nil {
				titles = append(titles, str(pd, "title"))
			}
		}
	}
	titles = append(titles, str(d, "title"))
	c.json(http.StatusOK, strings.Join(titles, "/"))
}

// ---- assets ----

var assetPatchable = []string{"title", "type", "status", "external_id", "category", "is_online", "is_blocked",
	"custom_keyframe", "custom_poster", "warning", "analyze_status", "archive_status", "external_link", "site_name",
	"face_recognition_status", "time_start_milliseconds", "time_end_milliseconds"}

func (s *Server) assetCreate(c *call) {
	b := c.body
	s.mu.Lock()
	defer s.mu.Unlock()
	collID := str(b, "collection_id")
	if collID != "" && s.st.live(kCollections, collID) == nil {
		c.invalid(map[string]string{"collection_id": "Collection does not exist."})
		return
	}
	t := now()
	versionID := newID()
	d := doc{
		"id": newID(), "title": b["title"], "type": "ASSET", "status": "ACTIVE", "is_online": false, "is_blocked": false,
		"external_id": b["external_id"], "category": b["category"], "analyze_status": "N/A", "archive_status": "NOT_ARCHIVED",
		"face_recognition_status": "N/A", "custom_keyframe": nil, "custom_poster": nil, "warning": nil,
		"created_by_user": c.user.ID, "updated_by_user": c.user.ID, "date_created": t, "date_imported": t, "date_modified": t,
		"date_deleted": nil, "deleted_by_user": nil, "in_collections": []any{}, "person_ids": []any{},
		"has_unconfirmed_persons": false, "favoured": false, "original_asset_id": nil, "original_version_id": nil,
		"original_segment_id": nil, "external_link": nil, "site_name": nil, "default_version_id": versionID,
		"versions": []any{map[string]any{
			"id": versionID, "version_number": 1, "status": "ACTIVE", "analyze_status": "N/A",
			"archive_status": "NOT_ARCHIVED", "transcribe_status": "N/A", "face_recognition_status": "N/A",
			"created_by_user": c.user.ID, "date_created": t, "is_online": false, "has_unconfirmed_persons": false,
			"person_ids": []any{},
		}},
	}
	for _, k := range assetPatchable {
		if v, ok := b[k]; ok && v != nil {
			d[k] = v
		}
	}
	d["collection_id"] = strPtr(collID)
	s.st.put(kAssets, d)
	if collID != "" && c.queryBool("assign_to_collection", false) {
		s.addMember(collID, str(d, "id"), kAssets, d)
	}
	if !s.commit(c) {
		return
	}
	c.json(http.StatusCreated, public(d))
}

func (s *Server) assetGet(c *call) {
	s.getOne(c, kAssets, "asset_id", "Asset does not exist", public)
}

func (s *Server) assetPatch(c *call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.st.get(kAssets, c.param("asset_id"))
	if d == nil {
		c.fail(http.StatusNotFound, "Asset does not exist")
		return
	}
	for _, k := range assetPatchable {
		if v, ok := c.body[k]; ok {
			if k == "title" && v == nil {
				c.invalid(map[string]string{"title": "Field may not be null."})
				return
			}
			d[k] = v
		}
	}
	d["date_modified"], d["updated_by_user"] = now(), c.user.ID
	if !s.commit(c) {
		return
	}
	c.json(http.StatusOK, public(d))
}

func (s *Server) assetDelete(c *call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.st.get(kAssets, c.param("asset_id"))
	if d == nil {
		c.fail(http.StatusNotFound, "Asset does not exist")
		return
	}
	d["status"], d["date_deleted"], d["deleted_by_user"] = "DELETED", now(), c.user.ID
	if !s.commit(c) {
		return
	}
	c.noContent(http.StatusNoContent)
}

func (s *Server) assetPurge(c *call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := c.param("asset_id")
	if s.st.get(kAssets, id) == nil {
		c.fail(http.StatusNotFound, "Asset does not exist")
		return
	}
	for _, kind := range []string{kFormats, kFileSets, kFiles, kKeyframes} {
		for _, d := range s.st.list(kind, func(d doc) bool { return str(d, "asset_id") == id }) {
			s.st.del(kind, str(d, "id"))
			if kind == kKeyframes {
				_ = os.Remove(filepath.Join(s.keyframeDir(), str(d, "id")+".jpg"))
			}
		}
	}
	for _, d := range s.st.list(kValues, func(d doc) bool { return str(d, "_object_id") == id }) {
		s.st.del(kValues, str(d, "id"))
	}
	s.st.del(kAssets, id)
	s.removeMembership(id)
	if !s.commit(c) {
		return
	}
	c.noContent(http.StatusNoContent)
}

// assetDeleteUploads drops the asset's files that never closed (the client's
// cleanup after a failed delivery), aborting what the data plane can abort.
func (s *Server) assetDeleteUploads(c *call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := c.param("asset_id")
	if s.st.get(kAssets, id) == nil {
		c.fail(http.StatusNotFound, "Asset does not exist")
		return
	}
	for _, f := range s.st.list(kFiles, func(d doc) bool { return str(d, "asset_id") == id && str(d, "status") != "CLOSED" }) {
		s.st.del(kFiles, str(f, "id"))
	}
	if !s.commit(c) {
		return
	}
	c.noContent(http.StatusNoContent)
}

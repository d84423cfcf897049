package iconik

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"testing"
)

// pagedServer serves "/API/files/v1/storages/" as a page list of 5 storages, 2 per page, with
// next_url written by nextURL (absolute or path), and records the hosts and queries seen.
func pagedServer(t *testing.T, nextURL func(srvURL string, page int) string) (*httptest.Server, *[]string) {
	t.Helper()
	var mu sync.Mutex
	var seen []string
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.URL.RawQuery)
		mu.Unlock()
		pg, _ := strconv.Atoi(r.URL.Query().Get("page"))
		if pg == 0 {
			pg = 1
		}
		if pg > 3 {
			w.WriteHeader(404)
			w.Write([]byte(`{"errors": ["Requested page does not exist"]}`))
			return
		}
		var objs []map[string]string
		for i := (pg-1)*2 + 1; i <= min(pg*2, 5); i++ {
			objs = append(objs, map[string]string{"id": fmt.Sprint("s", i), "name": "n", "method": "S3", "purpose": "FILES"})
		}
		env := map[string]any{"objects": objs, "page": pg, "pages": 3, "per_page": 2, "total": 5}
		if pg < 3 {
			env["next_url"] = nextURL(srv.URL, pg+1)
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(env)
	}))
	t.Cleanup(srv.Close)
	return srv, &seen
}

func TestPageListFollowsNextURL(t *testing.T) {
	cases := []struct {
		name string
		next func(srvURL string, page int) string
	}{
		{"path next_url", func(_ string, p int) string { return fmt.Sprintf("/API/files/v1/storages/?page=%d&per_page=2", p) }},
		{"absolute next_url", func(u string, p int) string { return fmt.Sprintf("%s/API/files/v1/storages/?page=%d&per_page=2", u, p) }},
		{"absolute next_url of another host is joined to the base", func(_ string, p int) string {
			return fmt.Sprintf("https://elsewhere.invalid/API/files/v1/storages/?page=%d&per_page=2", p)
		}},
		{"no next_url: page numbers", func(string, int) string { return "" }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv, _ := pagedServer(t, tc.next)
			c := newTestClient(t, srv, nil)
			var ids []string
			for s, err := range c.StorageList(context.Background(), StorageListParams{PerPage: 2}) {
				if err != nil {
					t.Fatal(err)
				}
				ids = append(ids, s.ID)
			}
			if want := []string{"s1", "s2", "s3", "s4", "s5"}; !slices.Equal(ids, want) {
				t.Fatalf("ids = %v, want %v", ids, want)
			}
		})
	}
}

func TestPageListStopsWhenTheLoopBreaks(t *testing.T) {
	srv, seen := pagedServer(t, func(_ string, p int) string { return fmt.Sprintf("/API/files/v1/storages/?page=%d", p) })
	c := newTestClient(t, srv, nil)
	for range c.StorageList(context.Background(), StorageListParams{}) {
		break
	}
	if len(*seen) != 1 {
		t.Fatalf("fetched %d pages after break, want 1", len(*seen))
	}
}

func TestPageListFirstPage404IsAnError(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(404)
		w.Write([]byte(`{"errors": ["Collection does not exist"]}`))
	}))
	defer srv.Close()
	c := newTestClient(t, srv, nil)
	_, err := Collect(c.CollectionContentsList(context.Background(), "nope", CollectionContentsListParams{}))
	if !IsNotFound(err) {
		t.Fatalf("err = %v, want a 404 *Error", err)
	}
}

// cursorServer serves n objects keyed key0..key(n-1) after the cursor parameter.
func cursorServer(t *testing.T, n int, param, keyField string, capPerPage int) (*httptest.Server, *[]string) {
	t.Helper()
	var mu sync.Mutex
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		mu.Lock()
		seen = append(seen, q.Get(param))
		mu.Unlock()
		per, _ := strconv.Atoi(q.Get("per_page"))
		if capPerPage > 0 && per > capPerPage {
			per = capPerPage
		}
		start := 0
		if after := q.Get(param); after != "" {
			start, _ = strconv.Atoi(after[len("key"):])
			start++
		}
		objs := []map[string]any{}
		for i := start; i < n && len(objs) < per; i++ {
			objs = append(objs, map[string]any{keyField: fmt.Sprint("key", i), "type": "KEYFRAME", "label": "l", "field_type": "string"})
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"objects": objs, "per_page": per})
	}))
	t.Cleanup(srv.Close)
	return srv, &seen
}

func TestCursorLists(t *testing.T) {
	t.Run("last_id over keyframes", func(t *testing.T) {
		srv, seen := cursorServer(t, 5, "last_id", "id", 0)
		c := newTestClient(t, srv, nil)
		ks, err := Collect(c.KeyframeList(context.Background(), "a1", KeyframeListParams{PerPage: 2}))
		if err != nil || len(ks) != 5 || ks[4].ID != "key4" {
			t.Fatalf("got %d keyframes, err %v", len(ks), err)
		}
		if want := []string{"", "key1", "key3"}; !slices.Equal(*seen, want) {
			t.Errorf("cursors sent %q, want %q", *seen, want)
		}
	})
	t.Run("exact multiple ends on an empty page", func(t *testing.T) {
		srv, seen := cursorServer(t, 4, "last_id", "id", 0)
		c := newTestClient(t, srv, nil)
		ks, err := Collect(c.KeyframeList(context.Background(), "a1", KeyframeListParams{PerPage: 2}))
		if err != nil || len(ks) != 4 || len(*seen) != 3 {
			t.Fatalf("got %d keyframes in %d requests, err %v", len(ks), len(*seen), err)
		}
	})
	t.Run("server capping per_page does not end the list early", func(t *testing.T) {
		srv, _ := cursorServer(t, 7, "last_id", "id", 3)
		c := newTestClient(t, srv, nil)
		ks, err := Collect(c.FileList(context.Background(), "a1"))
		if err != nil || len(ks) != 7 {
			t.Fatalf("got %d files, err %v", len(ks), err)
		}
	})
	t.Run("last_field_name over metadata fields", func(t *testing.T) {
		srv, seen := cursorServer(t, 3, "last_field_name", "name", 0)
		c := newTestClient(t, srv, nil)
		fs, err := Collect(c.MetadataFieldList(context.Background(), MetadataFieldListParams{PerPage: 2}))
		if err != nil || len(fs) != 3 || fs[2].Name != "key2" {
			t.Fatalf("got %v, err %v", fs, err)
		}
		if want := []string{"", "key1"}; !slices.Equal(*seen, want) {
			t.Errorf("cursors sent %q, want %q", *seen, want)
		}
	})
}

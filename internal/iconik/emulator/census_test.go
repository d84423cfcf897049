package emulator_test

import (
	"slices"
	"testing"

	"github.com/ferryhq/ferry/internal/iconik/emulator"
	"github.com/ferryhq/ferry/internal/iconik/emulator/emulatortest"
)

// TestDuplicatesAreFoundAcrossTheWholeTenant creates objects once and
// twice, in and out of collections, and checks exactly the doubles are
// listed, by the running server and from its data directory alike.
func TestDuplicatesAreFoundAcrossTheWholeTenant(t *testing.T) {
	dir := t.TempDir()
	e := emulatortest.Start(t, emulator.Options{DataDir: dir})
	c := newClient(t, e, "admin")
	coll := func(title, parent string) string {
		body := map[string]any{"title": title}
		if parent != "" {
			body["parent_id"] = parent
		}
		return c.must(201, c.do("POST", "/API/assets/v1/collections/", body), "collection "+title).str("id")
	}
	root := coll("Portal Downloads", "")
	coll("Portal Downloads", "") // a second root of the same title
	portal := coll("Crash", root)
	coll("Crash", root)   // a second portal-level collection
	coll("Crash", portal) // same title, other parent: not a duplicate
	asset := func(title, ext string) string {
		return c.must(201, c.do("POST", "/API/assets/v1/assets/", map[string]any{"title": title, "external_id": ext}), "asset").str("id")
	}
	asset("a", "ferry-file-1")
	asset("a again, in no collection", "ferry-file-1")
	asset("b", "ferry-file-2")
	twoFiles, _ := c.newFile("s3", "d", "x.bin", 3)
	c.must(201, c.do("POST", "/API/files/v1/assets/"+twoFiles+"/files/", map[string]any{
		"original_name": "x.bin", "directory_path": "d", "size": 3, "type": "FILE", "storage_id": c.storageID("s3")}), "second file")
	c.must(201, c.do("POST", "/API/files/v1/assets/"+twoFiles+"/formats/", map[string]any{
		"name": "ORIGINAL", "metadata": []any{map[string]any{"internet_media_type": "application/octet-stream"}}, "storage_methods": []string{"S3"}}), "second format")
	oneFile, _ := c.newFile("s3", "d", "y.bin", 3)
	for range 2 {
		c.must(201, c.do("POST", "/API/jobs/v1/jobs/", map[string]any{"title": "t", "type": "TRANSFER", "status": "STARTED",
			"object_type": "assets", "object_id": oneFile}), "transfer job")
	}

	want := []string{
		"2 assets with external_id ferry-file-1",
		`2 collections titled "Crash" under "` + root + `"`,
		`2 collections titled "Portal Downloads" under ""`,
		"2 files of asset " + twoFiles,
		"2 formats \"ORIGINAL\" of asset " + twoFiles,
		"2 jobs TRANSFER of assets " + oneFile,
	}
	got := e.Duplicates()
	if !slices.Equal(got, want) {
		t.Fatalf("duplicates\n%q\nwant\n%q", got, want)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	fromDisk, err := emulator.DuplicatesIn(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(fromDisk, want) {
		t.Fatalf("duplicates read from %s\n%q\nwant\n%q", dir, fromDisk, want)
	}
}

package delivery_test

import (
	"encoding/json"
	"testing"

	"github.com/ferryhq/ferry/internal/db"
)

// TestRiverJobsNameThePackageAndFile: an operator reading River UI
// (/admin/jobs) sees which package and file each delivery job is about, not
// only ids: the file jobs carry the package name and the file's path, the
// settle job the package name.
func TestRiverJobsNameThePackageAndFile(t *testing.T) {
	e := newEnv(t, envOptions{})
	conn := e.connect("c", "s3")
	e.createPortal("Names", conn.ID)
	h := e.newPackage("names", "Rushes <day 1>", "n@example.com")
	e.put(h, "Card A/clip é.txt", []byte("bytes\n"))
	e.finalize(h)
	e.settled(h, conn.ID)

	type args struct {
		Package string `json:"package"`
		Path    string `json:"path"`
	}
	got := map[string][]args{}
	err := e.store.InTx(e.ctx, func(tx db.Tx) error {
		rows, err := tx.SQLTx().QueryContext(e.ctx, "SELECT kind, json(args) FROM river_job ORDER BY id" /* SQLite keeps args as JSONB */)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var kind string
			var raw []byte
			if err := rows.Scan(&kind, &raw); err != nil {
				return err
			}
			var a args
			if err := json.Unmarshal(raw, &a); err != nil {
				return err
			}
			got[kind] = append(got[kind], a)
		}
		return rows.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	if f := got["ferry_delivery_file"]; len(f) != 1 || f[0] != (args{"Rushes <day 1>", "Card A/clip é.txt"}) {
		t.Errorf("file jobs' args: %+v", f)
	}
	if s := got["ferry_delivery_settled"]; len(s) == 0 || s[0].Package != "Rushes <day 1>" {
		t.Errorf("settle jobs' args: %+v", s)
	}
}

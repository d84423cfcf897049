package send

import (
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// TestJournalReplayRestoresUploadsOfThisPackageOnly writes a snapshot and a
// journal as a killed sender leaves them, and checks what loading restores.
func TestJournalReplayRestoresUploadsOfThisPackageOnly(t *testing.T) {
	cases := []struct {
		name      string
		journal   string
		wantWhole string // a.mov's URL
		wantPart1 string // big.mxf's part 1 URL
		wantFinal string // big.mxf's final URL
	}{
		{"whole upload, partial and final of this package",
			`{"pkg":"P","file":"a.mov","part":-1,"url":"http://s/u/1"}` + "\n" +
				`{"pkg":"P","file":"big.mxf","part":1,"url":"http://s/u/2"}` + "\n" +
				`{"pkg":"P","file":"big.mxf","part":-1,"url":"http://s/u/3"}` + "\n",
			"http://s/u/1", "http://s/u/2", "http://s/u/3"},
		{"a later record of the same upload wins",
			`{"pkg":"P","file":"a.mov","part":-1,"url":"http://s/u/1"}` + "\n" +
				`{"pkg":"P","file":"a.mov","part":-1,"url":"http://s/u/9"}` + "\n",
			"http://s/u/9", "", ""},
		{"records of an older package are ignored",
			`{"pkg":"OLD","file":"a.mov","part":-1,"url":"http://s/u/1"}` + "\n",
			"", "", ""},
		{"records of unknown files and parts are ignored",
			`{"pkg":"P","file":"gone.mov","part":-1,"url":"http://s/u/1"}` + "\n" +
				`{"pkg":"P","file":"big.mxf","part":7,"url":"http://s/u/2"}` + "\n",
			"", "", ""},
		{"a torn last line ends the replay",
			`{"pkg":"P","file":"a.mov","part":-1,"url":"http://s/u/1"}` + "\n" +
				`{"pkg":"P","file":"big.mxf","part":1,"url":"http://s/u/2"`,
			"http://s/u/1", "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "k.json")
			st := &State{Version: stateVersion, Target: "T", PackageID: "P", path: path, Files: map[string]*FileState{
				"a.mov":   {Size: 10},
				"big.mxf": {Size: 100, Parts: splitParts(100, 2)},
			}}
			if err := st.save(); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(st.journalPath(), []byte(c.journal), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := loadState(path, "T")
			if err != nil {
				t.Fatal(err)
			}
			if w, p1, f := got.Files["a.mov"].URL, got.Files["big.mxf"].Parts[1].URL, got.Files["big.mxf"].URL; w != c.wantWhole || p1 != c.wantPart1 || f != c.wantFinal {
				t.Errorf("restored a.mov %q, big.mxf part 1 %q, final %q; want %q, %q, %q", w, p1, f, c.wantWhole, c.wantPart1, c.wantFinal)
			}
			if err := got.flush(); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(st.journalPath()); !os.IsNotExist(err) {
				t.Errorf("the journal is still there after the snapshot was saved (stat: %v)", err)
			}
		})
	}
}

// A throttled save writes its snapshot outside the state lock: while its
// fsync is slow, other streams' updates go on, and a newer snapshot written
// meanwhile is not overwritten by the older one when it finally lands.
func TestASlowSaveHoldsUpNoOtherUpdateAndNeverWinsOverANewerOne(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k.json")
	st := &State{Version: stateVersion, Target: "T", PackageID: "P", path: path, Files: map[string]*FileState{
		"a.mov": {Size: 10},
	}}
	held, release := make(chan struct{}), make(chan struct{})
	var firstSave atomic.Bool
	beforeSnapshotWrite = func() {
		if firstSave.CompareAndSwap(false, true) { // the first save only: not sync.Once, whose other callers wait
			close(held)
			<-release
		}
	}
	t.Cleanup(func() { beforeSnapshotWrite = func() {} })

	first := make(chan error, 1)
	go func() { first <- st.update(func() { st.Files["a.mov"].Parts = []Part{{Sent: 1}} }) }()
	<-held // the first update took its snapshot and is about to write it

	other := make(chan error, 1)
	go func() { other <- st.update(func() { st.Files["a.mov"].Parts = []Part{{Sent: 2}} }) }()
	select {
	case err := <-other:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second): // a deadlock guard, not a timing assertion
		t.Fatal("an update waited for another stream's save to reach the disk")
	}
	if err := st.flush(); err != nil { // the newer snapshot, written while the first is held
		t.Fatal(err)
	}
	close(release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	got, err := loadState(path, "T")
	if err != nil {
		t.Fatal(err)
	}
	if p := got.Files["a.mov"].Parts; len(p) != 1 || p[0].Sent != 2 {
		t.Errorf("the state on disk holds %+v; want the newer snapshot (sent 2), not the older one written after it", p)
	}
}

// Package storetest is the conformance suite every upload store (store.Store) passes: resumable
// writes in several PATCHes, hash state that survives a restart, concatenation of partials read
// across their boundaries, abandon/acknowledge/remove and listing. A bug found in one store
// becomes a case here for all of them. It drives the stores through tusd's interfaces, as the
// tus handler does.
package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/tus/tusd/v2/pkg/handler"

	"github.com/ferryhq/ferry/internal/ingest/store"
)

// Backing opens a store instance on one backing (a directory, a bucket and prefix). Each call
// returns a new instance, as a restarted process or another replica would have.
type Backing func(t *testing.T) store.Store

// Run runs the suite; newBacking makes a fresh, empty backing for each case.
func Run(t *testing.T, newBacking func(t *testing.T) Backing) {
	cases := []struct {
		name string
		fn   func(t *testing.T, open Backing)
	}{
		{"ResumableWritesAcrossRestarts", testResumableWrites},
		{"WriteAtWrongOffsetIsRefused", testWrongOffset},
		{"InterruptedPatchKeepsWhatArrived", testInterruptedPatch},
		{"ConcatenatesPartialsWithoutCopy", testConcat},
		{"ConcatRefusesBadPartials", testConcatRefusals},
		{"AbandonAcknowledgeRemove", testAbandonAckRemove},
		{"IDsListsEveryUpload", testIDs},
		{"OpenRefusesUnfinishedAndMissing", testOpenRefusals},
		{"DeferredLength", testDeferredLength},
		{"EmptyUpload", testEmpty},
		{"KeepsTokenHashAndMetadata", testStorage},
		{"CheckWritable", testCheckWritable},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.fn(t, newBacking(t)) })
	}
}

const mib = 1 << 20

// Sizes straddle S3's 5 MiB minimum part size, so object stores meet short tails, parts made
// of a tail and new bytes, and a short last part.
var patches = []int{1*mib + 3, 7 * mib, 5*mib + 14}

func data(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func create(t *testing.T, s store.Store, info handler.FileInfo) string {
	t.Helper()
	if info.ID == "" {
		info.ID = store.NewID()
	}
	if _, err := asCore(t, s).NewUpload(context.Background(), info); err != nil {
		t.Fatalf("NewUpload: %v", err)
	}
	return info.ID
}

func asCore(t *testing.T, s store.Store) handler.DataStore {
	t.Helper()
	c := handler.NewStoreComposer()
	s.UseIn(c)
	if !c.UsesTerminater || !c.UsesConcater || !c.UsesLengthDeferrer {
		t.Fatalf("the store must plug in terminate, concatenate and deferred length")
	}
	return c.Core
}

func composer(s store.Store) *handler.StoreComposer {
	c := handler.NewStoreComposer()
	s.UseIn(c)
	return c
}

// patch writes b at off as one PATCH does, finishing the upload when it is complete.
func patch(t *testing.T, s store.Store, id string, off int64, src io.Reader) (int64, error) {
	t.Helper()
	ctx := context.Background()
	u, err := asCore(t, s).GetUpload(ctx, id)
	if err != nil {
		t.Fatalf("GetUpload(%s): %v", id, err)
	}
	n, err := u.WriteChunk(ctx, off, src)
	if err != nil {
		return n, err
	}
	info, err := u.GetInfo(ctx)
	if err != nil {
		t.Fatalf("GetInfo: %v", err)
	}
	if info.Offset != off+n {
		t.Fatalf("after writing %d bytes at %d the upload says offset %d", n, off, info.Offset)
	}
	if store.Finished(info) {
		if err := u.FinishUpload(ctx); err != nil {
			t.Fatalf("FinishUpload: %v", err)
		}
	}
	return n, nil
}

func mustPatch(t *testing.T, s store.Store, id string, off int64, b []byte) {
	t.Helper()
	n, err := patch(t, s, id, off, bytes.NewReader(b))
	if err != nil || n != int64(len(b)) {
		t.Fatalf("writing %d bytes at %d: wrote %d, %v", len(b), off, n, err)
	}
}

func offset(t *testing.T, s store.Store, id string) int64 {
	t.Helper()
	info, err := s.Info(id)
	if err != nil {
		t.Fatalf("Info(%s): %v", id, err)
	}
	return info.Offset
}

func readAll(t *testing.T, s store.Store, id string) []byte {
	t.Helper()
	b, err := s.Open(id)
	if err != nil {
		t.Fatalf("Open(%s): %v", id, err)
	}
	defer b.Close()
	out := make([]byte, b.Size())
	if n, err := b.ReadAt(out, 0); n != len(out) || (err != nil && err != io.EOF) {
		t.Fatalf("ReadAt whole upload: %d of %d bytes, %v", n, len(out), err)
	}
	return out
}

func single(total int) handler.FileInfo {
	return handler.FileInfo{Size: int64(total), MetaData: handler.MetaData{"filename": "a.mov"}}
}

func testResumableWrites(t *testing.T, open Backing) {
	total := 0
	for _, p := range patches {
		total += p
	}
	want := data(total, 1)
	id := create(t, open(t), single(total))
	off := 0
	for i, p := range patches {
		s := open(t) // every PATCH reaches a new instance: a restart, or another replica
		if got := offset(t, s, id); got != int64(off) {
			t.Fatalf("before PATCH %d the upload is at %d, want %d", i, got, off)
		}
		if _, err := s.SHA256(id); !errors.Is(err, store.ErrNotFinished) {
			t.Fatalf("SHA256 of an unfinished upload: %v, want ErrNotFinished", err)
		}
		mustPatch(t, s, id, int64(off), want[off:off+p])
		off += p
	}
	s := open(t)
	sum, err := s.SHA256(id)
	if err != nil {
		t.Fatalf("SHA256: %v", err)
	}
	if w := sha256.Sum256(want); !bytes.Equal(sum, w[:]) {
		t.Fatalf("SHA256 after restarts = %x, want %x", sum, w)
	}
	if err := s.SetVerified(id, sum); err != nil {
		t.Fatalf("SetVerified: %v", err)
	}
	if got := readAll(t, open(t), id); !bytes.Equal(got, want) {
		t.Fatalf("the bytes read back differ from the bytes sent")
	}
}

func testWrongOffset(t *testing.T, open Backing) {
	s := open(t)
	id := create(t, s, single(10))
	mustPatch(t, s, id, 0, []byte("abc"))
	if _, err := patch(t, open(t), id, 1, bytes.NewReader([]byte("xyz"))); !errors.Is(err, handler.ErrMismatchOffset) {
		t.Fatalf("a write at the wrong offset: %v, want ErrMismatchOffset", err)
	}
	if got := offset(t, open(t), id); got != 3 {
		t.Fatalf("offset after a refused write = %d, want 3", got)
	}
}

// failingReader hands out its bytes, then fails as a dropped connection does.
type failingReader struct{ r io.Reader }

var errDropped = errors.New("connection dropped")

func (f *failingReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err == io.EOF {
		return n, errDropped
	}
	return n, err
}

func testInterruptedPatch(t *testing.T, open Backing) {
	cases := []struct {
		name string
		sent int // bytes that arrive before the connection drops
	}{
		{"short of the minimum part size", 2*mib + 5},
		{"past the minimum part size", 6*mib + 7},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			total := 9*mib + 1
			want := data(total, uint64(10+i))
			id := create(t, open(t), single(total))
			n, err := patch(t, open(t), id, 0, &failingReader{bytes.NewReader(want[:tc.sent])})
			if err == nil {
				t.Fatalf("a write whose body failed returned no error")
			}
			if n != int64(tc.sent) {
				t.Fatalf("a write whose body failed after %d bytes kept %d", tc.sent, n)
			}
			s := open(t)
			if got := offset(t, s, id); got != int64(tc.sent) {
				t.Fatalf("after a dropped PATCH the upload is at %d, want %d (what arrived is kept)", got, tc.sent)
			}
			mustPatch(t, s, id, int64(tc.sent), want[tc.sent:])
			sum, err := open(t).SHA256(id)
			if w := sha256.Sum256(want); err != nil || !bytes.Equal(sum, w[:]) {
				t.Fatalf("SHA256 after a resumed PATCH = %x, %v; want %x", sum, err, w)
			}
			if got := readAll(t, open(t), id); !bytes.Equal(got, want) {
				t.Fatalf("the bytes read back differ from the bytes sent")
			}
		})
	}
}

func makePartials(t *testing.T, s store.Store, sizes []int, seed uint64) ([]string, []byte) {
	t.Helper()
	var ids []string
	var whole []byte
	for i, n := range sizes {
		b := data(n, seed+uint64(i))
		id := create(t, s, handler.FileInfo{Size: int64(n), IsPartial: true})
		if n > 0 {
			mustPatch(t, s, id, 0, b)
		}
		ids = append(ids, id)
		whole = append(whole, b...)
	}
	return ids, whole
}

func concat(t *testing.T, s store.Store, ids []string) (string, error) {
	t.Helper()
	ctx := context.Background()
	c := composer(s)
	var size int64
	var ups []handler.Upload
	for _, id := range ids {
		u, err := c.Core.GetUpload(ctx, id)
		if err != nil {
			t.Fatalf("GetUpload(%s): %v", id, err)
		}
		info, _ := u.GetInfo(ctx)
		size += info.Size
		ups = append(ups, u)
	}
	fid := store.NewID()
	f, err := c.Core.NewUpload(ctx, handler.FileInfo{ID: fid, Size: size, IsFinal: true, PartialUploads: ids})
	if err != nil {
		t.Fatalf("NewUpload(final): %v", err)
	}
	return fid, c.Concater.AsConcatableUpload(f).ConcatUploads(ctx, ups)
}

func testConcat(t *testing.T, open Backing) {
	sizes := []int{5*mib + 1, 1, 6*mib + 5, 3}
	ids, whole := makePartials(t, open(t), sizes, 100)
	fid, err := concat(t, open(t), ids)
	if err != nil {
		t.Fatalf("ConcatUploads: %v", err)
	}
	s := open(t)
	info, err := s.Info(fid)
	if err != nil || !store.Finished(info) || info.Size != int64(len(whole)) {
		t.Fatalf("the final upload after concatenation: %+v, %v; want finished at %d bytes", info, err, len(whole))
	}
	for _, id := range ids {
		if got, err := s.FinalOf(id); err != nil || got != fid {
			t.Fatalf("FinalOf(%s) = %q, %v; want %q", id, got, err, fid)
		}
	}
	b, err := s.Open(fid)
	if err != nil {
		t.Fatalf("Open(final): %v", err)
	}
	defer b.Close()
	if b.Size() != int64(len(whole)) {
		t.Fatalf("the final's blob holds %d bytes, want %d", b.Size(), len(whole))
	}
	b1 := int64(sizes[0])
	b3 := b1 + 1 + int64(sizes[2])
	ranges := []struct {
		name   string
		off, n int64
	}{
		{"inside the first partial", 10, 1000},
		{"across the first boundary", b1 - 5, 10},
		{"the one-byte partial alone", b1, 1},
		{"across two boundaries", b1 - 1, 3},
		{"across the last boundary", b3 - 2, 5},
		{"the whole final", 0, int64(len(whole))},
	}
	for _, r := range ranges {
		t.Run(r.name, func(t *testing.T) {
			p := make([]byte, r.n)
			n, err := b.ReadAt(p, r.off)
			if n != int(r.n) || (err != nil && !(err == io.EOF && r.off+r.n == b.Size())) {
				t.Fatalf("ReadAt(%d bytes at %d) = %d, %v", r.n, r.off, n, err)
			}
			if !bytes.Equal(p, whole[r.off:r.off+r.n]) {
				t.Fatalf("ReadAt(%d bytes at %d) returned other bytes than were sent", r.n, r.off)
			}
		})
	}
	t.Run("past the end", func(t *testing.T) {
		p := make([]byte, 10)
		n, err := b.ReadAt(p, b.Size()-4)
		if n != 4 || err != io.EOF || !bytes.Equal(p[:4], whole[len(whole)-4:]) {
			t.Fatalf("ReadAt past the end = %d, %v; want the last 4 bytes and io.EOF", n, err)
		}
	})

	if err := s.Remove(ids[1]); !errors.Is(err, store.ErrPartialProtected) {
		t.Fatalf("Remove(a partial of a final) = %v, want ErrPartialProtected", err)
	}
	if err := open(t).Remove(fid); err != nil {
		t.Fatalf("Remove(final): %v", err)
	}
	s = open(t)
	for _, id := range append([]string{fid}, ids...) {
		if _, err := s.Info(id); !errors.Is(err, handler.ErrNotFound) {
			t.Fatalf("Info(%s) after removing the final = %v, want ErrNotFound (a final takes its partials with it)", id, err)
		}
	}
}

func testConcatRefusals(t *testing.T, open Backing) {
	s := open(t)
	ids, _ := makePartials(t, s, []int{10, 20}, 200)
	whole := create(t, s, single(5))
	mustPatch(t, s, whole, 0, []byte("12345"))
	cases := []struct {
		name string
		ids  []string
		want error
	}{
		{"a whole upload is no partial", []string{ids[0], whole}, store.ErrNotPartial},
		{"a partial listed twice", []string{ids[0], ids[0]}, store.ErrPartialRepeated},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := concat(t, open(t), tc.ids); !errors.Is(err, tc.want) {
				t.Fatalf("ConcatUploads = %v, want %v", err, tc.want)
			}
		})
	}
	t.Run("a partial another final took", func(t *testing.T) {
		if _, err := concat(t, open(t), ids); err != nil {
			t.Fatalf("ConcatUploads: %v", err)
		}
		if _, err := concat(t, open(t), ids[:1]); !errors.Is(err, store.ErrPartialTaken) {
			t.Fatalf("ConcatUploads of a taken partial = %v, want ErrPartialTaken", err)
		}
	})
}

func testAbandonAckRemove(t *testing.T, open Backing) {
	s := open(t)
	id := create(t, s, single(4))
	mustPatch(t, s, id, 0, []byte("abcd"))
	if open(t).Acknowledged(id) {
		t.Fatalf("a new upload says it was acknowledged")
	}
	if err := open(t).Acknowledge(id); err != nil {
		t.Fatalf("Acknowledge: %v", err)
	}
	if !open(t).Acknowledged(id) {
		t.Fatalf("Acknowledged is false after Acknowledge (read by a new instance)")
	}
	if _, ok := open(t).Abandoned(id); ok {
		t.Fatalf("a new upload says it was abandoned")
	}
	why := store.Abandonment{Code: "superseded", Message: "a newer upload of this file replaced it"}
	if err := open(t).Abandon(id, why); err != nil {
		t.Fatalf("Abandon: %v", err)
	}
	if got, ok := open(t).Abandoned(id); !ok || got != why {
		t.Fatalf("Abandoned = %+v, %v; want %+v", got, ok, why)
	}
	if got := readAll(t, open(t), id); string(got) != "abcd" {
		t.Fatalf("an abandoned upload's bytes stay until Remove; read %q", got)
	}
	if err := open(t).Remove(id); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	s = open(t)
	if _, err := s.Info(id); !errors.Is(err, handler.ErrNotFound) {
		t.Fatalf("Info after Remove = %v, want ErrNotFound", err)
	}
	if s.Acknowledged(id) {
		t.Fatalf("a removed upload is still acknowledged")
	}
	if _, ok := s.Abandoned(id); ok {
		t.Fatalf("a removed upload is still abandoned")
	}
	if err := s.Remove(id); err != nil {
		t.Fatalf("removing a missing upload: %v, want nil", err)
	}
	if err := s.Abandon(store.NewID(), why); err != nil {
		t.Fatalf("abandoning a missing upload: %v, want nil", err)
	}
	if _, err := asCore(t, s).GetUpload(context.Background(), "../../etc/passwd"); !errors.Is(err, handler.ErrNotFound) {
		t.Fatalf("GetUpload of a malformed id = %v, want ErrNotFound", err)
	}
}

func testIDs(t *testing.T, open Backing) {
	s := open(t)
	var want []string
	for i := range 3 {
		want = append(want, create(t, s, single(10+i)))
	}
	partials, _ := makePartials(t, s, []int{3}, 300)
	want = append(want, partials...)
	if err := s.Remove(want[1]); err != nil {
		t.Fatal(err)
	}
	want = slices.Delete(want, 1, 2)
	got, err := open(t).IDs()
	if err != nil {
		t.Fatalf("IDs: %v", err)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("IDs = %v, want %v", got, want)
	}
	for _, id := range got {
		if at, err := open(t).LastActivity(id); err != nil || at.IsZero() {
			t.Fatalf("LastActivity(%s) = %v, %v", id, at, err)
		}
	}
}

func testOpenRefusals(t *testing.T, open Backing) {
	s := open(t)
	id := create(t, s, single(10))
	mustPatch(t, s, id, 0, []byte("12345"))
	if _, err := open(t).Open(id); !errors.Is(err, store.ErrNotFinished) {
		t.Fatalf("Open(unfinished) = %v, want ErrNotFinished", err)
	}
	if _, err := open(t).Open(store.NewID()); !errors.Is(err, handler.ErrNotFound) {
		t.Fatalf("Open(missing) = %v, want ErrNotFound", err)
	}
}

func testDeferredLength(t *testing.T, open Backing) {
	want := data(6*mib+9, 400)
	s := open(t)
	id := create(t, s, handler.FileInfo{SizeIsDeferred: true})
	mustPatch(t, s, id, 0, want[:3*mib])
	s = open(t)
	ctx := context.Background()
	c := composer(s)
	u, err := c.Core.GetUpload(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.LengthDeferrer.AsLengthDeclarableUpload(u).DeclareLength(ctx, int64(len(want))); err != nil {
		t.Fatalf("DeclareLength: %v", err)
	}
	if info, _ := open(t).Info(id); info.SizeIsDeferred || info.Size != int64(len(want)) {
		t.Fatalf("after DeclareLength: %+v", info)
	}
	mustPatch(t, open(t), id, 3*mib, want[3*mib:])
	sum, err := open(t).SHA256(id)
	if w := sha256.Sum256(want); err != nil || !bytes.Equal(sum, w[:]) {
		t.Fatalf("SHA256 = %x, %v; want %x", sum, err, w)
	}
	if got := readAll(t, open(t), id); !bytes.Equal(got, want) {
		t.Fatalf("the bytes read back differ from the bytes sent")
	}
}

func testEmpty(t *testing.T, open Backing) {
	s := open(t)
	id := create(t, s, single(0))
	ctx := context.Background()
	u, err := asCore(t, s).GetUpload(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if err := u.FinishUpload(ctx); err != nil {
		t.Fatalf("FinishUpload of an empty upload: %v", err)
	}
	sum, err := open(t).SHA256(id)
	if w := sha256.Sum256(nil); err != nil || !bytes.Equal(sum, w[:]) {
		t.Fatalf("SHA256(empty) = %x, %v", sum, err)
	}
	if got := readAll(t, open(t), id); len(got) != 0 {
		t.Fatalf("an empty upload reads %d bytes", len(got))
	}
}

func testStorage(t *testing.T, open Backing) {
	info := single(3)
	info.Storage = map[string]string{store.StorageKeyTokenHash: "abc123", "Path": "/etc/passwd"}
	id := create(t, open(t), info)
	got, err := open(t).Info(id)
	if err != nil {
		t.Fatal(err)
	}
	if got.Storage[store.StorageKeyTokenHash] != "abc123" {
		t.Fatalf("the token hash handed to NewUpload is not kept: %v", got.Storage)
	}
	if got.Storage["Path"] == "/etc/passwd" {
		t.Fatalf("the store kept a storage location a caller handed it: %v", got.Storage)
	}
	if got.MetaData["filename"] != "a.mov" {
		t.Fatalf("metadata not kept: %v", got.MetaData)
	}
}

func testCheckWritable(t *testing.T, open Backing) {
	s := open(t)
	if err := s.CheckWritable(context.Background()); err != nil {
		t.Fatalf("CheckWritable on a healthy store: %v", err)
	}
	if ids, err := s.IDs(); err != nil || len(ids) != 0 {
		t.Fatalf("the probe left something an upload listing sees: %v, %v", ids, err)
	}
}

package concatstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"os"
	"syscall"
	"testing"

	"github.com/tus/tusd/v2/pkg/handler"
)

// The digest of a finished upload whose saved hash state already covers every
// byte is read, not written again: completion answers the last PATCH, and a
// rewrite of the state (a new file and a rename) would only delay that answer.
func TestDigestOfACoveredUploadLeavesItsHashStateAlone(t *testing.T) {
	s, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 3*bufSize+123)
	rand.Read(data)
	ctx := context.Background()
	up, err := s.NewUpload(ctx, handler.FileInfo{Size: int64(len(data))})
	if err != nil {
		t.Fatal(err)
	}
	id := up.(*upload).id()
	if _, err := up.WriteChunk(ctx, 0, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	inode := func() uint64 {
		st, err := os.Stat(s.path(id, ".hash"))
		if err != nil {
			t.Fatal(err)
		}
		return st.Sys().(*syscall.Stat_t).Ino
	}
	before := inode()
	sum, err := s.SHA256(id)
	if err != nil || !bytes.Equal(sum, sha256Of(data)) {
		t.Fatalf("SHA256: %x, %v; want the data's digest", sum, err)
	}
	if inode() != before {
		t.Error("the hash state, which covered every byte, was written again")
	}
}

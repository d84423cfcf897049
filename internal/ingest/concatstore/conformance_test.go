package concatstore_test

import (
	"testing"

	"github.com/ferryhq/ferry/internal/ingest/concatstore"
	"github.com/ferryhq/ferry/internal/ingest/store"
	"github.com/ferryhq/ferry/internal/ingest/store/storetest"
)

func TestConcatstoreConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Backing {
		dir := t.TempDir()
		return func(t *testing.T) store.Store {
			s, err := concatstore.New(dir)
			if err != nil {
				t.Fatal(err)
			}
			s.Sync = false
			return s
		}
	})
}

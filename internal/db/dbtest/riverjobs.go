package dbtest

import (
	"context"
	"maps"
	"testing"
	"time"

	"github.com/riverqueue/river"

	"github.com/ferryhq/ferry/internal/db"
)

type countedJob struct{}

func (countedJob) Kind() string { return "dbtest_counted" }

// testRiverJobCounts: the queue-depth count sees River's jobs by state, on River's own tables
// as RiverDriver migrates them, through an insert-only River client.
func testRiverJobCounts(t *testing.T, s db.Store) {
	ctx := context.Background()
	driver := must(db.RiverDriver(ctx, s))
	if got := must(db.RiverJobCountByState(ctx, s)); len(got) != 0 {
		t.Fatalf("counts of an empty queue: %v", got)
	}
	client := must(river.NewClient(driver, &river.Config{}))
	for range 2 {
		must(client.Insert(ctx, countedJob{}, nil))
	}
	must(client.Insert(ctx, countedJob{}, &river.InsertOpts{ScheduledAt: time.Now().Add(time.Hour)}))
	got := must(db.RiverJobCountByState(ctx, s))
	if want := map[string]int64{"available": 2, "scheduled": 1}; !maps.Equal(got, want) {
		t.Fatalf("River job counts %v, want %v", got, want)
	}
}

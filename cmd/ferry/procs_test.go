package main

import (
	"runtime"
	"testing"
)

// A server given one core (taskset, a one-CPU container) still runs two Ps:
// with one, a goroutine blocked in an O_DIRECT write holds the only P and
// the request reads and hashing of every other upload wait for it. An
// operator's own GOMAXPROCS is left as set.
func TestServeOnOneCoreRunsTwoProcsUnlessTheOperatorSetGOMAXPROCS(t *testing.T) {
	for _, c := range []struct {
		name  string
		procs int
		env   string
		want  int
	}{
		{"one core", 1, "", 2},
		{"operator chose one", 1, "1", 1},
		{"several cores", 3, "", 3},
	} {
		t.Run(c.name, func(t *testing.T) {
			prev := runtime.GOMAXPROCS(c.procs)
			t.Cleanup(func() { runtime.GOMAXPROCS(prev) })
			t.Setenv("GOMAXPROCS", c.env)
			// An invalid flag value: serve stops at validation, after settling its Ps.
			run([]string{"serve", "--log-level", "nope"})
			if got := runtime.GOMAXPROCS(0); got != c.want {
				t.Errorf("serve with %d procs (GOMAXPROCS=%q) runs with %d, want %d", c.procs, c.env, got, c.want)
			}
		})
	}
}

package server

import (
	"testing"

	"github.com/ferryhq/ferry/internal/config"
	"github.com/ferryhq/ferry/internal/iconik"
)

// TestReplicasShareIconiksRatePerAppID: each of N replicas limits its
// iconik calls to 1/N of the App-ID's rate, so together they stay under it;
// one replica keeps the client's default, and an explicit rate is kept.
func TestReplicasShareIconiksRatePerAppID(t *testing.T) {
	for _, c := range []struct {
		replicas int
		set      float64
		want     float64
	}{
		{0, 0, 0},
		{1, 0, 0},
		{2, 0, iconik.DefaultRateLimit / 2},
		{3, 0, iconik.DefaultRateLimit / 3},
		{2, -1, -1},
		{2, 10, 10},
	} {
		got := iconikTemplate(config.Config{Replicas: c.replicas}, iconik.Options{RateLimit: c.set}).RateLimit
		if got != c.want {
			t.Errorf("%d replicas, rate set to %v: rate %v, want %v", c.replicas, c.set, got, c.want)
		}
	}
}

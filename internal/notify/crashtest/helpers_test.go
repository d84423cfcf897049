package crashtest

import (
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/testbed/child"
)

var ferryBin string

// TestMain builds the ferry binary once for every test of the package.
func TestMain(m *testing.M) {
	child.Main(m, &ferryBin)
}

// The child-process harness is shared with delivery's crash tests.
type (
	proc = child.Proc
	api  = child.API
)

var (
	freeAddr  = child.FreeAddr
	waitHTTP  = child.WaitHTTP
	tusUpload = child.TusUpload
)

func start(t *testing.T, logPath string, args ...string) *proc {
	return child.Start(t, ferryBin, logPath, args...)
}

func startDemo(t *testing.T, dir string, info any) *proc {
	return child.StartDemo(t, ferryBin, dir, info)
}

type notification struct {
	Kind      string `json:"kind"`
	Recipient string `json:"recipient"`
	State     string `json:"state"`
	Transport string `json:"transport"`
	Subject   string `json:"subject"`
	Response  string `json:"response"`
	Error     string `json:"error"`
	Attempts  int    `json:"attempts"`
}

// waitNotifications polls the package's notifications (bounded: a deadlock
// guard) until want of them left the queue.
func waitNotifications(a *api, pkgID string, want int) []notification {
	a.T.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var list struct {
			Notifications []notification `json:"notifications"`
		}
		a.Do("GET", "/api/v1/packages/"+pkgID+"/notifications", "", nil, &list)
		done := len(list.Notifications) == want
		for _, n := range list.Notifications {
			done = done && n.State != "queued"
		}
		if done {
			return list.Notifications
		}
		if time.Now().After(deadline) {
			a.T.Fatalf("notifications of %s: %+v, want %d settled", pkgID, list.Notifications, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

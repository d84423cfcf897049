package send

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Delivery is one of a package's deliveries into iconik, as its sender sees
// it (GET .../packages/{id}/deliveries).
type Delivery struct {
	ID        string            `json:"id"`
	State     string            `json:"state"` // queued | running | delivered | partially failed | failed
	Bytes     int64             `json:"bytes"`
	BytesDone int64             `json:"bytes_done"`
	Error     string            `json:"error"`
	Files     []DeliveryFile    `json:"files"`
	Errors    []DeliveryFailure `json:"errors"`
}

// DeliveryFile is one file of a delivery.
type DeliveryFile struct {
	Path  string `json:"path"`
	Size  int64  `json:"size"`
	State string `json:"state"` // queued | running | delivered | failed
	Error string `json:"error"`
}

// DeliveryFailure names a file that was not delivered and why.
type DeliveryFailure struct {
	Path    string `json:"path"`
	Message string `json:"message"`
}

// settled: the delivery will not move on its own any more.
func (d Delivery) settled() bool {
	switch d.State {
	case "delivered", "failed", "partially failed":
		return true
	}
	return false
}

// line is the progress line Wait prints for d.
func (d Delivery) line() string {
	done := 0
	for _, f := range d.Files {
		if f.State == "delivered" {
			done++
		}
	}
	s := fmt.Sprintf("delivery %s: %s, %d of %d files delivered", d.ID, d.State, done, len(d.Files))
	if !d.settled() {
		s += fmt.Sprintf(", %s of %s", human(d.BytesDone), human(d.Bytes))
	}
	return s
}

// failures lists d's files that were not delivered, with the reasons.
func (d Delivery) failures() []DeliveryFailure {
	if d.State == "delivered" {
		return nil
	}
	out := append([]DeliveryFailure(nil), d.Errors...)
	if len(out) == 0 {
		for _, f := range d.Files {
			if f.State == "failed" {
				out = append(out, DeliveryFailure{Path: f.Path, Message: f.Error})
			}
		}
	}
	if len(out) == 0 {
		out = append(out, DeliveryFailure{Message: d.Error})
	}
	return out
}

// DeliveriesFailed is Wait's answer when a delivery settled without
// delivering every file.
type DeliveriesFailed struct {
	Failed []DeliveryFailure
}

func (e *DeliveriesFailed) Error() string {
	var parts []string
	for _, f := range e.Failed {
		switch {
		case f.Path == "":
			parts = append(parts, f.Message)
		case f.Message == "":
			parts = append(parts, f.Path)
		default:
			parts = append(parts, f.Path+" ("+f.Message+")")
		}
	}
	return fmt.Sprintf("not delivered into iconik: %s", strings.Join(parts, "; "))
}

// WaitOptions configure Wait.
type WaitOptions struct {
	Target      Target
	PackageID   string
	UploadToken string // the package's upload token (portal targets; Result.UploadToken)
	HTTP        *http.Client
	Out         io.Writer     // a line per delivery whenever it moves; nil: none
	Every       time.Duration // how often to ask (default 2 s)
}

// Wait follows a finalized package's deliveries into iconik until every one
// has settled. It returns nil when all delivered (or the package has none),
// *DeliveriesFailed naming the failed files otherwise.
func Wait(ctx context.Context, o WaitOptions) error {
	if o.HTTP == nil {
		o.HTTP = http.DefaultClient
	}
	if o.Every <= 0 {
		o.Every = 2 * time.Second
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	a := &api{http: o.HTTP, target: o.Target}
	printed := map[string]string{}
	for {
		var out struct {
			Deliveries []Delivery `json:"deliveries"`
		}
		u := a.target.packagesURL() + "/" + url.PathEscape(o.PackageID) + "/deliveries"
		if err := a.call(ctx, "follow deliveries", http.MethodGet, u, a.bearer(o.UploadToken), nil, &out); err != nil {
			return err
		}
		// Deliveries are created with the package's files (in the same
		// transaction), so a finalized package without any has none to wait for.
		if len(out.Deliveries) == 0 {
			fmt.Fprintf(o.Out, "package %s is not delivered into iconik (no deliveries)\n", o.PackageID)
			return nil
		}
		all := true
		var failed []DeliveryFailure
		for _, d := range out.Deliveries {
			if l := d.line(); printed[d.ID] != l {
				fmt.Fprintln(o.Out, l)
				printed[d.ID] = l
			}
			if !d.settled() {
				all = false
			}
			failed = append(failed, d.failures()...)
		}
		if all {
			if len(failed) > 0 {
				return &DeliveriesFailed{Failed: failed}
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(o.Every):
		}
	}
}

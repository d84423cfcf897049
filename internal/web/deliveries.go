package web

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"
)

// Deliveries is an optional capability of the Store (discovered, not
// assumed, like tusd's store extensions): deliveries into iconik. Without it
// the delivery routes answer 503.
type Deliveries interface {
	// DeliveryGet returns a delivery with its files (ErrNotFound when unknown).
	DeliveryGet(ctx context.Context, id string) (*Delivery, error)
	// DeliveryList returns the deliveries of a package (ErrNotFound for an
	// unknown package).
	DeliveryList(ctx context.Context, packageID string) ([]Delivery, error)
	// DeliveryRetry puts the failed files back in the queue and returns how many.
	DeliveryRetry(ctx context.Context, id string) (int, error)
	// DeliverySend is Send to Cloud: deliver a finalized package to a
	// connection (ErrNotFound for an unknown package or connection,
	// ErrConflict for a package still uploading).
	DeliverySend(ctx context.Context, packageID, connectionID string) (*Delivery, error)
	// JobsUI is River UI for operators (nil: not mounted).
	JobsUI() http.Handler
}

// Delivery is one package delivered to one connection.
type Delivery struct {
	ID           string          `json:"id"`
	PackageID    string          `json:"package_id"`
	ConnectionID string          `json:"connection_id"`
	Origin       string          `json:"origin"` // portal | send_to_cloud
	State        string          `json:"state" enum:"queued,running,retrying,delivered,partially failed,failed" doc:"retrying: not settled, and at least one file waits for a retry (reason says which and why)"`
	Reason       string          `json:"reason,omitempty" doc:"Why the delivery reads retrying: the first waiting file, its last error, attempt and next attempt time"`
	CollectionID string          `json:"collection_id,omitempty"`
	IconikJobID  string          `json:"iconik_job_id,omitempty"`
	Title        string          `json:"title,omitempty"` // the package collection's title ("<name> (2)" when taken)
	Bytes        int64           `json:"bytes"`
	BytesDone    int64           `json:"bytes_done"`
	Error        string          `json:"error,omitempty"`
	CreatedAt    time.Time       `json:"created_at"`
	SettledAt    *time.Time      `json:"settled_at,omitempty"`
	Files        []DeliveryFile  `json:"files"`
	Errors       []DeliveryError `json:"errors"`
}

// DeliveryFile is one file's delivery with the iconik ids it made.
type DeliveryFile struct {
	FileID    string `json:"file_id"`
	Path      string `json:"path"`
	Size      int64  `json:"size"`
	State     string `json:"state" enum:"queued,running,retrying,delivered,failed" doc:"retrying: the file waits for a retry until next_attempt_at"`
	Step      string `json:"step,omitempty"`
	BytesDone int64  `json:"bytes_done"`
	Error     string `json:"error,omitempty"`
	// LastError, Attempts and NextAttemptAt say what a waiting file waits on.
	LastError        string     `json:"last_error,omitempty" doc:"The last error the file met, kept after it recovered"`
	Attempts         int        `json:"attempts" doc:"Attempts of the file's delivery job so far (retries within an attempt are not counted)"`
	NextAttemptAt    *time.Time `json:"next_attempt_at,omitempty" doc:"While the file waits for a retry: when it is tried next"`
	CollectionID     string     `json:"collection_id,omitempty"`
	AssetID          string     `json:"asset_id,omitempty"`
	FormatID         string     `json:"format_id,omitempty"`
	FileSetID        string     `json:"file_set_id,omitempty"`
	IconikFileID     string     `json:"iconik_file_id,omitempty"`
	JobID            string     `json:"job_id,omitempty"`
	KeyframeJobID    string     `json:"keyframe_job_id,omitempty"`
	KeyframesSkipped bool       `json:"keyframes_skipped,omitempty"`
	SHA256           string     `json:"sha256,omitempty"`
}

// DeliveryError names a file that failed and why.
type DeliveryError struct {
	Path    string `json:"path"`
	Message string `json:"message"`
}

func (s *Server) deliveries() (Deliveries, error) {
	d, ok := s.opt.Store.(Deliveries)
	if !ok {
		return nil, errorf(http.StatusServiceUnavailable, "deliveries_unavailable", "Deliveries are not enabled on this server.")
	}
	return d, nil
}

func deliveryError(err error, what string) error {
	var ae *Error
	switch {
	case errors.As(err, &ae):
		return err
	case errors.Is(err, ErrNotFound):
		return errorf(http.StatusNotFound, "not_found", "There is no such %s.", what)
	case errors.Is(err, ErrConflict):
		return errorf(http.StatusConflict, "package_not_finalized", "The package is still uploading; finalize it before sending it to the cloud.")
	}
	return err
}

func (s *Server) deliveryGet(w http.ResponseWriter, r *http.Request) error {
	ds, err := s.deliveries()
	if err != nil {
		return err
	}
	d, err := ds.DeliveryGet(r.Context(), r.PathValue("id"))
	if err != nil {
		return deliveryError(err, "delivery")
	}
	writeJSON(w, http.StatusOK, map[string]any{"delivery": d})
	return nil
}

func (s *Server) deliveryList(w http.ResponseWriter, r *http.Request) error {
	ds, err := s.deliveries()
	if err != nil {
		return err
	}
	list, err := ds.DeliveryList(r.Context(), r.PathValue("id"))
	if err != nil {
		return deliveryError(err, "package")
	}
	writeJSON(w, http.StatusOK, deliveriesResponse{Deliveries: list})
	return nil
}

func (s *Server) deliveryRetry(w http.ResponseWriter, r *http.Request) error {
	ds, err := s.deliveries()
	if err != nil {
		return err
	}
	n, err := ds.DeliveryRetry(r.Context(), r.PathValue("id"))
	if err != nil {
		return deliveryError(err, "delivery")
	}
	d, err := ds.DeliveryGet(r.Context(), r.PathValue("id"))
	if err != nil {
		return deliveryError(err, "delivery")
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"retried": n, "delivery": d})
	return nil
}

func (s *Server) deliverySend(w http.ResponseWriter, r *http.Request) error {
	ds, err := s.deliveries()
	if err != nil {
		return err
	}
	var in deliverySendRequest
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	if strings.TrimSpace(in.ConnectionID) == "" {
		return errorf(http.StatusBadRequest, "connection_id_required", "Say which connection to send to: {\"connection_id\": \"...\"}.")
	}
	d, err := ds.DeliverySend(r.Context(), r.PathValue("id"), in.ConnectionID)
	if err != nil {
		return deliveryError(err, "package or connection")
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"delivery": d})
	return nil
}

// jobsUI serves River UI under /admin/jobs for admins.
func (s *Server) jobsUI(w http.ResponseWriter, r *http.Request) error {
	ds, err := s.deliveries()
	if err != nil {
		return err
	}
	h := ds.JobsUI()
	if h == nil {
		return errorf(http.StatusServiceUnavailable, "jobs_ui_unavailable", "The jobs UI is not enabled on this server.")
	}
	h.ServeHTTP(w, r)
	return nil
}

type deliveryResponse struct {
	Delivery Delivery `json:"delivery"`
}
type deliveriesResponse struct {
	Deliveries []Delivery `json:"deliveries"`
}
type deliveryRetryResponse struct {
	Retried  int      `json:"retried"`
	Delivery Delivery `json:"delivery"`
}
type deliverySendRequest struct {
	ConnectionID string `json:"connection_id"`
}

// The delivery routes are registered in the OpenAPI table here, beside their
// types, as the connection routes are.
func init() {
	for k, v := range map[string][3]any{
		"GET /api/v1/deliveries/{id}":            {nil, deliveryResponse{}, 200},
		"GET /api/v1/packages/{id}/deliveries":   {nil, deliveriesResponse{}, 200},
		"POST /api/v1/deliveries/{id}/retry":     {nil, deliveryRetryResponse{}, 202},
		"POST /api/v1/packages/{id}/deliveries":  {deliverySendRequest{}, deliveryResponse{}, 202},
		"GET /p/{slug}/packages/{id}/deliveries": {nil, uploaderDeliveriesResponse{}, 200},
	} {
		e := apiSchemas[k]
		e.req, e.resp, e.status = v[0], v[1], v[2].(int)
		apiSchemas[k] = e
	}
}

// UploaderDelivery is what the sender of a portal package may see of one of
// its deliveries: how far it is and which files failed and why, without the
// iconik ids or the connection (those are the portal owner's).
type UploaderDelivery struct {
	ID        string                 `json:"id"`
	State     string                 `json:"state"` // queued | running | delivered | partially failed | failed
	Bytes     int64                  `json:"bytes"`
	BytesDone int64                  `json:"bytes_done"`
	Error     string                 `json:"error,omitempty"`
	SettledAt *time.Time             `json:"settled_at,omitempty"`
	Files     []UploaderDeliveryFile `json:"files"`
	Errors    []DeliveryError        `json:"errors"`
}

// UploaderDeliveryFile is one file's delivery as its sender sees it.
type UploaderDeliveryFile struct {
	Path      string `json:"path"`
	Size      int64  `json:"size"`
	State     string `json:"state"` // queued | running | delivered | failed
	BytesDone int64  `json:"bytes_done"`
	Error     string `json:"error,omitempty"`
}

type uploaderDeliveriesResponse struct {
	Deliveries []UploaderDelivery `json:"deliveries"`
}

// uploaderDeliveries lets `ferry send --wait` (holding only the upload
// token) follow its package into iconik.
func (s *Server) uploaderDeliveries(w http.ResponseWriter, r *http.Request) error {
	pkg, err := s.uploaderPackage(r)
	if err != nil {
		return err
	}
	ds, err := s.deliveries()
	if err != nil {
		return err
	}
	list, err := ds.DeliveryList(r.Context(), pkg.ID)
	if err != nil {
		return deliveryError(err, "package")
	}
	out := uploaderDeliveriesResponse{Deliveries: []UploaderDelivery{}}
	for _, d := range list {
		ud := UploaderDelivery{ID: d.ID, State: d.State, Bytes: d.Bytes, BytesDone: d.BytesDone, Error: d.Error,
			SettledAt: d.SettledAt, Files: []UploaderDeliveryFile{}, Errors: d.Errors}
		if ud.Errors == nil {
			ud.Errors = []DeliveryError{}
		}
		for _, f := range d.Files {
			ud.Files = append(ud.Files, UploaderDeliveryFile{Path: f.Path, Size: f.Size, State: f.State, BytesDone: f.BytesDone, Error: f.Error})
		}
		out.Deliveries = append(out.Deliveries, ud)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

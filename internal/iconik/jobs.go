package iconik

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"strconv"
)

// JobCreateParams is the body of POST /jobs/v1/jobs/.
type JobCreateParams struct {
	Type              string          `json:"type"`   // TRANSFER for deliveries
	Status            string          `json:"status"` // READY STARTED FINISHED ...
	Title             string          `json:"title"`
	ObjectType        string          `json:"object_type,omitempty"` // "assets"
	ObjectID          string          `json:"object_id,omitempty"`
	ParentID          string          `json:"parent_id,omitempty"`
	ProgressProcessed *int64          `json:"progress_processed,omitempty"`
	ProgressTotal     *int64          `json:"progress_total,omitempty"`
	Message           string          `json:"message,omitempty"`
	ErrorMessage      string          `json:"error_message,omitempty"`
	Metadata          map[string]any  `json:"metadata,omitempty"`
	RelatedObjects    []RelatedObject `json:"related_objects,omitempty"`
	StartedAt         Time            `json:"started_at,omitzero"`
	CompletedAt       Time            `json:"completed_at,omitzero"`
}

// JobCreate creates a job (shown in iconik's Admin > Jobs).
func (c *Client) JobCreate(ctx context.Context, p JobCreateParams) (*Job, error) {
	if p.Type == "" || p.Status == "" || p.Title == "" {
		return nil, errors.New("iconik: JobCreate: type, status and title are required")
	}
	var out Job
	if _, err := c.send(ctx, http.MethodPost, "/API/jobs/v1/jobs/", nil, p, &out, false); err != nil {
		return nil, err
	}
	return &out, nil
}

// JobPatchParams is the body of PATCH /jobs/v1/jobs/{id}/. The spec's PATCH body is JobSchema,
// which requires type, status and title, so they are always sent: JobPatch reads the missing
// ones with a GET first (pass them to save that call).
type JobPatchParams struct {
	Type              string         `json:"type"`
	Status            string         `json:"status"`
	Title             string         `json:"title"`
	ProgressProcessed *int64         `json:"progress_processed,omitempty"`
	ProgressTotal     *int64         `json:"progress_total,omitempty"`
	Message           string         `json:"message,omitempty"`
	ErrorMessage      string         `json:"error_message,omitempty"`
	Metadata          map[string]any `json:"metadata,omitempty"`
	StartedAt         Time           `json:"started_at,omitzero"`
	CompletedAt       Time           `json:"completed_at,omitzero"`
}

// JobPatchFor starts JobPatchParams from a job's identity fields with a new status.
func JobPatchFor(j *Job, status string) JobPatchParams {
	return JobPatchParams{Type: j.Type, Status: status, Title: j.Title}
}

// JobPatch updates a job (progress, status, messages).
func (c *Client) JobPatch(ctx context.Context, jobID string, p JobPatchParams) (*Job, error) {
	if jobID == "" {
		return nil, errors.New("iconik: JobPatch: empty job id")
	}
	if p.Type == "" || p.Status == "" || p.Title == "" {
		j, err := c.JobGet(ctx, jobID)
		if err != nil {
			return nil, fmt.Errorf("iconik: JobPatch: reading the job's required fields: %w", err)
		}
		if p.Type == "" {
			p.Type = j.Type
		}
		if p.Status == "" {
			p.Status = j.Status
		}
		if p.Title == "" {
			p.Title = j.Title
		}
	}
	var out Job
	if _, err := c.send(ctx, http.MethodPatch, "/API/jobs/v1/jobs/"+seg(jobID)+"/", nil, p, &out, false); err != nil {
		return nil, err
	}
	return &out, nil
}

// JobGet returns one job.
func (c *Client) JobGet(ctx context.Context, jobID string) (*Job, error) {
	if jobID == "" {
		return nil, errors.New("iconik: JobGet: empty job id")
	}
	var out Job
	if err := c.get(ctx, "/API/jobs/v1/jobs/"+seg(jobID)+"/", nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// JobListParams filter JobList. Empty fields do not filter.
type JobListParams struct {
	ObjectID, ObjectType, Type, Status, ParentID string
	Sort                                         string
	PerPage                                      int // default 100
}

// JobList lists jobs, every page.
func (c *Client) JobList(ctx context.Context, p JobListParams) iter.Seq2[Job, error] {
	q := url.Values{"per_page": {strconv.Itoa(perPage(p.PerPage, 100))}}
	for k, v := range map[string]string{"object_id": p.ObjectID, "object_type": p.ObjectType, "type": p.Type, "status": p.Status, "parent_id": p.ParentID, "sort": p.Sort} {
		if v != "" {
			q.Set(k, v)
		}
	}
	return getPages[Job](c, ctx, "/API/jobs/v1/jobs/", q)
}

// JobDelete deletes a job.
func (c *Client) JobDelete(ctx context.Context, jobID string) error {
	if jobID == "" {
		return errors.New("iconik: JobDelete: empty job id")
	}
	_, err := c.send(ctx, http.MethodDelete, "/API/jobs/v1/jobs/"+seg(jobID)+"/", nil, nil, nil, false)
	return err
}

// Int64 returns a pointer to n, for the optional numeric params fields.
func Int64(n int64) *int64 { return &n }

// Bool returns a pointer to b, for the optional boolean params fields.
func Bool(b bool) *bool { return &b }

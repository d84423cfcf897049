package iconik

import (
	"context"
	"errors"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// CollectionCreateParams is the body of POST /collections/ plus its query options.
type CollectionCreateParams struct {
	Title      string `json:"title"`
	ParentID   string `json:"parent_id,omitempty"` // "" = top level
	ExternalID string `json:"external_id,omitempty"`
	Category   string `json:"category,omitempty"`
	StorageID  string `json:"storage_id,omitempty"`
	Status     string `json:"status,omitempty"` // ACTIVE | HIDDEN | DELETED
	IsRoot     *bool  `json:"is_root,omitempty"`

	// ApplyDefaultACLs is the apply_default_acls query option (iconik's default: true).
	ApplyDefaultACLs *bool `json:"-"`
	// RetrySafe allows retrying the create on 5xx and network errors. Set it only when a
	// duplicate collection is acceptable or the caller looks for one (e.g. by external_id)
	// before using the result.
	RetrySafe bool `json:"-"`
}

// CollectionCreate creates a collection. iconik does not enforce unique titles per parent:
// look before creating (CollectionContentsList / CollectionList) and serialise per parent.
func (c *Client) CollectionCreate(ctx context.Context, p CollectionCreateParams) (*Collection, error) {
	if strings.TrimSpace(p.Title) == "" {
		return nil, errors.New("iconik: CollectionCreate: empty title")
	}
	q := url.Values{}
	if p.ApplyDefaultACLs != nil {
		q.Set("apply_default_acls", strconv.FormatBool(*p.ApplyDefaultACLs))
	}
	var out Collection
	if _, err := c.send(ctx, http.MethodPost, "/API/assets/v1/collections/", q, p, &out, p.RetrySafe); err != nil {
		return nil, err
	}
	return &out, nil
}

// CollectionGet returns one collection.
func (c *Client) CollectionGet(ctx context.Context, collectionID string) (*Collection, error) {
	if collectionID == "" {
		return nil, errors.New("iconik: CollectionGet: empty collection id")
	}
	var out Collection
	if err := c.get(ctx, "/API/assets/v1/collections/"+seg(collectionID)+"/", nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// CollectionDelete moves a collection to the delete queue (iconik answers 202).
func (c *Client) CollectionDelete(ctx context.Context, collectionID string) error {
	if collectionID == "" {
		return errors.New("iconik: CollectionDelete: empty collection id")
	}
	_, err := c.send(ctx, http.MethodDelete, "/API/assets/v1/collections/"+seg(collectionID)+"/", nil, nil, nil, false)
	return err
}

// CollectionListParams filter CollectionList.
type CollectionListParams struct {
	IsRoot  *bool  // true: top-level collections only
	Status  string // ACTIVE | HIDDEN | DELETED
	Sort    string
	PerPage int // default 100
}

// CollectionList lists collections, every page.
func (c *Client) CollectionList(ctx context.Context, p CollectionListParams) iter.Seq2[Collection, error] {
	q := url.Values{"per_page": {strconv.Itoa(perPage(p.PerPage, 100))}}
	if p.IsRoot != nil {
		q.Set("is_root", strconv.FormatBool(*p.IsRoot))
	}
	if p.Status != "" {
		q.Set("status", p.Status)
	}
	if p.Sort != "" {
		q.Set("sort", p.Sort)
	}
	return getPages[Collection](c, ctx, "/API/assets/v1/collections/", q)
}

// CollectionContentsListParams filter CollectionContentsList.
type CollectionContentsListParams struct {
	ObjectTypes []string // "collections", "assets"; empty = both
	ExternalID  string
	Sort        string
	PerPage     int // default 100
}

// CollectionContentsList lists a collection's direct children, every page.
func (c *Client) CollectionContentsList(ctx context.Context, collectionID string, p CollectionContentsListParams) iter.Seq2[ContentItem, error] {
	if collectionID == "" {
		return func(yield func(ContentItem, error) bool) {
			yield(ContentItem{}, errors.New("iconik: CollectionContentsList: empty collection id"))
		}
	}
	q := url.Values{"per_page": {strconv.Itoa(perPage(p.PerPage, 100))}}
	if len(p.ObjectTypes) > 0 {
		q.Set("object_types", strings.Join(p.ObjectTypes, ","))
	}
	if p.ExternalID != "" {
		q.Set("external_id", p.ExternalID)
	}
	if p.Sort != "" {
		q.Set("sort", p.Sort)
	}
	return getPages[ContentItem](c, ctx, "/API/assets/v1/collections/"+seg(collectionID)+"/contents/", q)
}

// CollectionContentsAddParams is the body of POST /collections/{id}/contents/.
type CollectionContentsAddParams struct {
	ObjectID   string `json:"object_id"`
	ObjectType string `json:"object_type"` // "assets" | "collections"
	// IndexImmediately sends ?index_immediately=true, as iconik's own clients do, so the new
	// member shows up in listings sooner (not in the spec; servers ignore it otherwise).
	IndexImmediately bool `json:"-"`
}

// CollectionContentsAdd puts an asset or collection into a collection. It is retried like an
// idempotent call: adding the same member twice leaves it a member once.
func (c *Client) CollectionContentsAdd(ctx context.Context, collectionID string, p CollectionContentsAddParams) error {
	if collectionID == "" || p.ObjectID == "" || p.ObjectType == "" {
		return errors.New("iconik: CollectionContentsAdd: collection id, object id and object type are required")
	}
	var q url.Values
	if p.IndexImmediately {
		q = url.Values{"index_immediately": {"true"}}
	}
	_, err := c.send(ctx, http.MethodPost, "/API/assets/v1/collections/"+seg(collectionID)+"/contents/", q, p, nil, true)
	return err
}

// AssetCreateParams is the body of POST /assets/ plus its query options.
type AssetCreateParams struct {
	Title        string `json:"title"`
	Type         string `json:"type,omitempty"` // default ASSET
	CollectionID string `json:"collection_id,omitempty"`
	ExternalID   string `json:"external_id,omitempty"`
	Status       string `json:"status,omitempty"` // ACTIVE | DELETED
	IsOnline     *bool  `json:"is_online,omitempty"`
	Category     string `json:"category,omitempty"`

	// AssignToCollection adds the asset to CollectionID in the same call.
	AssignToCollection bool  `json:"-"`
	ApplyDefaultACLs   *bool `json:"-"`
	// RetrySafe allows retrying on 5xx and network errors; set it when ExternalID lets the
	// caller find an asset a lost response created.
	RetrySafe bool `json:"-"`
}

// AssetCreate creates an asset.
func (c *Client) AssetCreate(ctx context.Context, p AssetCreateParams) (*Asset, error) {
	if strings.TrimSpace(p.Title) == "" {
		return nil, errors.New("iconik: AssetCreate: empty title")
	}
	if p.Type == "" {
		p.Type = "ASSET"
	}
	q := url.Values{}
	if p.AssignToCollection {
		if p.CollectionID == "" {
			return nil, errors.New("iconik: AssetCreate: AssignToCollection needs CollectionID")
		}
		q.Set("assign_to_collection", "true")
	}
	if p.ApplyDefaultACLs != nil {
		q.Set("apply_default_acls", strconv.FormatBool(*p.ApplyDefaultACLs))
	}
	var out Asset
	if _, err := c.send(ctx, http.MethodPost, "/API/assets/v1/assets/", q, p, &out, p.RetrySafe); err != nil {
		return nil, err
	}
	return &out, nil
}

// AssetGet returns one asset.
func (c *Client) AssetGet(ctx context.Context, assetID string) (*Asset, error) {
	if assetID == "" {
		return nil, errors.New("iconik: AssetGet: empty asset id")
	}
	var out Asset
	if err := c.get(ctx, "/API/assets/v1/assets/"+seg(assetID)+"/", nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// AssetDelete moves an asset to the delete queue.
func (c *Client) AssetDelete(ctx context.Context, assetID string) error {
	if assetID == "" {
		return errors.New("iconik: AssetDelete: empty asset id")
	}
	_, err := c.send(ctx, http.MethodDelete, "/API/assets/v1/assets/"+seg(assetID)+"/", nil, nil, nil, false)
	return err
}

// AssetUploadsDelete removes an asset's unfinished uploads (failure cleanup; needs only
// can_create_assets).
func (c *Client) AssetUploadsDelete(ctx context.Context, assetID string) error {
	if assetID == "" {
		return errors.New("iconik: AssetUploadsDelete: empty asset id")
	}
	_, err := c.send(ctx, http.MethodDelete, "/API/assets/v1/assets/"+seg(assetID)+"/uploads/", nil, nil, nil, false)
	return err
}

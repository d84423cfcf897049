package iconik

import (
	"context"
	"errors"
	"iter"
	"net/http"
	"net/url"
	"strconv"
)

// MetadataFieldGet returns a metadata field by name.
func (c *Client) MetadataFieldGet(ctx context.Context, name string) (*MetadataField, error) {
	if name == "" {
		return nil, errors.New("iconik: MetadataFieldGet: empty name")
	}
	var out MetadataField
	if err := c.get(ctx, "/API/metadata/v1/fields/"+seg(name)+"/", nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// MetadataFieldCreateParams is the body of POST /metadata/v1/fields/.
type MetadataFieldCreateParams struct {
	Name        string `json:"name"`
	Label       string `json:"label"`
	FieldType   string `json:"field_type"` // string text integer ... (CONTRACT.md §2.11)
	Description string `json:"description,omitempty"`
	Multi       bool   `json:"multi,omitempty"`
}

// MetadataFieldCreate creates a metadata field.
func (c *Client) MetadataFieldCreate(ctx context.Context, p MetadataFieldCreateParams) (*MetadataField, error) {
	if p.Name == "" || p.Label == "" || p.FieldType == "" {
		return nil, errors.New("iconik: MetadataFieldCreate: name, label and field type are required")
	}
	var out MetadataField
	if _, err := c.send(ctx, http.MethodPost, "/API/metadata/v1/fields/", nil, p, &out, false); err != nil {
		return nil, err
	}
	return &out, nil
}

// MetadataFieldListParams are MetadataFieldList's options.
type MetadataFieldListParams struct {
	PerPage int // default 500 (iconik's default)
}

// MetadataFieldList lists every metadata field (cursor: last_field_name).
func (c *Client) MetadataFieldList(ctx context.Context, p MetadataFieldListParams) iter.Seq2[MetadataField, error] {
	per := p.PerPage
	if per <= 0 {
		per = 500
	}
	return cursorList(c, ctx, "/API/metadata/v1/fields/", nil, per, "last_field_name", func(f MetadataField) string { return f.Name })
}

// MetadataViewList returns every metadata view (iconik returns them in one list).
func (c *Client) MetadataViewList(ctx context.Context) ([]MetadataView, error) {
	var out struct {
		Objects []MetadataView `json:"objects"`
	}
	if err := c.get(ctx, "/API/metadata/v1/views/", nil, &out); err != nil {
		return nil, err
	}
	return out.Objects, nil
}

// MetadataViewGetParams are MetadataViewGet's options.
type MetadataViewGetParams struct {
	MergeFields bool // include each field's definition
}

// MetadataViewGet returns one view.
func (c *Client) MetadataViewGet(ctx context.Context, viewID string, p MetadataViewGetParams) (*MetadataView, error) {
	if viewID == "" {
		return nil, errors.New("iconik: MetadataViewGet: empty view id")
	}
	var q url.Values
	if p.MergeFields {
		q = url.Values{"merge_fields": {"true"}}
	}
	var out MetadataView
	if err := c.get(ctx, "/API/metadata/v1/views/"+seg(viewID)+"/", q, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// MetadataViewCreateParams is the body of POST /metadata/v1/views/.
type MetadataViewCreateParams struct {
	Name        string              `json:"name"`
	Description string              `json:"description,omitempty"`
	ViewFields  []MetadataViewField `json:"view_fields"`
}

// MetadataViewCreate creates a view.
func (c *Client) MetadataViewCreate(ctx context.Context, p MetadataViewCreateParams) (*MetadataView, error) {
	if p.Name == "" {
		return nil, errors.New("iconik: MetadataViewCreate: empty name")
	}
	if p.ViewFields == nil {
		p.ViewFields = []MetadataViewField{}
	}
	var out MetadataView
	if _, err := c.send(ctx, http.MethodPost, "/API/metadata/v1/views/", nil, p, &out, false); err != nil {
		return nil, err
	}
	return &out, nil
}

// MetadataViewUpdateParams is the complete view (PUT replaces its field list).
type MetadataViewUpdateParams = MetadataViewCreateParams

// MetadataViewUpdate replaces a view's name, description and field list.
func (c *Client) MetadataViewUpdate(ctx context.Context, viewID string, p MetadataViewUpdateParams) (*MetadataView, error) {
	if viewID == "" || p.Name == "" {
		return nil, errors.New("iconik: MetadataViewUpdate: view id and name are required")
	}
	if p.ViewFields == nil {
		p.ViewFields = []MetadataViewField{}
	}
	var out MetadataView
	if _, err := c.send(ctx, http.MethodPut, "/API/metadata/v1/views/"+seg(viewID)+"/", nil, p, &out, false); err != nil {
		return nil, err
	}
	return &out, nil
}

// MetadataValuesPutParams are the values to store through a view.
type MetadataValuesPutParams struct {
	ObjectType string // default "assets"
	// Values maps field name to its values; StringValues is the common one-string case
	// (e.g. {"description": "Package: X"}); both may be given.
	Values       map[string]MetadataFieldValues
	StringValues map[string]string
}

// MetadataValuesPut stores metadata values of an object (an asset by default) through a view.
func (c *Client) MetadataValuesPut(ctx context.Context, objectID, viewID string, p MetadataValuesPutParams) (*MetadataValues, error) {
	if objectID == "" || viewID == "" {
		return nil, errors.New("iconik: MetadataValuesPut: object id and view id are required")
	}
	if p.ObjectType == "" {
		p.ObjectType = "assets"
	}
	vals := metadataValues(p.Values, p.StringValues)
	body := struct {
		MetadataValues map[string]MetadataFieldValues `json:"metadata_values"`
	}{vals}
	var out MetadataValues
	if _, err := c.send(ctx, http.MethodPut, metadataValuesPath(p.ObjectType, objectID, viewID), nil, body, &out, false); err != nil {
		return nil, err
	}
	return &out, nil
}

// metadataValues merges field values with plain strings (one value each) into
// the metadata_values body both the single and the batch PUT send.
func metadataValues(values map[string]MetadataFieldValues, strings map[string]string) map[string]MetadataFieldValues {
	vals := make(map[string]MetadataFieldValues, len(values)+len(strings))
	for k, v := range values {
		vals[k] = v
	}
	for k, v := range strings {
		vals[k] = MetadataFieldValues{FieldValues: []MetadataValue{{Value: v}}}
	}
	return vals
}

// MetadataValuesBatchPutParams store the same values on many objects through a view
// (MetadataValuesBatchSchema).
type MetadataValuesBatchPutParams struct {
	ObjectType string   // default "assets"
	ObjectIDs  []string // the objects, all of ObjectType
	// Values and StringValues as in MetadataValuesPutParams.
	Values       map[string]MetadataFieldValues
	StringValues map[string]string
}

// MetadataValuesBatchPut stores the same metadata values on many objects with one call
// (PUT /API/metadata/v1/{object_type}/views/{view_id}/). iconik answers 202: the update is
// scheduled and applied later, so a caller that must know it landed reads the values back
// (MetadataValuesGet). PUT sets values, so a repeated batch leaves the same values behind.
func (c *Client) MetadataValuesBatchPut(ctx context.Context, viewID string, p MetadataValuesBatchPutParams) error {
	if viewID == "" || len(p.ObjectIDs) == 0 {
		return errors.New("iconik: MetadataValuesBatchPut: a view id and at least one object id are required")
	}
	if err := needIDs("MetadataValuesBatchPut", p.ObjectIDs...); err != nil {
		return err
	}
	if p.ObjectType == "" {
		p.ObjectType = "assets"
	}
	vals := metadataValues(p.Values, p.StringValues)
	body := struct {
		ObjectIDs      []string                       `json:"object_ids"`
		MetadataValues map[string]MetadataFieldValues `json:"metadata_values"`
	}{p.ObjectIDs, vals}
	_, err := c.send(ctx, http.MethodPut, "/API/metadata/v1/"+seg(p.ObjectType)+"/views/"+seg(viewID)+"/", nil, body, nil, false)
	return err
}

// MetadataValuesGetParams are MetadataValuesGet's options.
type MetadataValuesGetParams struct {
	ObjectType string // default "assets"
}

// MetadataValuesGet reads an object's metadata values through a view.
func (c *Client) MetadataValuesGet(ctx context.Context, objectID, viewID string, p MetadataValuesGetParams) (*MetadataValues, error) {
	if objectID == "" || viewID == "" {
		return nil, errors.New("iconik: MetadataValuesGet: object id and view id are required")
	}
	if p.ObjectType == "" {
		p.ObjectType = "assets"
	}
	var out MetadataValues
	if err := c.get(ctx, metadataValuesPath(p.ObjectType, objectID, viewID), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

func metadataValuesPath(objectType, objectID, viewID string) string {
	return "/API/metadata/v1/" + seg(objectType) + "/" + seg(objectID) + "/views/" + seg(viewID) + "/"
}

// SearchParams is the body of POST /search/v1/search/ plus paging.
type SearchParams struct {
	DocTypes []string      `json:"doc_types,omitempty"` // "assets", "collections"
	Query    string        `json:"query,omitempty"`
	Filter   *SearchFilter `json:"filter,omitempty"`
	Sort     []SearchSort  `json:"sort,omitempty"`
	PerPage  int           `json:"-"` // default 100
}

// SearchFilter combines terms (and nested filters) with an operator ("AND" | "OR").
type SearchFilter struct {
	Operator string         `json:"operator"`
	Terms    []SearchTerm   `json:"terms,omitempty"`
	Filters  []SearchFilter `json:"filters,omitempty"`
}

// SearchTerm matches one field ("parent_id", "external_id", "title.lower", ...).
type SearchTerm struct {
	Name    string   `json:"name"`
	Value   string   `json:"value,omitempty"`
	ValueIn []string `json:"value_in,omitempty"`
	Exists  *bool    `json:"exists,omitempty"`
	Missing *bool    `json:"missing,omitempty"`
}

// SearchSort orders results.
type SearchSort struct {
	Name  string `json:"name"`
	Order string `json:"order,omitempty"` // "asc" | "desc"
}

// SearchDocument is one search hit; fields beyond the spec's are read when present.
type SearchDocument struct {
	ID         string         `json:"id"`
	Title      string         `json:"title"`
	ObjectType string         `json:"object_type"`
	ParentID   string         `json:"parent_id"`
	ExternalID string         `json:"external_id"`
	Status     string         `json:"status"`
	Type       string         `json:"type"`
	Metadata   map[string]any `json:"metadata"`
}

// Search runs a search and iterates its hits over every page. The index lags writes: prefer
// listings for things just created.
func (c *Client) Search(ctx context.Context, p SearchParams) iter.Seq2[SearchDocument, error] {
	q := url.Values{"per_page": {strconv.Itoa(perPage(p.PerPage, 100))}}
	// Searching creates nothing, so the POST is retried like a GET.
	return pageList[SearchDocument](c, ctx, http.MethodPost, "/API/search/v1/search/", q, p, true)
}

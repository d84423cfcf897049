package iconik

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Time is an iconik timestamp. iconik sends RFC 3339 with a zone
// ("2021-07-30T15:16:54.406403+00:00") and, on some endpoints, zone-less
// "2006-01-02T15:04:05.999999" or "2006-01-02 15:04:05" (read as UTC). null and "" are the zero
// Time. It is sent as RFC 3339 in UTC; use `json:",omitzero"` to leave a zero Time out.
type Time struct{ time.Time }

var timeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02 15:04:05.999999999Z07:00",
}

// ParseTime parses any of the timestamp forms iconik sends.
func ParseTime(s string) (Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Time{}, nil
	}
	for _, l := range timeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return Time{t.UTC()}, nil
		}
	}
	return Time{}, fmt.Errorf("iconik: unrecognised timestamp %q", s)
}

func (t *Time) UnmarshalJSON(b []byte) error {
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		*t = Time{}
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("iconik: timestamp is not a string: %s", excerpt(b, 40))
	}
	v, err := ParseTime(s)
	if err != nil {
		return err
	}
	*t = v
	return nil
}

func (t Time) MarshalJSON() ([]byte, error) {
	if t.IsZero() {
		return []byte("null"), nil
	}
	return json.Marshal(t.UTC().Format("2006-01-02T15:04:05.000000Z07:00"))
}

// Size is a byte count. iconik sends a number and accepts a numeric string; both are read,
// a number is sent. null is 0.
type Size int64

func (s *Size) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		*s = 0
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var str string
		if err := json.Unmarshal(b, &str); err != nil {
			return err
		}
		if str = strings.TrimSpace(str); str == "" {
			*s = 0
			return nil
		}
		b = []byte(str)
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		// Some serialisers write integral floats ("1024.0").
		f, ferr := strconv.ParseFloat(string(b), 64)
		if ferr != nil || f != float64(int64(f)) {
			return fmt.Errorf("iconik: size %s is not a whole number", excerpt(b, 40))
		}
		n = int64(f)
	}
	*s = Size(n)
	return nil
}

// Page is iconik's page-list envelope (CONTRACT.md §1 pagination style A), also used by the
// cursor lists.
type page[T any] struct {
	Objects []T    `json:"objects"`
	Page    int    `json:"page"`
	Pages   int    `json:"pages"`
	PerPage int    `json:"per_page"`
	Total   int64  `json:"total"`
	NextURL string `json:"next_url"`
}

// User is users/v1 UserSchema (the fields ferry uses).
type User struct {
	ID        string   `json:"id"`
	Email     string   `json:"email"`
	FirstName string   `json:"first_name"`
	LastName  string   `json:"last_name"`
	Type      string   `json:"type"`   // POWER | STANDARD | BROWSE_ONLY | BROWSE_API_ONLY
	Status    string   `json:"status"` // INACTIVE | ACTIVE | BLOCKED | DELETED
	IsAdmin   bool     `json:"is_admin"`
	Groups    []string `json:"groups"`
	AppID     string   `json:"app_id"`
}

// Name is "First Last" or the email.
func (u *User) Name() string {
	if n := strings.TrimSpace(u.FirstName + " " + u.LastName); n != "" {
		return n
	}
	return u.Email
}

// Storage is files/v1 StorageReadSchema.
type Storage struct {
	ID            string         `json:"id"`
	Name          string         `json:"name"`
	Description   string         `json:"description"`
	Default       bool           `json:"default"`
	Method        string         `json:"method"`  // FILE HTTP FTP SFTP S3 B2 GCS PORTAL CUSTOM AZURE
	Purpose       string         `json:"purpose"` // KEYFRAMES FILES PROXIES EXPORTS ARCHIVE FACES
	Status        string         `json:"status"`  // ACTIVE INACTIVE FAILING
	StatusMessage string         `json:"status_message"`
	Settings      map[string]any `json:"settings"`
}

// Flag reads a boolean setting (read, write, delete, scan, ...); absent is false. iconik has
// been seen sending "true"/"false" strings in settings, so those count too.
func (s *Storage) Flag(name string) bool {
	switch v := s.Settings[name].(type) {
	case bool:
		return v
	case string:
		b, _ := strconv.ParseBool(v)
		return b
	}
	return false
}

// Setting reads a string setting ("" if absent or not a string).
func (s *Storage) Setting(name string) string {
	v, _ := s.Settings[name].(string)
	return v
}

// StoragePermissions is the result of a storage's permission verification.
type StoragePermissions struct {
	ReadAccess        bool   `json:"read_access"`
	WriteAccess       bool   `json:"write_access"`
	DeleteAccess      bool   `json:"delete_access"`
	CORS              bool   `json:"cors"`
	ReadAccessError   string `json:"read_access_error"`
	WriteAccessError  string `json:"write_access_error"`
	DeleteAccessError string `json:"delete_access_error"`
	CORSError         string `json:"cors_error"`
	ErrorMessage      string `json:"error_message"`
}

// Collection is assets/v1 CollectionSchema.
type Collection struct {
	ID            string   `json:"id"`
	Title         string   `json:"title"`
	ParentID      string   `json:"parent_id"`
	Parents       []string `json:"parents"`
	InCollections []string `json:"in_collections"`
	IsRoot        bool     `json:"is_root"`
	Status        string   `json:"status"`
	ExternalID    string   `json:"external_id"`
	Category      string   `json:"category"`
	StorageID     string   `json:"storage_id"`
	ObjectType    string   `json:"object_type"`
	CreatedByUser string   `json:"created_by_user"`
	DateCreated   Time     `json:"date_created"`
	DateModified  Time     `json:"date_modified"`
}

// ContentItem is one entry of a collection's contents: a collection or an asset.
type ContentItem struct {
	ID         string `json:"id"`
	Title      string `json:"title"`
	ObjectType string `json:"object_type"` // "collections" | "assets"
	ExternalID string `json:"external_id"`
	Status     string `json:"status"`
	Type       string `json:"type"` // asset type, for assets
	ParentID   string `json:"parent_id"`
}

// Asset is assets/v1 AssetSchema.
type Asset struct {
	ID            string         `json:"id"`
	Title         string         `json:"title"`
	Type          string         `json:"type"`
	Status        string         `json:"status"`
	ExternalID    string         `json:"external_id"`
	Category      string         `json:"category"`
	IsOnline      bool           `json:"is_online"`
	CreatedByUser string         `json:"created_by_user"`
	InCollections []string       `json:"in_collections"`
	Versions      []AssetVersion `json:"versions"`
	// DefaultVersionID is not in the spec but iconik returns it on some endpoints
	// (CONTRACT.md §2.4).
	DefaultVersionID string `json:"default_version_id"`
	DateCreated      Time   `json:"date_created"`
	DateModified     Time   `json:"date_modified"`
}

// AssetVersion is one version of an asset.
type AssetVersion struct {
	ID            string `json:"id"`
	VersionNumber int    `json:"version_number"`
	Status        string `json:"status"`
	IsOnline      bool   `json:"is_online"`
	CreatedByUser string `json:"created_by_user"`
	DateCreated   Time   `json:"date_created"`
}

// VersionID is the version to attach formats and files to: default_version_id, else the first
// version's id (CONTRACT.md §2.4).
func (a *Asset) VersionID() string {
	if a.DefaultVersionID != "" {
		return a.DefaultVersionID
	}
	if len(a.Versions) > 0 {
		return a.Versions[0].ID
	}
	return ""
}

// Format is files/v1 FormatSchema.
type Format struct {
	ID             string           `json:"id"`
	AssetID        string           `json:"asset_id"`
	Name           string           `json:"name"`
	UserID         string           `json:"user_id"`
	VersionID      string           `json:"version_id"`
	Metadata       []map[string]any `json:"metadata"`
	StorageMethods []string         `json:"storage_methods"`
	Status         string           `json:"status"`
	IsOnline       bool             `json:"is_online"`
	DateCreated    Time             `json:"date_created"`
}

// FileSet is files/v1 FileSetSchema.
type FileSet struct {
	ID           string   `json:"id"`
	AssetID      string   `json:"asset_id"`
	FormatID     string   `json:"format_id"`
	Name         string   `json:"name"`
	BaseDir      string   `json:"base_dir"`
	ComponentIDs []string `json:"component_ids"`
	StorageID    string   `json:"storage_id"`
	VersionID    string   `json:"version_id"`
	Status       string   `json:"status"`
	FileCount    int      `json:"file_count"`
	IsArchive    bool     `json:"is_archive"`
	DateCreated  Time     `json:"date_created"`
}

// File is files/v1 FileSchema, including the read-only upload fields.
type File struct {
	ID               string `json:"id"`
	AssetID          string `json:"asset_id"`
	Name             string `json:"name"`
	OriginalName     string `json:"original_name"`
	DirectoryPath    string `json:"directory_path"`
	Type             string `json:"type"` // FILE | DIRECTORY | SYMLINK
	Size             Size   `json:"size"`
	Status           string `json:"status"` // OPEN GROWING AWAITED CLOSED FAILED ARCHIVED MISSING REDISCOVERED DELETED
	StorageID        string `json:"storage_id"`
	StorageMethod    string `json:"storage_method"`
	FileSetID        string `json:"file_set_id"`
	FormatID         string `json:"format_id"`
	VersionID        string `json:"version_id"`
	Checksum         string `json:"checksum"`
	FileDateCreated  Time   `json:"file_date_created"`
	FileDateModified Time   `json:"file_date_modified"`
	DateCreated      Time   `json:"date_created"`
	DateModified     Time   `json:"date_modified"`
	URL              string `json:"url"`

	// Upload fields (CONTRACT.md §2.7): where and how to send the bytes.
	UploadURL          string         `json:"upload_url"`
	MultipartUploadURL string         `json:"multipart_upload_url"`
	UploadCredentials  map[string]any `json:"upload_credentials"`
	UploadFilename     string         `json:"upload_filename"`
	UploadMethod       string         `json:"upload_method"`
}

// UploadCredential reads a string from upload_credentials (e.g. B2 "authorizationToken").
func (f *File) UploadCredential(key string) string {
	v, _ := f.UploadCredentials[key].(string)
	return v
}

// Keyframe is files/v1 KeyframeSchema.
type Keyframe struct {
	ID         string     `json:"id"`
	AssetID    string     `json:"asset_id"`
	Type       string     `json:"type"` // KEYFRAME | POSTER | KEYFRAME_MAP
	URL        string     `json:"url"`
	Resolution Resolution `json:"resolution"`
	Size       Size       `json:"size"`
	Status     string     `json:"status"`
	StorageID  string     `json:"storage_id"`
	VersionID  string     `json:"version_id"`
	Filename   string     `json:"filename"`
	Name       string     `json:"name"`
}

// Resolution is a keyframe's pixel size.
type Resolution struct {
	Width  int `json:"width"`
	Height int `json:"height"`
}

// Job is jobs/v1 JobSchema.
type Job struct {
	ID                string          `json:"id"`
	Type              string          `json:"type"`
	Status            string          `json:"status"`
	Title             string          `json:"title"`
	ObjectType        string          `json:"object_type"`
	ObjectID          string          `json:"object_id"`
	ParentID          string          `json:"parent_id"`
	Progress          int             `json:"progress"`
	ProgressProcessed Size            `json:"progress_processed"`
	ProgressTotal     Size            `json:"progress_total"`
	Message           string          `json:"message"`
	ErrorMessage      string          `json:"error_message"`
	Metadata          map[string]any  `json:"metadata"`
	RelatedObjects    []RelatedObject `json:"related_objects"`
	HasChildren       bool            `json:"has_children"`
	Priority          int             `json:"priority"`
	CreatedBy         string          `json:"created_by"`
	StartedAt         Time            `json:"started_at"`
	CompletedAt       Time            `json:"completed_at"`
	DateCreated       Time            `json:"date_created"`
	DateModified      Time            `json:"date_modified"`
}

// RelatedObject links a job to another object.
type RelatedObject struct {
	ObjectID   string `json:"object_id"`
	ObjectType string `json:"object_type"`
}

// MetadataField is metadata/v1 MetadataFieldSchema.
type MetadataField struct {
	Name        string `json:"name"`
	Label       string `json:"label"`
	FieldType   string `json:"field_type"`
	Description string `json:"description"`
	Multi       bool   `json:"multi"`
	ReadOnly    bool   `json:"read_only"`
	Required    bool   `json:"required"`
	ExternalID  string `json:"external_id"`
}

// MetadataView is metadata/v1 MetadataViewSchema.
type MetadataView struct {
	ID           string              `json:"id"`
	Name         string              `json:"name"`
	Description  string              `json:"description"`
	ViewFields   []MetadataViewField `json:"view_fields"`
	DateCreated  Time                `json:"date_created"`
	DateModified Time                `json:"date_modified"`
}

// HasField reports whether the view contains the named field.
func (v *MetadataView) HasField(name string) bool {
	for _, f := range v.ViewFields {
		if f.Name == name {
			return true
		}
	}
	return false
}

// MetadataViewField is one field of a view (MetadataViewFieldSchema; a view read with
// merge_fields carries the field's type and description too).
type MetadataViewField struct {
	Name         string `json:"name"`
	Label        string `json:"label,omitempty"`
	ReadOnly     bool   `json:"read_only,omitempty"`
	Required     bool   `json:"required,omitempty"`
	HideIfNotSet bool   `json:"hide_if_not_set,omitempty"`
	FieldType    string `json:"field_type,omitempty"`
}

// MetadataValues is metadata/v1 MetadataValuesSchema.
type MetadataValues struct {
	ObjectID       string                         `json:"object_id,omitempty"`
	ObjectType     string                         `json:"object_type,omitempty"`
	VersionID      string                         `json:"version_id,omitempty"`
	MetadataValues map[string]MetadataFieldValues `json:"metadata_values"`
	DateCreated    Time                           `json:"date_created,omitzero"`
	DateModified   Time                           `json:"date_modified,omitzero"`
}

// MetadataFieldValues holds one field's values.
type MetadataFieldValues struct {
	FieldValues []MetadataValue `json:"field_values"`
	Mode        string          `json:"mode,omitempty"` // append | delete | overwrite
}

// MetadataValue is one value of a field.
type MetadataValue struct {
	Value any `json:"value"`
}

// String returns the field's values joined by newlines (strings as they are, others as JSON).
func (m *MetadataValues) String(field string) string {
	var out []string
	for _, v := range m.MetadataValues[field].FieldValues {
		if s, ok := v.Value.(string); ok {
			out = append(out, s)
		} else if b, err := json.Marshal(v.Value); err == nil {
			out = append(out, string(b))
		}
	}
	return strings.Join(out, "\n")
}

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

func assetPath(assetID string) string { return "/API/files/v1/assets/" + seg(assetID) }

func filePath(assetID, fileID string) string {
	return assetPath(assetID) + "/files/" + seg(fileID)
}

func needIDs(op string, ids ...string) error {
	for _, id := range ids {
		if id == "" {
			return fmt.Errorf("iconik: %s: empty id", op)
		}
	}
	return nil
}

// FormatCreateParams is the body of POST /files/v1/assets/{a}/formats/.
type FormatCreateParams struct {
	Name           string           `json:"name"` // default ORIGINAL
	UserID         string           `json:"user_id,omitempty"`
	VersionID      string           `json:"version_id,omitempty"`
	Metadata       []map[string]any `json:"metadata,omitempty"` // e.g. [{"internet_media_type": "video/mp4"}]
	StorageMethods []string         `json:"storage_methods,omitempty"`
	Status         string           `json:"status,omitempty"`
}

// FormatCreate creates a format of an asset.
func (c *Client) FormatCreate(ctx context.Context, assetID string, p FormatCreateParams) (*Format, error) {
	if err := needIDs("FormatCreate", assetID); err != nil {
		return nil, err
	}
	if p.Name == "" {
		p.Name = "ORIGINAL"
	}
	var out Format
	if _, err := c.send(ctx, http.MethodPost, assetPath(assetID)+"/formats/", nil, p, &out, false); err != nil {
		return nil, err
	}
	return &out, nil
}

// FormatGet returns an asset's format by name (e.g. ORIGINAL).
func (c *Client) FormatGet(ctx context.Context, assetID, name string) (*Format, error) {
	if err := needIDs("FormatGet", assetID, name); err != nil {
		return nil, err
	}
	var out Format
	if err := c.get(ctx, assetPath(assetID)+"/formats/"+seg(name)+"/", nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// FormatList lists an asset's formats (cursor list).
func (c *Client) FormatList(ctx context.Context, assetID string) iter.Seq2[Format, error] {
	return cursorList(c, ctx, assetPath(assetID)+"/formats/", nil, 100, "last_id", func(f Format) string { return f.ID })
}

// FileSetCreateParams is the body of POST /files/v1/assets/{a}/file_sets/.
type FileSetCreateParams struct {
	FormatID     string   `json:"format_id"`
	Name         string   `json:"name"`
	BaseDir      string   `json:"base_dir"`      // may be "": the storage root
	ComponentIDs []string `json:"component_ids"` // sent as [] when empty
	StorageID    string   `json:"storage_id,omitempty"`
	VersionID    string   `json:"version_id,omitempty"`
	Status       string   `json:"status,omitempty"` // ACTIVE | ARCHIVED | DELETED
}

// FileSetCreate creates a file set.
func (c *Client) FileSetCreate(ctx context.Context, assetID string, p FileSetCreateParams) (*FileSet, error) {
	if err := needIDs("FileSetCreate", assetID, p.FormatID); err != nil {
		return nil, err
	}
	if p.Name == "" {
		return nil, errors.New("iconik: FileSetCreate: empty name")
	}
	if p.ComponentIDs == nil {
		p.ComponentIDs = []string{}
	}
	var out FileSet
	if _, err := c.send(ctx, http.MethodPost, assetPath(assetID)+"/file_sets/", nil, p, &out, false); err != nil {
		return nil, err
	}
	return &out, nil
}

// FileSetList lists an asset's file sets (cursor list).
func (c *Client) FileSetList(ctx context.Context, assetID string) iter.Seq2[FileSet, error] {
	return cursorList(c, ctx, assetPath(assetID)+"/file_sets/", nil, 100, "last_id", func(f FileSet) string { return f.ID })
}

// FileSetDelete deletes a file set (and, at iconik, its stored objects).
func (c *Client) FileSetDelete(ctx context.Context, assetID, fileSetID string) error {
	if err := needIDs("FileSetDelete", assetID, fileSetID); err != nil {
		return err
	}
	_, err := c.send(ctx, http.MethodDelete, assetPath(assetID)+"/file_sets/"+seg(fileSetID)+"/", nil, nil, nil, false)
	return err
}

// FileCreateParams is the body of POST /files/v1/assets/{a}/files/.
type FileCreateParams struct {
	OriginalName     string `json:"original_name"`
	DirectoryPath    string `json:"directory_path"` // may be ""
	Type             string `json:"type"`           // default FILE
	Size             int64  `json:"size"`
	StorageID        string `json:"storage_id,omitempty"`
	FileSetID        string `json:"file_set_id,omitempty"`
	FormatID         string `json:"format_id,omitempty"`
	VersionID        string `json:"version_id,omitempty"`
	Name             string `json:"name,omitempty"` // iconik generates one when empty
	Checksum         string `json:"checksum,omitempty"`
	FileDateCreated  Time   `json:"file_date_created,omitzero"`
	FileDateModified Time   `json:"file_date_modified,omitzero"`
	// Status is left empty for an upload (the file starts OPEN; PATCH CLOSED when done).
	Status string `json:"status,omitempty"`
}

// FileCreate creates a file record; for an upload the result carries the upload fields.
func (c *Client) FileCreate(ctx context.Context, assetID string, p FileCreateParams) (*File, error) {
	if err := needIDs("FileCreate", assetID); err != nil {
		return nil, err
	}
	if p.OriginalName == "" {
		return nil, errors.New("iconik: FileCreate: empty original name")
	}
	if p.Size < 0 {
		return nil, fmt.Errorf("iconik: FileCreate: negative size %d", p.Size)
	}
	if p.Type == "" {
		p.Type = "FILE"
	}
	var out File
	if _, err := c.send(ctx, http.MethodPost, assetPath(assetID)+"/files/", nil, p, &out, false); err != nil {
		return nil, err
	}
	return &out, nil
}

// FileGetParams are FileGet's query options.
type FileGetParams struct {
	// GenerateSignedPostURL asks for fresh upload URLs (an expired URL, or B2's empty one).
	GenerateSignedPostURL bool
}

// FileGet returns one file.
func (c *Client) FileGet(ctx context.Context, assetID, fileID string, p FileGetParams) (*File, error) {
	if err := needIDs("FileGet", assetID, fileID); err != nil {
		return nil, err
	}
	var q url.Values
	if p.GenerateSignedPostURL {
		q = url.Values{"generate_signed_post_url": {"true"}}
	}
	var out File
	if err := c.get(ctx, filePath(assetID, fileID)+"/", q, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// FileList lists an asset's files (cursor list).
func (c *Client) FileList(ctx context.Context, assetID string) iter.Seq2[File, error] {
	return cursorList(c, ctx, assetPath(assetID)+"/files/", nil, 100, "last_id", func(f File) string { return f.ID })
}

// FilePatchParams is the body of PATCH .../files/{f}/. The spec's PATCH body is FileSchema,
// which requires original_name, directory_path, file_set_id and type, so they are always sent:
// FilePatch reads them with a GET first when the caller leaves OriginalName or FileSetID empty
// (pass them, from FileCreate's result, to save that call).
type FilePatchParams struct {
	OriginalName  string `json:"original_name"`
	DirectoryPath string `json:"directory_path"`
	FileSetID     string `json:"file_set_id"`
	Type          string `json:"type"`

	Status   string `json:"status,omitempty"` // e.g. CLOSED, FAILED
	Size     *int64 `json:"size,omitempty"`
	Checksum string `json:"checksum,omitempty"`
}

// FilePatchFor starts FilePatchParams from a file's identity fields.
func FilePatchFor(f *File, status string) FilePatchParams {
	return FilePatchParams{OriginalName: f.OriginalName, DirectoryPath: f.DirectoryPath, FileSetID: f.FileSetID, Type: f.Type, Status: status}
}

// FilePatch updates a file, e.g. FilePatchFor(file, "CLOSED") after the upload.
func (c *Client) FilePatch(ctx context.Context, assetID, fileID string, p FilePatchParams) (*File, error) {
	if err := needIDs("FilePatch", assetID, fileID); err != nil {
		return nil, err
	}
	if p.OriginalName == "" || p.FileSetID == "" {
		f, err := c.FileGet(ctx, assetID, fileID, FileGetParams{})
		if err != nil {
			return nil, fmt.Errorf("iconik: FilePatch: reading the file's required fields: %w", err)
		}
		if p.OriginalName == "" {
			p.OriginalName = f.OriginalName
		}
		if p.FileSetID == "" {
			p.FileSetID = f.FileSetID
		}
		if p.DirectoryPath == "" {
			p.DirectoryPath = f.DirectoryPath
		}
		if p.Type == "" {
			p.Type = f.Type
		}
	}
	if p.Type == "" {
		p.Type = "FILE"
	}
	var out File
	if _, err := c.send(ctx, http.MethodPatch, filePath(assetID, fileID)+"/", nil, p, &out, false); err != nil {
		return nil, err
	}
	return &out, nil
}

// FileDelete deletes a file record (not the stored object).
func (c *Client) FileDelete(ctx context.Context, assetID, fileID string) error {
	if err := needIDs("FileDelete", assetID, fileID); err != nil {
		return err
	}
	_, err := c.send(ctx, http.MethodDelete, filePath(assetID, fileID)+"/", nil, nil, nil, false)
	return err
}

// KeyframesCreateParams is the body of POST .../files/{f}/keyframes/ (all optional).
type KeyframesCreateParams struct {
	Priority                         int   `json:"priority,omitempty"` // 1-10
	SetAsCustomKeyframe              *bool `json:"set_as_custom_keyframe,omitempty"`
	UpdateProxyMediainfo             *bool `json:"update_proxy_mediainfo,omitempty"`
	UseStorageTranscodeIgnorePattern *bool `json:"use_storage_transcode_ignore_pattern,omitempty"`
}

// KeyframesResult says what iconik did with a keyframes request.
type KeyframesResult struct {
	JobID   string // the transcode job (200)
	Ignored bool   // 204: the storage's transcode ignore pattern matched
}

// KeyframesCreate asks iconik to generate keyframes and a proxy for a CLOSED file. A 204
// (ignored by the storage's pattern) is success too.
func (c *Client) KeyframesCreate(ctx context.Context, assetID, fileID string, p KeyframesCreateParams) (*KeyframesResult, error) {
	if err := needIDs("KeyframesCreate", assetID, fileID); err != nil {
		return nil, err
	}
	if p.Priority < 0 || p.Priority > 10 {
		return nil, fmt.Errorf("iconik: KeyframesCreate: priority %d outside 1-10", p.Priority)
	}
	var out struct {
		JobID string `json:"job_id"`
	}
	// Not retried after a 5xx: the first attempt may have started a transcode job, and a
	// second one makes a second keyframe of the file. The caller looks for the job (a
	// TRANSCODE job of the asset) before asking again.
	status, err := c.send(ctx, http.MethodPost, filePath(assetID, fileID)+"/keyframes/", nil, p, &out, false)
	if err != nil {
		return nil, err
	}
	return &KeyframesResult{JobID: out.JobID, Ignored: status == http.StatusNoContent}, nil
}

// KeyframeListParams are KeyframeList's options.
type KeyframeListParams struct {
	GenerateSignedURL bool
	PerPage           int // default 100
}

// KeyframeList lists an asset's keyframes (cursor list).
func (c *Client) KeyframeList(ctx context.Context, assetID string, p KeyframeListParams) iter.Seq2[Keyframe, error] {
	q := url.Values{}
	if p.GenerateSignedURL {
		q.Set("generate_signed_url", "true")
	}
	return cursorList(c, ctx, assetPath(assetID)+"/keyframes/", q, perPage(p.PerPage, 100), "last_id", func(k Keyframe) string { return k.ID })
}

// PartURL is a presigned URL for one part of a multipart upload.
type PartURL struct {
	Number      int    `json:"number"`
	URL         string `json:"url"`
	Key         string `json:"key,omitempty"`
	DeleteURL   string `json:"delete_url,omitempty"`
	DownloadURL string `json:"download_url,omitempty"`
}

// S3PartChecksum names a part and its base64 MD5 (empty = unsigned).
type S3PartChecksum struct {
	PartNumber int    `json:"part_number"`
	Checksum   string `json:"checksum,omitempty"`
}

// S3PartURLsParams select part URLs. With Parts set, the URLs are signed with each part's MD5
// (POST .../multipart_url/s3/part/, for storages with presign_md5_checksum); otherwise URLs
// for parts 1..PartsNum are read page by page (GET .../multipart_url/part/).
type S3PartURLsParams struct {
	UploadID string
	PartsNum int
	Parts    []S3PartChecksum
	// Page, PerPage pick one page of 1..PartsNum (Page 0 = every page).
	Page, PerPage int
}

// S3PartURLs returns presigned part URLs (S3, and GCS parts) in part order.
func (c *Client) S3PartURLs(ctx context.Context, assetID, fileID string, p S3PartURLsParams) ([]PartURL, error) {
	if err := needIDs("S3PartURLs", assetID, fileID); err != nil {
		return nil, err
	}
	if len(p.Parts) > 0 {
		if p.UploadID == "" {
			return nil, errors.New("iconik: S3PartURLs: checksummed parts need an upload id")
		}
		for _, pt := range p.Parts {
			if pt.PartNumber < 1 || pt.PartNumber > 10000 {
				return nil, fmt.Errorf("iconik: S3PartURLs: part number %d outside 1-10000", pt.PartNumber)
			}
		}
		body := struct {
			UploadID string           `json:"upload_id"`
			Parts    []S3PartChecksum `json:"parts"`
		}{p.UploadID, p.Parts}
		var out struct {
			Parts []struct {
				PartNumber int    `json:"part_number"`
				URL        string `json:"url"`
			} `json:"parts"`
		}
		// Presigning creates nothing, so it is safe to retry.
		if _, err := c.send(ctx, http.MethodPost, filePath(assetID, fileID)+"/multipart_url/s3/part/", nil, body, &out, true); err != nil {
			return nil, err
		}
		urls := make([]PartURL, 0, len(out.Parts))
		for _, pt := range out.Parts {
			urls = append(urls, PartURL{Number: pt.PartNumber, URL: pt.URL})
		}
		return urls, nil
	}
	if p.PartsNum < 1 || p.PartsNum > 10000 {
		return nil, fmt.Errorf("iconik: S3PartURLs: parts_num %d outside 1-10000", p.PartsNum)
	}
	per := perPage(p.PerPage, 100)
	q := url.Values{"parts_num": {strconv.Itoa(p.PartsNum)}, "per_page": {strconv.Itoa(per)}}
	if p.UploadID != "" {
		q.Set("upload_id", p.UploadID)
	}
	var urls []PartURL
	first, last := 1, (p.PartsNum+per-1)/per
	if p.Page > 0 {
		first, last = p.Page, p.Page
	}
	for pg := first; pg <= last; pg++ {
		q.Set("page", strconv.Itoa(pg))
		var out struct {
			Objects []PartURL `json:"objects"`
		}
		if err := c.get(ctx, filePath(assetID, fileID)+"/multipart_url/part/", q, &out); err != nil {
			return nil, err
		}
		if len(out.Objects) == 0 {
			break
		}
		urls = append(urls, out.Objects...)
	}
	return urls, nil
}

// MultipartURLs are an S3 multipart upload's complete/abort URLs.
type MultipartURLs struct {
	CompleteURL  string   `json:"complete_url"`
	AbortURL     string   `json:"abort_url"`
	ListPartsURL []string `json:"list_parts_url"`
}

// S3MultipartURLsParams select S3MultipartURLs.
type S3MultipartURLsParams struct {
	UploadID      string
	Type          string // e.g. "complete_url"; "" = all
	MaxPartNumber int
}

// S3MultipartURLs returns presigned complete/abort URLs for an S3 multipart upload.
func (c *Client) S3MultipartURLs(ctx context.Context, assetID, fileID string, p S3MultipartURLsParams) (*MultipartURLs, error) {
	if err := needIDs("S3MultipartURLs", assetID, fileID, p.UploadID); err != nil {
		return nil, err
	}
	q := url.Values{"upload_id": {p.UploadID}}
	if p.Type != "" {
		q.Set("type", p.Type)
	}
	if p.MaxPartNumber > 0 {
		q.Set("max_part_number", strconv.Itoa(p.MaxPartNumber))
	}
	var out MultipartURLs
	if err := c.get(ctx, filePath(assetID, fileID)+"/multipart_url/", q, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// MultipartCleanupParams is the body of POST .../multipart/cleanup/.
type MultipartCleanupParams struct {
	UploadID    string `json:"upload_id,omitempty"`
	PartsNumber int    `json:"parts_number,omitempty"`
	AbortUpload bool   `json:"abort_upload"`
}

// MultipartCleanup aborts/cleans up a multipart upload (S3, GCS). Safe to retry.
func (c *Client) MultipartCleanup(ctx context.Context, assetID, fileID string, p MultipartCleanupParams) error {
	if err := needIDs("MultipartCleanup", assetID, fileID); err != nil {
		return err
	}
	_, err := c.send(ctx, http.MethodPost, filePath(assetID, fileID)+"/multipart/cleanup/", nil, p, nil, true)
	return err
}

// GCSComposeURLParams is the body of POST .../multipart/gcs/compose_url/.
type GCSComposeURLParams struct {
	PartsGroup  int64  `json:"parts_group,omitempty"`
	ContentType string `json:"content_type,omitempty"`
}

// GCSComposeURL is the answer of GCSComposeURL.
type GCSComposeURL struct {
	ComposeURL string `json:"compose_url"`
	URL        string `json:"url"`
	Key        string `json:"key"`
	DeleteURL  string `json:"delete_url"`
}

// GCSComposeURL returns a compose URL for a GCS parallel upload. Safe to retry.
func (c *Client) GCSComposeURL(ctx context.Context, assetID, fileID string, p GCSComposeURLParams) (*GCSComposeURL, error) {
	if err := needIDs("GCSComposeURL", assetID, fileID); err != nil {
		return nil, err
	}
	var out GCSComposeURL
	if _, err := c.send(ctx, http.MethodPost, filePath(assetID, fileID)+"/multipart/gcs/compose_url/", nil, p, &out, true); err != nil {
		return nil, err
	}
	return &out, nil
}

// GCSMultipartCompleteParams is the body of POST .../multipart/.
type GCSMultipartCompleteParams struct {
	PartsRange []string `json:"parts_range"`
	PartsGroup int64    `json:"parts_group,omitempty"`
}

// GCSMultipartComplete completes a GCS multipart (composed) upload.
func (c *Client) GCSMultipartComplete(ctx context.Context, assetID, fileID string, p GCSMultipartCompleteParams) error {
	if err := needIDs("GCSMultipartComplete", assetID, fileID); err != nil {
		return err
	}
	if p.PartsRange == nil {
		p.PartsRange = []string{}
	}
	_, err := c.send(ctx, http.MethodPost, filePath(assetID, fileID)+"/multipart/", nil, p, nil, false)
	return err
}

// B2Large is a started B2 large file.
type B2Large struct {
	UploadFileID       string `json:"upload_file_id"`
	UploadURL          string `json:"upload_url"`
	AuthorizationToken string `json:"authorization_token"`
	Status             string `json:"status"`
	Error              string `json:"error"`
	ErrorCode          string `json:"error_code"`
}

// B2LargeStartParams is the body of POST .../multipart/b2/start/.
type B2LargeStartParams struct {
	// UploadFileID names a large file started earlier, to get a fresh part
	// upload URL and token for it (resuming after a restart); empty starts a
	// new one.
	UploadFileID string `json:"upload_file_id,omitempty"`
}

// B2LargeStart starts a B2 large file for the file record or, with
// p.UploadFileID, hands out a fresh part URL for one already started. A new
// start is not retried on 5xx/network errors (a retry would start a second
// large file; cancel the first if a retry is needed); asking again for a
// started one is, as it creates nothing.
func (c *Client) B2LargeStart(ctx context.Context, assetID, fileID string, p B2LargeStartParams) (*B2Large, error) {
	if err := needIDs("B2LargeStart", assetID, fileID); err != nil {
		return nil, err
	}
	var out B2Large
	if _, err := c.send(ctx, http.MethodPost, filePath(assetID, fileID)+"/multipart/b2/start/", nil, p, &out, p.UploadFileID != ""); err != nil {
		return nil, err
	}
	if out.Error != "" || out.ErrorCode != "" {
		return nil, fmt.Errorf("iconik: B2LargeStart: storage answered %s: %s", out.ErrorCode, out.Error)
	}
	if p.UploadFileID != "" && out.UploadFileID != "" && out.UploadFileID != p.UploadFileID {
		return nil, fmt.Errorf("iconik: B2LargeStart: asked for large file %s, answered %s", p.UploadFileID, out.UploadFileID)
	}
	if out.UploadFileID == "" {
		out.UploadFileID = p.UploadFileID
	}
	return &out, nil
}

// B2LargeFinishParams is the body of POST .../multipart/b2/finish/.
type B2LargeFinishParams struct {
	UploadFileID string   `json:"upload_file_id"`
	SHA1List     []string `json:"sha1_list"` // hex SHA-1 per part, in part order
}

// B2LargeFinish finishes a B2 large file.
func (c *Client) B2LargeFinish(ctx context.Context, assetID, fileID string, p B2LargeFinishParams) error {
	if err := needIDs("B2LargeFinish", assetID, fileID, p.UploadFileID); err != nil {
		return err
	}
	if len(p.SHA1List) == 0 {
		return errors.New("iconik: B2LargeFinish: empty sha1 list")
	}
	_, err := c.send(ctx, http.MethodPost, filePath(assetID, fileID)+"/multipart/b2/finish/", nil, p, nil, false)
	return err
}

// B2LargeCancelParams is the body of POST .../multipart/b2/cancel/.
type B2LargeCancelParams struct {
	UploadFileID string `json:"upload_file_id"`
}

// B2LargeCancel cancels a B2 large file. Safe to retry.
func (c *Client) B2LargeCancel(ctx context.Context, assetID, fileID string, p B2LargeCancelParams) error {
	if err := needIDs("B2LargeCancel", assetID, fileID, p.UploadFileID); err != nil {
		return err
	}
	_, err := c.send(ctx, http.MethodPost, filePath(assetID, fileID)+"/multipart/b2/cancel/", nil, p, nil, true)
	return err
}

// KeyframesBulkMax is the most assets one bulk keyframes call takes (BulkTranscodeSchema's
// maxItems).
const KeyframesBulkMax = 500

// KeyframesBulkCreateParams is the body of POST /API/files/v1/assets/bulk/keyframes/
// (BulkTranscodeSchema).
type KeyframesBulkCreateParams struct {
	ObjectType string   `json:"object_type"`           // "assets" (default), "collections", "saved_searches"
	ObjectIDs  []string `json:"object_ids"`            // 1..500
	FormatName string   `json:"format_name,omitempty"` // default "ORIGINAL"
	Priority   int      `json:"priority,omitempty"`    // 1-10
}

// KeyframesBulkCreate asks iconik for keyframes of many assets at once: one transcode job
// for all of them (the files must be CLOSED). The spec declares a bare 200; the job id is
// returned when iconik's answer carries one ("" otherwise). The storages' transcode ignore
// patterns are iconik's to apply: no per-asset answer says which were skipped.
func (c *Client) KeyframesBulkCreate(ctx context.Context, p KeyframesBulkCreateParams) (*KeyframesResult, error) {
	if len(p.ObjectIDs) == 0 || len(p.ObjectIDs) > KeyframesBulkMax {
		return nil, fmt.Errorf("iconik: KeyframesBulkCreate: %d object ids, want 1-%d", len(p.ObjectIDs), KeyframesBulkMax)
	}
	if err := needIDs("KeyframesBulkCreate", p.ObjectIDs...); err != nil {
		return nil, err
	}
	if p.Priority < 0 || p.Priority > 10 {
		return nil, fmt.Errorf("iconik: KeyframesBulkCreate: priority %d outside 1-10", p.Priority)
	}
	if p.ObjectType == "" {
		p.ObjectType = "assets"
	}
	if p.FormatName == "" {
		p.FormatName = "ORIGINAL"
	}
	var out struct {
		JobID string `json:"job_id"`
	}
	// Not retried after a 5xx, as KeyframesCreate.
	if _, err := c.send(ctx, http.MethodPost, "/API/files/v1/assets/bulk/keyframes/", nil, p, &out, false); err != nil {
		return nil, err
	}
	return &KeyframesResult{JobID: out.JobID}, nil
}

package server

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/ferryhq/ferry/internal/iconik"
	"github.com/ferryhq/ferry/internal/web"
)

var _ web.Keyframes = (*deliveryStore)(nil)

// keyframeFetch fetches keyframe images from iconik's signed URLs.
var keyframeFetch = &http.Client{Timeout: 30 * time.Second}

// KeyframeImage opens the first keyframe iconik lists for a delivered file's
// asset, through the delivery's connection (iconik's URL is signed; the
// browser gets the bytes through ferry, never the URL).
func (s *deliveryStore) KeyframeImage(ctx context.Context, deliveryID, fileID string) (io.ReadCloser, string, error) {
	d, err := s.DeliveryGet(ctx, deliveryID)
	if err != nil {
		return nil, "", err
	}
	var assetID string
	for _, f := range d.Files {
		if f.FileID == fileID {
			assetID = f.AssetID
		}
	}
	if assetID == "" || s.conns == nil {
		return nil, "", web.ErrNotFound
	}
	cl, _, err := s.conns.Client(ctx, d.ConnectionID)
	if err != nil {
		return nil, "", fmt.Errorf("keyframe: connection %s: %w", d.ConnectionID, err)
	}
	var u string
	for k, err := range cl.KeyframeList(ctx, assetID, iconik.KeyframeListParams{GenerateSignedURL: true, PerPage: 10}) {
		if err != nil {
			return nil, "", fmt.Errorf("keyframe: listing keyframes of asset %s: %w", assetID, err)
		}
		if k.URL != "" && (k.Type == "KEYFRAME" || k.Type == "POSTER") {
			u = k.URL
			break
		}
	}
	if u == "" {
		return nil, "", web.ErrNotFound
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, "", fmt.Errorf("keyframe: %w", err)
	}
	resp, err := keyframeFetch.Do(req)
	if err != nil {
		return nil, "", fmt.Errorf("keyframe: fetching asset %s's keyframe: %w", assetID, err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, "", fmt.Errorf("keyframe: asset %s's keyframe answered %s", assetID, resp.Status)
	}
	return resp.Body, resp.Header.Get("Content-Type"), nil
}

package emulator

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/draw"
	_ "image/gif" // decoders for keyframes from images
	"image/jpeg"
	_ "image/png"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// thumbWidth is the largest keyframe width, like iconik's default keyframes.
const thumbWidth = 640

// startTranscode runs a keyframe job in the background: read the file's
// bytes from the data plane, make a JPEG (Go decoders for images, ffmpeg for
// anything else when it is on PATH), store it as the asset's keyframe.
func (s *Server) startTranscode(jobID string) {
	s.jobs.Add(1)
	go func() {
		defer s.jobs.Done()
		s.runTranscode(s.ctx, jobID)
	}()
}

func (s *Server) runTranscode(ctx context.Context, jobID string) {
	s.mu.Lock()
	job := s.st.get(kJobs, jobID)
	if job == nil {
		s.mu.Unlock()
		return
	}
	// A per-file job names one file; a bulk job (keyframesBulk) several.
	fileIDs, _ := stringList(job["_file_ids"])
	if len(fileIDs) == 0 {
		fileIDs = []string{str(job, "_file_id")}
	}
	s.applyJobPatch(job, map[string]any{"status": "STARTED", "progress_total": 100 * len(fileIDs), "progress_processed": 0}, false)
	s.markDirty()
	s.mu.Unlock()

	var failed []error
	for i, fileID := range fileIDs {
		if err := s.keyframeOf(ctx, jobID, fileID); err != nil {
			failed = append(failed, err)
		}
		s.mu.Lock()
		if job = s.st.get(kJobs, jobID); job == nil {
			s.mu.Unlock()
			return
		}
		s.applyJobPatch(job, map[string]any{"progress_processed": 100 * (i + 1)}, false)
		s.markDirty()
		s.mu.Unlock()
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	job = s.st.get(kJobs, jobID)
	if job == nil {
		return
	}
	switch {
	case len(failed) == len(fileIDs):
		s.applyJobPatch(job, map[string]any{"status": "FAILED", "error_message": failed[0].Error()}, false)
	case len(failed) > 0:
		s.applyJobPatch(job, map[string]any{"status": "FINISHED_WITH_WARNING", "error_message": errors.Join(failed...).Error(),
			"message": fmt.Sprintf("Keyframes created for %d of %d files", len(fileIDs)-len(failed), len(fileIDs))}, false)
	default:
		s.applyJobPatch(job, map[string]any{"status": "FINISHED", "message": "Keyframe created"}, false)
	}
	s.markDirty()
}

// keyframeOf makes one file's keyframe for a job: read the file's bytes
// from the data plane, make a JPEG (Go decoders for images, ffmpeg for
// anything else when it is on PATH), store it as the asset's keyframe.
func (s *Server) keyframeOf(ctx context.Context, jobID, fileID string) error {
	s.mu.Lock()
	f := s.st.get(kFiles, fileID)
	var storage doc
	if f != nil {
		storage = s.st.get(kStorages, str(f, "storage_id"))
	}
	var fileName, key, assetID, versionID string
	if f != nil {
		fileName, key, assetID, versionID = str(f, "name"), str(f, "_key"), str(f, "asset_id"), str(f, "version_id")
	}
	s.mu.Unlock()

	kfID := newID()
	out := filepath.Join(s.keyframeDir(), kfID+".jpg")
	var w, h int
	err := func() error {
		if f == nil {
			return errors.New("the file no longer exists")
		}
		if storage == nil {
			return errNoStorage
		}
		pst := s.planeStorage(storage)
		rc, _, err := s.plane.Open(pst, key)
		if err != nil {
			return fmt.Errorf("reading %s from storage %s: %w", key, str(storage, "name"), err)
		}
		defer rc.Close()
		if err := os.MkdirAll(s.keyframeDir(), 0o755); err != nil {
			return fmt.Errorf("creating keyframe directory: %w", err)
		}
		// The built-in plane keeps objects as files under the storage's Dir
		// (contract B): ffmpeg can read those in place instead of a copy.
		local := ""
		if p := filepath.Join(pst.Dir, filepath.FromSlash(key)); filepath.IsLocal(filepath.FromSlash(key)) {
			if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
				local = p
			}
		}
		select {
		case s.transcodeSlots <- struct{}{}:
			defer func() { <-s.transcodeSlots }()
		case <-ctx.Done():
			return fmt.Errorf("the emulator stopped before the job ran: %w", ctx.Err())
		}
		w, h, err = makeKeyframe(ctx, rc, local, fileName, out)
		return err
	}()
	if err != nil {
		s.log.Info("iconik emulator: keyframe failed", "job", jobID, "file", fileName, "err", err)
		return err
	}
	st, _ := os.Stat(out)
	var size int64
	if st != nil {
		size = st.Size()
	}
	t := now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.put(kKeyframes, doc{"id": kfID, "asset_id": assetID, "version_id": versionID, "collection_id": nil,
		"type": "KEYFRAME", "status": "CLOSED", "name": strings.TrimSuffix(fileName, filepath.Ext(fileName)) + ".jpg",
		"filename": kfID + ".jpg", "format": "JPEG", "size": size, "resolution": map[string]any{"width": w, "height": h},
		"rotation": 0, "is_custom_keyframe": false, "is_public": false, "storage_id": nil, "storage_method": nil,
		"time_code": nil, "date_created": t, "date_modified": t, "_job_id": jobID, "_file_id": fileID})
	s.markDirty()
	return nil
}

// makeKeyframe writes a JPEG thumbnail of src to out and returns its size.
// JPEG, PNG and GIF go through Go's decoders; anything else through ffmpeg,
// reading local (the object's file) when known, else a staged copy of src.
func makeKeyframe(ctx context.Context, src io.Reader, local, name, out string) (int, int, error) {
	br := bufio.NewReaderSize(src, 1<<16)
	head, _ := br.Peek(512)
	if _, format, err := image.DecodeConfig(bytes.NewReader(head)); err == nil || goDecodes(head) {
		img, _, derr := image.Decode(br)
		if derr != nil {
			return 0, 0, fmt.Errorf("decoding %s as %s: %w", name, format, derr)
		}
		return writeThumb(img, out)
	}
	ffmpeg, err := exec.LookPath("ffmpeg")
	if err != nil {
		return 0, 0, fmt.Errorf("%s is not an image the emulator decodes (JPEG, PNG, GIF) and ffmpeg is not on PATH to decode it", name)
	}
	input := local
	if input == "" {
		// ffmpeg needs a seekable input for most containers (MP4 keeps its
		// index at the end), so the bytes go to a temporary file first.
		tmp, err := os.CreateTemp(filepath.Dir(out), "src-*")
		if err != nil {
			return 0, 0, fmt.Errorf("staging %s for ffmpeg: %w", name, err)
		}
		defer os.Remove(tmp.Name())
		if _, err := io.Copy(tmp, br); err != nil {
			tmp.Close()
			return 0, 0, fmt.Errorf("staging %s for ffmpeg: %w", name, err)
		}
		if err := tmp.Close(); err != nil {
			return 0, 0, fmt.Errorf("staging %s for ffmpeg: %w", name, err)
		}
		input = tmp.Name()
	}
	frame := out + ".frame.jpg"
	defer os.Remove(frame)
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
		"-i", input, "-frames:v", "1", "-q:v", "3", frame)
	if outb, err := cmd.CombinedOutput(); err != nil {
		return 0, 0, fmt.Errorf("ffmpeg could not take a frame of %s: %v: %s", name, err, strings.TrimSpace(string(outb)))
	}
	fh, err := os.Open(frame)
	if err != nil {
		return 0, 0, fmt.Errorf("reading ffmpeg's frame of %s: %w", name, err)
	}
	defer fh.Close()
	img, err := jpeg.Decode(fh)
	if err != nil {
		return 0, 0, fmt.Errorf("decoding ffmpeg's frame of %s: %w", name, err)
	}
	return writeThumb(img, out)
}

// goDecodes reports whether head is a format the registered Go decoders read.
func goDecodes(head []byte) bool {
	switch http.DetectContentType(head) {
	case "image/jpeg", "image/png", "image/gif":
		return true
	}
	return false
}

// writeThumb scales img to at most thumbWidth wide and writes it as JPEG.
func writeThumb(img image.Image, out string) (int, int, error) {
	img = shrink(img, thumbWidth)
	b := img.Bounds()
	tmp := out + ".tmp"
	fh, err := os.Create(tmp)
	if err != nil {
		return 0, 0, fmt.Errorf("writing keyframe: %w", err)
	}
	if err := jpeg.Encode(fh, img, &jpeg.Options{Quality: 80}); err != nil {
		fh.Close()
		os.Remove(tmp)
		return 0, 0, fmt.Errorf("encoding keyframe: %w", err)
	}
	if err := fh.Close(); err != nil {
		return 0, 0, fmt.Errorf("writing keyframe: %w", err)
	}
	if err := os.Rename(tmp, out); err != nil {
		return 0, 0, fmt.Errorf("writing keyframe: %w", err)
	}
	return b.Dx(), b.Dy(), nil
}

// shrink box-filters img down to maxW wide. Written here rather than taking
// golang.org/x/image for one downscale: averaging source pixels per target
// pixel is all a thumbnail needs.
func shrink(img image.Image, maxW int) image.Image {
	b := img.Bounds()
	if b.Dx() <= maxW {
		return img
	}
	src := image.NewRGBA(b)
	draw.Draw(src, b, img, b.Min, draw.Src)
	w := maxW
	h := max(1, b.Dy()*maxW/b.Dx())
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		y0, y1 := y*b.Dy()/h, max((y+1)*b.Dy()/h, y*b.Dy()/h+1)
		for x := 0; x < w; x++ {
			x0, x1 := x*b.Dx()/w, max((x+1)*b.Dx()/w, x*b.Dx()/w+1)
			var r, g, bl, a, n uint32
			for sy := y0; sy < y1; sy++ {
				for sx := x0; sx < x1; sx++ {
					i := src.PixOffset(sx+b.Min.X, sy+b.Min.Y)
					r += uint32(src.Pix[i])
					g += uint32(src.Pix[i+1])
					bl += uint32(src.Pix[i+2])
					a += uint32(src.Pix[i+3])
					n++
				}
			}
			j := dst.PixOffset(x, y)
			dst.Pix[j], dst.Pix[j+1], dst.Pix[j+2], dst.Pix[j+3] = uint8(r/n), uint8(g/n), uint8(bl/n), uint8(a/n)
		}
	}
	return dst
}

// resumeJobs fails keyframe jobs a previous process left running: their
// goroutine died with it.
func (s *Server) resumeJobs() {
	s.mu.Lock()
	defer s.mu.Unlock()
	changed := false
	for _, j := range s.st.list(kJobs, func(d doc) bool {
		return (str(d, "_file_id") != "" || d["_file_ids"] != nil) && (str(d, "status") == "READY" || str(d, "status") == "STARTED")
	}) {
		s.applyJobPatch(j, map[string]any{"status": "FAILED", "error_message": "the emulator stopped during the job"}, false)
		changed = true
	}
	if changed {
		s.markDirty()
	}
}

// serveKeyframe serves a keyframe JPEG; like a signed URL it needs no token.
func (s *Server) serveKeyframe(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	id := strings.TrimSuffix(name, ".jpg")
	s.mu.Lock()
	known := s.st.get(kKeyframes, id) != nil
	s.mu.Unlock()
	if !known || id == name {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "image/jpeg")
	http.ServeFile(w, r, filepath.Join(s.keyframeDir(), id+".jpg"))
}

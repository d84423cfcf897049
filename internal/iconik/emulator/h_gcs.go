package emulator

// GCS parallel ("composite") uploads through iconik's upload helpers. iconik's spec names the
// calls but not their rules, so these are the emulator's [INF] reading of the schemas, kept
// consistent with how GCS composite uploads work:
//   - GET .../multipart_url/part/?parts_num=N: part n (1..N) is its own temporary object,
//     key "<file key>.parts/<n>", with a signed PUT (url), GET (download_url) and DELETE (delete_url).
//   - A compose combines at most 32 objects, so parts are grouped: parts group g (g >= 1) is
//     parts 32(g-1)+1 .. 32g, composed into the temporary object "<file key>.parts/group-<g>".
//   - POST .../multipart/gcs/compose_url/ {parts_group, content_type}: a signed XML-API compose URL
//     writing group g's object (parts_group set) or the file's object (null); key is that object,
//     url its signed download URL, delete_url its signed DELETE. The caller names the sources.
//   - POST .../multipart/ {parts_range, parts_group} (deprecated): iconik composes server side.
//     parts_range lists part numbers as strings, "n" or "a-b", in ascending order without gaps:
//     from the group's first part into group g's object, or from part 1 into the file's object
//     (any number of parts: composed in rounds of 32). An empty parts_range with no parts_group
//     composes the group objects 1, 2, ... into the file's object. The sources are then deleted.
//   - POST .../multipart/cleanup/ {parts_number, parts_group_number}: deletes the temporary objects.

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/ferryhq/ferry/internal/iconik/emulator/dataplane"
)

const gcsGroupSize = dataplane.GCSMaxComposeSources

func gcsPartKey(fileKey string, n int) string { return fmt.Sprintf("%s.parts/%d", fileKey, n) }

func gcsGroupKey(fileKey string, g int) string { return fmt.Sprintf("%s.parts/group-%d", fileKey, g) }

// gcsGroupRange is the first and last part number of parts group g.
func gcsGroupRange(g int) (int, int) { return (g-1)*gcsGroupSize + 1, g * gcsGroupSize }

// optionalGroup reads a nullable, 1-based group number from the body.
func optionalGroup(c *call, field string) (int, bool) {
	v, ok := c.body[field]
	if !ok || v == nil {
		return 0, true
	}
	g := num(c.body, field)
	if g < 1 || g > 10000/gcsGroupSize+1 {
		c.invalid(map[string]string{field: fmt.Sprintf("Parts groups are numbered from 1 (parts 1-%d) to %d.", gcsGroupSize, 10000/gcsGroupSize+1)})
		return 0, false
	}
	return int(g), true
}

// gcsPartURLs answers GET .../multipart_url/part/ for a GCS file: one temporary object per part.
func (s *Server) gcsPartURLs(c *call, f doc, st dataplane.Storage, parts []int) {
	objs := []any{}
	for _, n := range parts {
		o, err := s.plane.GCSObjectURLs(st, gcsPartKey(str(f, "_key"), n))
		if err != nil {
			c.planeFailed("signing part URLs", err)
			return
		}
		objs = append(objs, map[string]any{"number": n, "url": o.UploadURL, "key": o.Key, "delete_url": o.DeleteURL, "download_url": o.DownloadURL})
	}
	c.json(http.StatusOK, map[string]any{"objects": objs})
}

func (s *Server) multipartGCSComposeURL(c *call) {
	g, ok := optionalGroup(c, "parts_group")
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	f, st, ok := s.uploadTarget(c, "GCS")
	if !ok {
		return
	}
	key := str(f, "_key")
	if g > 0 {
		key = gcsGroupKey(key, g)
	}
	composeURL, err := s.plane.GCSComposeURL(st, key, str(c.body, "content_type"))
	if err != nil {
		c.planeFailed("signing the compose URL", err)
		return
	}
	o, err := s.plane.GCSObjectURLs(st, key)
	if err != nil {
		c.planeFailed("signing the compose URL", err)
		return
	}
	c.json(http.StatusOK, map[string]any{"compose_url": composeURL, "url": o.DownloadURL, "key": key, "delete_url": o.DeleteURL})
}

// parsePartsRange expands parts_range ("n" or "a-b" strings) into part numbers, refusing a list
// that is not ascending without gaps or repeats: the order of the list is the order of the bytes.
func parsePartsRange(raw []any) ([]int, string) {
	var parts []int
	for _, item := range raw {
		text := strings.TrimSpace(fmt.Sprint(item))
		a, b, isRange := strings.Cut(text, "-")
		first, err1 := strconv.Atoi(strings.TrimSpace(a))
		last, err2 := first, error(nil)
		if isRange {
			last, err2 = strconv.Atoi(strings.TrimSpace(b))
		}
		if err1 != nil || err2 != nil || first < 1 || last > 10000 || last < first {
			return nil, fmt.Sprintf("%q is not a part number or an ascending range a-b of part numbers 1-10000.", text)
		}
		for n := first; n <= last; n++ {
			if len(parts) > 0 && n != parts[len(parts)-1]+1 {
				return nil, fmt.Sprintf("Parts must be listed in ascending order without gaps or repeats: part %d follows part %d.", n, parts[len(parts)-1])
			}
			parts = append(parts, n)
		}
	}
	return parts, ""
}

func (s *Server) multipartGCSComplete(c *call) {
	raw, _ := c.body["parts_range"].([]any)
	parts, msg := parsePartsRange(raw)
	if msg != "" {
		c.invalid(map[string]string{"parts_range": msg})
		return
	}
	g, ok := optionalGroup(c, "parts_group")
	if !ok {
		return
	}
	// Composing copies bytes: it runs outside the lock so other calls go on meanwhile.
	s.mu.Lock()
	f, st, ok := s.uploadTarget(c, "GCS")
	fileKey, fileID := str(f, "_key"), str(f, "id")
	s.mu.Unlock()
	if !ok {
		return
	}
	dest := fileKey
	var sources []string
	names := map[string]string{} // source key -> how the caller named it
	switch {
	case g > 0:
		first, last := gcsGroupRange(g)
		if len(parts) == 0 || parts[0] != first || parts[len(parts)-1] > last {
			c.invalid(map[string]string{"parts_range": fmt.Sprintf("Parts group %d holds parts %d-%d and must list them from part %d.", g, first, last, first)})
			return
		}
		dest = gcsGroupKey(fileKey, g)
	case len(parts) > 0 && parts[0] != 1:
		c.invalid(map[string]string{"parts_range": "Completing the file needs its parts from part 1."})
		return
	case len(parts) == 0:
		// The file from its parts groups 1, 2, ... as far as they exist.
		for grp := 1; grp <= 10000/gcsGroupSize+1; grp++ {
			k := gcsGroupKey(fileKey, grp)
			rc, _, err := s.plane.Open(st, k)
			if err != nil {
				break
			}
			rc.Close()
			sources, names[k] = append(sources, k), fmt.Sprintf("parts group %d", grp)
		}
		if len(sources) == 0 {
			c.invalid(map[string]string{"parts_range": "Missing data for required field: no parts group has been composed."})
			return
		}
	}
	for _, n := range parts {
		k := gcsPartKey(fileKey, n)
		sources, names[k] = append(sources, k), fmt.Sprintf("part %d", n)
	}
	if err := s.composeTree(st, dest, sources); err != nil {
		var missing *dataplane.NoSuchObjectError
		if errors.As(err, &missing) {
			c.invalid(map[string]string{"parts_range": fmt.Sprintf("The %s has not been uploaded.", names[missing.Key])})
			return
		}
		c.planeFailed("composing the parts", err)
		return
	}
	if err := s.plane.GCSDelete(st, sources...); err != nil {
		s.log.Warn("iconik emulator: deleting composed GCS parts", "file", fileID, "err", err)
	}
	c.json(http.StatusOK, map[string]any{})
}

// composeTree composes any number of sources into dest in rounds of at most 32, as iconik must
// against GCS: runs of 32 into temporary objects, then those, until one compose remains.
func (s *Server) composeTree(st dataplane.Storage, dest string, sources []string) error {
	var temps []string
	defer func() {
		if len(temps) > 0 {
			s.plane.GCSDelete(st, temps...)
		}
	}()
	for round := 1; len(sources) > gcsGroupSize; round++ {
		var next []string
		for i := 0; i < len(sources); i += gcsGroupSize {
			tmp := fmt.Sprintf("%s.parts/compose-%d-%d", dest, round, i/gcsGroupSize+1)
			if _, err := s.plane.GCSCompose(st, tmp, sources[i:min(i+gcsGroupSize, len(sources))]); err != nil {
				return err
			}
			next, temps = append(next, tmp), append(temps, tmp)
		}
		sources = next
	}
	_, err := s.plane.GCSCompose(st, dest, sources)
	return err
}

// gcsCleanup deletes a GCS upload's temporary objects: the parts of group parts_group_number, or
// parts 1..parts_number and every group object.
func (s *Server) gcsCleanup(c *call, f doc, st dataplane.Storage) {
	g, ok := optionalGroup(c, "parts_group_number")
	if !ok {
		return
	}
	n := int(num(c.body, "parts_number"))
	if n < 1 || n > 10000 {
		c.invalid(map[string]string{"parts_number": "Cleaning up a GCS upload needs its number of parts (1-10000)."})
		return
	}
	fileKey := str(f, "_key")
	first, last := 1, n
	var keys []string
	if g > 0 {
		first, last = gcsGroupRange(g)
		last = min(last, n)
	} else {
		for grp := 1; grp <= (n+gcsGroupSize-1)/gcsGroupSize; grp++ {
			keys = append(keys, gcsGroupKey(fileKey, grp))
		}
	}
	for p := first; p <= last; p++ {
		keys = append(keys, gcsPartKey(fileKey, p))
	}
	if err := s.plane.GCSDelete(st, keys...); err != nil {
		c.planeFailed("deleting the temporary parts", err)
		return
	}
	c.json(http.StatusOK, map[string]any{})
}

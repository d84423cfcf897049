package emulator

import (
	"fmt"
	"path/filepath"
	"slices"
)

// Duplicates lists what the whole tenant holds twice, one line per
// duplicate, for tests that must prove nothing was created twice (crash and
// fault tests). Looking at the emulator's state rather than walking one
// collection tree also finds copies that never reached a collection. The
// rules follow what an exactly-once client may create only once:
//   - assets sharing a non-empty external_id;
//   - collections sharing parent and title, roots included (parent "");
//   - per asset: more than one format of a name, file set of a name, or
//     file (DELETED files do not count: a give-up may leave them);
//   - jobs sharing object and type, except TRANSCODE jobs, which iconik
//     itself makes for each keyframes request;
//   - keyframes made from one file (a keyframes request repeated for it).
//
// Metadata values written twice are no duplicate (a PUT leaves the same
// values); MetadataWrites counts the writes for tests that care.
//
// Objects whose status is DELETED are not counted.
func (s *Server) Duplicates() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st.duplicates()
}

// DuplicatesIn is Duplicates for the emulator whose data directory is
// dataDir, e.g. one running in another process: stopped, or as of its last
// snapshot (at most snapshotDelay old) while it runs.
func DuplicatesIn(dataDir string) ([]string, error) {
	st, err := loadState(filepath.Join(dataDir, "state.json"))
	if err != nil {
		return nil, err
	}
	return st.duplicates(), nil
}

func (st *state) duplicates() []string {
	type rule struct {
		kind  string
		key   func(d doc) (string, bool) // false = not counted
		label string
	}
	rules := []rule{
		{kAssets, func(d doc) (string, bool) { return str(d, "external_id"), str(d, "external_id") != "" }, "assets with external_id %s"},
		{kCollections, func(d doc) (string, bool) {
			return fmt.Sprintf("%q under %q", str(d, "title"), str(d, "parent_id")), true
		}, "collections titled %s"},
		{kFormats, func(d doc) (string, bool) {
			return fmt.Sprintf("%q of asset %s", str(d, "name"), str(d, "asset_id")), true
		}, "formats %s"},
		{kFileSets, func(d doc) (string, bool) {
			return fmt.Sprintf("%q of asset %s", str(d, "name"), str(d, "asset_id")), true
		}, "file sets %s"},
		{kFiles, func(d doc) (string, bool) { return str(d, "asset_id"), true }, "files of asset %s"},
		{kJobs, func(d doc) (string, bool) {
			return fmt.Sprintf("%s of %s %s", str(d, "type"), str(d, "object_type"), str(d, "object_id")),
				str(d, "object_id") != "" && str(d, "type") != "TRANSCODE"
		}, "jobs %s"},
		{kKeyframes, func(d doc) (string, bool) { return str(d, "_file_id"), str(d, "_file_id") != "" }, "keyframes of file %s"},
	}
	var out []string
	for _, r := range rules {
		counts := map[string]int{}
		for _, d := range st.Objects[r.kind] {
			if str(d, "status") == "DELETED" {
				continue
			}
			if k, ok := r.key(d); ok {
				counts[k]++
			}
		}
		for k, n := range counts {
			if n > 1 {
				out = append(out, fmt.Sprintf("%d "+r.label, n, k))
			}
		}
	}
	slices.Sort(out)
	return out
}

// MetadataWrites is how often an object's metadata values were written,
// by a values PUT or by a batch update (once applied).
func (s *Server) MetadataWrites(objectType, objectID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return int(num(s.st.get(kValues, objectType+"/"+objectID), "_writes"))
}

package send

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// File is one regular file to send.
type File struct {
	Abs     string    // absolute path on this machine
	Rel     string    // path inside the package, "/"-separated, starting with the argument's base name
	Size    int64     //
	ModTime time.Time //
}

// junk names are desktop droppings nobody means to send.
var junk = map[string]bool{".ds_store": true, "desktop.ini": true, "thumbs.db": true}

// IsJunk reports whether a file name is skipped by Walk.
func IsJunk(name string) bool { return junk[strings.ToLower(name)] }

// Walk expands paths (files and folders) into the files to send, sorted by
// package path. A folder argument keeps its own name as the top folder; a file
// argument lands at the package root. Symlinks to files are followed; symlinked
// folders inside a tree are not descended into (they could loop).
func Walk(paths []string) ([]File, error) {
	var files []File
	seen := map[string]string{}
	add := func(f File) error {
		if prev, ok := seen[f.Rel]; ok {
			return fmt.Errorf("walk: %s and %s would both be sent as %q", prev, f.Abs, f.Rel)
		}
		seen[f.Rel] = f.Abs
		files = append(files, f)
		return nil
	}
	for _, p := range paths {
		abs, err := filepath.Abs(p)
		if err != nil {
			return nil, fmt.Errorf("walk %s: %w", p, err)
		}
		st, err := os.Stat(abs)
		if err != nil {
			return nil, fmt.Errorf("walk: %w", err)
		}
		if !st.IsDir() {
			if !st.Mode().IsRegular() {
				return nil, fmt.Errorf("walk %s: not a regular file or folder", p)
			}
			if err := add(File{Abs: abs, Rel: filepath.Base(abs), Size: st.Size(), ModTime: st.ModTime()}); err != nil {
				return nil, err
			}
			continue
		}
		root := filepath.Dir(abs)
		err = filepath.WalkDir(abs, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return fmt.Errorf("walk %s: %w", path, err)
			}
			if d.IsDir() || IsJunk(d.Name()) {
				return nil
			}
			info, err := os.Stat(path) // follows a symlinked file
			if err != nil {
				return fmt.Errorf("walk: %w", err)
			}
			if !info.Mode().IsRegular() {
				return nil // sockets, devices, symlinked folders
			}
			rel, err := filepath.Rel(root, path)
			if err != nil {
				return fmt.Errorf("walk %s: %w", path, err)
			}
			return add(File{Abs: path, Rel: filepath.ToSlash(rel), Size: info.Size(), ModTime: info.ModTime()})
		})
		if err != nil {
			return nil, err
		}
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("walk %s: no files to send", strings.Join(paths, " "))
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Rel < files[j].Rel })
	return files, nil
}

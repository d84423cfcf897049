package secret

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// ParseKey decodes a configured master key (FERRY_SECRET_KEY): 32 bytes
// written as 64 hex digits or as base64 (standard or URL alphabet, padded or
// not). The error never repeats the input.
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if len(s) == 2*KeySize {
		if b, err := hex.DecodeString(s); err == nil {
			return b, nil
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil && len(b) == KeySize {
			return b, nil
		}
	}
	return nil, fmt.Errorf("secret: the key must be %d bytes written as %d hex digits or as base64 (e.g. `openssl rand -base64 32`)", KeySize, 2*KeySize)
}

// LoadKey returns the master key: configured (FERRY_SECRET_KEY) when not
// empty, else the key file at path, created with 32 random bytes and mode
// 0600 when missing. Replicas that share a database must share the key: give
// them the same FERRY_SECRET_KEY (or the same file).
func LoadKey(configured, path string) ([]byte, error) {
	if strings.TrimSpace(configured) != "" {
		k, err := ParseKey(configured)
		if err != nil {
			return nil, fmt.Errorf("reading FERRY_SECRET_KEY: %w", err)
		}
		return k, nil
	}
	for range 2 {
		k, err := readKeyFile(path)
		if !errors.Is(err, fs.ErrNotExist) {
			return k, err
		}
		k, err = createKeyFile(path)
		if !errors.Is(err, fs.ErrExist) {
			return k, err
		}
		// Another process created it first: read theirs.
	}
	return nil, fmt.Errorf("secret: key file %s keeps appearing and vanishing", path)
}

func readKeyFile(path string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("secret: reading key file %s: %w", path, err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("secret: key file %s is readable by others (mode %v): run `chmod 600 %s`", path, st.Mode().Perm(), path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("secret: reading key file %s: %w", path, err)
	}
	if len(b) == KeySize {
		return b, nil // raw bytes, as ferry writes it
	}
	// Written by hand: hex or base64 text.
	k, err := ParseKey(string(bytes.TrimSpace(b)))
	if err != nil {
		return nil, fmt.Errorf("secret: key file %s holds %d bytes: want %d raw bytes or their hex/base64: %w", path, len(b), KeySize, err)
	}
	return k, nil
}

// createKeyFile writes a new random key to a temporary file in the same
// directory, syncs it, then hard-links it into place. The link is atomic and
// fails if the file exists, so two processes starting together never end up
// with different keys, and a reader never sees a file whose bytes are not
// written yet (which O_EXCL on the final name alone would allow).
func createKeyFile(path string) ([]byte, error) {
	k := make([]byte, KeySize)
	if _, err := rand.Read(k); err != nil {
		return nil, fmt.Errorf("secret: generating a key: %w", err)
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".secret.key.*")
	if err != nil {
		return nil, fmt.Errorf("secret: creating key file %s: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	werr := f.Chmod(0o600)
	if werr == nil {
		_, werr = f.Write(k)
	}
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return nil, fmt.Errorf("secret: writing key file %s: %w", path, werr)
	}
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil, err
		}
		return nil, fmt.Errorf("secret: creating key file %s: %w", path, err)
	}
	return k, nil
}

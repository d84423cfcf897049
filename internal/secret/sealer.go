package secret

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// KeySize is the length of a master key in bytes.
const KeySize = 32

// sealVersion prefixes every sealed value, so the format (and the key
// derivation) can change later without guessing what old rows hold.
const sealVersion = "v1"

// ErrOpen is returned when a sealed value cannot be opened: damaged, sealed
// under a key this Sealer does not hold, or bound to another context.
var ErrOpen = errors.New("secret: cannot open sealed value")

// Sealer seals and opens values with AES-256-GCM. The sealing key is derived
// from the master key with HKDF-SHA256 for this purpose only, so the same
// master key can key other things (the web MACs) without reuse.
// A sealed value is "v1:<key id>:<base64url(nonce|ciphertext|tag)>"; the key
// id names the master key, so keys can rotate: NewSealer takes older keys that
// still open what they sealed, while new seals use the first key.
type Sealer struct {
	currentID string
	aeads     map[string]cipher.AEAD
}

// NewSealer returns a Sealer sealing with key and opening with key or any of old.
func NewSealer(key []byte, old ...[]byte) (*Sealer, error) {
	s := &Sealer{aeads: map[string]cipher.AEAD{}}
	for i, k := range append([][]byte{key}, old...) {
		if len(k) != KeySize {
			return nil, fmt.Errorf("secret: key %d is %d bytes, want %d", i+1, len(k), KeySize)
		}
		sk, err := hkdf.Key(sha256.New, k, nil, "ferry secret seal v1", KeySize)
		if err != nil {
			return nil, fmt.Errorf("secret: deriving the sealing key: %w", err)
		}
		block, err := aes.NewCipher(sk)
		if err != nil {
			return nil, fmt.Errorf("secret: %w", err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("secret: %w", err)
		}
		id := KeyID(k)
		if i == 0 {
			s.currentID = id
		}
		if _, dup := s.aeads[id]; !dup {
			s.aeads[id] = aead
		}
	}
	return s, nil
}

// KeyID is a short public name of a master key (not enough to guess it): the
// first 8 hex digits of SHA-256 over a label and the key.
func KeyID(key []byte) string {
	h := sha256.New()
	h.Write([]byte("ferry key id\x00"))
	h.Write(key)
	return hex.EncodeToString(h.Sum(nil)[:4])
}

// Seal encrypts v under a fresh random nonce. context binds the sealed value to
// where it is stored (e.g. "connection/<id>/token"): Open with another context
// fails, so sealed values cannot be swapped between rows or fields. An empty
// value seals to "" (nothing stored).
func (s *Sealer) Seal(v Value, context string) (string, error) {
	if v.IsZero() {
		return "", nil
	}
	aead := s.aeads[s.currentID]
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(v.s)+aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("secret: generating a nonce: %w", err)
	}
	out := aead.Seal(nonce, nonce, []byte(v.s), s.aad(s.currentID, context))
	return sealVersion + ":" + s.currentID + ":" + base64.RawURLEncoding.EncodeToString(out), nil
}

// Open decrypts what Seal made with the same context. "" opens to the zero
// Value. Errors never include the sealed text.
func (s *Sealer) Open(sealed, context string) (Value, error) {
	if sealed == "" {
		return Value{}, nil
	}
	parts := strings.SplitN(sealed, ":", 3)
	if len(parts) != 3 || parts[0] != sealVersion {
		return Value{}, fmt.Errorf("%w: unknown format (want %s:<key id>:<data>)", ErrOpen, sealVersion)
	}
	aead, ok := s.aeads[parts[1]]
	if !ok {
		return Value{}, fmt.Errorf("%w: sealed under key %s, which this server does not hold", ErrOpen, parts[1])
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || len(raw) < aead.NonceSize()+aead.Overhead() {
		return Value{}, fmt.Errorf("%w: damaged data", ErrOpen)
	}
	n := aead.NonceSize()
	plain, err := aead.Open(nil, raw[:n], raw[n:], s.aad(parts[1], context))
	if err != nil {
		return Value{}, fmt.Errorf("%w: authentication failed (wrong key, wrong context or tampered data)", ErrOpen)
	}
	return Value{string(plain)}, nil
}

// KeyID returns the id of the key new seals use.
func (s *Sealer) KeyID() string { return s.currentID }

func (s *Sealer) aad(keyID, context string) []byte {
	return []byte(sealVersion + "\x00" + keyID + "\x00" + context)
}

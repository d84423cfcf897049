package portal

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/argon2"
)

// TokenBytes is the entropy of every token ferry hands out (upload, session,
// API, download link): 256 bits, well above the 128 the threat model needs.
const TokenBytes = 32

// NewToken returns a URL-safe random token, to be shown once, and the hash
// to store instead of it.
func NewToken() (token string, hash []byte, err error) {
	b := make([]byte, TokenBytes)
	if _, err := rand.Read(b); err != nil {
		return "", nil, fmt.Errorf("portal: generating a token: %w", err)
	}
	token = base64.RawURLEncoding.EncodeToString(b)
	return token, HashToken(token), nil
}

// HashToken is what the database keeps of a token. Tokens carry 256 random
// bits, so an unsalted fast hash is enough: it cannot be reversed, and a
// lookup by hash reveals nothing that timing could leak about the token.
// (The encoding matches internal/server's, so stored rows interoperate.)
func HashToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// TokenEqual compares two token hashes in constant time.
func TokenEqual(a, b []byte) bool {
	return len(a) == len(b) && subtle.ConstantTimeCompare(a, b) == 1
}

// Argon2id parameters: OWASP's minimum (19 MiB, 2 passes, 1 lane), so a
// burst of logins cannot take the memory uploads need. They are encoded in
// each hash, so raising them later keeps old hashes valid.
const (
	argonMemory = 19 * 1024
	argonTime   = 2
	argonLanes  = 1
	argonKeyLen = 32
	argonSalt   = 16
)

// ErrBadHash is returned for a stored hash that is not an argon2id PHC string.
var ErrBadHash = errors.New("portal: stored password hash is not an argon2id PHC string")

// HashPassword returns the argon2id hash of pw in the PHC string format
// ($argon2id$v=19$m=...,t=...,p=...$salt$key).
func HashPassword(pw string) (string, error) {
	salt := make([]byte, argonSalt)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("portal: generating a salt: %w", err)
	}
	key := argon2.IDKey([]byte(pw), salt, argonTime, argonMemory, argonLanes, argonKeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonLanes,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key)), nil
}

// CheckPassword reports whether pw matches encoded, comparing in constant
// time. Parameters are read from the hash, within bounds, so a tampered row
// cannot make a login allocate gigabytes.
func CheckPassword(encoded, pw string) (bool, error) {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return false, ErrBadHash
	}
	var v int
	var m, t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return false, ErrBadHash
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil ||
		m < 8 || m > 1<<20 || t < 1 || t > 16 || p < 1 || p > 16 {
		return false, ErrBadHash
	}
	salt, err := base64.RawStdEncoding.DecodeString(parts[4])
	if err != nil || len(salt) < 8 {
		return false, ErrBadHash
	}
	want, err := base64.RawStdEncoding.DecodeString(parts[5])
	if err != nil || len(want) < 16 || len(want) > 64 {
		return false, ErrBadHash
	}
	got := argon2.IDKey([]byte(pw), salt, t, m, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// dummyHash is checked when an account does not exist, so a failed login
// takes as long either way and does not reveal which emails have accounts.
// Made on first use, not at init: an argon2id hash costs 0.1 s and 19 MiB,
// which every ferry command (ferry send too) paid at start when it was a
// package variable.
var dummyHash = sync.OnceValue(func() string {
	h, err := HashPassword("ferry: no such account")
	if err != nil {
		panic(err)
	}
	return h
})

// PrepareLogin makes the dummy hash ahead of the first login, so that
// login is not the one whose failure for an unknown account takes twice as
// long (making the hash, then checking it). A server calls it at start, in
// the background; commands that never sign anyone in do not pay for it.
func PrepareLogin() { dummyHash() }

// ExpiresAt is when a package finalized at finalizedAt expires under a
// retention of days (nil: kept until deleted).
func ExpiresAt(finalizedAt time.Time, days int) *time.Time {
	if days <= 0 {
		return nil
	}
	t := finalizedAt.AddDate(0, 0, days)
	return &t
}

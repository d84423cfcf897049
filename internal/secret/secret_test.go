package secret_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ferryhq/ferry/internal/secret"
)

func key(b byte) []byte { return bytes.Repeat([]byte{b}, secret.KeySize) }

func TestSealOpenRoundTripsAndHidesThePlaintext(t *testing.T) {
	s, err := secret.NewSealer(key(1))
	if err != nil {
		t.Fatal(err)
	}
	const tok = "very-secret-token-1234"
	a, err := s.Seal(secret.New(tok), "connection/1/token")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := s.Seal(secret.New(tok), "connection/1/token")
	if a == b {
		t.Fatal("two seals of one value are equal: the nonce is not random")
	}
	if strings.Contains(a, tok) || !strings.HasPrefix(a, "v1:"+s.KeyID()+":") {
		t.Fatalf("sealed %q", a)
	}
	v, err := s.Open(a, "connection/1/token")
	if err != nil || v.Reveal() != tok {
		t.Fatalf("Open = %v, %v", v.Reveal() == tok, err)
	}
	if z, err := s.Seal(secret.Value{}, "x"); err != nil || z != "" {
		t.Fatalf("empty seals to %q, %v", z, err)
	}
	if v, err := s.Open("", "x"); err != nil || !v.IsZero() {
		t.Fatalf("empty opens to %v, %v", v, err)
	}
}

func TestOpenRefuses(t *testing.T) {
	s, _ := secret.NewSealer(key(1))
	other, _ := secret.NewSealer(key(2))
	sealed, _ := s.Seal(secret.New("tok"), "ctx")
	flipped := []byte(sealed)
	flipped[len(flipped)-3] ^= 1
	cases := []struct {
		name            string
		sealer          *secret.Sealer
		sealed, context string
	}{
		{"another context", s, sealed, "other-ctx"},
		{"another key", other, sealed, "ctx"},
		{"tampered data", s, string(flipped), "ctx"},
		{"unknown version", s, "v9" + sealed[2:], "ctx"},
		{"truncated", s, sealed[:12], "ctx"},
		{"not sealed at all", s, "plain-token", "ctx"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := c.sealer.Open(c.sealed, c.context)
			if !errors.Is(err, secret.ErrOpen) {
				t.Fatalf("Open error = %v, want ErrOpen", err)
			}
			if strings.Contains(err.Error(), c.sealed) {
				t.Fatalf("error repeats the sealed text: %v", err)
			}
		})
	}
}

func TestOldKeysStillOpenAfterRotation(t *testing.T) {
	old, _ := secret.NewSealer(key(1))
	sealed, _ := old.Seal(secret.New("tok"), "ctx")
	rotated, err := secret.NewSealer(key(2), key(1))
	if err != nil {
		t.Fatal(err)
	}
	if v, err := rotated.Open(sealed, "ctx"); err != nil || v.Reveal() != "tok" {
		t.Fatalf("rotated Open = %q, %v", v.Reveal(), err)
	}
	fresh, _ := rotated.Seal(secret.New("tok"), "ctx")
	if !strings.HasPrefix(fresh, "v1:"+secret.KeyID(key(2))+":") {
		t.Fatalf("new seals do not use the first key: %q", fresh)
	}
	if _, err := old.Open(fresh, "ctx"); !errors.Is(err, secret.ErrOpen) {
		t.Fatalf("old sealer opened a value sealed with the new key: %v", err)
	}
}

func TestNewSealerRefusesShortKeys(t *testing.T) {
	if _, err := secret.NewSealer(make([]byte, 16)); err == nil {
		t.Fatal("16-byte key accepted")
	}
}

func TestValueNeverPrints(t *testing.T) {
	const tok = "tok-shhh-42"
	v := secret.New(tok)
	var logged bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logged, nil))
	log.Info("x", "token", v, "group", slog.GroupValue(slog.Any("t", v)))
	log2 := slog.New(slog.NewTextHandler(&logged, nil))
	log2.Info("x", "token", v)
	js, _ := json.Marshal(struct{ T secret.Value }{v})
	outs := []string{
		fmt.Sprint(v), fmt.Sprintf("%v %+v %#v %s %q %x %X %d", v, v, v, v, v, v, v, v),
		fmt.Sprintf("%v", struct{ T secret.Value }{v}), fmt.Sprintf("%+v", &struct{ T secret.Value }{v}),
		string(js), logged.String(),
	}
	for _, o := range outs {
		if strings.Contains(o, tok) || strings.Contains(o, hex.EncodeToString([]byte(tok))) || strings.Contains(o, strings.ToUpper(hex.EncodeToString([]byte(tok)))) {
			t.Errorf("secret leaked: %s", o)
		}
		if !strings.Contains(o, secret.Redacted) {
			t.Errorf("no %s in %s", secret.Redacted, o)
		}
	}
	var back struct{ T secret.Value }
	if err := json.Unmarshal([]byte(`{"T":"`+tok+`"}`), &back); err != nil || back.T.Reveal() != tok {
		t.Fatalf("UnmarshalJSON = %v", err)
	}
	err := json.Unmarshal([]byte(`{"T":12345}`), &back)
	if err == nil || strings.Contains(err.Error(), "12345") {
		t.Fatalf("non-string input: %v", err)
	}
}

func TestParseKeyAcceptsHexAndBase64(t *testing.T) {
	k := key(7)
	for _, s := range []string{
		hex.EncodeToString(k), base64.StdEncoding.EncodeToString(k), base64.RawStdEncoding.EncodeToString(k),
		base64.URLEncoding.EncodeToString(k), " " + base64.StdEncoding.EncodeToString(k) + "\n",
	} {
		got, err := secret.ParseKey(s)
		if err != nil || !bytes.Equal(got, k) {
			t.Errorf("ParseKey(%q) = %x, %v", s, got, err)
		}
	}
	for _, s := range []string{"", "short", hex.EncodeToString(k[:16]), base64.StdEncoding.EncodeToString(k[:31]), strings.Repeat("z", 64)} {
		if _, err := secret.ParseKey(s); err == nil {
			t.Errorf("ParseKey(%q) accepted", s)
		} else if s != "" && strings.Contains(err.Error(), s) {
			t.Errorf("error repeats the input: %v", err)
		}
	}
}

func TestLoadKey(t *testing.T) {
	t.Run("configured key wins and no file is made", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "secret.key")
		k, err := secret.LoadKey(hex.EncodeToString(key(3)), path)
		if err != nil || !bytes.Equal(k, key(3)) {
			t.Fatalf("LoadKey = %x, %v", k, err)
		}
		if _, err := os.Stat(path); !os.IsNotExist(err) {
			t.Fatalf("key file made anyway: %v", err)
		}
	})
	t.Run("bad configured key is an error", func(t *testing.T) {
		if _, err := secret.LoadKey("nope", filepath.Join(t.TempDir(), "k")); err == nil {
			t.Fatal("accepted")
		}
	})
	t.Run("file is created 0600 once and reused", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "secret.key")
		k1, err := secret.LoadKey("", path)
		if err != nil {
			t.Fatal(err)
		}
		st, err := os.Stat(path)
		if err != nil || st.Mode().Perm() != 0o600 || st.Size() != secret.KeySize {
			t.Fatalf("key file %v, %v", st, err)
		}
		k2, err := secret.LoadKey("", path)
		if err != nil || !bytes.Equal(k1, k2) {
			t.Fatalf("second load differs: %v", err)
		}
	})
	t.Run("concurrent first loads agree", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "secret.key")
		keys := make([][]byte, 8)
		var wg sync.WaitGroup
		for i := range keys {
			wg.Go(func() {
				k, err := secret.LoadKey("", path)
				if err != nil {
					t.Error(err)
				}
				keys[i] = k
			})
		}
		wg.Wait()
		for _, k := range keys[1:] {
			if !bytes.Equal(k, keys[0]) {
				t.Fatal("processes starting together got different keys")
			}
		}
	})
	t.Run("hand-written text file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "secret.key")
		os.WriteFile(path, []byte(base64.StdEncoding.EncodeToString(key(9))+"\n"), 0o600)
		k, err := secret.LoadKey("", path)
		if err != nil || !bytes.Equal(k, key(9)) {
			t.Fatalf("LoadKey = %x, %v", k, err)
		}
	})
	t.Run("file readable by others is refused", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "secret.key")
		os.WriteFile(path, key(9), 0o644)
		if _, err := secret.LoadKey("", path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("damaged file is refused", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "secret.key")
		os.WriteFile(path, []byte("tiny"), 0o600)
		if _, err := secret.LoadKey("", path); err == nil {
			t.Fatal("accepted")
		}
	})
}

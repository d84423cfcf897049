package dataplane

import (
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

func sha1hex(b []byte) string { s := sha1.Sum(b); return hex.EncodeToString(s[:]) }

func b2Code(t *testing.T, body string) string {
	t.Helper()
	var e struct {
		Status int    `json:"status"`
		Code   string `json:"code"`
	}
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		t.Fatalf("B2 error body %q: %v", body, err)
	}
	return e.Code
}

func TestB2UploadFileChecksWhatB2Checks(t *testing.T) {
	f := newFixture(t, Options{URLTTL: time.Hour})
	st := f.storage(t, MethodB2)
	key := "ferry/My Folder/clip é+1.mov"
	data := randomBytes(200 << 10)
	uf, err := f.p.UploadFields(st, key, int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := uf.UploadCredentials["authorizationToken"].(string)
	if tok == "" || uf.UploadFilename != key {
		t.Fatalf("upload fields %+v lack a token or the file name", uf)
	}
	hdr := func(mod func(map[string]string)) map[string]string {
		h := map[string]string{"Authorization": tok, "X-Bz-File-Name": url.QueryEscape(key), "Content-Type": "b2/x-auto", "X-Bz-Content-Sha1": sha1hex(data)}
		if mod != nil {
			mod(h)
		}
		return h
	}
	cases := []struct {
		name   string
		hdr    map[string]string
		status int
		code   string
	}{
		{"wrong SHA-1", hdr(func(h map[string]string) { h["X-Bz-Content-Sha1"] = sha1hex(data[1:]) }), 400, "bad_request"},
		{"do_not_verify", hdr(func(h map[string]string) { h["X-Bz-Content-Sha1"] = "do_not_verify" }), 400, "bad_request"},
		{"another file name", hdr(func(h map[string]string) { h["X-Bz-File-Name"] = "ferry/other.mov" }), 400, "bad_request"},
		{"forged token", hdr(func(h map[string]string) { h["Authorization"] = tok[:len(tok)-4] + "AAAA" }), 401, "bad_auth_token"},
		{"no token", hdr(func(h map[string]string) { delete(h, "Authorization") }), 401, "bad_auth_token"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, _, body := do(t, http.MethodPost, uf.UploadURL, data, c.hdr)
			if status != c.status || b2Code(t, body) != c.code {
				t.Fatalf("got %d %s, want %d %s", status, body, c.status, c.code)
			}
		})
	}
	status, _, body := do(t, http.MethodPost, uf.UploadURL, data, hdr(nil))
	if status != http.StatusOK || !strings.Contains(body, `"contentSha1":"`+sha1hex(data)) {
		t.Fatalf("upload: %d %s", status, body)
	}
	if got := readBack(t, f.p, st, key); string(got) != string(data) {
		t.Fatal("read back differs")
	}
	f.clock.Advance(2 * time.Hour)
	if status, _, body := do(t, http.MethodPost, uf.UploadURL, data, hdr(nil)); status != http.StatusUnauthorized || b2Code(t, body) != "expired_auth_token" {
		t.Fatalf("expired token: %d %s, want 401 expired_auth_token", status, body)
	}
}

func TestB2LargeFileFinishesOnlyWithTheRightSHA1List(t *testing.T) {
	f := newFixture(t, Options{})
	st := f.storage(t, MethodB2)
	key := "ferry/large.bin"
	data := randomBytes(11_000_000)
	lf, err := f.p.B2StartLarge(st, key)
	if err != nil {
		t.Fatal(err)
	}
	var sums []string
	for n, off := 1, 0; off < len(data); n, off = n+1, off+5_000_000 {
		part := data[off:min(off+5_000_000, len(data))]
		sums = append(sums, sha1hex(part))
		h := map[string]string{"Authorization": lf.AuthorizationToken, "X-Bz-Part-Number": strconv.Itoa(n), "X-Bz-Content-Sha1": sha1hex(part)}
		if n == 2 {
			// A corrupted send is refused, then resent correctly.
			bad := map[string]string{"Authorization": lf.AuthorizationToken, "X-Bz-Part-Number": "2", "X-Bz-Content-Sha1": sha1hex(part[1:])}
			if status, _, body := do(t, http.MethodPost, lf.UploadURL, part, bad); status != 400 || b2Code(t, body) != "bad_request" {
				t.Fatalf("part with a wrong SHA-1: %d %s", status, body)
			}
		}
		if status, _, body := do(t, http.MethodPost, lf.UploadURL, part, h); status != http.StatusOK {
			t.Fatalf("part %d: %d %s", n, status, body)
		}
	}
	status, _, body := do(t, http.MethodGet, strings.Replace(lf.UploadURL, "b2_upload_part", "b2_list_parts", 1)+"?fileId="+lf.UploadFileID, nil, map[string]string{"Authorization": lf.AuthorizationToken})
	if status != http.StatusOK || strings.Count(body, `"partNumber"`) != 3 {
		t.Fatalf("b2_list_parts: %d %s", status, body)
	}
	for _, wrong := range [][]string{{sums[1], sums[0], sums[2]}, sums[:2]} {
		var be *B2Error
		if err := f.p.B2FinishLarge(st, lf.UploadFileID, wrong); !errors.As(err, &be) || be.Code != "bad_request" {
			t.Fatalf("finish with SHA-1 list %v: %v, want bad_request", wrong, err)
		}
	}
	if err := f.p.B2FinishLarge(st, lf.UploadFileID, sums); err != nil {
		t.Fatalf("finish: %v", err)
	}
	if got := readBack(t, f.p, st, key); string(got) != string(data) {
		t.Fatal("read back differs")
	}
}

func TestB2LargeFileRefusesSmallPartsAndCancelRemovesParts(t *testing.T) {
	f := newFixture(t, Options{})
	st := f.storage(t, MethodB2)
	lf, _ := f.p.B2StartLarge(st, "ferry/small-parts.bin")
	var sums []string
	for n := 1; n <= 2; n++ {
		part := randomBytes(1000 * n)
		sums = append(sums, sha1hex(part))
		h := map[string]string{"Authorization": lf.AuthorizationToken, "X-Bz-Part-Number": strconv.Itoa(n), "X-Bz-Content-Sha1": sha1hex(part)}
		if status, _, body := do(t, http.MethodPost, lf.UploadURL, part, h); status != http.StatusOK {
			t.Fatalf("part %d: %d %s", n, status, body)
		}
	}
	var be *B2Error
	if err := f.p.B2FinishLarge(st, lf.UploadFileID, sums); !errors.As(err, &be) || !strings.Contains(be.Message, "minimum part size") {
		t.Fatalf("finish with a 1000-byte first part: %v, want minimum part size refusal", err)
	}
	if err := f.p.B2CancelLarge(st, lf.UploadFileID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.p.B2ListParts(st, lf.UploadFileID); !errors.Is(err, ErrNoSuchUpload) {
		t.Fatalf("list parts after cancel: %v, want ErrNoSuchUpload", err)
	}
	h := map[string]string{"Authorization": lf.AuthorizationToken, "X-Bz-Part-Number": "3", "X-Bz-Content-Sha1": sha1hex([]byte("x"))}
	if status, _, body := do(t, http.MethodPost, lf.UploadURL, []byte("x"), h); status != 400 {
		t.Fatalf("part after cancel: %d %s, want 400", status, body)
	}
}

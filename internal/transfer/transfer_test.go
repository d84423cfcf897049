package transfer_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"hash"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ferryhq/ferry/internal/transfer"
)

func TestPartSizeForFitsTheLimit(t *testing.T) {
	cases := []struct {
		name           string
		size, min, aln int64
		maxParts       int
	}{
		{"small file keeps the minimum", 1 << 20, 16 << 20, 1 << 20, 10000},
		{"5 TiB in 10,000 S3 parts", 5 << 40, 16 << 20, 1 << 20, 10000},
		{"GCS chunks stay 256 KiB multiples", 3<<30 + 7, 1 << 20, 256 << 10, 10000},
		{"Azure 50,000 blocks", 190 << 40, 16 << 20, 1 << 10, 50000},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ps := transfer.PartSizeFor(c.size, c.min, c.aln, c.maxParts)
			if ps < c.min || ps%c.aln != 0 {
				t.Errorf("part size %d: below %d or not a multiple of %d", ps, c.min, c.aln)
			}
			if n := (c.size + ps - 1) / ps; n > int64(c.maxParts) {
				t.Errorf("part size %d gives %d parts, limit %d", ps, n, c.maxParts)
			}
		})
	}
}

func TestPlanPartsCoversTheFileOnce(t *testing.T) {
	for _, size := range []int64{0, 1, 99, 100, 101, 1000} {
		parts := transfer.PlanParts(size, 100)
		var next int64
		for i, p := range parts {
			if p.Number != i+1 || p.Off != next || p.Size <= 0 || p.Size > 100 {
				t.Fatalf("size %d: part %+v out of place", size, p)
			}
			next += p.Size
		}
		if next != size {
			t.Errorf("size %d: parts cover %d bytes", size, next)
		}
	}
}

func TestStateRoundTripsAsJSON(t *testing.T) {
	s := transfer.State{Method: "S3", Size: 42, PartSize: 16, UploadID: "u", Offset: 3,
		Parts: []transfer.PartState{{Number: 1, Size: 16, ETag: "e"}, {Number: 2, Size: 16, SHA1: "s"}}}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var got transfer.State
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, s) {
		t.Errorf("round trip: %+v, want %+v", got, s)
	}
}

func TestProviderErrorsAreParsed(t *testing.T) {
	cases := []struct{ name, body, code, msg string }{
		{"S3 XML", `<?xml version="1.0"?><Error><Code>SlowDown</Code><Message>Reduce your rate</Message></Error>`, "SlowDown", "Reduce your rate"},
		{"Azure XML", `<Error><Code>Md5Mismatch</Code><Message>The MD5 value specified in the request did not match.</Message></Error>`, "Md5Mismatch", "The MD5 value specified in the request did not match."},
		{"B2 JSON", `{"status": 400, "code": "bad_request", "message": "Sha1 did not match data received"}`, "bad_request", "Sha1 did not match data received"},
		{"GCS JSON", `{"error": {"code": 503, "message": "Backend Error", "errors": [{"reason": "backendError"}]}}`, "backendError", "Backend Error"},
		{"plain text", "upstream connect error", "", "upstream connect error"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, msg := transfer.ParseProviderError([]byte(c.body))
			if code != c.code || msg != c.msg {
				t.Errorf("got (%q, %q), want (%q, %q)", code, msg, c.code, c.msg)
			}
		})
	}
}

func TestErrorsNeverCarryTheSignature(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusForbidden)
		w.Write([]byte(`<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>`))
	}))
	defer srv.Close()
	signed := srv.URL + "/bucket/key?X-Amz-Signature=deadbeef&X-Amz-Credential=AKIA"
	req, _ := http.NewRequest(http.MethodPut, signed, strings.NewReader("x"))
	_, err := transfer.Do(http.DefaultClient, req, "s3", "upload part", 7)
	var te *transfer.Error
	if !errors.As(err, &te) {
		t.Fatalf("error %v is not a *transfer.Error", err)
	}
	if te.Status != 403 || te.Code != "AccessDenied" || te.Part != 7 || !te.Expired() {
		t.Errorf("error fields %+v", te)
	}
	if s := err.Error(); strings.Contains(s, "deadbeef") || strings.Contains(s, "AKIA") || !strings.Contains(s, "/bucket/key") {
		t.Errorf("error %q leaks the query or loses the path", s)
	}
	// A network failure's *url.Error would print the whole URL.
	req, _ = http.NewRequest(http.MethodPut, "http://127.0.0.1:1/k?X-Amz-Signature=deadbeef", nil)
	_, err = transfer.Do(http.DefaultClient, req, "s3", "put object", 0)
	if err == nil || strings.Contains(err.Error(), "deadbeef") {
		t.Errorf("network error %v leaks the signature", err)
	}
}

func TestScannerHashesInOrderWhilePartsHashInParallel(t *testing.T) {
	data := make([]byte, 3<<20+123)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	parts := transfer.PlanParts(int64(len(data)), 256<<10)
	scan := transfer.NewScanner(transfer.Bytes(data), parts, func(i int) hash.Hash {
		if i%2 == 0 {
			return md5.New()
		}
		return nil
	}, sha256.New())
	scan.Allow(len(parts))
	go scan.Run(context.Background())
	sums, err := scan.Wait(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := sha256.Sum256(data)
	if hex.EncodeToString(sums[0]) != hex.EncodeToString(want[:]) {
		t.Errorf("whole-file SHA-256 differs")
	}
	for i, p := range parts {
		d, err := scan.PartDigest(context.Background(), i)
		if err != nil {
			t.Fatal(err)
		}
		if i%2 == 1 {
			if d != nil {
				t.Errorf("part %d: digest without a hash", i)
			}
			continue
		}
		w := md5.Sum(data[p.Off : p.Off+p.Size])
		if hex.EncodeToString(d) != hex.EncodeToString(w[:]) {
			t.Errorf("part %d: MD5 differs", i)
		}
	}
}

func TestRetryRefreshesExpiredURLsAndGivesUpOnPermanentErrors(t *testing.T) {
	o := transfer.Options{MaxAttempts: 5, Backoff: func(int) time.Duration { return 0 }}.WithDefaults()
	cases := []struct {
		name     string
		errs     []error
		wantRefr []bool
		wantErr  bool
	}{
		{"expired then fine", []error{&transfer.Error{Status: 403}, nil}, []bool{false, true}, false},
		{"503 twice then fine", []error{&transfer.Error{Status: 503}, &transfer.Error{Status: 503}, nil}, []bool{false, false, false}, false},
		{"refused three times", []error{&transfer.Error{Status: 403}, &transfer.Error{Status: 403}, &transfer.Error{Status: 403}}, []bool{false, true, true}, true},
		{"400 is final", []error{&transfer.Error{Status: 400, Code: "InvalidArgument"}}, []bool{false}, true},
		{"damaged part is retried", []error{&transfer.Error{Err: transfer.ErrChecksum}, nil}, []bool{false, false}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var refr []bool
			err := o.Retry(context.Background(), func(attempt int, refresh bool) error {
				refr = append(refr, refresh)
				return c.errs[attempt-1]
			})
			if (err != nil) != c.wantErr || !reflect.DeepEqual(refr, c.wantRefr) {
				t.Errorf("err %v, refresh flags %v; want error %v, flags %v", err, refr, c.wantErr, c.wantRefr)
			}
		})
	}
}

// Lanes: parts are taken a batch at a time and the scanner waits for a
// whole batch to be allowed; a caller that keeps it one batch ahead of the
// digests it waits for (as the Azure and S3 uploaders do) never stalls it,
// and the SIMD MD5 agrees with crypto/md5, the ragged last batch included.
func TestScannerLanesHashBatchesOfSIMDMD5(t *testing.T) {
	data := make([]byte, 5<<20+77)
	r := rand.New(rand.NewPCG(3, 4))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	parts := transfer.PlanParts(int64(len(data)), 128<<10) // 41 parts: batches of 16, 16, 9
	scan := transfer.NewScanner(transfer.Bytes(data), parts, transfer.Each(transfer.NewMD5), sha256.New())
	scan.Lanes(transfer.MD5Lanes)
	lead := transfer.MD5Lanes
	scan.Allow(lead)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	go scan.Run(ctx)
	for i, p := range parts {
		scan.Allow(i + lead) // as RunParts' start does, before waiting for part i
		d, err := scan.PartDigest(ctx, i)
		if err != nil {
			t.Fatalf("part %d: %v", i, err)
		}
		if w := md5.Sum(data[p.Off : p.Off+p.Size]); hex.EncodeToString(d) != hex.EncodeToString(w[:]) {
			t.Errorf("part %d: SIMD MD5 differs from crypto/md5", i)
		}
	}
	sums, err := scan.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := sha256.Sum256(data); hex.EncodeToString(sums[0]) != hex.EncodeToString(want[:]) {
		t.Errorf("whole-file SHA-256 differs")
	}
}

// TestBodyDetachedFromItsHashGivesTheTransportAnErrorInsteadOfHashing: a
// provider may answer before reading a part's body, and the transport may
// go on sending it after the request returned; once detached (before the
// MD5 lane is released for reuse) the body hashes nothing more and says so.
func TestBodyDetachedFromItsHashGivesTheTransportAnErrorInsteadOfHashing(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 4096)
	h := transfer.NewMD5()
	body := transfer.NewTracker(transfer.Params{}, transfer.State{}).Body(bytesSource{bytes.NewReader(data)}, transfer.Part{Number: 1, Size: int64(len(data))}, h)
	buf := make([]byte, 1024)
	if n, err := body.Read(buf); n != len(buf) || err != nil {
		t.Fatalf("read before detaching: %d, %v", n, err)
	}
	transfer.Detach(body)
	transfer.Release(h) // the lane goes back; a write into it now would panic
	if n, err := body.Read(buf); n != 0 || err == nil {
		t.Fatalf("read after detaching: %d bytes, %v; want none and an error", n, err)
	}
}

type bytesSource struct{ *bytes.Reader }

func (b bytesSource) Size() int64 { return b.Reader.Size() }

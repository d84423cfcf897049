package emulator_test

import (
	"bytes"
	"crypto/md5"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/ferryhq/ferry/internal/iconik/emulator"
	"github.com/ferryhq/ferry/internal/iconik/emulator/emulatortest"
)

func send(t *testing.T, method, u string, body []byte, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, u, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// checkObject asserts the bytes stored under storage/key.
func checkObject(t *testing.T, e *emulatortest.Emulator, c *client, storage, key string, want []byte) {
	t.Helper()
	rc, n, err := e.OpenObject(c.storageID(storage), key)
	if err != nil {
		t.Fatalf("object %s on %s: %v", key, storage, err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if n != int64(len(want)) || !bytes.Equal(got, want) {
		t.Fatalf("object %s holds %d bytes, want %d", key, len(got), len(want))
	}
}

func TestS3MultipartThroughUploadHelpers(t *testing.T) {
	e := emulatortest.Start(t, emulator.Options{})
	c := newClient(t, e, "admin")
	data := bytes.Repeat([]byte("0123456789abcdef"), (5<<20)/16+1) // two parts: 5 MiB + 16 bytes
	for _, withMD5 := range []bool{false, true} {
		t.Run(fmt.Sprintf("md5=%v", withMD5), func(t *testing.T) {
			name := fmt.Sprintf("big-%v.bin", withMD5)
			asset, f := c.newFile("s3", "multi", name, len(data))
			base := "/API/files/v1/assets/" + asset + "/files/" + f.str("id")
			resp, body := send(t, "POST", f.str("multipart_upload_url"), nil, nil)
			var initiated struct {
				UploadID string `xml:"UploadId"`
			}
			if resp.StatusCode != 200 || xml.Unmarshal(body, &initiated) != nil || initiated.UploadID == "" {
				t.Fatalf("initiate: %d %s", resp.StatusCode, body)
			}
			parts := [][]byte{data[:5<<20], data[5<<20:]}
			urls := map[int]string{}
			if withMD5 {
				var req []any
				for i, p := range parts {
					sum := md5.Sum(p)
					req = append(req, map[string]any{"part_number": i + 1, "checksum": base64.StdEncoding.EncodeToString(sum[:])})
				}
				r := c.must(200, c.do("POST", base+"/multipart_url/s3/part/", map[string]any{"upload_id": initiated.UploadID, "parts": req}), "s3 part urls")
				for _, p := range r.Body["parts"].([]any) {
					m := p.(map[string]any)
					urls[int(m["part_number"].(float64))] = m["url"].(string)
				}
			} else {
				r := c.must(200, c.do("GET", base+"/multipart_url/part/?upload_id="+url.QueryEscape(initiated.UploadID)+"&parts_num=2&per_page=100&page=1", nil), "part urls")
				for _, o := range r.objects() {
					urls[int(o["number"].(float64))] = o["url"].(string)
				}
			}
			var complete strings.Builder
			complete.WriteString("<CompleteMultipartUpload>")
			for i, p := range parts {
				h := map[string]string{}
				if withMD5 {
					sum := md5.Sum(p)
					h["Content-MD5"] = base64.StdEncoding.EncodeToString(sum[:])
				}
				resp, body := send(t, "PUT", urls[i+1], p, h)
				if resp.StatusCode != 200 {
					t.Fatalf("part %d: %d %s", i+1, resp.StatusCode, body)
				}
				fmt.Fprintf(&complete, "<Part><ETag>%s</ETag><PartNumber>%d</PartNumber></Part>", resp.Header.Get("ETag"), i+1)
			}
			complete.WriteString("</CompleteMultipartUpload>")
			u := c.must(200, c.do("GET", base+"/multipart_url/?upload_id="+url.QueryEscape(initiated.UploadID)+"&type=complete_url", nil), "complete url")
			lists, _ := u.Body["list_parts_url"].([]any)
			if len(lists) != 1 {
				t.Fatalf("list_parts_url: %s", u.Raw)
			}
			if resp, body := send(t, "GET", lists[0].(string), nil, nil); resp.StatusCode != 200 || !bytes.Contains(body, []byte("<PartNumber>2</PartNumber>")) {
				t.Fatalf("list parts: %d %s", resp.StatusCode, body)
			}
			resp, body = send(t, "POST", u.str("complete_url"), []byte(complete.String()), map[string]string{"Content-Type": "application/xml"})
			if resp.StatusCode != 200 || bytes.Contains(body, []byte("<Error>")) {
				t.Fatalf("complete: %d %s", resp.StatusCode, body)
			}
			checkObject(t, e, c, "s3", "ferry/multi/"+name, data)
		})
	}
	t.Run("cleanup aborts", func(t *testing.T) {
		asset, f := c.newFile("s3", "multi", "aborted.bin", 10)
		_, body := send(t, "POST", f.str("multipart_upload_url"), nil, nil)
		var initiated struct {
			UploadID string `xml:"UploadId"`
		}
		if err := xml.Unmarshal(body, &initiated); err != nil {
			t.Fatal(err)
		}
		c.must(200, c.do("POST", "/API/files/v1/assets/"+asset+"/files/"+f.str("id")+"/multipart/cleanup/", map[string]any{"upload_id": initiated.UploadID, "parts_number": 1, "abort_upload": true}), "cleanup")
		r := c.must(200, c.do("GET", "/API/files/v1/assets/"+asset+"/files/"+f.str("id")+"/multipart_url/part/?upload_id="+url.QueryEscape(initiated.UploadID)+"&parts_num=1", nil), "part url")
		if resp, _ := send(t, "PUT", r.objects()[0]["url"].(string), []byte("x"), nil); resp.StatusCode == 200 {
			t.Fatal("a part was accepted after the upload was aborted")
		}
	})
}

func TestB2UploadsThroughUploadHelpers(t *testing.T) {
	e := emulatortest.Start(t, emulator.Options{})
	c := newClient(t, e, "admin")
	small := []byte("small b2 file")
	_, f := c.newFile("b2", "bz", "small.txt", len(small))
	creds, _ := f.Body["upload_credentials"].(map[string]any)
	tok, _ := creds["authorizationToken"].(string)
	if f.str("upload_url") == "" || tok == "" || f.str("upload_filename") != "ferry/bz/small.txt" {
		t.Fatalf("B2 upload fields: %s", f.Raw)
	}
	sum := sha1.Sum(small)
	resp, body := send(t, "POST", f.str("upload_url"), small, map[string]string{"Authorization": tok,
		"X-Bz-File-Name": url.PathEscape(f.str("upload_filename")), "Content-Type": "b2/x-auto", "X-Bz-Content-Sha1": hex.EncodeToString(sum[:])})
	if resp.StatusCode != 200 {
		t.Fatalf("b2_upload_file: %d %s", resp.StatusCode, body)
	}
	checkObject(t, e, c, "b2", "ferry/bz/small.txt", small)

	data := bytes.Repeat([]byte{7}, 5_000_000+3)
	asset, f := c.newFile("b2", "bz", "large.bin", len(data))
	base := "/API/files/v1/assets/" + asset + "/files/" + f.str("id") + "/multipart/b2/"
	start := c.must(200, c.do("POST", base+"start/", map[string]any{"upload_file_id": nil}), "b2 start")
	var sha1s []string
	for i, p := range [][]byte{data[:5_000_000], data[5_000_000:]} {
		s := sha1.Sum(p)
		sha1s = append(sha1s, hex.EncodeToString(s[:]))
		resp, body := send(t, "POST", start.str("upload_url"), p, map[string]string{"Authorization": start.str("authorization_token"),
			"X-Bz-Part-Number": strconv.Itoa(i + 1), "X-Bz-Content-Sha1": sha1s[i]})
		if resp.StatusCode != 200 {
			t.Fatalf("part %d: %d %s", i+1, resp.StatusCode, body)
		}
	}
	if r := c.raw("POST", base+"finish/", fmt.Sprintf(`{"upload_file_id": %q, "sha1_list": [%q]}`, start.str("upload_file_id"), sha1s[0]), nil); r.Status != 400 {
		t.Fatalf("finish with a short SHA-1 list: %d, want 400", r.Status)
	}
	c.must(200, c.do("POST", base+"finish/", map[string]any{"upload_file_id": start.str("upload_file_id"), "sha1_list": sha1s}), "b2 finish")
	checkObject(t, e, c, "b2", "ferry/bz/large.bin", data)

	other := c.must(200, c.do("POST", base+"start/", map[string]any{}), "b2 start again")
	c.must(200, c.do("POST", base+"cancel/", map[string]any{"upload_file_id": other.str("upload_file_id")}), "b2 cancel")
	if r := c.raw("POST", "/API/files/v1/assets/"+asset+"/files/"+f.str("id")+"/multipart_url/s3/part/", `{"upload_id": "u", "parts": [{"part_number": 1}]}`, nil); r.Status != 400 {
		t.Fatalf("S3 helper on a B2 file: %d, want 400", r.Status)
	}
}

func TestGCSAndAzureUploadURLs(t *testing.T) {
	e := emulatortest.Start(t, emulator.Options{})
	c := newClient(t, e, "admin")
	data := []byte("resumable bytes")

	_, g := c.newFile("gcs", "g", "a.txt", len(data))
	resp, body := send(t, "POST", g.str("upload_url"), nil, map[string]string{"x-goog-resumable": "start", "Content-Length": "0"})
	if resp.StatusCode != 201 && resp.StatusCode != 200 || resp.Header.Get("Location") == "" {
		t.Fatalf("GCS start: %d %s", resp.StatusCode, body)
	}
	if resp, body := send(t, "PUT", resp.Header.Get("Location"), data, nil); resp.StatusCode != 200 && resp.StatusCode != 201 {
		t.Fatalf("GCS upload: %d %s", resp.StatusCode, body)
	}
	checkObject(t, e, c, "gcs", "ferry/g/a.txt", data)

	_, a := c.newFile("azure", "z", "b.txt", len(data))
	if resp, body := send(t, "PUT", a.str("upload_url"), data, map[string]string{"x-ms-blob-type": "BlockBlob"}); resp.StatusCode != 201 {
		t.Fatalf("Azure put: %d %s", resp.StatusCode, body)
	}
	checkObject(t, e, c, "azure", "ferry/z/b.txt", data)
}

func TestFileSetDeleteRemovesItsObjectsUnlessKeepSource(t *testing.T) {
	e := emulatortest.Start(t, emulator.Options{})
	c := newClient(t, e, "admin")
	for _, keep := range []bool{false, true} {
		name := fmt.Sprintf("keep-%v.bin", keep)
		asset, f := c.newFile("s3", "del", name, 3)
		if resp := putS3(t, f.str("upload_url"), []byte("abc")); resp.StatusCode != 200 {
			t.Fatalf("upload: %d", resp.StatusCode)
		}
		c.must(200, c.do("DELETE", fmt.Sprintf("/API/files/v1/assets/%s/file_sets/%s/?keep_source=%v", asset, f.str("file_set_id"), keep), nil), "delete file set")
		_, _, err := e.OpenObject(c.storageID("s3"), "ferry/del/"+name)
		if gone := err != nil; gone == keep {
			t.Fatalf("keep_source=%v: object gone=%v (%v)", keep, gone, err)
		}
	}
}

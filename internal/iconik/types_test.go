package iconik

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestTimeAcceptsIconikFormats(t *testing.T) {
	want := time.Date(2021, 7, 30, 15, 16, 54, 406403000, time.UTC)
	cases := []struct {
		in   string
		want time.Time
	}{
		{`"2021-07-30T15:16:54.406403+00:00"`, want},
		{`"2021-07-30T17:16:54.406403+02:00"`, want},
		{`"2021-07-30T15:16:54.406403"`, want},
		{`"2021-07-30 15:16:54"`, want.Truncate(time.Second)},
		{`"2021-07-30T15:16:54Z"`, want.Truncate(time.Second)},
		{`null`, time.Time{}},
		{`""`, time.Time{}},
	}
	for _, tc := range cases {
		var got Time
		if err := json.Unmarshal([]byte(tc.in), &got); err != nil {
			t.Errorf("%s: %v", tc.in, err)
			continue
		}
		if !got.Equal(tc.want) {
			t.Errorf("%s = %v, want %v", tc.in, got, tc.want)
		}
	}
	var bad Time
	if err := json.Unmarshal([]byte(`"yesterday"`), &bad); err == nil {
		t.Error("accepted a non-timestamp")
	}
	b, _ := json.Marshal(struct {
		T Time `json:"t"`
		Z Time `json:"z,omitzero"`
	}{T: Time{want}})
	if string(b) != `{"t":"2021-07-30T15:16:54.406403Z"}` {
		t.Errorf("marshal = %s", b)
	}
}

func TestSizeAcceptsNumberOrNumericString(t *testing.T) {
	cases := map[string]int64{`264032992`: 264032992, `"264032992"`: 264032992, `null`: 0, `"1024.0"`: 1024, `5497558138880`: 5497558138880}
	for in, want := range cases {
		var s Size
		if err := json.Unmarshal([]byte(in), &s); err != nil || int64(s) != want {
			t.Errorf("%s = %d, %v; want %d", in, s, err, want)
		}
	}
	for _, in := range []string{`"12a"`, `1.5`, `true`} {
		var s Size
		if err := json.Unmarshal([]byte(in), &s); err == nil {
			t.Errorf("%s accepted", in)
		}
	}
	b, _ := json.Marshal(struct{ S Size }{42})
	if string(b) != `{"S":42}` {
		t.Errorf("marshal = %s", b)
	}
}

func TestPublishedFileSampleDecodes(t *testing.T) {
	const sample = `{"asset_id": "2c5c5ae0-f149-11eb-a843-0a580a3db916", "checksum": "38f7f32d194b725bd0b1855a6e35d3d3",
 "date_created": "2021-07-28T18:10:42.366968+00:00", "directory_path": "Test Content/MXF", "size": 264032992,
 "status": "CLOSED", "type": "FILE", "user_id": null, "unknown_field": {"x": 1}, "original_name": "0002EM.MXF"}`
	var f File
	if err := json.Unmarshal([]byte(sample), &f); err != nil {
		t.Fatal(err)
	}
	if f.Size != 264032992 || f.Status != "CLOSED" || f.DateCreated.IsZero() {
		t.Errorf("decoded %+v", f)
	}
}

func TestStorageReason(t *testing.T) {
	ok := Storage{Name: "s3", Method: "S3", Purpose: "FILES", Status: "ACTIVE", Settings: map[string]any{"read": true, "write": true, "delete": true}}
	cases := []struct {
		name   string
		change func(*Storage)
		want   string // substring; "" = selectable
	}{
		{"selectable", func(*Storage) {}, ""},
		{"string flags count", func(s *Storage) { s.Settings = map[string]any{"read": "true", "write": "True", "delete": "1"} }, ""},
		{"proxies purpose", func(s *Storage) { s.Purpose = "PROXIES" }, "purpose is PROXIES, not FILES"},
		{"file method", func(s *Storage) { s.Method = "FILE" }, "method FILE has no direct upload"},
		{"failing", func(s *Storage) { s.Status, s.StatusMessage = "FAILING", "bucket gone" }, "FAILING, not ACTIVE (bucket gone)"},
		{"no delete", func(s *Storage) { s.Settings = map[string]any{"read": true, "write": true} }, "may not delete"},
		{"several", func(s *Storage) { s.Purpose, s.Settings = "ARCHIVE", nil }, "purpose is ARCHIVE, not FILES; iconik may not read/write/delete"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := ok
			s.Settings = map[string]any{"read": true, "write": true, "delete": true}
			tc.change(&s)
			got := storageReason(&s)
			if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
				t.Errorf("reason = %q, want %q", got, tc.want)
			}
		})
	}
}

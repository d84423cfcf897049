package transfer_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/ferryhq/ferry/internal/transfer"
	"github.com/ferryhq/ferry/internal/transfer/azure"
	"github.com/ferryhq/ferry/internal/transfer/b2"
	"github.com/ferryhq/ferry/internal/transfer/gcs"
	"github.com/ferryhq/ferry/internal/transfer/s3"
)

func TestEachProviderRefusesTheNamesItCannotStore(t *testing.T) {
	long := func(n int, unit string) string { return strings.Repeat(strings.Repeat("a", 99)+unit, n) }
	deep := strings.Repeat("d/", 254) + "f" // 255 segments
	cases := []struct {
		name  string
		check func(string) error
		in    string
		rule  string // "" = accepted
	}{
		{"s3 1024 bytes", s3.CheckName, long(10, "/") + strings.Repeat("b", 24), ""},
		{"s3 1025 bytes", s3.CheckName, long(10, "/") + strings.Repeat("b", 25), transfer.NameTooLong},
		{"s3 counts bytes not characters", s3.CheckName, strings.Repeat("é", 513), transfer.NameTooLong},
		{"s3 takes a line feed", s3.CheckName, "a\nb", ""},
		{"gcs 1025 bytes", gcs.CheckName, strings.Repeat("x", 1025), transfer.NameTooLong},
		{"gcs refuses a line feed", gcs.CheckName, "dir/a\nb.mov", transfer.NameCharacter},
		{"gcs refuses a carriage return", gcs.CheckName, "a\rb", transfer.NameCharacter},
		{"gcs refuses the acme prefix", gcs.CheckName, ".well-known/acme-challenge/x", transfer.NameCharacter},
		{"azure counts characters", azure.CheckName, strings.Repeat("é", 1024), ""},
		{"azure 1025 characters", azure.CheckName, strings.Repeat("é", 1025), transfer.NameTooLong},
		{"azure 255 segments", azure.CheckName, deep, transfer.NameTooManySegments},
		{"azure 254 segments", azure.CheckName, strings.TrimPrefix(deep, "d/"), ""},
		{"azure refuses a segment ending with a dot", azure.CheckName, "a./b", transfer.NameCharacter},
		{"b2 251-byte segment", b2.CheckName, "d/" + strings.Repeat("s", 251), transfer.NameSegmentTooLong},
		{"b2 250-byte segment", b2.CheckName, "d/" + strings.Repeat("s", 250), ""},
		{"b2 refuses DEL", b2.CheckName, "a\x7fb", transfer.NameCharacter},
		{"b2 refuses a tab", b2.CheckName, "a\tb", transfer.NameCharacter},
		{"b2 1025 bytes", b2.CheckName, long(10, "/") + strings.Repeat("b", 25), transfer.NameTooLong},
		{"invalid UTF-8 everywhere", s3.CheckName, "a\xffb", transfer.NameCharacter},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.check(c.in)
			ne := transfer.AsNameError(err)
			switch {
			case c.rule == "" && err != nil:
				t.Errorf("refused: %v", err)
			case c.rule != "" && ne == nil:
				t.Errorf("accepted (err %v), want rule %s", err, c.rule)
			case c.rule != "" && ne.Rule != c.rule:
				t.Errorf("rule %s (%v), want %s", ne.Rule, err, c.rule)
			}
		})
	}
}

func TestRefusedTellsFinalRefusalsFromRetryableOnes(t *testing.T) {
	cases := []struct {
		err  *transfer.Error
		want bool
	}{
		{&transfer.Error{Provider: "s3", Step: "put object", Status: http.StatusBadRequest, Code: "KeyTooLongError", Message: "Your key is too long"}, true},
		{&transfer.Error{Provider: "azure", Step: "put blob", Status: http.StatusBadRequest, Code: "InvalidResourceName"}, true},
		{&transfer.Error{Provider: "s3", Step: "put", Status: http.StatusRequestURITooLong}, true},
		{&transfer.Error{Provider: "s3", Step: "complete", Status: http.StatusBadRequest, Code: "InvalidPart"}, false},
		{&transfer.Error{Provider: "s3", Step: "part", Status: http.StatusBadRequest, Code: "BadDigest"}, false},
		{&transfer.Error{Provider: "s3", Step: "part", Status: http.StatusForbidden, Code: "AccessDenied"}, false},
		{&transfer.Error{Provider: "s3", Step: "part", Status: http.StatusServiceUnavailable}, false},
		{&transfer.Error{Provider: "s3", Step: "part", Status: http.StatusNotFound, Code: "NoSuchUpload"}, false},
		{&transfer.Error{Provider: "b2", Step: "upload", Status: http.StatusUnauthorized, Code: "expired_auth_token"}, false},
	}
	for _, c := range cases {
		if got := transfer.Refused(c.err); got != c.want {
			t.Errorf("Refused(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

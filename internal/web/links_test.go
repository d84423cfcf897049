package web

import (
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
)

func TestOpenAPIDescribesTheDownloadRoutesAndHowLinksCount(t *testing.T) {
	f := newFixture(t)
	_, body := f.do("GET", "/api/v1/openapi.json", nil)
	doc, err := openapi3.NewLoader().LoadFromData(body)
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(t.Context()); err != nil {
		t.Fatalf("invalid OpenAPI document: %v", err)
	}
	for _, p := range []string{"/d/{token}/files/{file}", "/d/{token}/zip"} {
		item := doc.Paths.Find(p)
		if item == nil || item.Get == nil {
			t.Fatalf("%s is not described", p)
		}
		if !strings.Contains(item.Get.Description, "counts bytes, not requests") || item.Get.Responses.Status(410) == nil {
			t.Errorf("%s does not say how a limited link counts or that it answers 410", p)
		}
	}
	for _, name := range []string{"Link", "LinkRequest"} {
		s := doc.Components.Schemas[name]
		if s == nil || !strings.Contains(s.Value.Properties["max_downloads"].Value.Description, "counts bytes") {
			t.Errorf("schema %s: max_downloads does not say how it counts", name)
		}
	}
}

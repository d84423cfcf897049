package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"regexp"
	"strings"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3gen"
)

// The OpenAPI document is generated from the route table and the Go types of
// the wire format, so it cannot drift from what the server does. Only /api/v1
// routes, the public portal API and the download links' byte routes
// (openapi_downloads.go) are described; pages are not an API.

// apiSchemas names, per route, the request and response bodies and the
// success status. Routes absent here answer 204 or are pages.
var apiSchemas = map[string]struct {
	req    any
	resp   any
	status int
}{
	"GET /api/v1/session":                   {nil, sessionResponse{}, 200},
	"GET /api/v1/portals":                   {nil, portalsResponse{}, 200},
	"POST /api/v1/portals":                  {PortalInput{}, portalResponse{}, 201},
	"GET /api/v1/portals/{id}":              {nil, portalResponse{}, 200},
	"PATCH /api/v1/portals/{id}":            {PortalInput{}, portalResponse{}, 200},
	"DELETE /api/v1/portals/{id}":           {nil, nil, 204},
	"GET /api/v1/packages":                  {nil, packagesResponse{}, 200},
	"POST /api/v1/packages":                 {adminPackageRequest{}, createdPackage{}, 201},
	"GET /api/v1/packages/{id}":             {nil, packageResponse{}, 200},
	"DELETE /api/v1/packages/{id}":          {nil, nil, 204},
	"POST /api/v1/packages/{id}/finalize":   {nil, packageResponse{}, 200},
	"POST /api/v1/packages/{id}/links":      {linkRequest{}, createdLink{}, 201},
	"POST /p/{slug}/packages":               {packageRequest{}, createdPackage{}, 201},
	"GET /p/{slug}/packages/{id}":           {nil, packageResponse{}, 200},
	"POST /p/{slug}/packages/{id}/finalize": {finalizeRequest{}, finalizedResponse{}, 200},

	// Notifications (issue 11).
	"GET /api/v1/packages/{id}/notifications": {nil, notificationsResponse{}, 200},
	"POST /api/v1/notifications/test":         {mailTestRequest{}, mailTestResponse{}, 200},
	"GET /api/v1/portals/{id}/notifications":  {nil, portalNotifyResponse{}, 200},
	"PUT /api/v1/portals/{id}/notifications":  {portalNotifyRequest{}, portalNotifyResponse{}, 200},
}

type sessionResponse struct {
	User      User   `json:"user"`
	CSRFToken string `json:"csrf_token,omitempty"`
}
type portalsResponse struct {
	Portals []Portal `json:"portals"`
}
type portalResponse struct {
	Portal Portal `json:"portal"`
}
type packagesResponse struct {
	Packages   []Package `json:"packages"`
	NextCursor string    `json:"next_cursor"`
}
type packageResponse struct {
	Package Package `json:"package"`
}

var (
	openAPIOnce sync.Once
	openAPIDoc  []byte
	openAPIErr  error
)

func (s *Server) openAPI(w http.ResponseWriter, _ *http.Request) error {
	openAPIOnce.Do(func() { openAPIDoc, openAPIErr = buildOpenAPI(s.routes) })
	if openAPIErr != nil {
		return fmt.Errorf("building the OpenAPI document: %w", openAPIErr)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, err := w.Write(openAPIDoc)
	return err
}

var pathParam = regexp.MustCompile(`\{([a-z_]+)\}`)

func buildOpenAPI(routes []Route) ([]byte, error) {
	schemas := openapi3.Schemas{}
	gen := openapi3gen.NewGenerator(openapi3gen.CreateComponentSchemas(openapi3gen.ExportComponentSchemasOptions{
		ExportComponentSchemas: true, ExportTopLevelSchema: true,
	}), openapi3gen.CreateTypeNameGenerator(func(t reflect.Type) string {
		n := t.Name()
		if n == "" {
			return "" // an anonymous struct stays inline
		}
		return strings.ToUpper(n[:1]) + n[1:] // wire types unexported in Go are still named schemas
	}), openapi3gen.SchemaCustomizer(describeField))
	ref := func(v any) (any, error) {
		sr, err := gen.NewSchemaRefForValue(v, schemas)
		if err != nil {
			return nil, fmt.Errorf("schema for %T: %w", v, err)
		}
		return sr, nil
	}
	errRef, err := ref(errorBody{})
	if err != nil {
		return nil, err
	}
	errResp := func(why string) map[string]any {
		return map[string]any{"description": why, "content": map[string]any{"application/json": map[string]any{"schema": errRef}}}
	}
	paths := map[string]map[string]any{}
	for _, rt := range routes {
		sc, ok := apiSchemas[rt.Method+" "+rt.Pattern]
		if !ok {
			continue
		}
		op := map[string]any{
			"summary":     rt.Summary,
			"operationId": operationID(rt),
		}
		var params []any
		for _, m := range pathParam.FindAllStringSubmatch(rt.Pattern, -1) {
			params = append(params, map[string]any{"name": m[1], "in": "path", "required": true, "schema": map[string]any{"type": "string"}})
		}
		if rt.Method == "GET" && rt.Pattern == "/api/v1/packages" {
			for _, q := range [][2]string{
				{"portal_id", "Only this portal's packages"},
				{"state", "uploading, finalized or expired"},
				{"sender_email", "Only this sender's packages (any case)"},
				{"q", "Search: a part of the package name or of the sender's email, any case; % and _ match themselves"},
				{"cursor", "next_cursor of the previous page"},
				{"limit", "Page size, 1 to 500 (default 50)"},
			} {
				params = append(params, map[string]any{"name": q[0], "in": "query", "description": q[1], "schema": map[string]any{"type": "string"}})
			}
		}
		if params != nil {
			op["parameters"] = params
		}
		if sc.req != nil {
			r, err := ref(sc.req)
			if err != nil {
				return nil, err
			}
			_, optional := sc.req.(interface{ optionalBody() })
			op["requestBody"] = map[string]any{"required": !optional, "content": map[string]any{"application/json": map[string]any{"schema": r}}}
		}
		responses := map[string]any{"default": errResp("Error")}
		ok2 := map[string]any{"description": "Success"}
		if sc.resp != nil {
			r, err := ref(sc.resp)
			if err != nil {
				return nil, err
			}
			ok2["content"] = map[string]any{"application/json": map[string]any{"schema": r}}
		}
		responses[fmt.Sprint(sc.status)] = ok2
		switch rt.Access {
		case Admin:
			op["security"] = []any{map[string]any{"apiToken": []any{}}, map[string]any{"session": []any{}}}
			responses["401"] = errResp("No or unknown credentials; an API token that expired answers token_expired, a revoked one token_revoked")
		case Uploader:
			op["security"] = []any{map[string]any{"uploadToken": []any{}}}
			responses["401"] = errResp("No or unknown upload token")
		default:
			op["security"] = []any{}
		}
		op["responses"] = responses
		if paths[rt.Pattern] == nil {
			paths[rt.Pattern] = map[string]any{}
		}
		paths[rt.Pattern][strings.ToLower(rt.Method)] = op
	}
	paths["/uploads/"] = map[string]any{"post": tusCreateOperation(errResp)}
	addDownloadPaths(paths, schemas, errResp)
	doc := map[string]any{
		"openapi": "3.0.3",
		"info": map[string]any{
			"title":       "ferry API",
			"version":     "1",
			"description": "Portals, packages and download links. Errors always have the body {\"error\":{\"code\",\"message\"}}. Uploads use tus 1.0 at /uploads/.",
		},
		"paths": paths,
		"components": map[string]any{
			"schemas": schemas,
			"securitySchemes": map[string]any{
				"apiToken":    map[string]any{"type": "http", "scheme": "bearer", "description": "API token from `ferry admin create-token` or POST /api/v1/tokens"},
				"uploadToken": map[string]any{"type": "http", "scheme": "bearer", "description": "Upload token returned when the package was created"},
				"session":     map[string]any{"type": "apiKey", "in": "cookie", "name": sessionCookie, "description": "Browser session; state-changing requests also need the X-CSRF-Token header"},
			},
		},
	}
	return json.MarshalIndent(doc, "", "  ")
}

// operationID is a stable camel-case name for a route, e.g. postApiV1Portals.
func operationID(rt Route) string {
	var b strings.Builder
	b.WriteString(strings.ToLower(rt.Method))
	for _, part := range strings.FieldsFunc(rt.Pattern, func(r rune) bool { return r == '/' || r == '{' || r == '}' || r == '_' }) {
		b.WriteString(strings.ToUpper(part[:1]) + part[1:])
	}
	return b.String()
}

// tusMetadataKeys are the Upload-Metadata keys ferry reads when a tus upload
// is created. tus itself leaves metadata free-form, so a client author can
// only learn them here (and from a refusal that names them).
var tusMetadataKeys = []struct{ key, use string }{
	{"package_token", "The upload token returned when the package was created (or send it as Authorization: Bearer <token>)."},
	{"relativePath", "The file's path inside the package, folders separated by '/' (e.g. Day 1/Card A/clip.mov). Preferred over filename; the string \"null\" (Uppy's value for loose files) counts as absent."},
	{"filename", "The file's name, used as its path when relativePath is absent."},
	{"sha256", "Optional: the hex SHA-256 of the upload's bytes (of the partial, for a partial), when the sender knows it before sending. ferry hashes on arrival and refuses a mismatch (460 checksum_mismatch, the bytes dropped)."},
	{"sha256_trailer", "Optional, `1`: the sender declares the upload's SHA-256 after its bytes (it hashes while it sends), in an `Upload-Checksum: sha256 <base64>` HTTP trailer of the chunked PATCH carrying the last byte (named in its `Trailer` header). The digest covers the whole upload, not only that request's bytes. Such an upload never completes unverified: without the trailer (a proxy may drop trailers) its last PATCH answers 400 checksum_missing with every byte kept, and the sender declares the digest in the `Upload-Checksum` header of an empty PATCH at `Upload-Offset` = its length (204 once verified, also when asked again); a wrong digest answers 460 checksum_mismatch and drops the bytes, to be sent again. A final upload over partials that announced it is refused (409 partial_unverified) until each is verified."},
	{"file_size", "Required on a partial upload (Upload-Concat: partial): the size in bytes of the whole file it is part of, so limits are checked before a byte is stored."},
	{"partial_index", "Optional on a partial: its position in the file (informational; the order of the final's Upload-Concat list is what counts)."},
	{"filetype", "Optional: the MIME type (informational)."},
}

// tusCreateOperation describes tus creation at /uploads/ (tus 1.0 with the
// creation, creation-defer-length, concatenation and termination extensions):
// the protocol is tus's, the metadata keys are ferry's.
func tusCreateOperation(errResp func(string) map[string]any) map[string]any {
	var keys strings.Builder
	for _, k := range tusMetadataKeys {
		fmt.Fprintf(&keys, "\n- `%s`: %s", k.key, k.use)
	}
	header := func(name, desc string, required bool) map[string]any {
		return map[string]any{"name": name, "in": "header", "required": required, "description": desc, "schema": map[string]any{"type": "string"}}
	}
	return map[string]any{
		"summary":     "Create a tus upload of one file (or one partial of a file) into a package",
		"operationId": "postUploads",
		"description": "tus 1.0 (https://tus.io/protocols/resumable-upload): create here, then PATCH the returned Location; HEAD it to resume. " +
			"Upload-Metadata is a comma-separated list of `key base64(value)` pairs; ferry reads these keys:" + keys.String() +
			"\n\nA file is complete when its bytes are all stored and every declared sha256 matched; a large file may be sent as parallel partials joined by a final upload " +
			"(Upload-Concat: final;<url> <url> ...), which lists each partial once. Uploads larger than Tus-Max-Size are refused with 413." +
			"\n\nWhich digests are verified, and when: a single upload's SHA-256 when its last byte arrives (against `sha256` or the `sha256_trailer` declaration); " +
			"each partial's likewise; a file sent as partials has no whole-file SHA-256 until the server's first sequential read of it (its first delivery) computes and records it. " +
			"A file's `sha256` and `sha256_verified` fields say which it has.",
		"parameters": []any{
			header("Tus-Resumable", "Always 1.0.0.", true),
			header("Upload-Length", "The upload's size in bytes (or send Upload-Defer-Length: 1).", false),
			header("Upload-Defer-Length", "1 when the size is not known yet.", false),
			header("Upload-Metadata", "The keys described above.", true),
			header("Upload-Concat", "`partial` for a part of a file, `final;<partial URLs>` to join them.", false),
			header("Authorization", "Bearer <upload token>, unless package_token is in the metadata.", false),
		},
		"security": []any{map[string]any{"uploadToken": []any{}}},
		"responses": map[string]any{
			"201":     map[string]any{"description": "Created; the Location header is the upload's URL."},
			"401":     errResp("No or unknown upload token"),
			"413":     errResp("Larger than the server's Tus-Max-Size or the portal's limits"),
			"507":     errResp("insufficient_storage: the length does not fit in the server's free space (less its --disk-reserve and what unfinished uploads still have to send); nothing was stored, try again later. A PATCH that finds the disk full answers the same and keeps what arrived: resume once space is back"),
			"default": errResp("Refused (the code says why: bad path, duplicate, extension, limits, package not uploading, ...)"),
		},
	}
}

// describeField documents a wire field from its struct tags: doc (a
// description) and enum (the values, comma-separated), so that a field's
// meaning sits next to the field.
func describeField(_ string, _ reflect.Type, tag reflect.StructTag, schema *openapi3.Schema) error {
	if d := tag.Get("doc"); d != "" {
		schema.Description = d
	}
	if e := tag.Get("enum"); e != "" {
		schema.Enum = nil
		for _, v := range strings.Split(e, ",") {
			schema.Enum = append(schema.Enum, v)
		}
	}
	return nil
}

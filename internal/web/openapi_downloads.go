package web

import "github.com/getkin/kin-openapi/openapi3"

// linkCountingRule is how a limited download link counts, for the OpenAPI
// description (links.go enforces it).
const linkCountingRule = "A link with `max_downloads` = N counts bytes, not requests: it serves each file at most N times " +
	"its size in total, whatever the requests' Range, If-Range or multiple ranges, and a zip costs one whole size of " +
	"every file. The bytes of a response are charged before it starts and those never sent (the client went away) " +
	"are given back, so an interrupted download resumed with a Range from where it stopped (`curl -C -`, a browser's " +
	"resume) costs only what it fetches. Bytes that were on their way when a connection broke (in the network " +
	"buffers of either end) are given back too, up to 16 MiB per break and, over the link's life, up to 64 MiB or the " +
	"file's size, whichever is smaller: so even a one-download link can be resumed after a break in mid-transfer (a break " +
	"in the last few MiB of a response, which the server had already handed to the network, counts as served), and no client gets more than N " +
	"copies plus that allowance however it breaks its connections. A request asking for more bytes of a " +
	"file than its link has left, and every request once no file has any left (HEAD, conditional and zip requests " +
	"included), is answered 410 `download_limit_reached` and carries no byte of any file. `max_downloads` = 0 is unlimited."

// addDownloadPaths describes the public download routes, which serve bytes
// rather than JSON, and the counting rule on the link schemas.
func addDownloadPaths(paths map[string]map[string]any, schemas openapi3.Schemas, errResp func(string) map[string]any) {
	for _, name := range []string{"Link", "LinkRequest"} {
		if s := schemas[name]; s != nil && s.Value != nil {
			if p := s.Value.Properties["max_downloads"]; p != nil && p.Value != nil {
				p.Value.Description = linkCountingRule
			}
			if p := s.Value.Properties["downloads"]; p != nil && p.Value != nil {
				p.Value.Description = "Downloads started (requests from byte 0, and zips); informational: the limit is on bytes, see max_downloads."
			}
		}
	}
	binary := func(why string, types ...string) map[string]any {
		content := map[string]any{}
		for _, t := range types {
			content[t] = map[string]any{} // the file's bytes: no schema to check
		}
		return map[string]any{"description": why, "content": content}
	}
	param := func(name, in, why string) map[string]any {
		return map[string]any{"name": name, "in": in, "required": in == "path", "description": why, "schema": map[string]any{"type": "string"}}
	}
	common := []any{
		param("token", "path", "The link's token"),
		param(linkPasswordHeader, "header", "The link's password, for scripts (browsers unlock with the form on the link's page)"),
	}
	refusals := map[string]any{
		"401":     errResp("password_required: the link has a password, not given or wrong"),
		"404":     errResp("No such link, or no such complete file in its package"),
		"410":     errResp("link_expired, or download_limit_reached: the link has not enough bytes left for this request"),
		"default": errResp("Error"),
	}
	with := func(extra map[string]any) map[string]any {
		out := map[string]any{}
		for k, v := range refusals {
			out[k] = v
		}
		for k, v := range extra {
			out[k] = v
		}
		return out
	}
	paths["/d/{token}/files/{file}"] = map[string]any{"get": map[string]any{
		"summary":     "Download one file of a link's package (HEAD, Range, If-Range and conditional requests supported)",
		"operationId": "getDownloadLinkFile",
		"description": linkCountingRule,
		"security":    []any{},
		"parameters": append(append([]any{}, common...),
			param("file", "path", "The file's id"),
			param("Range", "header", "One or more byte ranges (RFC 9110); a resume asks for bytes=<offset>-"),
			param("If-Range", "header", "The ETag (the file's SHA-256) or Last-Modified the client holds: a mismatch serves the whole file, charged as such")),
		"responses": with(map[string]any{
			"200": binary("The whole file", "application/octet-stream"),
			"206": binary("The range asked for (several ranges: multipart/byteranges)", "application/octet-stream", "multipart/byteranges"),
			"304": map[string]any{"description": "Not modified (If-None-Match, If-Modified-Since); no bytes, not charged"},
			"412": map[string]any{"description": "If-Match or If-Unmodified-Since failed; no bytes, not charged"},
			"416": errResp("range_not_satisfiable: the Range covers none of the file"),
		}),
	}}
	paths["/d/{token}/zip"] = map[string]any{"get": map[string]any{
		"summary":     "Download the whole package as a zip stream (not resumable: each zip costs one whole size of every file)",
		"operationId": "getDownloadLinkZip",
		"description": linkCountingRule,
		"security":    []any{},
		"parameters":  common,
		"responses":   with(map[string]any{"200": binary("The package as a zip, folder tree kept, files stored uncompressed", "application/zip")}),
	}}
}

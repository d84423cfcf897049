package notify

import (
	"bytes"
	"fmt"
	htmltemplate "html/template"
	"strings"
	texttemplate "text/template"
	"time"

	"github.com/ferryhq/ferry/internal/db"
	"github.com/ferryhq/ferry/internal/portal"
)

// view is what the templates see.
type view struct {
	message
	Kind       string
	Link       string // the download link (New package)
	PackageURL string // the package in ferry's console
	Size       string
	Took       string
	Total      int
	Expires    string
	Result     string
	MoreFiles  int
}

func (s *Service) baseURL() string { return strings.TrimRight(s.o.BaseURL(), "/") }

func (s *Service) view(n *db.Notification, m message) view {
	v := view{message: m, Kind: n.Kind, Size: portal.HumanBytes(m.TotalSize), Total: m.Delivered + m.Failed}
	if m.LinkID != "" {
		v.Link = s.baseURL() + "/d/" + s.linkToken(n.ID)
	}
	if m.PackageID != "" {
		v.PackageURL = s.baseURL() + "/admin/packages/" + m.PackageID
	}
	if m.ExpiresAt != nil {
		v.Expires = m.ExpiresAt.UTC().Format("2 January 2006 15:04 MST")
	}
	if n.Kind == KindTransfer || n.Kind == KindSlack {
		v.Size = portal.HumanBytes(m.Bytes)
		v.Took = (time.Duration(m.Duration) * time.Millisecond).Round(time.Second).String()
		if v.Failed == 0 {
			v.Result = fmt.Sprintf("All %d files delivered", v.Total)
		} else {
			v.Result = fmt.Sprintf("%d of %d files failed", v.Failed, v.Total)
		}
	}
	if m.FileCount > len(m.Files) {
		v.MoreFiles = m.FileCount - len(m.Files)
	}
	return v
}

// render returns the subject, plain-text and HTML parts of an email.
func (s *Service) render(n *db.Notification, m message) (subject, text, html string, err error) {
	v := s.view(n, m)
	switch n.Kind {
	case KindNewPackage:
		subject = fmt.Sprintf("New package \"%s\" from %s on %s", m.Package, cmpOr(m.Sender, "an anonymous sender"), m.Portal)
	case KindReceipt:
		subject = fmt.Sprintf("%s received your package \"%s\"", m.Portal, m.Package)
	case KindTransfer:
		word := "delivered"
		if m.Failed > 0 {
			word = fmt.Sprintf("%d of %d files failed", m.Failed, v.Total)
		}
		subject = fmt.Sprintf("Transfer to iconik: \"%s\" %s", m.Package, word)
	case KindTest:
		subject = "ferry test message"
	default:
		return "", "", "", fmt.Errorf("no email template for kind %q", n.Kind)
	}
	var tb, hb bytes.Buffer
	if err := textTemplates.ExecuteTemplate(&tb, n.Kind, v); err != nil {
		return "", "", "", fmt.Errorf("rendering %s: %w", n.Kind, err)
	}
	if err := htmlTemplates.ExecuteTemplate(&hb, n.Kind, v); err != nil {
		return "", "", "", fmt.Errorf("rendering %s: %w", n.Kind, err)
	}
	return subject, tb.String(), hb.String(), nil
}

// The templates, one per kind; the HTML ones escape everything a sender
// typed (html/template), the text ones carry it as typed.
var textTemplates = texttemplate.Must(texttemplate.New("").Parse(`
{{- define "new_package" -}}
{{.Sender}} sent a package on {{.Portal}}.

Package:     {{.Package}}
{{- if .Description}}
Description: {{.Description}}{{end}}
Files:       {{.FileCount}} ({{.Size}})
{{range .Files}}  - {{.}}
{{end}}{{if .MoreFiles}}  ... and {{.MoreFiles}} more
{{end}}
Download: {{.Link}}
{{- if .Expires}}
(the link works until {{.Expires}}){{end}}
{{end -}}

{{- define "receipt" -}}
{{.Portal}} received your package "{{.Package}}": {{.FileCount}} files ({{.Size}}).

{{range .Files}}  - {{.}}
{{end}}{{if .MoreFiles}}  ... and {{.MoreFiles}} more
{{end}}
Thank you.
{{end -}}

{{- define "transfer" -}}
Transfer to iconik of "{{.Package}}"{{if .Portal}} from {{.Portal}}{{end}}: {{.Result}}.

Connection: {{.Connection}}
Collection: {{.Collection}}
Size:       {{.Size}}
Duration:   {{.Took}}
{{if .Failures}}
Failed files:
{{range .Failures}}  - {{.Path}}: {{.Reason}}
{{end}}{{end}}
{{- if .PackageURL}}
Package in ferry: {{.PackageURL}}
{{end}}
{{- end -}}

{{- define "test" -}}
This is a test message from ferry: email works.
{{end -}}
`))

var htmlTemplates = htmltemplate.Must(htmltemplate.New("").Parse(`
{{- define "head"}}<!doctype html><html><body style="font-family:system-ui,sans-serif;color:#222">{{end -}}
{{- define "foot"}}</body></html>{{end -}}

{{- define "new_package" -}}{{template "head"}}
<p><b>{{.Sender}}</b> sent a package on <b>{{.Portal}}</b>.</p>
<table>
<tr><td>Package</td><td>{{.Package}}</td></tr>
{{if .Description}}<tr><td>Description</td><td>{{.Description}}</td></tr>{{end}}
<tr><td>Files</td><td>{{.FileCount}} ({{.Size}})</td></tr>
</table>
<ul>{{range .Files}}<li>{{.}}</li>{{end}}{{if .MoreFiles}}<li>... and {{.MoreFiles}} more</li>{{end}}</ul>
<p><a href="{{.Link}}">Download the package</a>{{if .Expires}} (until {{.Expires}}){{end}}</p>
{{template "foot"}}{{end -}}

{{- define "receipt" -}}{{template "head"}}
<p><b>{{.Portal}}</b> received your package <b>{{.Package}}</b>: {{.FileCount}} files ({{.Size}}).</p>
<ul>{{range .Files}}<li>{{.}}</li>{{end}}{{if .MoreFiles}}<li>... and {{.MoreFiles}} more</li>{{end}}</ul>
<p>Thank you.</p>
{{template "foot"}}{{end -}}

{{- define "transfer" -}}{{template "head"}}
<p>Transfer to iconik of <b>{{.Package}}</b>{{if .Portal}} from {{.Portal}}{{end}}: <b>{{.Result}}</b>.</p>
<table>
<tr><td>Connection</td><td>{{.Connection}}</td></tr>
<tr><td>Collection</td><td>{{.Collection}}</td></tr>
<tr><td>Size</td><td>{{.Size}}</td></tr>
<tr><td>Duration</td><td>{{.Took}}</td></tr>
</table>
{{if .Failures}}<p>Failed files:</p><ul>{{range .Failures}}<li>{{.Path}}: {{.Reason}}</li>{{end}}</ul>{{end}}
{{if .PackageURL}}<p><a href="{{.PackageURL}}">The package in ferry</a></p>{{end}}
{{template "foot"}}{{end -}}

{{- define "test" -}}{{template "head"}}<p>This is a test message from ferry: email works.</p>{{template "foot"}}{{end -}}
`))

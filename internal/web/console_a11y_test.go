package web

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/net/html"
)

// Every console form refuses a post that lacks its CSRF token, whichever
// engineer added it: the walk covers each Console POST route in the table.
func TestEveryConsoleFormRefusesAPostWithoutItsCSRFToken(t *testing.T) {
	f := newFixture(t)
	b := f.signIn("admin@example.com", "correct horse")
	p, _ := f.store.PortalCreate(t.Context(), PortalInput{Name: "P", Slug: "p", Active: ptr(true)})
	s, _ := New(Options{Store: f.store, Blobs: f.blobs})
	n := 0
	for _, rt := range s.Routes() {
		if rt.Access != Console || rt.Method != http.MethodPost {
			continue
		}
		n++
		path := strings.ReplaceAll(rt.Pattern, "{id}", p.ID)
		path = pathVar.ReplaceAllString(path, "x1")
		t.Run(rt.Pattern, func(t *testing.T) {
			for name, v := range map[string]url.Values{
				"no token":    {"name": {"n"}, "active": {"false"}},
				"wrong token": {"name": {"n"}, "active": {"false"}, csrfField: {"x" + b.csrf}},
			} {
				resp, body := f.form("POST", path, v, b.cookie)
				if resp.StatusCode != http.StatusForbidden {
					t.Fatalf("%s: got %d, want 403: %s", name, resp.StatusCode, body)
				}
				wantHTML(t, resp, body, 403, "CSRF")
			}
		})
	}
	if n < 8 {
		t.Fatalf("only %d console form routes", n)
	}
	if got, _ := f.store.PortalGet(t.Context(), p.ID); !got.Active || got.Name != "P" {
		t.Fatalf("a refused post changed the portal: %+v", got)
	}
}

// Every console page labels each control and gives each image alt text:
// the walk renders each Console GET route (and the home page's three faces)
// and checks the HTML.
func TestEveryConsolePageLabelsItsControlsAndHasAltText(t *testing.T) {
	f := newFixture(t)
	b := f.signIn("admin@example.com", "correct horse")
	p, _ := f.store.PortalCreate(t.Context(), PortalInput{Name: "P", Slug: "p", Active: ptr(true), Password: ptr("pw")})
	f.do("POST", "/p/p/packages", map[string]string{"name": "n", "sender_email": "a@example.com", "password": "pw"})
	b.post("/admin/tokens", url.Values{"name": {"t"}})
	s, _ := New(Options{Store: f.store, Blobs: f.blobs})
	pages := map[string]func() (*http.Response, string){
		"/ (dashboard)": func() (*http.Response, string) { return b.get("/") },
		"/login":        func() (*http.Response, string) { r, body := f.do("GET", "/login", nil); return r, string(body) },
		"/ (first run)": func() (*http.Response, string) {
			r, body := emptyFixture(t).do("GET", "/", nil)
			return r, string(body)
		},
		"token created": func() (*http.Response, string) { return b.post("/admin/tokens", url.Values{"name": {"t2"}}) },
	}
	for _, rt := range s.Routes() {
		if rt.Access != Console || rt.Method != http.MethodGet {
			continue
		}
		path := strings.ReplaceAll(rt.Pattern, "{id}", p.ID)
		if pathVar.MatchString(path) {
			continue // another area's page needing its own fixture data
		}
		pages[rt.Pattern] = func() (*http.Response, string) { return b.get(path) }
	}
	for name, get := range pages {
		t.Run(name, func(t *testing.T) {
			resp, body := get()
			if resp.StatusCode >= 300 {
				t.Skipf("status %d (needs data this fixture lacks)", resp.StatusCode)
			}
			for _, problem := range accessibilityProblems(t, body) {
				t.Error(problem)
			}
		})
	}
}

// accessibilityProblems lists the controls without a label and the images
// without alt text in a page.
func accessibilityProblems(t *testing.T, page string) []string {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	labelFor := map[string]bool{}
	type control struct {
		desc    string
		id      string
		wrapped bool
	}
	var controls []control
	var problems []string
	var walk func(n *html.Node, inLabel bool)
	walk = func(n *html.Node, inLabel bool) {
		if n.Type == html.ElementNode {
			attr := map[string]string{}
			has := map[string]bool{}
			for _, a := range n.Attr {
				attr[a.Key], has[a.Key] = a.Val, true
			}
			switch n.Data {
			case "label":
				if attr["for"] != "" {
					labelFor[attr["for"]] = true
				}
				inLabel = true
			case "input":
				switch attr["type"] {
				case "hidden", "submit", "button", "reset", "image":
				default:
					controls = append(controls, control{desc: "input name=" + attr["name"], id: attr["id"], wrapped: inLabel})
				}
			case "select", "textarea":
				controls = append(controls, control{desc: n.Data + " name=" + attr["name"], id: attr["id"], wrapped: inLabel})
			case "img":
				if !has["alt"] {
					problems = append(problems, "img src="+attr["src"]+" has no alt")
				}
			case "button":
				if strings.TrimSpace(textOf(n)) == "" && attr["aria-label"] == "" {
					problems = append(problems, "a button without a name")
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c, inLabel)
		}
	}
	walk(doc, false)
	for _, c := range controls {
		if !c.wrapped && (c.id == "" || !labelFor[c.id]) {
			problems = append(problems, c.desc+" has no label")
		}
	}
	return problems
}

func textOf(n *html.Node) string {
	if n.Type == html.TextNode {
		return n.Data
	}
	var sb strings.Builder
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		sb.WriteString(textOf(c))
	}
	return sb.String()
}

func TestAccessibilityCheckFindsUnlabelledControlsAndImagesWithoutAlt(t *testing.T) {
	cases := []struct {
		page string
		want int
	}{
		{`<label for="a">A</label><input id="a"><label><input type="checkbox"> B</label><input type="hidden" name="h"><img src="x" alt="">`, 0},
		{`<input id="a" name="a">`, 1},
		{`<label for="b">B</label><select id="a" name="s"></select><textarea name="t"></textarea>`, 2},
		{`<img src="x.png">`, 1},
		{`<button></button>`, 1},
	}
	for _, tc := range cases {
		if got := accessibilityProblems(t, tc.page); len(got) != tc.want {
			t.Errorf("%s: problems %q, want %d", tc.page, got, tc.want)
		}
	}
}

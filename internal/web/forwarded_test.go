package web

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/ferryhq/ferry/internal/config"
)

// TestForwardedHeadersAreBelievedOnlyFromTrustedProxies runs requests
// through the middleware and looks at what the handlers behind it (tusd
// among them) see: the client's address, the origin links are built on, and
// the forwarded headers left for tusd.
func TestForwardedHeadersAreBelievedOnlyFromTrustedProxies(t *testing.T) {
	cases := []struct {
		name, trusted, peer string
		hdr                 map[string]string
		// what the handler sees
		remote, origin, xfProto, xfHost string
		stripped                        bool // no forwarded header at all reaches the handler
	}{
		{name: "nobody trusted: forged headers are removed", trusted: "", peer: "198.51.100.1:5000",
			hdr:    map[string]string{"X-Forwarded-For": "203.0.113.5", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example", "Forwarded": "for=203.0.113.5;host=evil.example;proto=https", "X-Real-Ip": "203.0.113.5"},
			remote: "198.51.100.1:5000", origin: "http://ferry.internal:8080", stripped: true},
		{name: "an untrusted peer among trusted ranges: removed too", trusted: "10.0.0.0/8", peer: "198.51.100.1:5000",
			hdr:    map[string]string{"X-Forwarded-For": "203.0.113.5", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example"},
			remote: "198.51.100.1:5000", origin: "http://ferry.internal:8080", stripped: true},
		{name: "a trusted proxy: client, scheme and host as forwarded", trusted: "127.0.0.1", peer: "127.0.0.1:5000",
			hdr:    map[string]string{"X-Forwarded-For": "203.0.113.5", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "ferry.example.com"},
			remote: "203.0.113.5", origin: "https://ferry.example.com", xfProto: "https", xfHost: "ferry.example.com"},
		{name: "what the client wrote left of its own hop is ignored", trusted: "127.0.0.1", peer: "127.0.0.1:5000",
			hdr:    map[string]string{"X-Forwarded-For": "198.51.100.99, 203.0.113.5", "X-Forwarded-Proto": "https"},
			remote: "203.0.113.5", origin: "https://ferry.internal:8080", xfProto: "https"},
		{name: "a chain of trusted proxies: the right-most untrusted hop", trusted: "127.0.0.1, 10.0.0.0/8", peer: "127.0.0.1:5000",
			hdr:    map[string]string{"X-Forwarded-For": "198.51.100.99, 203.0.113.5, 10.1.2.3"},
			remote: "203.0.113.5", origin: "http://ferry.internal:8080"},
		{name: "every hop trusted: the left-most", trusted: "127.0.0.1, 10.0.0.0/8", peer: "127.0.0.1:5000",
			hdr:    map[string]string{"X-Forwarded-For": "10.9.9.9, 10.1.2.3"},
			remote: "10.9.9.9", origin: "http://ferry.internal:8080"},
		{name: "an unknown hop: the last trusted one", trusted: "127.0.0.1", peer: "127.0.0.1:5000",
			hdr:    map[string]string{"X-Forwarded-For": "203.0.113.5, unknown"},
			remote: "127.0.0.1:5000", origin: "http://ferry.internal:8080"},
		{name: "ports and IPv4-mapped peers", trusted: "127.0.0.1", peer: "[::ffff:127.0.0.1]:5000",
			hdr:    map[string]string{"X-Forwarded-For": "203.0.113.5:4711"},
			remote: "203.0.113.5", origin: "http://ferry.internal:8080"},
		{name: "Forwarded alone (RFC 7239), quoted IPv6 with a port", trusted: "::1", peer: "[::1]:5000",
			hdr:    map[string]string{"Forwarded": `for="[2001:db8::7]:4711";proto=https;host=ferry.example.com`},
			remote: "2001:db8::7", origin: "https://ferry.example.com", xfProto: "https", xfHost: "ferry.example.com"},
		{name: "Forwarded: the element of the right-most untrusted hop", trusted: "127.0.0.1, 10.0.0.0/8", peer: "127.0.0.1:5000",
			hdr:    map[string]string{"Forwarded": `for=10.0.0.1;proto=http;host=evil.example, for=203.0.113.5;proto=https;host=ferry.example.com, for=10.1.2.3;proto=http;host=inner`},
			remote: "203.0.113.5", origin: "https://ferry.example.com", xfProto: "https", xfHost: "ferry.example.com"},
		{name: "X-Forwarded-* win over a Forwarded a proxy passed on", trusted: "127.0.0.1", peer: "127.0.0.1:5000",
			hdr:    map[string]string{"X-Forwarded-For": "203.0.113.5", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "ferry.example.com", "Forwarded": "for=198.51.100.99;proto=http;host=evil.example"},
			remote: "203.0.113.5", origin: "https://ferry.example.com", xfProto: "https", xfHost: "ferry.example.com"},
		{name: "a scheme or host that is not one is ignored", trusted: "127.0.0.1", peer: "127.0.0.1:5000",
			hdr:    map[string]string{"X-Forwarded-For": "203.0.113.5", "X-Forwarded-Proto": "javascript", "X-Forwarded-Host": "evil.example/x?"},
			remote: "203.0.113.5", origin: "http://ferry.internal:8080"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			prefixes, err := config.ParsePrefixes(tc.trusted)
			if err != nil {
				t.Fatal(err)
			}
			s := &Server{opt: Options{TrustedProxies: prefixes}}
			var seen *http.Request
			h := s.forwarded(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { seen = r }))
			r := httptest.NewRequest("POST", "http://ferry.internal:8080/uploads/", nil)
			r.RemoteAddr = tc.peer
			for k, v := range tc.hdr {
				r.Header.Set(k, v)
			}
			h.ServeHTTP(httptest.NewRecorder(), r)
			if seen.RemoteAddr != tc.remote {
				t.Errorf("client address %q, want %q", seen.RemoteAddr, tc.remote)
			}
			if o := requestOrigin(seen); o.scheme+"://"+o.host != tc.origin {
				t.Errorf("origin %s://%s, want %s", o.scheme, o.host, tc.origin)
			}
			if got := seen.Header.Get("X-Forwarded-Proto"); got != tc.xfProto {
				t.Errorf("X-Forwarded-Proto left for tusd %q, want %q", got, tc.xfProto)
			}
			if got := seen.Header.Get("X-Forwarded-Host"); got != tc.xfHost {
				t.Errorf("X-Forwarded-Host left for tusd %q, want %q", got, tc.xfHost)
			}
			if got := seen.Header.Get("Forwarded"); got != "" {
				t.Errorf("Forwarded left for tusd: %q (it would override the normalised headers)", got)
			}
			if tc.stripped {
				for _, name := range forwardedHeaders {
					if v := seen.Header.Get(name); v != "" {
						t.Errorf("%s from an untrusted peer reached the handler: %q", name, v)
					}
				}
			}
		})
	}
}

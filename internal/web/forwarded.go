package web

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
)

// Behind a reverse proxy the connection ferry sees is the proxy's: its
// address, its plain-HTTP scheme, often its own Host. What the client used
// arrives in X-Forwarded-For/-Proto/-Host or Forwarded (RFC 7239), headers
// anyone can also write. So they are believed only from a direct peer in
// Options.TrustedProxies, and removed from everyone else's requests before
// any handler (tusd included) sees them.
//
// The client is the right-most address of the X-Forwarded-For chain that is
// not a trusted proxy: each trusted proxy appends the peer it saw, so
// everything left of the first untrusted hop was written by the client and
// proves nothing. When that chain is missing, Forwarded's for= chain is
// read the same way. The scheme and host are the nearest proxy's word
// (X-Forwarded-Proto/-Host, else Forwarded's proto=/host=): X-Forwarded-*
// win because that is what nginx, Caddy and most proxies set (overwriting a
// client's), while many pass a client's Forwarded header on untouched.
//
// After this middleware a request carries only normalised
// X-Forwarded-Proto/-Host (no Forwarded), which is what tusd reads when
// told to respect forwarded headers, so tus Locations and the links ferry
// builds agree; and RemoteAddr is the client's address, for rate limits and
// logs.

// forwardedHeaders are removed from requests of untrusted peers.
var forwardedHeaders = []string{"Forwarded", "X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Real-Ip"}

// origin is how the client reached ferry.
type origin struct {
	scheme, host string
}

// forwarded applies the trust rule above, then calls next.
func (s *Server) forwarded(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o := origin{scheme: "http", host: r.Host}
		if r.TLS != nil {
			o.scheme = "https"
		}
		peer, ok := parseHop(r.RemoteAddr)
		if !ok || !s.trusted(peer) {
			for _, h := range forwardedHeaders {
				r.Header.Del(h)
			}
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), originKey, o)))
			return
		}
		client, proto, host := s.readForwarded(r.Header, peer)
		if proto != "" {
			o.scheme = proto
		}
		if host != "" {
			o.host = host
		}
		r.Header.Del("Forwarded")
		r.Header.Del("X-Forwarded-Proto")
		r.Header.Del("X-Forwarded-Host")
		if proto != "" {
			r.Header.Set("X-Forwarded-Proto", proto)
		}
		if host != "" {
			r.Header.Set("X-Forwarded-Host", host)
		}
		r2 := r.WithContext(context.WithValue(r.Context(), originKey, o))
		if client != peer {
			// No port: the proxy does not say which one the client used.
			r2.RemoteAddr = client.String()
		}
		next.ServeHTTP(w, r2)
	})
}

func (s *Server) trusted(a netip.Addr) bool {
	for _, p := range s.opt.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// readForwarded reads the headers of a request from the trusted peer:
// the client's address (peer itself when the headers name no one), and the
// scheme and host it used ("" when not said, or not valid).
func (s *Server) readForwarded(h http.Header, peer netip.Addr) (client netip.Addr, proto, host string) {
	client = peer
	elems := parseForwarded(h.Values("Forwarded"))
	var hops []string
	fromForwarded := false
	if xff := h.Values("X-Forwarded-For"); len(xff) > 0 {
		for _, v := range xff {
			hops = append(hops, strings.Split(v, ",")...)
		}
	} else {
		fromForwarded = true
		for _, e := range elems {
			hops = append(hops, e["for"])
		}
	}
	// at is the hop the outermost trusted proxy reported: its peer.
	at := -1
	for i := len(hops) - 1; i >= 0; i-- {
		at = i
		a, ok := parseHop(hops[i])
		if !ok {
			// A proxy wrote "unknown" or an obfuscated name: the client is
			// not known past the last trusted hop, which stays the answer.
			break
		}
		client = a
		if !s.trusted(a) {
			break
		}
	}

	proto = lastValue(h.Values("X-Forwarded-Proto"))
	host = lastValue(h.Values("X-Forwarded-Host"))
	if len(elems) > 0 {
		// The element the outermost trusted proxy wrote when the chain came
		// from Forwarded, else the nearest proxy's (the last).
		e := elems[len(elems)-1]
		if fromForwarded && at >= 0 {
			e = elems[at]
		}
		if proto == "" {
			proto = e["proto"]
		}
		if host == "" {
			host = e["host"]
		}
	}
	proto = strings.ToLower(proto)
	if proto != "http" && proto != "https" {
		proto = ""
	}
	if !validHost(host) {
		host = ""
	}
	return client, proto, host
}

// lastValue is the last comma-separated value of a header's lines: the one
// the nearest proxy added.
func lastValue(lines []string) string {
	if len(lines) == 0 {
		return ""
	}
	l := lines[len(lines)-1]
	return strings.TrimSpace(l[strings.LastIndex(l, ",")+1:])
}

// validHost accepts host or host:port and nothing that could change a URL's
// meaning when pasted after "scheme://".
func validHost(h string) bool {
	if h == "" || strings.ContainsAny(h, "/\\@?# \t") {
		return false
	}
	u, err := url.Parse("http://" + h)
	return err == nil && u.Host == h
}

// parseHop reads one address as proxies write them: 192.0.2.1,
// 192.0.2.1:4711, 2001:db8::1, [2001:db8::1]:4711, quoted or not. IPv4
// mapped into IPv6 is read as IPv4, zones are dropped.
func parseHop(s string) (netip.Addr, bool) {
	s = strings.Trim(strings.TrimSpace(s), `"`)
	a, err := netip.ParseAddr(s)
	if err != nil {
		ap, perr := netip.ParseAddrPort(s)
		if perr != nil {
			if !strings.HasPrefix(s, "[") || !strings.HasSuffix(s, "]") {
				return netip.Addr{}, false
			}
			if a, err = netip.ParseAddr(s[1 : len(s)-1]); err != nil {
				return netip.Addr{}, false
			}
		} else {
			a = ap.Addr()
		}
	}
	return a.Unmap().WithZone(""), true
}

// parseForwarded splits RFC 7239 Forwarded lines into their elements, each
// a map of lower-case parameter names to unquoted values.
func parseForwarded(lines []string) []map[string]string {
	var out []map[string]string
	for _, line := range lines {
		for _, elem := range splitQuoted(line, ',') {
			m := map[string]string{}
			for _, pair := range splitQuoted(elem, ';') {
				k, v, ok := strings.Cut(pair, "=")
				if !ok {
					continue
				}
				v = strings.TrimSpace(v)
				if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
					v = strings.ReplaceAll(v[1:len(v)-1], `\`, "")
				}
				m[strings.ToLower(strings.TrimSpace(k))] = v
			}
			out = append(out, m)
		}
	}
	return out
}

// splitQuoted splits s at sep outside double quotes.
func splitQuoted(s string, sep byte) []string {
	var out []string
	quoted, escaped, start := false, false, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case escaped:
			escaped = false
		case c == '\\' && quoted:
			escaped = true
		case c == '"':
			quoted = !quoted
		case c == sep && !quoted:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// requestOrigin is the scheme and host the client used, as the forwarded
// middleware established it.
func requestOrigin(r *http.Request) origin {
	if o, ok := r.Context().Value(originKey).(origin); ok {
		return o
	}
	o := origin{scheme: "http", host: r.Host}
	if r.TLS != nil {
		o.scheme = "https"
	}
	return o
}

// clientKey identifies the caller for rate limiting and logs: its IP
// address (the port changes per connection); behind a trusted proxy the
// forwarded middleware has already put the client's address there.
func clientKey(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// Package iconik is ferry's typed client for iconik's REST API (the subset in
// ../shared/iconik/CONTRACT.md): rate limited per App-ID, retrying only what is safe to retry,
// paginating with iterators. It must never put a token in an error, a log line or a URL, and
// never send iconik's headers to any host but the configured base URL's.
package iconik

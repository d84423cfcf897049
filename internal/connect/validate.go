package connect

import (
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/ferryhq/ferry/internal/iconik"
	"github.com/ferryhq/ferry/internal/secret"
)

// normalizeParams trims and checks credentials in place. Messages never
// repeat the token.
func normalizeParams(p *Params) error {
	p.BaseURL = strings.TrimSpace(p.BaseURL)
	if p.BaseURL == "" {
		p.BaseURL = iconik.DefaultBaseURL
	}
	u, err := url.Parse(p.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return invalid("base_url", "The base URL must be an absolute http(s) address like %s, without credentials, query or fragment.", iconik.DefaultBaseURL)
	}
	p.BaseURL = strings.TrimRight(u.String(), "/")
	p.AppID = strings.TrimSpace(p.AppID)
	if p.AppID == "" || len(p.AppID) > maxAppID || strings.IndexFunc(p.AppID, notHeaderSafe) >= 0 {
		return invalid("app_id", "The Application ID is required: copy it from iconik (Admin > Settings > Application Tokens).")
	}
	tok := strings.TrimSpace(p.Token.Reveal())
	if tok == "" || len(tok) > maxToken || strings.IndexFunc(tok, notHeaderSafe) >= 0 {
		return invalid("token", "The Application token is required and must be one line without spaces: copy it from iconik (Admin > Settings > Application Tokens).")
	}
	p.Token = secret.New(tok)
	return nil
}

// notHeaderSafe refuses what cannot travel in an HTTP header value untouched.
func notHeaderSafe(r rune) bool { return r <= ' ' || r == 0x7f || r > unicode.MaxASCII }

func checkName(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" || utf8.RuneCountInString(s) > maxNameLen || strings.IndexFunc(s, unicode.IsControl) >= 0 {
		return "", invalid("name", "A connection needs a name of 1 to %d characters.", maxNameLen)
	}
	return s, nil
}

// checkRoot checks a collection root title: one collection at the top of
// iconik, so no "/" (delivery treats it as a single title).
func checkRoot(field, s, def string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		s = def
	}
	if utf8.RuneCountInString(s) > maxRoot || strings.ContainsRune(s, '/') || strings.IndexFunc(s, unicode.IsControl) >= 0 {
		return "", invalid(field, "A collection root is one collection title of 1 to %d characters without \"/\" (default %q).", maxRoot, def)
	}
	return s, nil
}

// checkWebhook checks a Slack incoming-webhook URL without ever repeating it.
func checkWebhook(v secret.Value) (secret.Value, error) {
	s := strings.TrimSpace(v.Reveal())
	if s == "" {
		return secret.Value{}, nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || len(s) > maxWebhookURL {
		return secret.Value{}, invalid("slack_webhook_url", "The Slack webhook must be an https:// URL like the one Slack shows for an incoming webhook.")
	}
	return secret.New(s), nil
}

package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/ferryhq/ferry/internal/db"
)

// slackEscape escapes what Slack's mrkdwn treats as markup (its documented
// three), so a package name cannot ping a channel or forge a link.
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(headerSafe(s))
}

// slackStatus is the status word and emoji of a settled delivery.
func slackStatus(state string) (emoji, word string) {
	switch state {
	case string(db.DeliveryDelivered):
		return ":white_check_mark:", "Delivered"
	case string(db.DeliveryPartiallyFailed):
		return ":warning:", "Partially failed"
	default:
		return ":x:", "Failed"
	}
}

// SlackPayload is the Block Kit message (with its plain-text fallback) for
// a settled delivery.
func (s *Service) slackPayload(n *db.Notification, m message) map[string]any {
	v := s.view(n, m)
	emoji, word := slackStatus(m.State)
	pkg := slackEscape(m.Package)
	fallback := fmt.Sprintf("%s %s: %s to iconik (%s): %d of %d files delivered, %d failed, %s in %s",
		emoji, word, pkg, slackEscape(m.Connection), m.Delivered, v.Total, m.Failed, v.Size, v.Took)
	fields := []map[string]any{
		{"type": "mrkdwn", "text": "*Package*\n" + pkg},
		{"type": "mrkdwn", "text": "*Portal*\n" + cmpOr(slackEscape(m.Portal), "(Send to Cloud)")},
		{"type": "mrkdwn", "text": "*Connection*\n" + slackEscape(m.Connection)},
		{"type": "mrkdwn", "text": fmt.Sprintf("*Files*\n%d delivered, %d failed", m.Delivered, m.Failed)},
		{"type": "mrkdwn", "text": "*Size*\n" + v.Size},
		{"type": "mrkdwn", "text": "*Duration*\n" + v.Took},
	}
	blocks := []map[string]any{
		{"type": "section", "text": map[string]any{"type": "mrkdwn", "text": fmt.Sprintf("%s *%s*: %s to iconik", emoji, word, pkg)}},
		{"type": "section", "fields": fields},
	}
	if len(m.Failures) > 0 {
		var b strings.Builder
		for i, f := range m.Failures {
			if i == 10 {
				fmt.Fprintf(&b, "... and %d more\n", len(m.Failures)-i)
				break
			}
			fmt.Fprintf(&b, "• %s: %s\n", slackEscape(f.Path), slackEscape(f.Reason))
		}
		blocks = append(blocks, map[string]any{"type": "section", "text": map[string]any{"type": "mrkdwn", "text": "*Failed files*\n" + b.String()}})
	}
	if v.PackageURL != "" && strings.HasPrefix(v.PackageURL, "http") {
		blocks = append(blocks, map[string]any{"type": "actions", "elements": []map[string]any{{
			"type": "button", "text": map[string]any{"type": "plain_text", "text": "Open in ferry"}, "url": v.PackageURL,
		}}})
	}
	return map[string]any{"text": fallback, "blocks": blocks}
}

// sendSlack posts the message to the connection's webhook. A 4xx is Slack
// refusing the webhook itself (wrong or revoked URL, or a payload it will
// never take): recorded for good, not retried. A 5xx or a network failure
// is retried with backoff. The webhook URL is a credential: it appears in
// no error.
func (s *Service) sendSlack(ctx context.Context, n *db.Notification, m message) outcome {
	out := outcome{transport: TransportSlack, subject: "Slack: " + m.Package}
	hook, err := s.o.Webhooks.SlackWebhook(ctx, n.Recipient)
	if err != nil {
		out.err = fmt.Errorf("opening the connection's Slack webhook: %w", err)
		return out
	}
	if hook.IsZero() {
		out.err, out.permanent = errors.New("the connection has no Slack webhook any more"), true
		return out
	}
	body, err := json.Marshal(s.slackPayload(n, m))
	if err != nil {
		out.err, out.permanent = err, true
		return out
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, hook.Reveal(), bytes.NewReader(body))
	if err != nil {
		out.err, out.permanent = errors.New("the connection's Slack webhook is not a usable URL; update it"), true
		return out
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.o.HTTPClient.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error repeats the URL
		}
		out.err = fmt.Errorf("posting to Slack: %w", err)
		return out
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	out.response = strings.TrimSpace(fmt.Sprintf("%d %s", resp.StatusCode, answer))
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return out
	case resp.StatusCode == http.StatusTooManyRequests:
		out.err = fmt.Errorf("slack is rate limiting this webhook (%s)", out.response)
	case resp.StatusCode >= 400 && resp.StatusCode < 500:
		out.err = fmt.Errorf("slack refused the webhook (%s): the URL is wrong or was revoked; update the connection's Slack webhook", out.response)
		out.permanent = true
	default:
		out.err = fmt.Errorf("slack answered %s", out.response)
	}
	return out
}

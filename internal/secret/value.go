package secret

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
)

// Redacted is what a Value shows instead of itself.
const Redacted = "[redacted]"

// Value is a secret held in memory. Every way Go formats, logs or encodes it
// prints Redacted, so it cannot leak by accident; Reveal is the one way out.
type Value struct{ s string }

// New wraps s.
func New(s string) Value { return Value{s} }

// Reveal returns the secret itself: pass it only to what needs it (an HTTP
// header, a cipher).
func (v Value) Reveal() string { return v.s }

// IsZero reports whether the value is empty.
func (v Value) IsZero() bool { return v.s == "" }

// String implements fmt.Stringer.
func (v Value) String() string { return Redacted }

// GoString implements fmt.GoStringer (%#v).
func (v Value) GoString() string { return `secret.Value("` + Redacted + `")` }

// Format covers every verb (%x, %q, %d ...), which would otherwise bypass String.
func (v Value) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		_, _ = f.Write([]byte(v.GoString()))
		return
	}
	_, _ = f.Write([]byte(Redacted))
}

// LogValue implements slog.LogValuer.
func (v Value) LogValue() slog.Value { return slog.StringValue(Redacted) }

// MarshalJSON writes Redacted: a Value reaching an API response or a JSON log
// shows nothing. Store secrets sealed, never as JSON.
func (v Value) MarshalJSON() ([]byte, error) { return []byte(`"` + Redacted + `"`), nil }

// MarshalText writes Redacted (for encoders that use encoding.TextMarshaler).
func (v Value) MarshalText() ([]byte, error) { return []byte(Redacted), nil }

// UnmarshalJSON reads a JSON string (null leaves the value empty), so a request
// body can carry a secret straight into a Value.
func (v *Value) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		v.s = ""
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		// The input is not echoed: it may be the secret.
		return errors.New("secret: value must be a JSON string")
	}
	v.s = s
	return nil
}

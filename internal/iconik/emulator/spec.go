package emulator

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
)

//go:generate go test -run TestSpecTablesMatchSpec -update .

// opSpec is what iconik's spec declares for one operation.
type opSpec struct {
	Roles []string
	Body  *bodySpec
}

// bodySpec holds the top-level rules of an operation's JSON request body.
type bodySpec struct {
	Required []string
	Props    map[string]propSpec
}

type propSpec struct {
	Type     string
	Enum     []string
	ItemEnum []string
	Min, Max *float64
}

func fp(f float64) *float64 { return &f }

// allSpecRoles is every role string any operation of the spec requires: what
// an admin holds.
var allSpecRoles = sync.OnceValue(func() []string {
	seen := map[string]bool{}
	for _, o := range specOps {
		for _, r := range o.Roles {
			seen[r] = true
		}
	}
	out := make([]string, 0, len(seen))
	for r := range seen {
		out = append(out, r)
	}
	slices.Sort(out)
	return out
})

// validate checks body against spec the way iconik does: required fields
// (unless partial, as for PATCH), enum values and property types. Unknown
// fields are ignored. It returns field -> message, empty when valid, and
// normalises numeric strings of integer properties into numbers (iconik accepts
// "size": "123").
func (b *bodySpec) validate(body map[string]any, partial bool) map[string]string {
	errs := map[string]string{}
	if b == nil {
		return errs
	}
	if !partial {
		for _, name := range b.Required {
			v, ok := body[name]
			if !ok || v == nil {
				errs[name] = "Missing data for required field."
			}
		}
	}
	for name, v := range body {
		p, ok := b.Props[name]
		if !ok || v == nil {
			continue
		}
		if msg := p.check(name, v, body); msg != "" {
			errs[name] = msg
		}
	}
	return errs
}

func (p propSpec) check(name string, v any, body map[string]any) string {
	switch p.Type {
	case "string":
		s, ok := v.(string)
		if !ok {
			return "Not a valid string."
		}
		if len(p.Enum) > 0 && !slices.Contains(p.Enum, s) {
			return "Must be one of: " + strings.Join(p.Enum, ", ") + "."
		}
	case "integer", "number":
		var f float64
		switch n := v.(type) {
		case json.Number:
			var err error
			if f, err = n.Float64(); err != nil {
				return "Not a valid number."
			}
		case string:
			g, err := strconv.ParseFloat(strings.TrimSpace(n), 64)
			if err != nil {
				return "Not a valid " + p.Type + "."
			}
			f = g
			body[name] = json.Number(strings.TrimSpace(n))
		default:
			return "Not a valid " + p.Type + "."
		}
		if p.Type == "integer" && f != math.Trunc(f) {
			return "Not a valid integer."
		}
		if p.Min != nil && f < *p.Min {
			return fmt.Sprintf("Must be greater than or equal to %v.", *p.Min)
		}
		if p.Max != nil && f > *p.Max {
			return fmt.Sprintf("Must be less than or equal to %v.", *p.Max)
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			return "Not a valid boolean."
		}
	case "array":
		items, ok := v.([]any)
		if !ok {
			return "Not a valid list."
		}
		if len(p.ItemEnum) > 0 {
			for _, it := range items {
				s, _ := it.(string)
				if !slices.Contains(p.ItemEnum, s) {
					return "Must be one of: " + strings.Join(p.ItemEnum, ", ") + "."
				}
			}
		}
	case "object":
		if _, ok := v.(map[string]any); !ok {
			return "Not a valid mapping type."
		}
	}
	return ""
}

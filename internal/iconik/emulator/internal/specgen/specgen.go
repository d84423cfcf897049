// Package specgen turns iconik's official OpenAPI files into the Go tables the
// emulator checks requests with (required roles, required body fields, enums,
// property types), so that those rules are read from the spec, never retyped.
// It must never be imported by the emulator at run time: the spec files live
// outside the module; the generated spec_gen.go is what ships.
package specgen

import (
	"bytes"
	"encoding/json"
	"fmt"
	"go/format"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// Services are the spec files read, one per iconik service.
var Services = []string{"assets", "auth", "files", "jobs", "metadata", "search", "transcode", "users"}

type schema struct {
	Ref        string             `json:"$ref"`
	Type       string             `json:"type"`
	Enum       []any              `json:"enum"`
	Required   []string           `json:"required"`
	Properties map[string]*schema `json:"properties"`
	Items      *schema            `json:"items"`
	AllOf      []*schema          `json:"allOf"`
	Minimum    *float64           `json:"minimum"`
	Maximum    *float64           `json:"maximum"`
	ReadOnly   bool               `json:"readOnly"`
}

type operation struct {
	Description string `json:"description"`
	RequestBody *struct {
		Content map[string]struct {
			Schema *schema `json:"schema"`
		} `json:"content"`
	} `json:"requestBody"`
}

type document struct {
	Paths      map[string]map[string]json.RawMessage `json:"paths"`
	Components struct {
		Schemas map[string]*schema `json:"schemas"`
	} `json:"components"`
}

var rolesRE = regexp.MustCompile(`(?s)Required roles:\s*((?:\s*-\s*[a-z_0-9]+)+)`)
var roleRE = regexp.MustCompile(`[a-z][a-z_0-9]+`)

// Generate reads the spec files in dir and returns the gofmt'ed source of
// spec_gen.go for package pkg.
func Generate(dir, pkg string) ([]byte, error) {
	type prop struct {
		name, typ      string
		enum, itemEnum []string
		min, max       *float64
	}
	type op struct {
		key      string
		roles    []string
		required []string
		props    []prop
		hasBody  bool
	}
	var ops []op
	for _, svc := range Services {
		raw, err := os.ReadFile(filepath.Join(dir, svc+".json"))
		if err != nil {
			return nil, fmt.Errorf("reading spec of service %s: %w", svc, err)
		}
		var doc document
		if err := json.Unmarshal(raw, &doc); err != nil {
			return nil, fmt.Errorf("decoding spec of service %s: %w", svc, err)
		}
		resolve := func(s *schema) *schema {
			for s != nil && s.Ref != "" {
				s = doc.Components.Schemas[strings.TrimPrefix(s.Ref, "#/components/schemas/")]
			}
			return s
		}
		for path, methods := range doc.Paths {
			for method, rawOp := range methods {
				switch method {
				case "get", "post", "put", "patch", "delete":
				default:
					continue
				}
				var o operation
				if err := json.Unmarshal(rawOp, &o); err != nil {
					return nil, fmt.Errorf("decoding %s %s in %s: %w", method, path, svc, err)
				}
				rec := op{key: svc + " " + strings.ToUpper(method) + " " + path}
				if m := rolesRE.FindStringSubmatch(o.Description); m != nil {
					rec.roles = roleRE.FindAllString(m[1], -1)
				}
				if o.RequestBody != nil {
					if c, ok := o.RequestBody.Content["application/json"]; ok {
						body := resolve(c.Schema)
						// allOf: merge the parts' properties and required lists.
						merged := &schema{Properties: map[string]*schema{}}
						parts := []*schema{body}
						if body != nil && len(body.AllOf) > 0 {
							parts = append(parts, body.AllOf...)
						}
						for _, p := range parts {
							p = resolve(p)
							if p == nil {
								continue
							}
							merged.Required = append(merged.Required, p.Required...)
							for k, v := range p.Properties {
								merged.Properties[k] = v
							}
						}
						if body != nil && (body.Type == "object" || len(merged.Properties) > 0) {
							rec.hasBody = true
							rec.required = merged.Required
							sort.Strings(rec.required)
							for name, ps := range merged.Properties {
								ps2 := ps
								if len(ps.AllOf) == 1 {
									ps2 = ps.AllOf[0]
								}
								ps2 = resolve(ps2)
								if ps2 == nil {
									continue
								}
								p := prop{name: name, typ: ps2.Type, min: ps2.Minimum, max: ps2.Maximum}
								if ps2.Ref == "" && ps2.Type == "" && len(ps2.Properties) > 0 {
									p.typ = "object"
								}
								for _, e := range ps2.Enum {
									p.enum = append(p.enum, fmt.Sprint(e))
								}
								if it := resolve(ps2.Items); it != nil {
									for _, e := range it.Enum {
										p.itemEnum = append(p.itemEnum, fmt.Sprint(e))
									}
								}
								// Bounds of the full int32/int64 range say nothing.
								if p.min != nil && *p.min <= -2147483648 {
									p.min = nil
								}
								if p.max != nil && *p.max >= 2147483647 {
									p.max = nil
								}
								rec.props = append(rec.props, p)
							}
							sort.Slice(rec.props, func(i, j int) bool { return rec.props[i].name < rec.props[j].name })
						}
					}
				}
				ops = append(ops, rec)
			}
		}
	}
	sort.Slice(ops, func(i, j int) bool { return ops[i].key < ops[j].key })

	var b bytes.Buffer
	fmt.Fprintf(&b, "// Code generated by TestSpecTablesMatchSpec -update from iconik's OpenAPI files; DO NOT EDIT.\n\npackage %s\n\n", pkg)
	b.WriteString("// specOps holds, per \"service METHOD /v1/path/\", the roles and the JSON body rules iconik's spec declares.\n")
	b.WriteString("var specOps = map[string]opSpec{\n")
	q := func(ss []string) string {
		if len(ss) == 0 {
			return "nil"
		}
		parts := make([]string, len(ss))
		for i, s := range ss {
			parts[i] = fmt.Sprintf("%q", s)
		}
		return "[]string{" + strings.Join(parts, ", ") + "}"
	}
	f := func(p *float64) string {
		if p == nil {
			return "nil"
		}
		return fmt.Sprintf("fp(%v)", *p)
	}
	for _, o := range ops {
		fmt.Fprintf(&b, "%q: {Roles: %s", o.key, q(o.roles))
		if o.hasBody {
			fmt.Fprintf(&b, ", Body: &bodySpec{Required: %s, Props: map[string]propSpec{\n", q(o.required))
			for _, p := range o.props {
				fmt.Fprintf(&b, "%q: {Type: %q", p.name, p.typ)
				if len(p.enum) > 0 {
					fmt.Fprintf(&b, ", Enum: %s", q(p.enum))
				}
				if len(p.itemEnum) > 0 {
					fmt.Fprintf(&b, ", ItemEnum: %s", q(p.itemEnum))
				}
				if p.min != nil || p.max != nil {
					fmt.Fprintf(&b, ", Min: %s, Max: %s", f(p.min), f(p.max))
				}
				b.WriteString("},\n")
			}
			b.WriteString("}}")
		}
		b.WriteString("},\n")
	}
	b.WriteString("}\n")
	out, err := format.Source(b.Bytes())
	if err != nil {
		return nil, fmt.Errorf("formatting generated tables: %w", err)
	}
	return out, nil
}

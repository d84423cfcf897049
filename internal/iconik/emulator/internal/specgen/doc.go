// Package specgen turns iconik's official OpenAPI files into the Go tables the
// emulator checks requests with (required roles, required body fields, enums,
// property types), so that those rules are read from the spec, never retyped.
// It must never be imported by the emulator at run time: the spec files live
// outside the module; the generated spec_gen.go is what ships.
package specgen

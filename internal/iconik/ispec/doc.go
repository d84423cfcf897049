// Package ispec checks iconik HTTP traffic against iconik's official OpenAPI specs
// (../shared/iconik/spec) with kin-openapi. It is the single place where that check lives,
// so the client's contract tests and the emulator's tests judge traffic by the same rules.
// It must never loosen the specs beyond CONTRACT.md's one rule (every schema is nullable),
// and never be used on production traffic paths.
package ispec

// Package emulator is an iconik that runs on one machine: the REST control
// plane ferry's client uses (CONTRACT.md §5), with iconik's status codes,
// envelopes, role checks and faults, state kept under a data directory, real
// keyframes, and a browse page. It is a separate iconik: it must never import
// ferry's domain packages, never return or log secrets, and never fake a result
// (a keyframe it cannot make is a FAILED job, not a placeholder image).
package emulator

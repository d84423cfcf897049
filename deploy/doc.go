// Package deploy holds no code: it is the home of ferry's deployment files
// (systemd unit, reverse-proxy examples; the Dockerfile and compose.yaml sit
// at the repository root) and of the tests that check them against the real
// tools and a real ferry, so an example that no longer works fails CI.
package deploy

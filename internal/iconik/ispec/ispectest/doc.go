// Package ispectest checks a test's iconik traffic against the official spec
// from the client's side: an http.RoundTripper that validates every /API/
// request and response with package ispec and fails the test on a mismatch.
// It lives apart from ispec so that binaries using ispec (the emulator's
// --check-spec) never link the testing package.
package ispectest

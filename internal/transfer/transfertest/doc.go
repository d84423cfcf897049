// Package transfertest is the conformance suite every transfer provider
// runs, against the iconik emulator's data plane and against a real server
// (Versity, fake-gcs-server, Azurite), with a proxy that injects expired
// URLs, 503s and damaged bytes. A bug found in one provider becomes a case
// for all. It must never be imported by production code.
package transfertest

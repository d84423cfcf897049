// Package secret seals small secrets (iconik tokens, Slack webhook URLs) for
// storage with AES-256-GCM under the server's key, and holds them in memory as
// Values that print, log and marshal as "[redacted]". It loads that key from
// configuration or a 0600 key file in the data directory. It must never write
// a secret or a key to a log, an error or any output.
package secret

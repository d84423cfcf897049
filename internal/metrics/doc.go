// Package metrics defines ferry's Prometheus metrics, on a registry ferry owns (never the
// process-wide default, so each server and each test has its own), and the collectors that
// read state at scrape time (River's queue depth, the upload store's free space).
// Labels are bounded sets (outcomes, River states, iconik route templates, channels): never
// a package, file, user, URL or anything that could carry a secret.
package metrics

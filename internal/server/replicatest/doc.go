// Package replicatest runs two real `ferry serve` replicas on one PostgreSQL
// database and one S3 bucket behind a round-robin proxy, kills one with
// SIGKILL, and checks that uploads and deliveries come out whole and exactly
// once. It holds tests only and must never be imported.
package replicatest

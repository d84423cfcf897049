// Package pglocker is tusd's upload locker for replicas on one PostgreSQL
// database: each upload's lock is a session advisory lock, and a request
// waiting for it asks the holder to let go (tusd's lock-release request)
// through LISTEN/NOTIFY, whichever replica holds it. It never touches ferry's
// tables and never holds a lock beyond its session.
package pglocker

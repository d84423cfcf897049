// Package send is the client side of `ferry send`: it walks files and folders,
// hashes them, creates a package (contract C), uploads over tus with parallel
// streams, keeps resume state in the user cache dir and finalizes, then
// remembers the finished send there.
// It must never send a file's bytes twice when a re-run can resume (even after
// SIGKILL), never send a finished package again unless asked to (Again), and
// never print or log the upload token or password.
package send

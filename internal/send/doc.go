// Package send is the client side of `ferry send`: it walks files and folders,
// creates a package (contract C), uploads over tus with parallel streams,
// hashing each byte as it is sent and declaring each upload's SHA-256 after
// it (see tus.Digest and hash.go), keeps resume state in the user cache dir
// and finalizes, then remembers the finished send there.
// It reads every byte of a fresh send once.
// On a long link round trips cost as much as bytes: the package call also
// creates each stream's first upload, and the finalize, sent once the last
// byte is written, joins the last split file (web/batch.go on the server).
// It must never send a file's bytes twice when a re-run can resume (even after
// SIGKILL), never send a finished package again unless asked to (Again), and
// never print or log the upload token or password.
package send

// Package reqid gives every HTTP request an id: a sane incoming X-Request-Id is kept (a proxy
// or client can follow its own id through ferry), otherwise one is generated. The id travels
// in the request's context, is echoed in the response header, is added to every log line
// written with that context, and goes into JSON error answers. It never carries anything
// but the id: no secret, no path.
package reqid

// Package connect is Cloud Connect: it verifies iconik credentials (user,
// roles, storages), saves connections only when those checks pass for the
// chosen storage, finds or creates the description metadata field and view,
// and hands delivery an iconik client for a connection. Tokens and webhook
// URLs are sealed at rest (internal/secret); it must never return, log or put
// a secret in an error, and never keep retrying a connection iconik refused.
package connect

// Package portal holds ferry's domain rules on top of internal/db: portal
// settings, package creation, upload admission and completion, finalizing,
// expiry, and the secrets (argon2id passwords, random tokens stored as
// SHA-256). Refusals are *Error values with a code and a sentence the
// uploader can act on. It must never store or return a secret in clear
// (a token is shown once, when made) and never accept a path pathsafe refuses.
//
// API in brief (Service methods unless marked func):
//
//	secrets: func NewToken, HashToken, TokenEqual, HashPassword, CheckPassword, ExpiresAt
//	portals: func ValidatePortal; CreatePortal, UpdatePortal, CheckPortalPassword
//	packages: CreatePackage (returns the upload token once), PackageByToken
//	uploads: func CheckFile; Admit (asks Options.ObjectNames, an ObjectNameCheck), CompleteFile (idempotent; hook runs in its tx), FailFile, CancelFile
//	finalize: Finalize (hook runs in its tx: enqueue deliveries there)
//	users: CreateUser, Authenticate, CreateSession, SessionByToken, DeleteSession,
//	       CreateAPIToken (optional expiry), ListAPITokens, RevokeAPIToken, UserByAPIToken
//	       (refuses revoked and expired tokens on every call), CreateDownloadLink (what a
//	       link serves is charged in bytes by web, through db.DownloadLinkFileCharge)
package portal

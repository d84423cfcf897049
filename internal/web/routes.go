package web

import "net/http"

// routeTable is every route ferry serves besides /uploads/ (tus). Keep admin
// routes here: TestEveryAdminRouteRefusesAnonymousCallers walks this table.
func (s *Server) routeTable() []Route {
	return []Route{
		// Public.
		{"GET", "/healthz", Public, "Liveness probe", s.healthz},
		{"GET", "/readyz", Public, "Readiness probe: database reachable, migrations applied, upload store writable, free space above the reserve (503 and the failing checks when not)", s.readyz},
		// Open like the probes: it shows counts, byte totals and free space, never a name, a
		// path, an id or a secret. Where even totals are private, block it at the reverse
		// proxy (docs/deploy.md) and scrape the replica directly.
		{"GET", "/metrics", Public, "Prometheus metrics (text format): uploads, deliveries, iconik calls, River queue depth, free space", s.metrics},
		{"GET", "/api/v1/openapi.json", Public, "This API's OpenAPI document", s.openAPI},
		{"GET", "/{$}", Public, "Home: the dashboard when signed in; the first-run form while there is no admin; the sign-in form otherwise", s.home},
		{"POST", "/setup", Public, "First run: create the first admin (form; refused once any admin exists) and sign in", s.firstRun},
		{"GET", "/login", Public, "Sign-in page (?next= a local path to return to)", s.loginPage},
		{"POST", "/login", Public, "Sign in with email and password (form or JSON); sets the session cookie", s.login},
		{"GET", "/p/{slug}", Public, "Portal upload page", s.portalPage},
		{"GET", "/static/{file}", Public, "The browser bundle (Uppy) and its stylesheet, built from web/", s.staticFile},
		{"POST", "/p/{slug}/packages", Public, "Create a package on a portal; returns its upload token", s.portalCreatePackage},
		{"GET", "/r/{token}", Public, "A sender's receipt of a package: its files and whether it has been delivered", s.receiptPage},
		{"GET", "/d/{token}", Public, "Download link page listing the files", s.linkPage},
		{"POST", "/d/{token}/unlock", Public, "Unlock a password-protected download link", s.linkUnlock},
		{"GET", "/d/{token}/files/{file}", Public, "Download one file (HTTP Range supported)", s.linkFile},
		{"GET", "/d/{token}/zip", Public, "Download the whole package as a zip stream", s.linkZip},

		// Upload token.
		{"GET", "/p/{slug}/packages/{id}", Uploader, "Get the package being uploaded (for resuming)", s.uploaderGetPackage},
		{"POST", "/p/{slug}/packages/{id}/finalize", Uploader, "Finalize the package being uploaded", s.uploaderFinalize},
		{"GET", "/p/{slug}/packages/{id}/deliveries", Uploader, "The package's deliveries into iconik as its sender may see them: state, bytes, files delivered or failed with reasons (no iconik ids)", s.uploaderDeliveries},

		// Admin: session cookie (+CSRF) or API token.
		{"GET", "/api/v1/session", Admin, "Who is signed in, and the CSRF token for forms", s.session},
		{"GET", "/api/v1/tokens", Admin, "List every API token: name, user, creation, last use (to within a minute), expiry, revocation; never the secret", s.tokenList},
		{"POST", "/api/v1/tokens", Admin, "Create an API token for the caller ({\"name\"}, optional expires_in or expires_at); the secret is returned once", s.tokenCreate},
		{"DELETE", "/api/v1/tokens/{id}", Admin, "Revoke an API token: refused from its next request on (the row stays listed)", s.tokenRevoke},
		{"POST", "/logout", Admin, "Sign out (ends the browser session)", s.logout},
		{"GET", "/api/v1/portals", Admin, "List portals", s.portalList},
		{"POST", "/api/v1/portals", Admin, "Create a portal", s.portalCreate},
		{"GET", "/api/v1/portals/{id}", Admin, "Get a portal", s.portalGet},
		{"PATCH", "/api/v1/portals/{id}", Admin, "Update a portal (fields given replace stored ones)", s.portalUpdate},
		{"DELETE", "/api/v1/portals/{id}", Admin, "Delete a portal", s.portalDelete},
		{"GET", "/api/v1/packages", Admin, "List packages (filter by portal_id, state, sender_email; search a part of the name or sender with q; paginated by cursor)", s.packageList},
		{"POST", "/api/v1/packages", Admin, "Create a package without a portal; returns its upload token", s.packageCreate},
		{"GET", "/api/v1/packages/{id}", Admin, "Get a package with its files", s.packageGet},
		{"DELETE", "/api/v1/packages/{id}", Admin, "Delete a package and its stored bytes", s.packageDelete},
		{"POST", "/api/v1/packages/{id}/finalize", Admin, "Finalize a package", s.packageFinalize},
		{"POST", "/api/v1/packages/{id}/links", Admin, "Create a download link (expiry, password, download limit)", s.linkCreate},
		{"POST", "/api/v1/connections/verify", Admin, "Check iconik credentials: the user, whether it qualifies, missing roles, every storage (nothing is saved)", s.connectionVerify},
		{"GET", "/api/v1/connections", Admin, "List iconik connections (secrets are never returned)", s.connectionList},
		{"POST", "/api/v1/connections", Admin, "Create an iconik connection; saved only when the credentials, roles and storage pass", s.connectionCreate},
		{"GET", "/api/v1/connections/{id}", Admin, "Get an iconik connection", s.connectionGet},
		{"PATCH", "/api/v1/connections/{id}", Admin, "Update an iconik connection (new credentials or storage are verified first)", s.connectionUpdate},
		{"DELETE", "/api/v1/connections/{id}", Admin, "Delete an iconik connection no portal delivers to", s.connectionDelete},
		{"POST", "/api/v1/connections/{id}/verify", Admin, "Re-verify a connection; marks it broken when iconik refuses it", s.connectionReverify},
		{"GET", "/api/v1/deliveries/{id}", Admin, "Get a delivery: state, per-file state, bytes done, errors, iconik ids and collection id", s.deliveryGet},
		{"POST", "/api/v1/deliveries/{id}/retry", Admin, "Retry the failed files of a delivery (each resumes from its first unfinished step)", s.deliveryRetry},
		{"GET", "/api/v1/packages/{id}/deliveries", Admin, "List a package's deliveries into iconik", s.deliveryList},
		{"POST", "/api/v1/packages/{id}/deliveries", Admin, "Send to Cloud: deliver a finalized package to a connection ({\"connection_id\"}); 422 object_name_too_long or object_name_refused, and nothing recorded, when a file's full object name could never be stored on the connection's storage", s.deliverySend},
		// Notifications (issue 11).
		{"GET", "/api/v1/packages/{id}/notifications", Admin, "List what was sent about a package: to whom, when, and what the server answered", s.notificationList},
		{"POST", "/api/v1/notifications/test", Admin, "Send a test email now ({\"to\"}) and return the SMTP server's answer", s.mailTest},
		{"GET", "/api/v1/portals/{id}/notifications", Admin, "A portal's notification switches (sender_receipt: the sender gets a receipt; on by default)", s.portalNotifyGet},
		{"PUT", "/api/v1/portals/{id}/notifications", Admin, "Change a portal's notification switches ({\"sender_receipt\": false})", s.portalNotifySet},
		{"GET", "/admin/outbox", Console, "Outbox page: the emails kept when no SMTP server is configured, as recipients would see them", s.outboxPage},
		{"GET", "/admin/mail-test", Console, "Test message page", s.mailTestPage},
		{"POST", "/admin/mail-test", Console, "Send a test message (form)", s.mailTestPage},

		// Console: packages and their deliveries.
		{"GET", "/admin/packages", Console, "Packages page: filter by portal, state and sender, search by name or sender, paginated", s.consolePackages},
		{"GET", "/admin/packages/{id}", Console, "Package page: files, download links, Send to Cloud, deliveries with live progress, what was sent about it", s.consolePackage},
		{"POST", "/admin/packages/{id}/links", Console, "Create a download link (form); the page shows its URL once", s.consoleLinkCreate},
		{"POST", "/admin/packages/{id}/deliveries", Console, "Send to Cloud (form)", s.consoleSendToCloud},
		{"POST", "/admin/packages/{id}/deliveries/{delivery}/retry", Console, "Retry a delivery's failed files (form)", s.consoleDeliveryRetry},
		{"GET", "/admin/packages/{id}/deliveries/{delivery}/files/{file}/keyframe", Console, "A delivered file's keyframe image, fetched from iconik", s.consoleKeyframe},
		{"GET", "/admin/packages/{id}/events", Console, "Server-sent events: the package's deliveries, per file, whenever they change", s.consolePackageEvents},

		// Console: Cloud Connect pages (console_connections.go).
		{"GET", "/admin/connections", Console, "Cloud Connect: the connections, their state, storage and roots", s.connectionsPage},
		{"GET", "/admin/connections/new", Console, "New connection, step 1: iconik credentials", s.connectionNewPage},
		{"POST", "/admin/connections/new", Console, "New connection, step 2: verify the credentials (checklist, storage picker)", s.connectionNewVerify},
		{"POST", "/admin/connections", Console, "New connection, save (form)", s.connectionCreatePost},
		{"GET", "/admin/connections/{id}", Console, "A connection's page", s.connectionPage},
		{"POST", "/admin/connections/{id}", Console, "Save a connection's name and collection roots (form)", s.connectionSettingsPost},
		{"POST", "/admin/connections/{id}/verify", Console, "Verify a connection again (form)", s.connectionReverifyPost},
		{"POST", "/admin/connections/{id}/slack", Console, "Set or remove a connection's Slack webhook (form)", s.connectionSlackPost},
		{"POST", "/admin/connections/{id}/credentials", Console, "Replace a connection's iconik credentials (form)", s.connectionCredentialsPost},
		{"POST", "/admin/connections/{id}/delete", Console, "Delete a connection no portal delivers to (form)", s.connectionDeletePost},

		// Admin console (issue 10): core pages.
		{"GET", "/admin/portals", Console, "Portals: list with links", s.consolePortals},
		{"GET", "/admin/portals/new", Console, "New portal form", s.consolePortalNew},
		{"POST", "/admin/portals", Console, "Create a portal (form)", s.consolePortalSave},
		{"GET", "/admin/portals/{id}", Console, "Edit a portal", s.consolePortalEdit},
		{"POST", "/admin/portals/{id}", Console, "Save a portal (form)", s.consolePortalSave},
		{"POST", "/admin/portals/{id}/active", Console, "Activate or deactivate a portal (form)", s.consolePortalActive},
		{"POST", "/admin/portals/{id}/delete", Console, "Delete a portal (form)", s.consolePortalDelete},
		{"GET", "/admin/tokens", Console, "API tokens: list, create, revoke", s.consoleTokens},
		{"POST", "/admin/tokens", Console, "Create an API token (form); the secret is shown once on the answer", s.consoleTokenCreate},
		{"POST", "/admin/tokens/{id}/revoke", Console, "Revoke an API token (form)", s.consoleTokenRevoke},
		{"GET", "/admin/users", Console, "Admins: list and add", s.consoleUsers},
		{"POST", "/admin/users", Console, "Add an admin (form)", s.consoleUserCreate},
		{"POST", "/admin/users/{id}/delete", Console, "Remove an admin, never the last (form)", s.consoleUserDelete},

		{"GET", jobsUIPath, Admin, "River UI: durable delivery jobs, for operators", s.jobsUI},
		{"POST", jobsUIPath, Admin, "River UI actions (retry, cancel, delete jobs)", s.jobsUI},
		{"PUT", jobsUIPath, Admin, "River UI actions (pause, resume a queue)", s.jobsUI},
		{"PATCH", jobsUIPath, Admin, "River UI actions (a queue's concurrency)", s.jobsUI},
	}
}

func (s *Server) metrics(w http.ResponseWriter, r *http.Request) error {
	if s.opt.Metrics == nil {
		return notFound("page")
	}
	s.opt.Metrics.ServeHTTP(w, r)
	return nil
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

package web

import "net/http"

// routeTable is every route ferry serves besides /uploads/ (tus). Keep admin
// routes here: TestEveryAdminRouteRefusesAnonymousCallers walks this table.
func (s *Server) routeTable() []Route {
	return []Route{
		// Public.
		{"GET", "/healthz", Public, "Liveness probe", s.healthz},
		{"GET", "/api/v1/openapi.json", Public, "This API's OpenAPI document", s.openAPI},
		{"GET", "/login", Public, "Sign-in page", s.loginPage},
		{"POST", "/login", Public, "Sign in with email and password (form or JSON); sets the session cookie", s.login},
		{"GET", "/p/{slug}", Public, "Portal upload page", s.portalPage},
		{"GET", "/static/{file}", Public, "The browser bundle (Uppy) and its stylesheet, built from web/", s.staticFile},
		{"POST", "/p/{slug}/packages", Public, "Create a package on a portal; returns its upload token", s.portalCreatePackage},
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
		{"GET", "/api/v1/packages", Admin, "List packages (filter by portal_id, state, sender_email; paginated by cursor)", s.packageList},
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
		{"POST", "/api/v1/packages/{id}/deliveries", Admin, "Send to Cloud: deliver a finalized package to a connection ({\"connection_id\"})", s.deliverySend},
		{"GET", jobsUIPath, Admin, "River UI: durable delivery jobs, for operators", s.jobsUI},
		{"POST", jobsUIPath, Admin, "River UI actions (retry, cancel, delete jobs)", s.jobsUI},
		{"PUT", jobsUIPath, Admin, "River UI actions (pause, resume a queue)", s.jobsUI},
		{"PATCH", jobsUIPath, Admin, "River UI actions (a queue's concurrency)", s.jobsUI},
	}
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

package emulator

// RouteKeys lists "service METHOD /v1/path/" of every route, for tests that
// check each one is exercised against the spec.
func RouteKeys() []string {
	var out []string
	for _, rt := range routeTable() {
		out = append(out, rt.key())
	}
	return out
}

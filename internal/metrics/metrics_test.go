package metrics

import "testing"

func TestIconikRouteKeepsTheTemplateAndDropsEveryID(t *testing.T) {
	for _, c := range []struct{ path, want string }{
		{"/API/assets/v1/assets/", "/API/assets/v1/assets/"},
		{"/API/assets/v1/assets/3f2a9c1e-0b7d-11ee-9e4b-0242ac120002/formats/", "/API/assets/v1/assets/{id}/formats/"},
		{"/API/files/v1/assets/3f2a9c1e-0b7d-11ee-9e4b-0242ac120002/file_sets/abcdefabcdefabcdefabcdefabcdef1234567/", "/API/files/v1/assets/{id}/file_sets/{id}/"},
		{"/API/jobs/v1/jobs/12345/", "/API/jobs/v1/jobs/{id}/"},
		{"/API/metadata/v1/views/", "/API/metadata/v1/views/"},
		{"/API/search/v1/search/?page=2", "/API/search/v1/search/"},
		{"/API/assets/v1/collections/My%20Shoot/", "/API/assets/v1/collections/{id}/"},
		{"/API/assets/v1/collections/-x/", "/API/assets/v1/collections/{id}/"},
	} {
		if got := IconikRoute(c.path); got != c.want {
			t.Errorf("IconikRoute(%q) = %q, want %q", c.path, got, c.want)
		}
	}
}

func TestANilMetricsCountsNothingAndDoesNotPanic(t *testing.T) {
	var m *Metrics
	m.Received(10)
	m.Delivered(10)
	m.UploadStarted()()
	m.UploadEnded(UploadCompleted)
	m.DeliverySettled("delivered", 1, 0)
	m.RateLimitWait(1)
	m.Notification("email", "sent")
	m.IconikCall("GET", "/API/x/", 200)
}

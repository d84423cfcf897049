package emulator

// routeTable lists every iconik operation the emulator serves, by the spec's
// own service and path, so roles and body rules come from specOps.
func routeTable() []*route {
	r := func(method, service, pattern string, h func(*Server, *call)) *route {
		return &route{method: method, service: service, pattern: pattern, segs: splitPath(pattern), handle: h}
	}
	noCheck := func(rt *route) *route { rt.noBodyCheck = true; return rt }
	return []*route{
		// users, auth
		r("GET", "users", "/v1/users/current/", (*Server).userCurrent),
		r("GET", "users", "/v1/users/current/roles/", (*Server).userCurrentRoles),
		r("GET", "users", "/v1/users/{user_id}/roles/{role}/", (*Server).userHasRole),
		r("GET", "auth", "/v1/auth/token/", (*Server).authToken),
		// storages
		r("GET", "files", "/v1/storages/", (*Server).storageList),
		r("GET", "files", "/v1/storages/{storage_id}/", (*Server).storageGet),
		r("GET", "files", "/v1/storages/{storage_id}/verifications/permissions/", (*Server).storagePermissions),
		r("GET", "files", "/v1/storages/matching/{purpose}/", (*Server).storageMatching),
		// collections
		r("POST", "assets", "/v1/collections/", (*Server).collectionCreate),
		r("GET", "assets", "/v1/collections/", (*Server).collectionList),
		r("GET", "assets", "/v1/collections/{collection_id}/", (*Server).collectionGet),
		r("DELETE", "assets", "/v1/collections/{collection_id}/", (*Server).collectionDelete),
		r("DELETE", "assets", "/v1/collections/{collection_id}/purge/", (*Server).collectionPurge),
		r("GET", "assets", "/v1/collections/{collection_id}/contents/", (*Server).contentsList),
		r("POST", "assets", "/v1/collections/{collection_id}/contents/", (*Server).contentsAdd),
		r("GET", "assets", "/v1/collections/{collection_id}/full/path/", (*Server).collectionFullPath),
		// assets
		r("POST", "assets", "/v1/assets/", (*Server).assetCreate),
		r("GET", "assets", "/v1/assets/{asset_id}/", (*Server).assetGet),
		r("PATCH", "assets", "/v1/assets/{asset_id}/", (*Server).assetPatch),
		r("DELETE", "assets", "/v1/assets/{asset_id}/", (*Server).assetDelete),
		r("DELETE", "assets", "/v1/assets/{asset_id}/purge/", (*Server).assetPurge),
		r("DELETE", "assets", "/v1/assets/{asset_id}/uploads/", (*Server).assetDeleteUploads),
		// formats, file sets, files
		r("POST", "files", "/v1/assets/{asset_id}/formats/", (*Server).formatCreate),
		r("GET", "files", "/v1/assets/{asset_id}/formats/", (*Server).formatList),
		r("GET", "files", "/v1/assets/{asset_id}/formats/{format_id}/", (*Server).formatGet),
		r("POST", "files", "/v1/assets/{asset_id}/file_sets/", (*Server).fileSetCreate),
		r("GET", "files", "/v1/assets/{asset_id}/file_sets/", (*Server).fileSetList),
		r("DELETE", "files", "/v1/assets/{asset_id}/file_sets/{file_set_id}/", (*Server).fileSetDelete),
		r("DELETE", "files", "/v1/assets/{asset_id}/file_sets/{file_set_id}/purge/", (*Server).fileSetPurge),
		r("POST", "files", "/v1/assets/{asset_id}/files/", (*Server).fileCreate),
		r("GET", "files", "/v1/assets/{asset_id}/files/", (*Server).fileList),
		r("GET", "files", "/v1/assets/{asset_id}/files/{file_id}/", (*Server).fileGet),
		r("PATCH", "files", "/v1/assets/{asset_id}/files/{file_id}/", (*Server).filePatch),
		r("DELETE", "files", "/v1/assets/{asset_id}/files/{file_id}/", (*Server).fileDelete),
		// upload helpers
		r("GET", "files", "/v1/assets/{asset_id}/files/{file_id}/multipart_url/part/", (*Server).multipartPartURLs),
		noCheck(r("POST", "files", "/v1/assets/{asset_id}/files/{file_id}/multipart_url/s3/part/", (*Server).multipartS3Parts)),
		r("GET", "files", "/v1/assets/{asset_id}/files/{file_id}/multipart_url/", (*Server).multipartURLs),
		r("POST", "files", "/v1/assets/{asset_id}/files/{file_id}/multipart/cleanup/", (*Server).multipartCleanup),
		r("POST", "files", "/v1/assets/{asset_id}/files/{file_id}/multipart/gcs/compose_url/", (*Server).multipartGCSComposeURL),
		r("POST", "files", "/v1/assets/{asset_id}/files/{file_id}/multipart/", (*Server).multipartGCSComplete),
		r("POST", "files", "/v1/assets/{asset_id}/files/{file_id}/multipart/b2/start/", (*Server).b2Start),
		r("POST", "files", "/v1/assets/{asset_id}/files/{file_id}/multipart/b2/finish/", (*Server).b2Finish),
		r("POST", "files", "/v1/assets/{asset_id}/files/{file_id}/multipart/b2/cancel/", (*Server).b2Cancel),
		// keyframes
		r("POST", "files", "/v1/assets/{asset_id}/files/{file_id}/keyframes/", (*Server).keyframesCreate),
		r("GET", "files", "/v1/assets/{asset_id}/keyframes/", (*Server).keyframeList),
		r("POST", "files", "/v1/assets/bulk/keyframes/", (*Server).keyframesBulk),
		// jobs
		r("POST", "jobs", "/v1/jobs/", (*Server).jobCreate),
		r("GET", "jobs", "/v1/jobs/", (*Server).jobList),
		r("GET", "jobs", "/v1/jobs/{job_id}/", (*Server).jobGet),
		r("PATCH", "jobs", "/v1/jobs/{job_id}/", (*Server).jobPatch),
		// metadata
		r("GET", "metadata", "/v1/fields/", (*Server).fieldList),
		r("POST", "metadata", "/v1/fields/", (*Server).fieldCreate),
		r("GET", "metadata", "/v1/fields/{field_name}/", (*Server).fieldGet),
		r("GET", "metadata", "/v1/views/", (*Server).viewList),
		r("POST", "metadata", "/v1/views/", (*Server).viewCreate),
		r("GET", "metadata", "/v1/views/{view_id}/", (*Server).viewGet),
		r("PATCH", "metadata", "/v1/views/{view_id}/", (*Server).viewUpdate),
		r("PUT", "metadata", "/v1/views/{view_id}/", (*Server).viewUpdate),
		r("PUT", "metadata", "/v1/{object_type}/{object_id}/views/{view_id}/", (*Server).valuesPut),
		r("PUT", "metadata", "/v1/{object_type}/views/{view_id}/", (*Server).valuesBatchPut),
		r("GET", "metadata", "/v1/{object_type}/{object_id}/views/{view_id}/", (*Server).valuesGet),
		// search
		r("POST", "search", "/v1/search/", (*Server).search),
	}
}

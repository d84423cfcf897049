package iconik

import (
	"context"
	"fmt"
	"iter"
	"net/url"
	"strconv"
)

// TokenCheck asks iconik whether the App-ID and token are valid: nil when they are, an *Error
// with status 401 when not.
func (c *Client) TokenCheck(ctx context.Context) error {
	return c.get(ctx, "/API/auth/v1/auth/token/", nil, nil)
}

// UserCurrent returns the user the token acts as.
func (c *Client) UserCurrent(ctx context.Context) (*User, error) {
	var u User
	if err := c.get(ctx, "/API/users/v1/users/current/", nil, &u); err != nil {
		return nil, err
	}
	return &u, nil
}

// UserCurrentRoles returns the role strings of the token's user ("can_read_storages", ...).
// For an admin the list may be incomplete: admins have every role (see Verify).
func (c *Client) UserCurrentRoles(ctx context.Context) ([]string, error) {
	var r struct {
		Objects []string `json:"objects"`
	}
	if err := c.get(ctx, "/API/users/v1/users/current/roles/", nil, &r); err != nil {
		return nil, err
	}
	return r.Objects, nil
}

// StorageListParams filter StorageList. Empty fields do not filter.
type StorageListParams struct {
	Purpose, Method, Status string
	PerPage                 int // default 100
}

// StorageList lists storages, every page.
func (c *Client) StorageList(ctx context.Context, p StorageListParams) iter.Seq2[Storage, error] {
	q := url.Values{"per_page": {strconv.Itoa(perPage(p.PerPage, 100))}}
	for k, v := range map[string]string{"purpose": p.Purpose, "method": p.Method, "status": p.Status} {
		if v != "" {
			q.Set(k, v)
		}
	}
	return getPages[Storage](c, ctx, "/API/files/v1/storages/", q)
}

// StorageGet returns one storage.
func (c *Client) StorageGet(ctx context.Context, storageID string) (*Storage, error) {
	if storageID == "" {
		return nil, fmt.Errorf("iconik: StorageGet: empty storage id")
	}
	var s Storage
	if err := c.get(ctx, "/API/files/v1/storages/"+seg(storageID)+"/", nil, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// StoragePermissions asks iconik to verify its read/write/delete access to a storage.
func (c *Client) StoragePermissions(ctx context.Context, storageID string) (*StoragePermissions, error) {
	if storageID == "" {
		return nil, fmt.Errorf("iconik: StoragePermissions: empty storage id")
	}
	var p StoragePermissions
	if err := c.get(ctx, "/API/files/v1/storages/"+seg(storageID)+"/verifications/permissions/", nil, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

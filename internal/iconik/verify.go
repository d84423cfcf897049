package iconik

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// Role is a role the delivery flow needs: its API name and its name on
// iconik's admin screen (Admin > Groups > Roles, Advanced View), where an
// admin grants it. The labels follow that screen's "<Thing> - <verb>" shape.
type Role struct{ Name, Label string }

// Roles is the one table of required roles (CONTRACT.md §1 Roles, plus
// can_write_metadata_values, can_read_assets and can_search which the
// vendor's list misses): Verify checks it, and the API and the console
// name each role from it.
var Roles = []Role{
	{"can_create_assets", "Assets - create"}, {"can_write_assets", "Assets - write"},
	{"can_delete_assets", "Assets - delete"}, {"can_purge_assets", "Assets - purge"},
	{"can_create_collections", "Collections - create"}, {"can_read_collections", "Collections - read"},
	{"can_write_collections", "Collections - write"}, {"can_delete_collections", "Collections - delete"},
	{"can_purge_collections", "Collections - purge"},
	{"can_read_files", "Files - read"}, {"can_write_files", "Files - write"},
	{"can_delete_files", "Files - delete"}, {"can_purge_files", "Files - purge"},
	{"can_create_formats", "Formats - create"}, {"can_write_formats", "Formats - write"},
	{"can_write_jobs", "Jobs - write"}, {"can_delete_jobs", "Jobs - delete"},
	{"can_read_metadata_fields", "Metadata fields - read"}, {"can_write_metadata_fields", "Metadata fields - write"},
	{"can_read_metadata_views", "Metadata views - read"}, {"can_write_metadata_views", "Metadata views - write"},
	{"can_read_storages", "Storages - read"},
	{"can_create_transcode_jobs", "Transcode jobs - create"},
	{"can_write_metadata_values", "Metadata values - write"}, {"can_read_assets", "Assets - read"},
	{"can_search", "Search - search"},
}

// RequiredRoles are the API names of Roles, in order.
var RequiredRoles = func() []string {
	out := make([]string, len(Roles))
	for i, r := range Roles {
		out[i] = r.Name
	}
	return out
}()

// RoleLabel is the name iconik's admin screen gives a role ("" when the role
// is not one ferry needs).
func RoleLabel(name string) string {
	for _, r := range Roles {
		if r.Name == name {
			return r.Label
		}
	}
	return ""
}

// SelectableMethods are the storage methods ferry can upload to directly.
var SelectableMethods = []string{"S3", "GCS", "AZURE", "B2"}

// Verification is what Verify found out about a connection.
type Verification struct {
	User *User
	// Qualifies: the user is ACTIVE and POWER or admin. Reasons say why not.
	Qualifies bool
	Reasons   []string
	// Roles are the user's roles (every RequiredRoles entry for an admin); MissingRoles the
	// required ones it lacks, in RequiredRoles order.
	Roles        []string
	MissingRoles []string
	Storages     []StorageChoice
}

// OK reports whether the connection can be used: the user qualifies and has every role.
func (v *Verification) OK() bool { return v.Qualifies && len(v.MissingRoles) == 0 }

// Selectable returns the storages a connection may deliver to.
func (v *Verification) Selectable() []StorageChoice {
	var out []StorageChoice
	for _, s := range v.Storages {
		if s.Selectable {
			out = append(out, s)
		}
	}
	return out
}

// Problems lists every reason the connection cannot be used, for people.
func (v *Verification) Problems() []string {
	out := slices.Clone(v.Reasons)
	if len(v.MissingRoles) > 0 {
		out = append(out, "missing roles: "+strings.Join(v.MissingRoles, ", "))
	}
	return out
}

// StorageChoice is a storage and whether the storage picker may offer it.
type StorageChoice struct {
	Storage
	Selectable bool
	Reason     string // why not, for people ("" when selectable)
}

// Verify checks a connection: the token's user (401 is returned as an error: bad
// credentials), whether it qualifies, the roles it lacks, and every storage with whether it
// can be chosen. A user without can_read_storages gets no storages and no error: the missing
// role says why.
func (c *Client) Verify(ctx context.Context) (*Verification, error) {
	u, err := c.UserCurrent(ctx)
	if err != nil {
		return nil, fmt.Errorf("iconik: verifying the connection: reading the current user: %w", err)
	}
	v := &Verification{User: u}
	if u.Status != "ACTIVE" {
		v.Reasons = append(v.Reasons, fmt.Sprintf("user %s is %s, not ACTIVE", u.Name(), orUnknown(u.Status)))
	}
	if u.Type != "POWER" && !u.IsAdmin {
		v.Reasons = append(v.Reasons, fmt.Sprintf("user %s is a %s user: it must be a POWER user or an admin", u.Name(), orUnknown(u.Type)))
	}
	v.Qualifies = len(v.Reasons) == 0

	if u.IsAdmin {
		v.Roles = slices.Clone(RequiredRoles)
	} else {
		roles, err := c.UserCurrentRoles(ctx)
		if err != nil {
			return nil, fmt.Errorf("iconik: verifying the connection: reading the user's roles: %w", err)
		}
		v.Roles = roles
		for _, r := range RequiredRoles {
			if !slices.Contains(roles, r) {
				v.MissingRoles = append(v.MissingRoles, r)
			}
		}
	}

	if !slices.Contains(v.Roles, "can_read_storages") {
		return v, nil
	}
	for s, err := range c.StorageList(ctx, StorageListParams{}) {
		if err != nil {
			return nil, fmt.Errorf("iconik: verifying the connection: listing storages: %w", err)
		}
		ch := StorageChoice{Storage: s}
		ch.Reason = storageReason(&s)
		ch.Selectable = ch.Reason == ""
		v.Storages = append(v.Storages, ch)
	}
	return v, nil
}

// storageReason says why a storage cannot be chosen, "" when it can (CONTRACT.md §2.2 picker rule).
func storageReason(s *Storage) string {
	var why []string
	if s.Purpose != "FILES" {
		why = append(why, fmt.Sprintf("its purpose is %s, not FILES", orUnknown(s.Purpose)))
	}
	if !slices.Contains(SelectableMethods, s.Method) {
		why = append(why, fmt.Sprintf("its method %s has no direct upload (S3, GCS, AZURE or B2 needed)", orUnknown(s.Method)))
	}
	if s.Status != "ACTIVE" {
		msg := fmt.Sprintf("it is %s, not ACTIVE", orUnknown(s.Status))
		if s.StatusMessage != "" {
			msg += " (" + s.StatusMessage + ")"
		}
		why = append(why, msg)
	}
	var flags []string
	for _, f := range []string{"read", "write", "delete"} {
		if !s.Flag(f) {
			flags = append(flags, f)
		}
	}
	if len(flags) > 0 {
		why = append(why, "iconik may not "+strings.Join(flags, "/")+" on it (settings "+strings.Join(flags, ", ")+" off)")
	}
	if len(why) == 0 {
		return ""
	}
	return "Storage " + s.Name + " cannot be used: " + strings.Join(why, "; ") + "."
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

package emulator

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/google/uuid"
)

// Seed declares a tenant's users, application tokens and storages. It is
// applied at every start: what the state lacks is added (by user email, token
// name, storage name); tokens take their user and roles from the seed again;
// existing app ids, tokens and ids are kept, so credentials survive restarts.
type Seed struct {
	Users    []SeedUser    `yaml:"users" json:"users"`
	Tokens   []SeedToken   `yaml:"tokens" json:"tokens"`
	Storages []SeedStorage `yaml:"storages" json:"storages"`
	// Whether iconik has a "description" field by default is unknown
	// (CONTRACT.md §6): none exists unless the seed declares it here.
	Fields []SeedField `yaml:"metadata_fields" json:"metadata_fields"`
	Views  []SeedView  `yaml:"metadata_views" json:"metadata_views"`
}

// SeedField is a metadata field.
type SeedField struct {
	Name      string `yaml:"name" json:"name"`
	Label     string `yaml:"label" json:"label"`
	FieldType string `yaml:"field_type" json:"field_type"` // text, string, ... (CONTRACT.md §2.11)
}

// SeedView is a metadata view listing fields by name.
type SeedView struct {
	Name   string   `yaml:"name" json:"name"`
	Fields []string `yaml:"fields" json:"fields"`
}

// SeedUser is an iconik user.
type SeedUser struct {
	Email     string `yaml:"email" json:"email"`
	FirstName string `yaml:"first_name" json:"first_name"`
	LastName  string `yaml:"last_name" json:"last_name"`
	Type      string `yaml:"type" json:"type"`     // POWER | STANDARD | BROWSE_ONLY | BROWSE_API_ONLY
	Admin     bool   `yaml:"admin" json:"admin"`   // admins hold every role
	Status    string `yaml:"status" json:"status"` // ACTIVE (default) | INACTIVE | BLOCKED | DELETED
}

// SeedToken is an application token acting as User (an email). Roles lists
// role strings; three words expand: "all" (every role of iconik's spec),
// "flow" (every role the integration's calls need, CONTRACT.md §1) and
// "flow-read" (the can_read_* roles among those). "-role" removes a role.
type SeedToken struct {
	Name  string   `yaml:"name" json:"name"`
	User  string   `yaml:"user" json:"user"`
	AppID string   `yaml:"app_id" json:"app_id"` // generated when empty
	Token string   `yaml:"token" json:"token"`   // generated when empty
	Roles []string `yaml:"roles" json:"roles"`
}

// SeedStorage is an iconik storage.
type SeedStorage struct {
	Name     string         `yaml:"name" json:"name"`
	Method   string         `yaml:"method" json:"method"`   // S3 | GCS | AZURE | B2 (others listed, never uploadable)
	Purpose  string         `yaml:"purpose" json:"purpose"` // FILES | PROXIES | KEYFRAMES | ...
	Status   string         `yaml:"status" json:"status"`   // ACTIVE (default) | INACTIVE | FAILING
	Read     *bool          `yaml:"read" json:"read"`       // default true
	Write    *bool          `yaml:"write" json:"write"`     // default true
	Delete   *bool          `yaml:"delete" json:"delete"`   // default true
	Path     string         `yaml:"path" json:"path"`       // object key prefix
	Settings map[string]any `yaml:"settings" json:"settings"`
}

// LoadSeed reads a YAML seed file.
func LoadSeed(path string) (*Seed, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading seed %s: %w", path, err)
	}
	var s Seed
	if err := yaml.UnmarshalWithOptions(raw, &s, yaml.Strict()); err != nil {
		return nil, fmt.Errorf("decoding seed %s: %w", path, err)
	}
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("seed %s: %w", path, err)
	}
	return &s, nil
}

// contractRoles are the roles CONTRACT.md §1 lists for the integration.
var contractRoles = []string{
	"can_create_assets", "can_write_assets", "can_delete_assets", "can_purge_assets", "can_read_assets",
	"can_create_collections", "can_read_collections", "can_write_collections", "can_delete_collections", "can_purge_collections",
	"can_read_files", "can_write_files", "can_delete_files", "can_purge_files",
	"can_create_formats", "can_write_formats",
	"can_write_jobs", "can_delete_jobs",
	"can_read_metadata_fields", "can_write_metadata_fields",
	"can_read_metadata_views", "can_write_metadata_views",
	"can_read_storages", "can_create_transcode_jobs", "can_write_metadata_values", "can_search",
}

// FlowRoles is every role the integration needs: CONTRACT.md §1 plus what the
// spec requires for each endpoint the emulator serves.
func FlowRoles() []string {
	set := map[string]bool{}
	for _, r := range contractRoles {
		set[r] = true
	}
	for _, rt := range routeTable() {
		for _, r := range specOps[rt.key()].Roles {
			set[r] = true
		}
	}
	out := make([]string, 0, len(set))
	for r := range set {
		out = append(out, r)
	}
	slices.Sort(out)
	return out
}

func expandRoles(in []string) []string {
	set := map[string]bool{}
	for _, r := range in {
		switch {
		case r == "all":
			for _, x := range allSpecRoles() {
				set[x] = true
			}
		case r == "flow":
			for _, x := range FlowRoles() {
				set[x] = true
			}
		case r == "flow-read":
			for _, x := range FlowRoles() {
				if strings.HasPrefix(x, "can_read_") {
					set[x] = true
				}
			}
		case strings.HasPrefix(r, "-"):
			delete(set, r[1:])
		default:
			set[r] = true
		}
	}
	out := make([]string, 0, len(set))
	for r := range set {
		out = append(out, r)
	}
	slices.Sort(out)
	return out
}

// DefaultSeed is the tenant of contracts.md A: tokens "admin" (admin, every
// role), "power" (POWER user, every flow role except can_write_metadata_values)
// and "readonly" (STANDARD user, can_read_* only); FILES storages "s3", "gcs",
// "azure", "b2" and a PROXIES storage "proxies".
func DefaultSeed() *Seed {
	files := func(name, method string) SeedStorage {
		return SeedStorage{Name: name, Method: method, Purpose: "FILES", Status: "ACTIVE", Path: "ferry"}
	}
	return &Seed{
		Users: []SeedUser{
			{Email: "admin@iconik.test", FirstName: "Ada", LastName: "Admin", Type: "POWER", Admin: true},
			{Email: "power@iconik.test", FirstName: "Pat", LastName: "Power", Type: "POWER"},
			{Email: "readonly@iconik.test", FirstName: "Rey", LastName: "Reader", Type: "STANDARD"},
		},
		Tokens: []SeedToken{
			{Name: "admin", User: "admin@iconik.test", Roles: []string{"all"}},
			{Name: "power", User: "power@iconik.test", Roles: []string{"flow", "-can_write_metadata_values"}},
			{Name: "readonly", User: "readonly@iconik.test", Roles: []string{"flow-read"}},
		},
		Storages: []SeedStorage{
			files("s3", "S3"), files("gcs", "GCS"), files("azure", "AZURE"), files("b2", "B2"),
			{Name: "proxies", Method: "S3", Purpose: "PROXIES", Status: "ACTIVE", Path: "proxies"},
		},
	}
}

var (
	userTypes       = []string{"POWER", "STANDARD", "BROWSE_ONLY", "BROWSE_API_ONLY"}
	userStatuses    = []string{"INACTIVE", "ACTIVE", "BLOCKED", "DELETED"}
	storageMethods  = []string{"FILE", "HTTP", "FTP", "SFTP", "S3", "B2", "GCS", "PORTAL", "CUSTOM", "AZURE"}
	storagePurposes = []string{"KEYFRAMES", "FILES", "PROXIES", "EXPORTS", "ARCHIVE", "FACES"}
	storageStatuses = []string{"ACTIVE", "INACTIVE", "FAILING"}
)

// Validate reports the first thing wrong with the seed.
func (s *Seed) Validate() error {
	emails := map[string]bool{}
	for i, u := range s.Users {
		if u.Email == "" {
			return fmt.Errorf("user %d: email is required", i+1)
		}
		if emails[u.Email] {
			return fmt.Errorf("user %s: declared twice", u.Email)
		}
		emails[u.Email] = true
		if u.Type != "" && !slices.Contains(userTypes, u.Type) {
			return fmt.Errorf("user %s: type %q is not one of %v", u.Email, u.Type, userTypes)
		}
		if u.Status != "" && !slices.Contains(userStatuses, u.Status) {
			return fmt.Errorf("user %s: status %q is not one of %v", u.Email, u.Status, userStatuses)
		}
	}
	names := map[string]bool{}
	for i, t := range s.Tokens {
		if t.Name == "" {
			return fmt.Errorf("token %d: name is required", i+1)
		}
		if names[t.Name] {
			return fmt.Errorf("token %s: declared twice", t.Name)
		}
		names[t.Name] = true
		if !emails[t.User] {
			return fmt.Errorf("token %s: user %q is not declared under users", t.Name, t.User)
		}
		if t.AppID != "" {
			if _, err := uuid.Parse(t.AppID); err != nil {
				return fmt.Errorf("token %s: app_id %q is not a UUID (iconik application ids are)", t.Name, t.AppID)
			}
		}
	}
	snames := map[string]bool{}
	for i, st := range s.Storages {
		if st.Name == "" {
			return fmt.Errorf("storage %d: name is required", i+1)
		}
		if snames[st.Name] {
			return fmt.Errorf("storage %s: declared twice", st.Name)
		}
		snames[st.Name] = true
		if !slices.Contains(storageMethods, st.Method) {
			return fmt.Errorf("storage %s: method %q is not one of %v", st.Name, st.Method, storageMethods)
		}
		if !slices.Contains(storagePurposes, st.Purpose) {
			return fmt.Errorf("storage %s: purpose %q is not one of %v", st.Name, st.Purpose, storagePurposes)
		}
		if st.Status != "" && !slices.Contains(storageStatuses, st.Status) {
			return fmt.Errorf("storage %s: status %q is not one of %v", st.Name, st.Status, storageStatuses)
		}
	}
	fields := map[string]bool{}
	for i, f := range s.Fields {
		if f.Name == "" || f.Label == "" {
			return fmt.Errorf("metadata field %d: name and label are required", i+1)
		}
		if !slices.Contains(fieldTypes, f.FieldType) {
			return fmt.Errorf("metadata field %s: field_type %q is not one of %v", f.Name, f.FieldType, fieldTypes)
		}
		fields[f.Name] = true
	}
	for i, v := range s.Views {
		if v.Name == "" {
			return fmt.Errorf("metadata view %d: name is required", i+1)
		}
		for _, f := range v.Fields {
			if !fields[f] {
				return fmt.Errorf("metadata view %s: field %q is not declared under metadata_fields", v.Name, f)
			}
		}
	}
	return nil
}

func randomToken() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("making a token: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// applySeed adds what the seed declares and the state lacks.
func (s *Server) applySeed(seed *Seed) error {
	st := s.st
	byEmail := map[string]*user{}
	for _, u := range st.Users {
		byEmail[u.Email] = u
	}
	for _, su := range seed.Users {
		u := byEmail[su.Email]
		if u == nil {
			u = &user{ID: newID(), Email: su.Email, Created: now()}
			st.Users = append(st.Users, u)
			byEmail[su.Email] = u
		}
		u.FirstName, u.LastName, u.IsAdmin = su.FirstName, su.LastName, su.Admin
		if u.FirstName == "" {
			u.FirstName = strings.Split(su.Email, "@")[0]
		}
		u.Type, u.Status = su.Type, su.Status
		if u.Type == "" {
			u.Type = "POWER"
		}
		if u.Status == "" {
			u.Status = "ACTIVE"
		}
	}
	for _, sk := range seed.Tokens {
		var t *token
		for _, x := range st.Tokens {
			if x.Name == sk.Name {
				t = x
			}
		}
		if t == nil {
			t = &token{Name: sk.Name}
			st.Tokens = append(st.Tokens, t)
		}
		if sk.AppID != "" {
			t.AppID = sk.AppID
		} else if t.AppID == "" {
			t.AppID = newID()
		}
		if sk.Token != "" {
			t.Token = sk.Token
		} else if t.Token == "" {
			tok, err := randomToken()
			if err != nil {
				return err
			}
			t.Token = tok
		}
		t.UserID = byEmail[sk.User].ID
		t.Roles = expandRoles(sk.Roles)
	}
	t := now()
	for _, sf := range seed.Fields {
		if st.get(kFields, sf.Name) == nil {
			st.put(kFields, doc{"id": sf.Name, "name": sf.Name, "label": sf.Label, "field_type": sf.FieldType,
				"description": nil, "multi": false, "options": []any{}, "required": false, "read_only": false,
				"auto_set": false, "hide_if_not_set": false, "is_block_field": false, "is_warning_field": false,
				"representative": false, "sortable": false, "use_as_facet": false, "external_id": nil,
				"source_url": nil, "min_value": nil, "max_value": nil, "mapped_field_name": nil,
				"date_created": t, "date_modified": t})
		}
	}
	for _, sv := range seed.Views {
		exists := false
		for _, d := range st.Objects[kViews] {
			exists = exists || str(d, "name") == sv.Name
		}
		if exists {
			continue
		}
		vfs := []any{}
		for _, f := range sv.Fields {
			vfs = append(vfs, map[string]any{"name": f, "label": str(st.get(kFields, f), "label")})
		}
		st.put(kViews, doc{"id": newID(), "name": sv.Name, "description": nil, "view_fields": vfs, "date_created": t, "date_modified": t})
	}
	for _, ss := range seed.Storages {
		exists := false
		for _, d := range st.Objects[kStorages] {
			if str(d, "name") == ss.Name {
				exists = true
			}
		}
		if !exists {
			st.put(kStorages, storageDoc(ss))
		}
	}
	return nil
}

func storageDoc(ss SeedStorage) doc {
	flag := func(b *bool) bool { return b == nil || *b }
	settings := map[string]any{}
	switch ss.Method {
	case "S3":
		settings = map[string]any{"bucket": "iconik-" + ss.Name, "endpoint": "", "region": "us-east-1", "access_key": "", "secret_key": "", "presign_md5_checksum": false, "use_acceleration": false}
	case "GCS":
		settings = map[string]any{"bucket": "iconik-" + ss.Name, "project": "iconik-emulator", "json_key": ""}
	case "AZURE":
		settings = map[string]any{"container": "iconik-" + ss.Name, "connection_string": ""}
	case "B2":
		settings = map[string]any{"bucket_name": "iconik-" + ss.Name, "bucket_id": newID(), "account_id": "emulator", "authorization_token": ""}
	}
	for k, v := range ss.Settings {
		settings[k] = v
	}
	settings["path"] = ss.Path
	settings["read"], settings["write"], settings["delete"] = flag(ss.Read), flag(ss.Write), flag(ss.Delete)
	if _, ok := settings["scan"]; !ok {
		settings["scan"] = false
	}
	if _, ok := settings["transcode_ignore"]; !ok {
		settings["transcode_ignore"] = []any{}
	}
	status := ss.Status
	if status == "" {
		status = "ACTIVE"
	}
	return doc{
		"id": newID(), "name": ss.Name, "description": nil, "default": false,
		"method": ss.Method, "purpose": ss.Purpose, "status": status, "status_message": nil,
		"settings": settings, "last_scanned": nil, "scanner_status": nil, "version": nil,
	}
}

// rolesOf is the role set a token acts with: everything for admins.
func (s *Server) rolesOf(t *token, u *user) []string {
	if u.IsAdmin {
		return slices.Clone(allSpecRoles())
	}
	return slices.Clone(t.Roles)
}

package delivery

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path"
	"strings"

	"github.com/ferryhq/ferry/internal/db"
	"github.com/ferryhq/ferry/internal/portal"
	"github.com/ferryhq/ferry/internal/transfer"
	"github.com/ferryhq/ferry/internal/transfer/azure"
	"github.com/ferryhq/ferry/internal/transfer/b2"
	"github.com/ferryhq/ferry/internal/transfer/gcs"
	"github.com/ferryhq/ferry/internal/transfer/s3"
)

// Object names: where a delivered file lands on the iconik storage. iconik
// stores a file at <storage settings.path>/<directory_path>/<name>
// (CONTRACT.md §5; the emulator's objectKey), and delivery sends
// directory_path = the collection tree. NameParts is the one place that
// composes it: delivery's file records use Dir, and admission and Send to
// Cloud check ObjectName against the provider's rules before a byte is
// stored or a delivery is recorded (issue 9 item 5).

// TitleSuffixReserve is the longest suffix a package collection's title can
// get when its name is taken under the same parent ("Shoot (2)"): admission
// happens before delivery picks the title, so it checks the worst case.
// Ten million packages of one name under one portal is beyond any real
// use; a title needing more would fail at delivery with the provider's
// reason (transfer.Refused), never loop.
const TitleSuffixReserve = " (9999999)"

// NameParts are what decides a delivered file's object name, except the
// file's own path.
type NameParts struct {
	StoragePath string // the storage's settings.path ("" = bucket root)
	// AddsUUID: iconik adds a UUID to file names on this storage
	// (add_uuid_to_filenames); where exactly is not documented, so the
	// checks count it on the file name (UUIDReserve more bytes).
	AddsUUID     bool
	Root         string // the collection root ("Portal Downloads", "MASV", or the connection's)
	Portal       string // the portal's name for portal deliveries, "" for Send to Cloud
	PackageTitle string // the package collection's title
}

// Dir is the file's directory on the storage (iconik directory_path), the
// same tree as its collections: root / portal / package title / folders.
func (n NameParts) Dir(filePath string) string {
	parts := []string{n.Root}
	if n.Portal != "" {
		parts = append(parts, titleSafe(n.Portal))
	}
	parts = append(parts, n.PackageTitle)
	if dir := path.Dir(filePath); dir != "." && dir != "" {
		parts = append(parts, dir)
	}
	return path.Join(parts...)
}

// ObjectName is the file's object key on the storage: settings.path +
// directory_path + name, "/"-separated, without empty or "." segments (as
// iconik joins them; the emulator's objectKey does the same).
func (n NameParts) ObjectName(filePath string) string {
	var segs []string
	for _, p := range []string{n.StoragePath, n.Dir(filePath), path.Base(filePath)} {
		for _, s := range strings.Split(strings.ReplaceAll(p, "\\", "/"), "/") {
			if s != "" && s != "." {
				segs = append(segs, s)
			}
		}
	}
	return strings.Join(segs, "/")
}

// UUIDReserve stands for the UUID iconik adds to a file name on a storage
// with add_uuid_to_filenames: a separator and 36 characters.
const UUIDReserve = "-00000000-0000-0000-0000-000000000000"

// checkedName is the object name the checks apply to: ObjectName, with
// room for the UUID when the storage adds one.
func (n NameParts) checkedName(filePath string) string {
	name := n.ObjectName(filePath)
	if n.AddsUUID {
		name += UUIDReserve
	}
	return name
}

// nameChecks are the providers' object name rules by iconik storage method.
var nameChecks = map[string]func(string) error{"S3": s3.CheckName, "GCS": gcs.CheckName, "AZURE": azure.CheckName, "B2": b2.CheckName}

// checkName checks filePath's object name on a storage of method, with
// the package title as it is and with the longest suffix delivery may add;
// it returns the *transfer.NameError of the worse one, and the name's size.
func (n NameParts) checkName(method, filePath string) error {
	check := nameChecks[strings.ToUpper(method)]
	if check == nil {
		return nil // no direct upload: the connection was refused when saved
	}
	// The longer name first: a refusal then says by how much to shorten
	// in the worst case.
	worst := n
	worst.PackageTitle += TitleSuffixReserve
	if err := check(worst.checkedName(filePath)); err != nil {
		return err
	}
	return check(n.checkedName(filePath))
}

// nameRefusal is what a sender (or an admin sending to cloud) reads when
// no storage could take the file: the file, the provider's limit, and by
// how much to shorten. The storage's own prefix is not shown: it is the
// tenant's configuration, not the sender's business.
func nameRefusal(err error, method, filePath string) error {
	ne := transfer.AsNameError(err)
	if ne == nil {
		return err
	}
	where := fmt.Sprintf("the %s storage this package is delivered to", strings.ToUpper(method))
	file := fmt.Sprintf("%s (a path of %s bytes)", path.Base(filePath), transfer.Count(len(filePath)))
	e := &portal.Error{Status: http.StatusUnprocessableEntity, Field: "path"}
	switch ne.Rule {
	case transfer.NameCharacter:
		e.Code = "object_name_refused"
		e.Message = fmt.Sprintf("%s cannot be stored on %s: %s (%s). Rename it and upload it again.", file, where, ne.Limit, ne.Detail)
	default:
		e.Code = "object_name_too_long"
		unit := map[string]string{transfer.NameTooLong: "bytes", transfer.NameSegmentTooLong: "bytes", transfer.NameTooManySegments: "folder levels"}[ne.Rule]
		if strings.Contains(ne.Limit, "characters") {
			unit = "characters"
		}
		e.Message = fmt.Sprintf("%s cannot be stored on %s: %s, and with the folders the delivery puts it in (root, portal, package) its name would be %s too long. Shorten its path by at least %s %s and upload it again.",
			file, where, ne.Limit, transfer.Count(ne.Over)+" "+unit, transfer.Count(ne.Over), unit)
	}
	return e
}

// CheckAdmission is portal's ObjectNameCheck: before a byte of a portal
// upload is stored, the file's full object name on the storage of every
// connection the portal delivers to must be one the provider can store.
// A package without a portal has no storage yet (Send to Cloud checks it).
func CheckAdmission(ctx context.Context, q db.Queries, pkg *db.Package, p *db.Portal, filePath string) error {
	if p == nil {
		return nil
	}
	for _, id := range p.ConnectionIDs {
		c, err := q.ConnectionGetByID(ctx, &db.ConnectionGetByIDParams{ID: id})
		if errors.Is(err, db.ErrNotFound) {
			continue // portal settings refuse unknown connections; one deleted since delivers nothing
		}
		if err != nil {
			return fmt.Errorf("delivery: reading connection %s of portal %s: %w", id, p.ID, err)
		}
		n := NameParts{StoragePath: c.StoragePath, AddsUUID: c.StorageAddsUUID, Root: orDefault(c.PortalRoot, "Portal Downloads"), Portal: p.Name,
			PackageTitle: titleSafe(pkg.Name)}
		if err := n.checkName(c.StorageMethod, filePath); err != nil {
			return nameRefusal(err, c.StorageMethod, filePath)
		}
	}
	return nil
}

// CheckSendToCloud refuses (a *portal.Error, 422) a Send to Cloud of package
// pkg to connection c when any of its files could not be stored on c's
// storage, naming the first such file and how many there are.
func CheckSendToCloud(ctx context.Context, q db.Queries, pkg *db.Package, c *db.Connection) error {
	files, err := q.FileListByPackage(ctx, &db.FileListByPackageParams{PackageID: pkg.ID})
	if err != nil {
		return fmt.Errorf("delivery: listing files of package %s: %w", pkg.ID, err)
	}
	n := NameParts{StoragePath: c.StoragePath, AddsUUID: c.StorageAddsUUID, Root: orDefault(c.SendRoot, "MASV"), PackageTitle: titleSafe(pkg.Name)}
	var first error
	bad := 0
	for _, f := range files {
		if err := n.checkName(c.StorageMethod, f.Path); err != nil {
			bad++
			if first == nil {
				first = nameRefusal(err, c.StorageMethod, f.Path)
			}
		}
	}
	if pe := portal.AsError(first); pe != nil && bad > 1 {
		pe.Message += fmt.Sprintf(" %d files of the package cannot be stored there.", bad)
	}
	return first
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// finalRefusal makes a storage provider's refusal that no retry can change
// (a key too long, a character it refuses: transfer.Refused) permanent, so
// the file fails at once with the provider's reason instead of being
// retried for minutes.
func finalRefusal(err error) error {
	var pe *errPermanent
	if err == nil || errors.As(err, &pe) || !transfer.Refused(err) {
		return err
	}
	return &errPermanent{fmt.Errorf("the storage refused the file for good: %w", err)}
}

// checkObjectName fails a file for good when its object name on the
// connection's storage is one the provider can never store: a file admitted
// before admission checked names, or a storage prefix that grew since.
// Every attempt would otherwise end at the provider (or at an upload URL
// iconik cannot sign), retried for minutes. It runs before the package's
// collection is resolved (with the title the package would get first) and
// again after (with the title it got), so a file that cannot fit leaves
// nothing behind in iconik.
func (r *fileRun) checkObjectName(ctx context.Context) error {
	check := nameChecks[strings.ToUpper(r.conn.StorageMethod)]
	if nc, ok := r.s.o.Uploaders[r.conn.StorageMethod].(transfer.NameChecker); ok {
		check = nc.CheckName // the uploader that will send the bytes knows its provider best
	}
	if check == nil {
		return nil
	}
	n := NameParts{StoragePath: r.conn.StoragePath, AddsUUID: r.conn.StorageAddsUUID, Root: r.d.RootTitle, PackageTitle: r.d.PackageTitle}
	portalDelivery := r.d.Origin == db.DeliveryOriginPortal
	if n.Root == "" {
		n.Root = orDefault(r.conn.SendRoot, "MASV")
		if portalDelivery {
			n.Root = orDefault(r.conn.PortalRoot, "Portal Downloads")
		}
	}
	if portalDelivery {
		n.Portal = r.d.PortalName
	}
	if n.PackageTitle == "" {
		n.PackageTitle = titleSafe(r.pkg.Name)
	}
	name := n.checkedName(r.f.Path)
	if err := check(name); err != nil {
		return &errPermanent{fmt.Errorf("the %s storage can never store this file under its object name (%s bytes; the storage prefix, %q and the path): %w; shorten the path and send it again",
			strings.ToUpper(r.conn.StorageMethod), transfer.Count(len(name)), n.Dir(""), err)}
	}
	return nil
}

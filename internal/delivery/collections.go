package delivery

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"github.com/ferryhq/ferry/internal/db"
	"github.com/ferryhq/ferry/internal/iconik"
	"github.com/ferryhq/ferry/internal/pathsafe"
)

// planner resolves collection paths: each level is looked up before it is
// created and created once, serialised per (connection, parent, title) in this
// process and, across replicas, by a guarded write of the claim's pending
// mark in delivery_collections (only one replica's lands); ids are cached in
// memory and in the database. Nothing here is needed by another replica:
// the cache and the fresh set only save lookups.
type planner struct {
	s     *Service
	locks keyedMutex
	cache sync.Map // connection|parent|title -> collection id

	// fresh holds collections this process created. A claim that no
	// process ever tried to create (no PendingAt) under such a parent cannot
	// exist in iconik: the parent started empty and every create into it
	// is claimed first. Its lookup is skipped, which saves one iconik call
	// per folder of a new package. After a restart the set is empty and
	// every level is looked up again, which is always safe.
	freshMu sync.Mutex
	fresh   map[string]struct{}
}

// maxFresh bounds the fresh set; past it the set starts over (lookups are
// only ever saved, never needed for correctness).
const maxFresh = 100_000

func (p *planner) isFresh(id string) bool {
	p.freshMu.Lock()
	defer p.freshMu.Unlock()
	_, ok := p.fresh[id]
	return ok
}

func (p *planner) markFresh(id string) {
	p.freshMu.Lock()
	defer p.freshMu.Unlock()
	if p.fresh == nil || len(p.fresh) >= maxFresh {
		p.fresh = map[string]struct{}{}
	}
	p.fresh[id] = struct{}{}
}

// errTaken: the package-level title belongs to another package.
var errTaken = errors.New("collection path taken by another package")

// waitIndex is a transient error: a create whose answer was lost may not be
// listed yet (iconik's index lag).
type waitIndex struct{ what string }

func (e *waitIndex) Error() string {
	return "waiting for iconik's index to list " + e.what + " created before an interruption"
}

// child returns the id of the collection titled title under parentID ("" =
// top level). A non-empty packageID claims the title for that package
// (errTaken when another package holds it).
func (p *planner) child(ctx context.Context, cl *iconik.Client, connID, parentID, title, packageID string) (string, error) {
	key := connID + "|" + parentID + "|" + title
	if id, ok := p.cache.Load(key); ok && packageID == "" {
		return id.(string), nil
	}
	unlock := p.locks.lock(key)
	defer unlock()
	q := p.s.o.DB
	c, err := q.DeliveryCollectionClaim(ctx, &db.DeliveryCollectionClaimParams{ConnectionID: connID, ParentID: parentID, Title: title,
		PackageID: packageID, CreatedAt: p.s.o.Now()})
	if err != nil {
		return "", fmt.Errorf("claiming collection %q: %w", title, err)
	}
	if c.PackageID != packageID {
		return "", errTaken
	}
	if c.CollectionID != "" {
		p.cache.Store(key, c.CollectionID)
		return c.CollectionID, nil
	}
	var id string
	if c.PendingAt != nil || parentID == "" || !p.isFresh(parentID) {
		if id, err = p.find(ctx, cl, parentID, title); err != nil {
			return "", err
		}
	}
	if id == "" && c.PendingAt != nil && p.s.o.Now().Sub(*c.PendingAt) < p.s.o.IndexGrace {
		return "", &waitIndex{what: "collection " + strconv.Quote(title)}
	}
	if id == "" {
		now := p.s.o.Now()
		// Guarded: a replica that claimed the same level since we read it
		// creates it; this one waits for the id it records.
		_, err := q.DeliveryCollectionSet(ctx, &db.DeliveryCollectionSetParams{ConnectionID: connID, ParentID: parentID, Title: title, PendingAt: &now,
			Guarded: true, WasPendingAt: c.PendingAt})
		if errors.Is(err, db.ErrPrecondition) {
			return "", &waitIndex{what: "collection " + strconv.Quote(title) + ", which another replica is creating"}
		}
		if err != nil {
			return "", err
		}
		cp := iconik.CollectionCreateParams{Title: title, ParentID: parentID}
		if parentID == "" {
			cp.IsRoot = new(true)
		}
		col, err := cl.CollectionCreate(ctx, cp)
		if err != nil {
			return "", fmt.Errorf("creating collection %q: %w", title, err)
		}
		id = col.ID
		p.markFresh(id)
	}
	if _, err := q.DeliveryCollectionSet(ctx, &db.DeliveryCollectionSetParams{ConnectionID: connID, ParentID: parentID, Title: title, CollectionID: id}); err != nil {
		return "", err
	}
	p.cache.Store(key, id)
	return id, nil
}

// find looks for an existing collection titled title under parentID.
func (p *planner) find(ctx context.Context, cl *iconik.Client, parentID, title string) (string, error) {
	if parentID == "" {
		for c, err := range cl.CollectionList(ctx, iconik.CollectionListParams{IsRoot: new(true)}) {
			if err != nil {
				return "", fmt.Errorf("listing top-level collections: %w", err)
			}
			if c.Title == title && c.Status != "DELETED" {
				return c.ID, nil
			}
		}
		return "", nil
	}
	for c, err := range cl.CollectionContentsList(ctx, parentID, iconik.CollectionContentsListParams{ObjectTypes: []string{"collections"}}) {
		if err != nil {
			return "", fmt.Errorf("listing collections in %s: %w", parentID, err)
		}
		if c.Title == title && c.Status != "DELETED" {
			return c.ID, nil
		}
	}
	return "", nil
}

// packageCollection resolves (once per delivery) the root, the portal level
// and the package's own collection, "<name> (n)" when an earlier package of
// the same name holds "<name>" on this connection.
func (p *planner) packageCollection(ctx context.Context, cl *iconik.Client, conn Connection, d *db.Delivery, pkg *db.Package) (*db.Delivery, error) {
	if d.CollectionID != "" {
		return d, nil
	}
	unlock := p.s.locks.lock("collection|" + d.ID)
	defer unlock()
	d, err := p.s.o.DB.DeliveryGetByID(ctx, &db.DeliveryGetByIDParams{ID: d.ID})
	if err != nil || d.CollectionID != "" {
		return d, err
	}
	root := d.RootTitle
	if root == "" {
		root = conn.PortalRoot
		if d.Origin == db.DeliveryOriginSendToCloud {
			root = conn.SendRoot
		}
	}
	if root == "" {
		root = "Portal Downloads"
		if d.Origin == db.DeliveryOriginSendToCloud {
			root = "MASV"
		}
	}
	parent, err := p.child(ctx, cl, conn.ID, "", root, "")
	if err != nil {
		return nil, err
	}
	if d.Origin == db.DeliveryOriginPortal {
		if parent, err = p.child(ctx, cl, conn.ID, parent, titleSafe(d.PortalName), ""); err != nil {
			return nil, err
		}
	}
	name := titleSafe(pkg.Name)
	for n := 1; ; n++ {
		title := name
		if n > 1 {
			title = fmt.Sprintf("%s (%d)", name, n)
		}
		id, err := p.child(ctx, cl, conn.ID, parent, title, pkg.ID)
		if errors.Is(err, errTaken) {
			continue
		}
		if err != nil {
			return nil, err
		}
		return p.s.o.DB.DeliverySetCollection(ctx, &db.DeliverySetCollectionParams{ID: d.ID, RootTitle: root, PackageTitle: title, CollectionID: id})
	}
}

// folder resolves the collection of a file's folder (its path without the
// file name) under the package's collection.
func (p *planner) folder(ctx context.Context, cl *iconik.Client, conn Connection, d *db.Delivery, folders []string) (string, error) {
	id := d.CollectionID
	for _, f := range folders {
		var err error
		if id, err = p.child(ctx, cl, conn.ID, id, f, ""); err != nil {
			return "", err
		}
	}
	return id, nil
}

// titleSafe keeps a title usable as one path segment of the storage
// directory and the collection tree. Portal and package names are checked
// with pathsafe.Segment when they are set; this is the last line of
// defence for a name stored before that check ("..", a NUL, "CON"), which
// pathsafe.SafeSegment maps to a harmless folder name.
func titleSafe(s string) string {
	return pathsafe.SafeSegment(s)
}

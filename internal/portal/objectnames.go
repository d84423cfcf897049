package portal

import (
	"context"
	"fmt"

	"github.com/ferryhq/ferry/internal/db"
	"github.com/ferryhq/ferry/internal/pathsafe"
)

// ObjectNameCheck says whether a file at path p of package pkg (portal nil
// for a package without one) can be stored under its full object name on
// every storage the package is delivered to (storage prefix + collection
// root + portal + package + path, against each provider's limits). It
// returns nil, an *Error (4xx: the refusal the sender reads, naming the
// limit), or another error (the check itself failed). The portal package
// knows nothing of storages: the server plugs delivery.CheckAdmission in,
// the function delivery itself names objects with.
type ObjectNameCheck func(ctx context.Context, q db.Queries, pkg *db.Package, portal *db.Portal, p string) error

// checkObjectNames runs Options.ObjectNames (when set) for an upload about
// to be admitted, before any byte of it is stored: a file no storage could
// take would otherwise fail only at delivery, after minutes of retries.
func (s *Service) checkObjectNames(ctx context.Context, pkg *db.Package, portal *db.Portal, p pathsafe.Path) error {
	if s.objectNames == nil {
		return nil
	}
	err := s.objectNames(ctx, s.db, pkg, portal, p.String())
	if err == nil {
		return nil
	}
	if e := AsError(err); e != nil {
		return e
	}
	return fmt.Errorf("portal: checking the object names of %s in package %s: %w", p, pkg.ID, err)
}

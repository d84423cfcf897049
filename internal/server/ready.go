package server

import (
	"context"
	"fmt"

	"github.com/ferryhq/ferry/internal/db"
	"github.com/ferryhq/ferry/internal/web"
)

// ready runs /readyz's checks. Messages reach anyone who asks: they say what is wrong, never
// where (paths) or with what credentials; the log has the details.
func (a *App) ready(ctx context.Context) web.ReadyReport {
	var rep web.ReadyReport
	check := func(name string, err error) {
		c := web.ReadyCheck{Name: name, OK: err == nil}
		if err != nil {
			c.Message = err.Error()
		}
		rep.Checks = append(rep.Checks, c)
	}

	dbErr := a.DB.SQLDB().PingContext(ctx)
	if dbErr != nil {
		a.log.WarnContext(ctx, "readiness: the database does not answer", "err", dbErr)
		dbErr = fmt.Errorf("the database does not answer")
	}
	check("database", dbErr)
	if dbErr == nil {
		pending, err := db.MigrationsPending(ctx, a.DB)
		switch {
		case err != nil:
			a.log.WarnContext(ctx, "readiness: reading the migration state failed", "err", err)
			check("migrations", fmt.Errorf("the migration state could not be read"))
		case pending:
			check("migrations", fmt.Errorf("the database lacks migrations this ferry carries; restart ferry to apply them"))
		default:
			check("migrations", nil)
		}
	} else {
		check("migrations", fmt.Errorf("not checked: the database does not answer"))
	}

	check("upload_store", a.Ingest.CheckWritable())

	sp, err := a.Ingest.Space()
	switch {
	case err != nil:
		a.log.WarnContext(ctx, "readiness: reading free space failed", "err", err)
		check("disk_space", fmt.Errorf("the free space of the upload store could not be read"))
	case sp.Known && sp.Free < sp.Reserve:
		check("disk_space", fmt.Errorf("%d bytes free, below the reserve of %d bytes (--disk-reserve): uploads are refused with 507 until space is freed", sp.Free, sp.Reserve))
	default:
		check("disk_space", nil)
	}
	if err == nil {
		if sp.Known {
			free := sp.Free
			rep.UploadStoreFreeBytes = &free
		}
		rep.DiskReserveBytes, rep.PromisedBytes = sp.Reserve, sp.Promised
	}
	return rep
}

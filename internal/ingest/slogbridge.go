package ingest

import (
	"context"
	"log/slog"

	xslog "golang.org/x/exp/slog"
)

// tusd v2.9.1 logs through golang.org/x/exp/slog, a type distinct from log/slog; this handler
// forwards its records to ferry's log/slog handler. tusd logs every request at Info, so its
// Info becomes ferry's Debug; warnings and errors keep their level.
type tusdLogHandler struct{ h slog.Handler }

func newTusdLogger(l *slog.Logger) *xslog.Logger {
	return xslog.New(tusdLogHandler{h: l.Handler().WithAttrs([]slog.Attr{slog.String("component", "tusd")})})
}

func tusdLevel(l xslog.Level) slog.Level {
	if l < xslog.LevelWarn {
		return slog.LevelDebug
	}
	return slog.Level(l)
}

func (t tusdLogHandler) Enabled(ctx context.Context, l xslog.Level) bool {
	return t.h.Enabled(ctx, tusdLevel(l))
}

func (t tusdLogHandler) Handle(ctx context.Context, r xslog.Record) error {
	rec := slog.NewRecord(r.Time, tusdLevel(r.Level), r.Message, r.PC)
	r.Attrs(func(a xslog.Attr) bool {
		rec.AddAttrs(convertAttr(a))
		return true
	})
	return t.h.Handle(ctx, rec)
}

func (t tusdLogHandler) WithAttrs(as []xslog.Attr) xslog.Handler {
	out := make([]slog.Attr, len(as))
	for i, a := range as {
		out[i] = convertAttr(a)
	}
	return tusdLogHandler{h: t.h.WithAttrs(out)}
}

func (t tusdLogHandler) WithGroup(name string) xslog.Handler {
	return tusdLogHandler{h: t.h.WithGroup(name)}
}

func convertAttr(a xslog.Attr) slog.Attr {
	v := a.Value.Resolve()
	if v.Kind() == xslog.KindGroup {
		g := v.Group()
		out := make([]any, len(g))
		for i, ga := range g {
			out[i] = convertAttr(ga)
		}
		return slog.Group(a.Key, out...)
	}
	return slog.Any(a.Key, v.Any())
}

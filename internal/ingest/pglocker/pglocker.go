package pglocker

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/tus/tusd/v2/pkg/handler"
)

// channel carries the ids of uploads some request is waiting for.
const channel = "ferry_upload_lock_release"

// Options tune New. The zero value is fine.
type Options struct {
	// MaxConns bounds the locker's own pool: each held lock keeps one
	// connection (an advisory lock lives in its session) for as long as
	// its request runs. Default 64, unless the DSN sets pool_max_conns.
	MaxConns int32
	Logger   *slog.Logger
}

// Locker is a handler.Locker over PostgreSQL advisory locks.
type Locker struct {
	pool *pgxpool.Pool
	log  *slog.Logger

	mu     sync.Mutex
	held   map[string]*lock // upload id -> its lock held in this process
	closed bool

	stop context.CancelFunc
	done chan struct{}
}

// New connects its own pool to the database at dsn (so upload requests,
// which hold a connection each while they run, never starve ferry's queries
// and River) and starts listening for release requests.
func New(ctx context.Context, dsn string, o Options) (*Locker, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, errors.New("pglocker: the database URL does not parse") // never echo it: it may hold a password
	}
	if !strings.Contains(dsn, "pool_max_conns") {
		cfg.MaxConns = cmpOr(o.MaxConns, 64)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("pglocker: connecting: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("pglocker: connecting: %w", err)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	lctx, stop := context.WithCancel(context.Background())
	l := &Locker{pool: pool, log: o.Logger.With("component", "pglocker"), held: map[string]*lock{}, stop: stop, done: make(chan struct{})}
	ready := make(chan error, 1)
	go l.listen(lctx, ready)
	select {
	case err := <-ready:
		if err != nil {
			l.Close()
			return nil, fmt.Errorf("pglocker: listening for release requests: %w", err)
		}
	case <-ctx.Done():
		l.Close()
		return nil, ctx.Err()
	}
	return l, nil
}

func cmpOr(v, def int32) int32 {
	if v > 0 {
		return v
	}
	return def
}

// UseIn makes the locker the composer's.
func (l *Locker) UseIn(c *handler.StoreComposer) { c.UseLocker(l) }

// Close stops listening, ends the sessions of locks still held (they are
// free for other replicas at once, as after a crash) and closes the pool.
func (l *Locker) Close() {
	l.stop()
	<-l.done
	l.mu.Lock()
	l.closed = true
	held := l.held
	l.held = map[string]*lock{}
	l.mu.Unlock()
	for _, k := range held {
		k.drop(context.Background())
	}
	l.pool.Close()
}

// NewLock implements handler.Locker.
func (l *Locker) NewLock(id string) (handler.Lock, error) {
	return &lock{l: l, id: id, key: key(id)}, nil
}

// key maps an upload id to the advisory lock's 64-bit key. Ids are random,
// so a collision (two uploads sharing a lock) is as unlikely as a 64-bit
// hash collision, and would only serialise two uploads' requests.
func key(id string) int64 {
	h := fnv.New64a()
	h.Write([]byte("ferry/upload/"))
	h.Write([]byte(id))
	return int64(h.Sum64())
}

// listen calls the requestRelease of every upload held here that another
// request (on any replica) waits for. It reconnects while the locker runs.
func (l *Locker) listen(ctx context.Context, ready chan<- error) {
	defer close(l.done)
	first := true
	for ctx.Err() == nil {
		err := l.listenOnce(ctx, func() {
			if first {
				first = false
				ready <- nil
			}
		})
		if first {
			ready <- err
			return
		}
		if ctx.Err() == nil {
			l.log.Warn("pglocker: release requests interrupted; reconnecting", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
}

func (l *Locker) listenOnce(ctx context.Context, listening func()) error {
	conn, err := l.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "LISTEN "+channel); err != nil {
		return err
	}
	defer func() {
		// The connection returns to the pool: stop listening on it first
		// (or drop it when the session is unusable).
		if _, err := conn.Exec(context.Background(), "UNLISTEN "+channel); err != nil {
			conn.Conn().Close(context.Background())
		}
	}()
	listening()
	for {
		n, err := conn.Conn().WaitForNotification(ctx)
		if err != nil {
			return err
		}
		l.mu.Lock()
		var release func()
		if k := l.held[n.Payload]; k != nil {
			release = k.requestRelease
		}
		l.mu.Unlock()
		if release != nil {
			release()
		}
	}
}

// lock is one upload's lock; it holds a connection while locked.
type lock struct {
	l              *Locker
	id             string
	key            int64
	requestRelease func()

	mu   sync.Mutex
	conn *pgxpool.Conn // while locked
}

// drop ends the lock's session: the server frees the advisory lock with it.
func (k *lock) drop(ctx context.Context) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.conn != nil {
		k.conn.Conn().Close(ctx)
		k.conn.Release()
		k.conn = nil
	}
}

// Lock takes the advisory lock, asking its holder (whichever replica) to
// release it while waiting, until ctx ends (handler.ErrLockTimeout).
func (k *lock) Lock(ctx context.Context, requestRelease func()) error {
	conn, err := k.l.pool.Acquire(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return handler.ErrLockTimeout
		}
		return fmt.Errorf("pglocker: locking upload %s: %w", k.id, err)
	}
	wait := 10 * time.Millisecond
	for {
		var got bool
		if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", k.key).Scan(&got); err != nil {
			conn.Release()
			if ctx.Err() != nil {
				return handler.ErrLockTimeout
			}
			return fmt.Errorf("pglocker: locking upload %s: %w", k.id, err)
		}
		if got {
			k.mu.Lock()
			k.conn, k.requestRelease = conn, requestRelease
			k.mu.Unlock()
			k.l.mu.Lock()
			closed := k.l.closed
			if !closed {
				k.l.held[k.id] = k
			}
			k.l.mu.Unlock()
			if closed {
				k.drop(ctx)
				return fmt.Errorf("pglocker: locking upload %s: the locker is closed", k.id)
			}
			return nil
		}
		// Ask the holder to let go: the NOTIFY reaches every replica's
		// listener, and the one holding the upload ends its request.
		if _, err := conn.Exec(ctx, "SELECT pg_notify($1, $2)", channel, k.id); err != nil && ctx.Err() == nil {
			k.l.log.Warn("pglocker: asking for an upload's release", "upload", k.id, "err", err)
		}
		select {
		case <-ctx.Done():
			conn.Release()
			return handler.ErrLockTimeout
		case <-time.After(wait):
		}
		wait = min(2*wait, 250*time.Millisecond)
	}
}

// Unlock releases the advisory lock and the connection. When the unlock
// cannot be confirmed the connection is closed, which ends the session and
// with it the lock.
func (k *lock) Unlock() error {
	k.l.mu.Lock()
	if k.l.held[k.id] == k {
		delete(k.l.held, k.id)
	}
	k.l.mu.Unlock()
	k.mu.Lock()
	defer k.mu.Unlock()
	conn := k.conn
	if conn == nil {
		return nil // never locked, or its session already ended (Close)
	}
	k.conn = nil
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var ok bool
	if err := conn.QueryRow(ctx, "SELECT pg_advisory_unlock($1)", k.key).Scan(&ok); err != nil || !ok {
		conn.Conn().Close(ctx)
		conn.Release()
		if err != nil {
			return fmt.Errorf("pglocker: unlocking upload %s: %w", k.id, err)
		}
		return nil
	}
	conn.Release()
	return nil
}

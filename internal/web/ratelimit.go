package web

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// keyedLimiter rate-limits attempts per key (e.g. portal slug + client
// address) with a token bucket each; idle buckets are forgotten so the map
// cannot grow without bound.
type keyedLimiter struct {
	mu      sync.Mutex
	every   rate.Limit
	burst   int
	buckets map[string]*bucket
	swept   time.Time
	now     func() time.Time
}

type bucket struct {
	lim  *rate.Limiter
	seen time.Time
}

func newKeyedLimiter(per time.Duration, burst int) *keyedLimiter {
	return &keyedLimiter{every: rate.Every(per), burst: burst, buckets: map[string]*bucket{}, now: time.Now}
}

// bucketFor returns key's bucket, forgetting buckets idle for 30 minutes.
func (k *keyedLimiter) bucketFor(key string, now time.Time) *bucket {
	if now.Sub(k.swept) > time.Minute {
		for key, b := range k.buckets {
			if now.Sub(b.seen) > 30*time.Minute {
				delete(k.buckets, key)
			}
		}
		k.swept = now
	}
	b, ok := k.buckets[key]
	if !ok {
		b = &bucket{lim: rate.NewLimiter(k.every, k.burst)}
		k.buckets[key] = b
	}
	b.seen = now
	return b
}

// Blocked reports whether key has spent its budget of failures for now.
func (k *keyedLimiter) Blocked(key string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	now := k.now()
	return k.bucketFor(key, now).lim.TokensAt(now) < 1
}

// Fail spends one unit of key's failure budget.
func (k *keyedLimiter) Fail(key string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	now := k.now()
	k.bucketFor(key, now).lim.AllowN(now, 1)
}

package transfer

import (
	"hash"
	"sync"

	md5simd "github.com/minio/md5-simd"
)

// MD5 is what S3 ETags and Azure's Content-MD5 need, and it is the most
// expensive hash ferry computes (about 0.8 GB/s per core against 1.5-2 GB/s
// for SHA-256 with SHA-NI). Parts are independent, so md5-simd hashes up to
// 16 of them at once in AVX-512 lanes (8 with AVX2) on one core: measured
// here 2.5 GB/s for 16 parts against 0.8 GB/s for crypto/md5, and never
// worse than crypto/md5 with a single part. Without AVX2 it falls back to
// crypto/md5. Writing our own SIMD MD5 is not worth it when MinIO's is
// maintained and used by minio-go.
var md5Server = sync.OnceValue(md5simd.NewServer)

// MD5Lanes is how many part hashes the shared MD5 server runs side by side
// to full speed: the Scanner's part concurrency for MD5 parts.
const MD5Lanes = 16

// NewMD5 returns an MD5 hash served by the shared SIMD server. Call Release
// when done with it (its lane is held until then).
func NewMD5() hash.Hash { return md5Server().NewHash() }

// Release frees what a hash from NewMD5 holds; other hashes are left alone.
func Release(h hash.Hash) {
	if c, ok := h.(interface{ Close() }); ok {
		c.Close()
	}
}

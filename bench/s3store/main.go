package main

import (
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/ferryhq/ferry/internal/config"
	"github.com/ferryhq/ferry/internal/db"
	"github.com/ferryhq/ferry/internal/send"
	"github.com/ferryhq/ferry/internal/server"
	"github.com/ferryhq/ferry/internal/testbed"
)

func main() {
	log.SetFlags(0)
	size := flag.Int64("size", 2<<30, "bytes in the file sent to each store")
	streams := flag.Int("streams", 4, "ferry send streams (parallel partials)")
	rounds := flag.Int("rounds", 1, "measurements per store (the best is kept)")
	dir := flag.String("dir", "", "work directory (default: a new temp dir, removed afterwards)")
	flag.Parse()

	work := *dir
	if work == "" {
		d, err := os.MkdirTemp("", "ferry-bench-s3store-")
		if err != nil {
			log.Fatal(err)
		}
		defer os.RemoveAll(d)
		work = d
	}
	src := filepath.Join(work, "src", "file.bin")
	if err := writeRandom(src, *size); err != nil {
		log.Fatal(err)
	}
	s3srv := testbed.Versity(panicTB{})
	os.Setenv("AWS_ACCESS_KEY_ID", s3srv.AccessKey)
	os.Setenv("AWS_SECRET_ACCESS_KEY", s3srv.SecretKey)
	os.Unsetenv("AWS_CA_BUNDLE")
	defer s3srv.Proc.Stop()

	fmt.Printf("%d MiB, %d streams, best of %d\n", *size>>20, *streams, *rounds)
	fmt.Printf("%-12s %12s %12s\n", "store", "ingest MiB/s", "read MiB/s")
	var disk [2]float64
	for _, store := range []string{"", "s3"} {
		best := [2]float64{}
		for r := range *rounds {
			st := store
			if st == "s3" {
				st = "s3://" + s3srv.NewBucket(panicTB{}) + "/bench?endpoint=" + s3srv.Endpoint + "&region=" + s3srv.Region
			}
			in, out, err := once(filepath.Join(work, fmt.Sprintf("data-%s-%d", name(store), r)), st, src, *size, *streams)
			if err != nil {
				log.Fatalf("%s: %v", name(store), err)
			}
			best[0], best[1] = max(best[0], in), max(best[1], out)
		}
		fmt.Printf("%-12s %12.0f %12.0f\n", name(store), best[0], best[1])
		if store == "" {
			disk = best
		} else {
			fmt.Printf("s3/disk      %11.2fx %11.2fx\n", best[0]/disk[0], best[1]/disk[1])
		}
	}
}

func name(store string) string {
	if store == "" {
		return "local disk"
	}
	return "s3 (versity)"
}

// once sends src into a fresh server on store and reads it back as delivery does.
func once(data, store, src string, size int64, streams int) (ingest, read float64, err error) {
	ctx := context.Background()
	cfg := config.Default("")
	cfg.DataDir, cfg.Store, cfg.DiskReserve = data, store, 0
	cfg.LogLevel = "warn"
	if _, err := server.CreateUser(ctx, cfg, "bench@example.com", "bench password 123"); err != nil {
		return 0, 0, err
	}
	tok, err := server.CreateAPIToken(ctx, cfg, "bench@example.com", "bench")
	if err != nil {
		return 0, 0, err
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	app, err := server.Open(ctx, cfg, server.Options{Logger: logger})
	if err != nil {
		return 0, 0, err
	}
	defer app.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, 0, err
	}
	hs := &http.Server{Handler: app.Handler()}
	go hs.Serve(ln)
	defer hs.Close()
	base, _ := url.Parse("http://" + ln.Addr().String())

	start := time.Now()
	res, err := send.Send(ctx, send.Options{Target: send.Target{Base: base, Token: tok}, Paths: []string{src},
		Info: send.PackageInfo{Name: "bench"}, Streams: streams, StateDir: filepath.Join(data, "send-state"), Again: true})
	if err != nil {
		return 0, 0, err
	}
	ingest = float64(size) / (1 << 20) / time.Since(start).Seconds()

	files, err := app.DB.FileListByPackage(ctx, &db.FileListByPackageParams{PackageID: res.PackageID})
	if err != nil || len(files) != 1 {
		return 0, 0, fmt.Errorf("listing the package's file: %d files, %v", len(files), err)
	}
	start = time.Now()
	b, err := app.Ingest.Open(ctx, files[0].UploadID)
	if err != nil {
		return 0, 0, err
	}
	defer b.Close()
	n, err := io.CopyBuffer(io.Discard, io.NewSectionReader(b, 0, b.Size()), make([]byte, 1<<20))
	if err != nil || n != size {
		return 0, 0, fmt.Errorf("reading back: %d of %d bytes, %v", n, size, err)
	}
	read = float64(size) / (1 << 20) / time.Since(start).Seconds()
	return ingest, read, nil
}

func writeRandom(path string, size int64) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.CopyN(f, rand.Reader, size); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// panicTB lets testbed helpers run outside a test.
type panicTB struct{}

func (panicTB) Helper()                   {}
func (panicTB) Logf(string, ...any)       {}
func (panicTB) Skipf(f string, a ...any)  { panic(fmt.Sprintf(f, a...)) }
func (panicTB) Fatalf(f string, a ...any) { panic(fmt.Sprintf(f, a...)) }

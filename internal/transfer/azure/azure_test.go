package azure_test

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"testing"
	"time"

	"context"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"

	"github.com/ferryhq/ferry/internal/iconik/emulator/dataplane"
	"github.com/ferryhq/ferry/internal/testbed"
	"github.com/ferryhq/ferry/internal/transfer"
	"github.com/ferryhq/ferry/internal/transfer/azure"
	"github.com/ferryhq/ferry/internal/transfer/transfertest"
)

// sasTarget hands out a fresh blob SAS URL (read, create, write) on every call,
// as iconik's generate_signed_post_url=true does.
type sasTarget struct {
	blobURL         string
	cred            *azblob.SharedKeyCredential
	container, blob string
	via             func(string) string
}

func (t *sasTarget) Method() string { return "AZURE" }

func (t *sasTarget) AzureBlobURL(ctx context.Context) (string, error) {
	q, err := sas.BlobSignatureValues{
		Protocol: sas.ProtocolHTTPSandHTTP, ExpiryTime: time.Now().Add(time.Hour),
		Permissions:   to.Ptr(sas.BlobPermissions{Read: true, Create: true, Write: true}).String(),
		ContainerName: t.container, BlobName: t.blob,
	}.SignWithSharedKey(t.cred)
	if err != nil {
		return "", err
	}
	return t.via(t.blobURL + "?" + q.Encode()), nil
}

func azuriteHarness(t *testing.T) transfertest.Harness {
	srv := testbed.Azurite(t)
	cred, err := azblob.NewSharedKeyCredential(srv.Account, srv.AccountKey)
	if err != nil {
		t.Fatal(err)
	}
	client, err := azblob.NewClientWithSharedKeyCredential(srv.BlobURL+"/", cred, nil)
	if err != nil {
		t.Fatal(err)
	}
	container := fmt.Sprintf("ferry%016x", rand.Uint64()) // unique across -count repeats
	if _, err := client.CreateContainer(context.Background(), container, nil); err != nil {
		t.Fatalf("create container: %v", err)
	}
	blobURL := func(key string) string { return srv.BlobURL + "/" + container + "/" + key }
	return transfertest.Harness{
		New:      func(o transfer.Options) transfer.Uploader { return azure.New(o) },
		PartSize: 1 << 20,
		NewTarget: func(t *testing.T, key string, size int64, via func(string) string) transfer.Target {
			return &sasTarget{blobURL: blobURL(key), cred: cred, container: container, blob: key, via: via}
		},
		Open: func(t *testing.T, key string) (io.ReadCloser, bool) {
			u, err := (&sasTarget{blobURL: blobURL(key), cred: cred, container: container, blob: key, via: func(s string) string { return s }}).AzureBlobURL(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.Get(u)
			if err != nil {
				t.Fatalf("get blob %s: %v", key, err)
			}
			if resp.StatusCode == http.StatusNotFound {
				resp.Body.Close()
				return nil, false
			}
			if resp.StatusCode != http.StatusOK {
				resp.Body.Close()
				t.Fatalf("get blob %s: HTTP %d", key, resp.StatusCode)
			}
			return resp.Body, true
		},
	}
}

func TestConformanceAzurite(t *testing.T) {
	transfertest.Run(t, azuriteHarness(t))
}

func TestConformanceEmulatorAzure(t *testing.T) {
	dir := t.TempDir() // before the plane: cleanups run last-first, so the plane stops writing before dir goes
	p := transfertest.StartPlane(t, dataplane.Options{})
	st := dataplane.Storage{ID: "azure", Method: "AZURE", Dir: dir}
	transfertest.Run(t, p.Harness(st, func(o transfer.Options) transfer.Uploader { return azure.New(o) }, 1<<20))
}

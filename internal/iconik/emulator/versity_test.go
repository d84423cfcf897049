package emulator_test

import (
	"context"
	"io"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/ferryhq/ferry/internal/iconik/emulator"
	"github.com/ferryhq/ferry/internal/iconik/emulator/emulatortest"
	"github.com/ferryhq/ferry/internal/testbed"
)

// TestExternalS3StorageUploadsToARealS3Server seeds an S3 storage whose
// endpoint is Versity: upload URLs point there, the object lands at
// settings.path + directory_path + name, and the secret never leaves the
// emulator.
func TestExternalS3StorageUploadsToARealS3Server(t *testing.T) {
	vs := testbed.Versity(t)
	bucket := vs.NewBucket(t)
	seed := emulator.DefaultSeed()
	seed.Storages = append(seed.Storages, emulator.SeedStorage{Name: "versity", Method: "S3", Purpose: "FILES", Path: "media",
		Settings: map[string]any{"endpoint": vs.Endpoint, "bucket": bucket, "region": vs.Region, "access_key": vs.AccessKey, "secret_key": vs.SecretKey}})
	e := emulatortest.Start(t, emulator.Options{Seed: seed})
	c := newClient(t, e, "power")

	st := c.must(200, c.do("GET", "/API/files/v1/storages/?name=versity", nil), "storage").objects()[0]
	if set := st["settings"].(map[string]any); set["secret_key"] == vs.SecretKey {
		t.Fatal("the storage's secret_key is returned in clear")
	}
	data := pngBytes(t, 64, 48)
	asset, fileID, put := uploadFile(t, c, "versity", "still.png", data)
	if put.StatusCode != 200 {
		t.Fatalf("PUT to Versity: %d", put.StatusCode)
	}
	out, err := vs.Client().GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("media/in/still.png")})
	if err != nil {
		t.Fatalf("object not at media/in/still.png in Versity: %v", err)
	}
	got, _ := io.ReadAll(out.Body)
	out.Body.Close()
	if string(got) != string(data) {
		t.Fatalf("Versity holds %d other bytes", len(got))
	}
	// Keyframes read the object back from the external server.
	c.must(200, c.do("PATCH", "/API/files/v1/assets/"+asset+"/files/"+fileID+"/", map[string]any{"status": "CLOSED"}), "close")
	if job := keyframeOf(t, c, asset, fileID); job.str("status") != "FINISHED" {
		t.Fatalf("keyframe job: %s", job.Raw)
	}
}

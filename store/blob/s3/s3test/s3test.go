// Package s3test gives tests a fresh bucket on a real S3-compatible server.
//
// Tests that need one call Config; it skips the test unless SKIFF_S3_TEST
// is set, as `make test-s3` does after starting a SeaweedFS server on
// loopback (tools/seaweedfs/s3-test.sh). The server is named by
// SKIFF_S3_ENDPOINT (http://host:port) and the credentials come from
// AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, so the same tests run
// against any S3-compatible server.
package s3test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/skiffml/skiff/store/blob/s3"
)

// Enabled reports whether the S3 tests run (SKIFF_S3_TEST set).
func Enabled() bool { return os.Getenv("SKIFF_S3_TEST") != "" }

// Config skips t unless Enabled, else makes a new bucket (skiff-test-<random>)
// on the server and returns a configuration of it with prefix, path-style
// addressing, the environment's credentials and a temp dir of t's.
func Config(t testing.TB, prefix string) s3.Config {
	t.Helper()
	if !Enabled() {
		t.Skip("S3 tests: set SKIFF_S3_TEST (make test-s3 starts a SeaweedFS server and does)")
	}
	endpoint := os.Getenv("SKIFF_S3_ENDPOINT")
	if endpoint == "" {
		t.Fatal("SKIFF_S3_TEST is set but SKIFF_S3_ENDPOINT (http://host:port of the S3 server) is not")
	}
	var b [6]byte
	rand.Read(b[:])
	cfg := s3.DefaultConfig("skiff-test-"+hex.EncodeToString(b[:]), prefix)
	cfg.Endpoint, cfg.PathStyle, cfg.TempDir = endpoint, true, t.TempDir()
	cfg.Region = "us-east-1"
	cfg.FromEnv(os.Getenv)
	if err := MakeBucket(context.Background(), cfg); err != nil {
		t.Fatalf("make bucket %s at %s: %v", cfg.Bucket, endpoint, err)
	}
	return cfg
}

// Client returns a plain S3 client of cfg's server, for tests that look at
// or tamper with objects behind the backend's back.
func Client(t testing.TB, cfg s3.Config) *minio.Client {
	t.Helper()
	c, err := client(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// MakeBucket creates cfg's bucket.
func MakeBucket(ctx context.Context, cfg s3.Config) error {
	c, err := client(cfg)
	if err != nil {
		return err
	}
	return c.MakeBucket(ctx, cfg.Bucket, minio.MakeBucketOptions{Region: cfg.Region})
}

func client(cfg s3.Config) (*minio.Client, error) {
	host, secure := cfg.Endpoint, false
	if h, ok := cutScheme(host, "http://"); ok {
		host = h
	} else if h, ok := cutScheme(host, "https://"); ok {
		host, secure = h, true
	}
	return minio.New(host, &minio.Options{
		Creds:        credentials.NewStaticV4(cfg.AccessKeyID, cfg.SecretAccessKey, cfg.SessionToken),
		Secure:       secure,
		Region:       cfg.Region,
		BucketLookup: minio.BucketLookupPath,
	})
}

func cutScheme(s, scheme string) (string, bool) {
	if len(s) >= len(scheme) && s[:len(scheme)] == scheme {
		return s[len(scheme):], true
	}
	return s, false
}

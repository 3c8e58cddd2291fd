package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/skiffml/skiff/store/blob"
	"github.com/skiffml/skiff/store/blob/s3"
)

// artifactStoreFlags choose where a data dir's blobs (artifacts and logs)
// are kept. They are global: every command that opens the data dir reads
// them.
func artifactStoreFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "artifact-store", EnvVars: []string{"SKIFF_ARTIFACT_STORE"},
			Usage: "keep artifacts and logs in `STORE`: 'local' (the data dir's blobs/) or s3://BUCKET/PREFIX " +
				"(credentials from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN); " +
				"the data dir remembers the choice, so later commands need not repeat it"},
		&cli.StringFlag{Name: "s3-endpoint", EnvVars: []string{"AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"},
			Usage: "the S3-compatible server: host[:port] (HTTPS) or http(s)://host[:port]; default AWS S3"},
		&cli.StringFlag{Name: "s3-region", EnvVars: []string{"AWS_REGION", "AWS_DEFAULT_REGION"},
			Usage: "the bucket's region (default: ask the server)"},
		&cli.BoolFlag{Name: "s3-path-style",
			Usage: "address the bucket in the URL path (http://host/BUCKET/KEY), as most S3-compatible servers want"},
	}
}

// artifactStoreSetting is what a data dir remembers of its artifact store
// (never the credentials), in blobs/store.json.
type artifactStoreSetting struct {
	Store     string `json:"store"` // "local" or s3://BUCKET/PREFIX
	Endpoint  string `json:"s3_endpoint,omitempty"`
	Region    string `json:"s3_region,omitempty"`
	PathStyle bool   `json:"s3_path_style,omitempty"`
}

const artifactStoreFile = "store.json"

// openBlobs opens the blob store of the data dir dir: where the flags say,
// else where the data dir's blobs/store.json says, else blobs/ itself. A
// first choice is written to store.json (temp file and rename); a flag
// naming another store than the remembered one is refused, since the runs
// already recorded point at blobs in the remembered one.
func openBlobs(c *cli.Context, dir string) (*blob.Store, error) {
	blobDir := filepath.Join(dir, "blobs")
	want := artifactStoreSetting{Store: c.String("artifact-store"), Endpoint: c.String("s3-endpoint"),
		Region: c.String("s3-region"), PathStyle: c.Bool("s3-path-style")}
	have, err := readArtifactStoreSetting(blobDir)
	if err != nil {
		return nil, err
	}
	switch {
	case want.Store == "" && have == nil:
		return blob.Open(blobDir)
	case want.Store == "":
		want = *have
	case want.Store == "local" && (have == nil || have.Store == "local"):
		return blob.Open(blobDir)
	case have != nil && (want.Store != have.Store || (want.Store != "local" && want.Endpoint != have.Endpoint)):
		return nil, usageError("--artifact-store: %s (at %q) differs from the artifact store this data dir's runs use, %s (at %q, recorded in %s); use another --data-dir",
			want.Store, want.Endpoint, have.Store, have.Endpoint, filepath.Join(blobDir, artifactStoreFile))
	}
	bucket, prefix, err := s3.ParseURL(want.Store)
	if err != nil {
		return nil, usageError("--artifact-store: %v (or 'local')", err)
	}
	cfg := s3.DefaultConfig(bucket, prefix)
	cfg.Endpoint, cfg.Region, cfg.PathStyle = want.Endpoint, want.Region, want.PathStyle
	cfg.FromEnv(os.Getenv)
	cfg.TempDir = filepath.Join(blobDir, "tmp")
	if err := os.MkdirAll(cfg.TempDir, 0o755); err != nil {
		return nil, fmt.Errorf("artifact store: %w", err)
	}
	if err := cfg.Validate(); err != nil {
		return nil, usageError("--artifact-store: %v", err)
	}
	be, err := s3.New(c.Context, cfg)
	if err != nil {
		return nil, fmt.Errorf("--artifact-store: %w", err)
	}
	st, err := blob.OpenConfig(blob.Config{Dir: blobDir, Backend: be, MaxEntrySize: blob.DefaultMaxEntrySize})
	if err != nil {
		return nil, err
	}
	if have == nil {
		if err := writeArtifactStoreSetting(blobDir, want); err != nil {
			return nil, err
		}
	}
	return st, nil
}

func readArtifactStoreSetting(blobDir string) (*artifactStoreSetting, error) {
	p := filepath.Join(blobDir, artifactStoreFile)
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("artifact store setting: %w", err)
	}
	var s artifactStoreSetting
	if err := json.Unmarshal(b, &s); err != nil || s.Store == "" {
		return nil, fmt.Errorf("artifact store setting %s is damaged (want {\"store\": ...}): %v; fix or remove it", p, err)
	}
	return &s, nil
}

func writeArtifactStoreSetting(blobDir string, s artifactStoreSetting) error {
	b, _ := json.MarshalIndent(s, "", "  ")
	tmp, err := os.CreateTemp(blobDir, ".store-*.json")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), filepath.Join(blobDir, artifactStoreFile))
}

package local

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/skiffml/skiff/store/blob"
)

// Config configures a local Executor.
type Config struct {
	WorkDir     string        // executions live in WorkDir/<execution id>/ (the root)
	Blobs       *blob.Store   // inputs come from it, outputs and logs go to it
	Logger      *slog.Logger  // nil = discard
	MilliCPU    int64         // node capacity; 0 = runtime.NumCPU()*1000
	MemoryBytes int64         // 0 = MemTotal from /proc/meminfo
	GPUs        []string      // GPU ids to hand out; nil = detect with nvidia-smi; empty non-nil = none
	GracePeriod time.Duration // SIGTERM -> SIGKILL; 0 = 10s
	// MaxStarting bounds the executions that set up their work dir and
	// start their process at the same moment (not how many run: resource
	// requests decide that); 0 = 4 per CPU.
	MaxStarting int
	// KeepWorkDirs keeps each execution's root and log after its outputs
	// and log are stored (for debugging); by default they are removed.
	KeepWorkDirs bool
	// MaxOutputBytes bounds each output artifact (a directory's files
	// together); 0 = executors.DefaultMaxOutputBytes.
	MaxOutputBytes int64
	Clock          func() time.Time
}

// DefaultGracePeriod is the wait between SIGTERM and SIGKILL.
const DefaultGracePeriod = 10 * time.Second

// DefaultConfig returns a Config that detects the node's capacity and GPUs.
func DefaultConfig(workDir string, blobs *blob.Store) Config {
	return Config{
		WorkDir:     workDir,
		Blobs:       blobs,
		Logger:      slog.Default(),
		GracePeriod: DefaultGracePeriod,
		Clock:       time.Now,
	}
}

// Validate reports the first bad field.
func (c Config) Validate() error {
	var errs []error
	if c.WorkDir == "" {
		errs = append(errs, errors.New("local: config: WorkDir: must not be empty"))
	}
	if c.Blobs == nil {
		errs = append(errs, errors.New("local: config: Blobs: must not be nil"))
	}
	if c.MilliCPU < 0 {
		errs = append(errs, fmt.Errorf("local: config: MilliCPU: must not be negative, got %d", c.MilliCPU))
	}
	if c.MemoryBytes < 0 {
		errs = append(errs, fmt.Errorf("local: config: MemoryBytes: must not be negative, got %d", c.MemoryBytes))
	}
	if c.MaxOutputBytes < 0 {
		errs = append(errs, fmt.Errorf("local: config: MaxOutputBytes: must not be negative, got %d", c.MaxOutputBytes))
	}
	if c.GracePeriod < 0 {
		errs = append(errs, fmt.Errorf("local: config: GracePeriod: must not be negative, got %s", c.GracePeriod))
	}
	seen := map[string]bool{}
	for i, g := range c.GPUs {
		if g == "" || seen[g] {
			errs = append(errs, fmt.Errorf("local: config: GPUs[%d]: empty or repeated id %q", i, g))
		}
		seen[g] = true
	}
	return errors.Join(errs...)
}

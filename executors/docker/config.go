package docker

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/docker/docker/client"

	"github.com/skiffml/skiff/store/blob"
)

// ContainerRoot is where an execution's work dir is mounted in its
// container; Root returns it for every execution.
const ContainerRoot = "/skiff"

// PullPolicy says when the executor pulls a step's image.
type PullPolicy string

const (
	// PullIfNotPresent pulls only when the engine lacks the image (default).
	PullIfNotPresent PullPolicy = "IfNotPresent"
	// PullAlways pulls before every execution; a failed pull fails it.
	PullAlways PullPolicy = "Always"
	// PullNever never pulls; a missing image fails the execution.
	PullNever PullPolicy = "Never"
)

// Defaults.
const (
	DefaultGracePeriod  = 10 * time.Second
	DefaultShmSize      = 1 << 30 // 1 GiB: PyTorch data loaders need more than Docker's 64 MiB
	DefaultLogDrainWait = 10 * time.Second
	// minMemory is the smallest memory limit Docker accepts.
	minMemory = 6 << 20
)

// Config configures an Executor.
type Config struct {
	WorkDir string       // host dir: executions live in WorkDir/<execution id>/
	Blobs   *blob.Store  // inputs come from it, outputs and logs go to it
	Logger  *slog.Logger // nil = discard
	// Client talks to the engine; nil = client.FromEnv (DOCKER_HOST, ...)
	// with API version negotiation.
	Client *client.Client
	// PullPolicy: "" = PullIfNotPresent.
	PullPolicy PullPolicy
	// DefaultImage runs steps that name no image; "" = such a spec is bad.
	DefaultImage string
	// User runs every container as this user ("uid[:gid]" or a name known
	// to the image); "" = the image's USER. See docs/executors.md.
	User string
	// GracePeriod is the wait between SIGTERM and SIGKILL on cancel and
	// timeout; 0 = DefaultGracePeriod. Docker counts it in whole seconds
	// (at least 1).
	GracePeriod time.Duration
	// ShmSizeBytes is /dev/shm's size; 0 = DefaultShmSize, -1 = Docker's own default.
	ShmSizeBytes int64
	// NetworkMode is the container's network ("" = Docker's default bridge).
	NetworkMode string
	// KeepContainers leaves exited containers in the engine after their
	// results are reported (for debugging); by default they are removed.
	KeepContainers bool
	// KeepWorkDirs keeps each execution's work dir and log after its
	// outputs and log are stored (for debugging); by default they are
	// removed.
	KeepWorkDirs bool
	// MaxOutputBytes bounds each output artifact (a directory's files
	// together); 0 = executors.DefaultMaxOutputBytes.
	MaxOutputBytes int64
	// LogDrainWait is how long the log stream may take to end after the
	// container stopped before the rest of the log is read without it;
	// 0 = DefaultLogDrainWait.
	LogDrainWait time.Duration
	Clock        func() time.Time // nil = time.Now
}

// DefaultConfig returns a Config for WorkDir and blobs with the defaults.
func DefaultConfig(workDir string, blobs *blob.Store) Config {
	return Config{
		WorkDir:     workDir,
		Blobs:       blobs,
		Logger:      slog.Default(),
		PullPolicy:  PullIfNotPresent,
		GracePeriod: DefaultGracePeriod,
		Clock:       time.Now,
	}
}

// Validate reports every bad field.
func (c Config) Validate() error {
	var errs []error
	if c.WorkDir == "" {
		errs = append(errs, errors.New("docker: config: WorkDir: must not be empty"))
	}
	if c.Blobs == nil {
		errs = append(errs, errors.New("docker: config: Blobs: must not be nil"))
	}
	switch c.PullPolicy {
	case "", PullIfNotPresent, PullAlways, PullNever:
	default:
		errs = append(errs, fmt.Errorf("docker: config: PullPolicy: %q is not one of IfNotPresent, Always, Never", c.PullPolicy))
	}
	if c.GracePeriod < 0 {
		errs = append(errs, fmt.Errorf("docker: config: GracePeriod: must not be negative, got %s", c.GracePeriod))
	}
	if c.MaxOutputBytes < 0 {
		errs = append(errs, fmt.Errorf("docker: config: MaxOutputBytes: must not be negative, got %d", c.MaxOutputBytes))
	}
	if c.LogDrainWait < 0 {
		errs = append(errs, fmt.Errorf("docker: config: LogDrainWait: must not be negative, got %s", c.LogDrainWait))
	}
	if c.ShmSizeBytes < -1 {
		errs = append(errs, fmt.Errorf("docker: config: ShmSizeBytes: must be -1, 0 or positive, got %d", c.ShmSizeBytes))
	}
	return errors.Join(errs...)
}

// ParsePullPolicy accepts the policy names case-insensitively.
func ParsePullPolicy(s string) (PullPolicy, error) {
	for _, p := range []PullPolicy{PullIfNotPresent, PullAlways, PullNever} {
		if strings.EqualFold(string(p), s) {
			return p, nil
		}
	}
	return "", fmt.Errorf("pull policy %q is not one of IfNotPresent, Always, Never", s)
}

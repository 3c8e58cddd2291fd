package s3

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// Config configures a Backend.
type Config struct {
	// Bucket holds the blobs; it must exist.
	Bucket string
	// Prefix is put before every key ("" or ending in '/').
	Prefix string
	// Endpoint is the server: "host[:port]" (HTTPS) or a URL with scheme
	// http or https. Empty: AWS S3.
	Endpoint string
	// Region is the bucket's region; empty asks the server.
	Region string
	// PathStyle addresses the bucket in the path (http://host/bucket/key),
	// as most S3-compatible servers want, instead of the host name.
	PathStyle bool
	// AccessKeyID, SecretAccessKey and SessionToken are the credentials
	// (see FromEnv); all empty: anonymous requests.
	AccessKeyID, SecretAccessKey, SessionToken string
	// TempDir holds the compressed copy of a blob until it is uploaded.
	TempDir string
	// PartSize is the size of each part of a multipart upload, which
	// blobs over this size use (at least 5 MiB, S3's minimum).
	PartSize uint64
	// Threads is the number of parts uploaded at once.
	Threads uint
}

// DefaultPartSize is Config.PartSize's default: 16 MiB.
const DefaultPartSize = 16 << 20

// minPartSize is S3's smallest part (but the last).
const minPartSize = 5 << 20

// DefaultConfig returns the configuration of bucket and prefix with the
// default part size and upload threads.
func DefaultConfig(bucket, prefix string) Config {
	return Config{Bucket: bucket, Prefix: prefix, PartSize: DefaultPartSize, Threads: 4}
}

// Validate reports the first invalid field.
func (c Config) Validate() error {
	switch {
	case c.Bucket == "":
		return errors.New("s3: config: Bucket: required")
	case checkBucket(c.Bucket) != nil:
		return fmt.Errorf("s3: config: Bucket: %w", checkBucket(c.Bucket))
	case c.Prefix != "" && checkPrefix(strings.TrimSuffix(c.Prefix, "/")) != nil:
		return fmt.Errorf("s3: config: Prefix: %w", checkPrefix(strings.TrimSuffix(c.Prefix, "/")))
	case c.TempDir == "":
		return errors.New("s3: config: TempDir: required")
	case c.PartSize < minPartSize:
		return fmt.Errorf("s3: config: PartSize: %d bytes is under S3's minimum of %d", c.PartSize, minPartSize)
	case c.Threads == 0:
		return errors.New("s3: config: Threads: must be positive")
	case (c.AccessKeyID == "") != (c.SecretAccessKey == ""):
		return errors.New("s3: config: AccessKeyID and SecretAccessKey: set both or neither (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)")
	}
	if _, _, err := c.endpoint(); err != nil {
		return fmt.Errorf("s3: config: Endpoint: %w", err)
	}
	return nil
}

// endpoint returns the host[:port] to dial and whether to use TLS.
func (c Config) endpoint() (string, bool, error) {
	e := c.Endpoint
	if e == "" {
		return "s3.amazonaws.com", true, nil
	}
	if !strings.Contains(e, "://") {
		e = "https://" + e
	}
	u, err := url.Parse(e)
	switch {
	case err != nil:
		return "", false, fmt.Errorf("%q: %v", c.Endpoint, err)
	case u.Scheme != "http" && u.Scheme != "https":
		return "", false, fmt.Errorf("%q: scheme must be http or https", c.Endpoint)
	case u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "":
		return "", false, fmt.Errorf("%q: want host[:port] or http(s)://host[:port]", c.Endpoint)
	}
	return u.Host, u.Scheme == "https", nil
}

// FromEnv fills the credentials from AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN, read with getenv.
func (c *Config) FromEnv(getenv func(string) string) {
	c.AccessKeyID = getenv("AWS_ACCESS_KEY_ID")
	c.SecretAccessKey = getenv("AWS_SECRET_ACCESS_KEY")
	c.SessionToken = getenv("AWS_SESSION_TOKEN")
}

// ParseURL splits "s3://BUCKET[/PREFIX]" into its bucket and its prefix
// ("" or ending in '/'). The bucket must be a valid S3 bucket name; the
// prefix is made of non-empty path segments, none "." or "..", without
// backslashes or control characters. Anything else (another scheme, a
// port, user info, a query, a fragment) is an error naming the part.
func ParseURL(raw string) (bucket, prefix string, err error) {
	rest, ok := strings.CutPrefix(raw, "s3://")
	if !ok {
		return "", "", fmt.Errorf("artifact store %q: must start with s3://", raw)
	}
	if len(raw) > 1024 {
		return "", "", fmt.Errorf("artifact store: %d bytes, over the limit of 1024", len(raw))
	}
	bucket, prefix, _ = strings.Cut(rest, "/")
	if err := checkBucket(bucket); err != nil {
		return "", "", fmt.Errorf("artifact store %q: bucket: %w", raw, err)
	}
	prefix = strings.TrimSuffix(prefix, "/")
	if prefix == "" {
		return bucket, "", nil
	}
	if err := checkPrefix(prefix); err != nil {
		return "", "", fmt.Errorf("artifact store %q: prefix: %w", raw, err)
	}
	return bucket, prefix + "/", nil
}

// checkBucket applies S3's bucket naming rules: 3 to 63 characters of
// lower-case letters, digits, '.' and '-', starting and ending with a
// letter or digit, no "..".
func checkBucket(b string) error {
	if len(b) < 3 || len(b) > 63 {
		return fmt.Errorf("%q: must be 3 to 63 characters", b)
	}
	for i, c := range []byte(b) {
		alnum := (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
		switch {
		case alnum:
		case (c == '.' || c == '-') && i > 0 && i < len(b)-1:
		default:
			return fmt.Errorf("%q: character %d (%q): want lower-case letters, digits, '.' or '-' (not first or last)", b, i, c)
		}
	}
	if strings.Contains(b, "..") {
		return fmt.Errorf("%q: must not contain \"..\"", b)
	}
	return nil
}

// checkPrefix checks a prefix without its trailing '/'.
func checkPrefix(p string) error {
	for i, seg := range strings.Split(p, "/") {
		switch seg {
		case "":
			return fmt.Errorf("%q: segment %d is empty", p, i)
		case ".", "..":
			return fmt.Errorf("%q: segment %d is %q", p, i, seg)
		}
	}
	for _, r := range p {
		if r < 0x20 || r == 0x7f || r == '\\' || r == '?' || r == '#' || r == 0xfffd {
			return fmt.Errorf("%q: character %q not allowed", p, r)
		}
	}
	return nil
}

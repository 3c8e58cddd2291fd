package s3

import (
	"strings"
	"testing"
)

func TestParseURL_Cases(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, in, bucket, prefix, err string
	}{
		{name: "bucket only", in: "s3://my-bucket", bucket: "my-bucket"},
		{name: "bucket slash", in: "s3://my-bucket/", bucket: "my-bucket"},
		{name: "prefix", in: "s3://my.bucket/a/b", bucket: "my.bucket", prefix: "a/b/"},
		{name: "prefix slash", in: "s3://b12/skiff/", bucket: "b12", prefix: "skiff/"},
		{name: "other scheme", in: "gs://bucket/x", err: "must start with s3://"},
		{name: "no bucket", in: "s3:///x", err: "bucket"},
		{name: "short bucket", in: "s3://ab", err: "3 to 63"},
		{name: "upper case", in: "s3://Bucket", err: "character 0"},
		{name: "port", in: "s3://bucket:9000/x", err: "character 6"},
		{name: "user info", in: "s3://u@bucket", err: "character 1"},
		{name: "dash last", in: "s3://bucket-", err: "not first or last"},
		{name: "dot dot bucket", in: "s3://a..b", err: `".."`},
		{name: "empty segment", in: "s3://bucket/a//b", err: "segment 1 is empty"},
		{name: "dot dot prefix", in: "s3://bucket/a/../b", err: `segment 1 is ".."`},
		{name: "query", in: "s3://bucket/a?x=1", err: "not allowed"},
		{name: "control", in: "s3://bucket/a\nb", err: "not allowed"},
		{name: "too long", in: "s3://bucket/" + strings.Repeat("a", 1100), err: "over the limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, p, err := ParseURL(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("ParseURL(%q) = %q, %q, %v; want an error containing %q", tc.in, b, p, err, tc.err)
				}
				return
			}
			if err != nil || b != tc.bucket || p != tc.prefix {
				t.Fatalf("ParseURL(%q) = %q, %q, %v; want %q, %q", tc.in, b, p, err, tc.bucket, tc.prefix)
			}
		})
	}
}

func TestConfig_ValidateNamesField(t *testing.T) {
	t.Parallel()
	good := DefaultConfig("bucket", "p/")
	good.TempDir = t.TempDir()
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		field string
		edit  func(*Config)
	}{
		{"Bucket", func(c *Config) { c.Bucket = "" }},
		{"Bucket", func(c *Config) { c.Bucket = "No_Such" }},
		{"Prefix", func(c *Config) { c.Prefix = "a//b/" }},
		{"TempDir", func(c *Config) { c.TempDir = "" }},
		{"PartSize", func(c *Config) { c.PartSize = 1 << 20 }},
		{"Threads", func(c *Config) { c.Threads = 0 }},
		{"SecretAccessKey", func(c *Config) { c.AccessKeyID = "AK" }},
		{"Endpoint", func(c *Config) { c.Endpoint = "ftp://host" }},
		{"Endpoint", func(c *Config) { c.Endpoint = "http://host/path" }},
		{"Endpoint", func(c *Config) { c.Endpoint = "http://user:pw@host" }},
	} {
		c := good
		tc.edit(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("Validate of a bad %s = %v, want an error naming it", tc.field, err)
		}
	}
	for in, want := range map[string]string{"": "s3.amazonaws.com", "127.0.0.1:8333": "127.0.0.1:8333", "http://localhost:9000/": "localhost:9000"} {
		c := good
		c.Endpoint = in
		host, _, err := c.endpoint()
		if err != nil || host != want {
			t.Errorf("endpoint(%q) = %q, %v; want %q", in, host, err, want)
		}
	}
}

func FuzzParseURL(f *testing.F) {
	for _, s := range []string{"s3://bucket", "s3://b.c-d/x/y/", "s3://bucket/a//b", "s3://a..b/c", "s3://x\x00y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		b, p, err := ParseURL(in)
		if err != nil {
			return
		}
		// What parses is a valid configuration, and prints back the same.
		c := DefaultConfig(b, p)
		c.TempDir = "tmp"
		if err := c.Validate(); err != nil {
			t.Fatalf("ParseURL(%q) = %q, %q, but Validate says %v", in, b, p, err)
		}
		if p != "" && (!strings.HasSuffix(p, "/") || strings.HasPrefix(p, "/")) {
			t.Fatalf("ParseURL(%q): prefix %q", in, p)
		}
		if b2, p2, err := ParseURL("s3://" + b + "/" + p); err != nil || b2 != b || p2 != p {
			t.Fatalf("round trip of %q: %q, %q, %v", in, b2, p2, err)
		}
	})
}

package launch

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/skiffml/skiff/engine/spec"
)

// API routes the launcher uses; every one takes only a launcher token.
const (
	PathPrefix = "/apis/skiff/v1/launch/" // every launcher route's, and no other's
	PathBlobs  = PathPrefix + "blobs"     // GET /{digest}: an input; POST: an output's bytes
	PathReport = PathPrefix + "report"    // POST: the Report
)

// Client talks to the Skiff API with one launcher token.
type Client struct {
	Base  string // e.g. http://skiff.example:8080
	Token string
	HTTP  *http.Client // nil = http.DefaultClient
}

func (c *Client) do(ctx context.Context, method, p, ctype string, body io.Reader) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.Base, "/")+p, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("%s %s: %s: %s", method, p, resp.Status, bytes.TrimSpace(msg))
	}
	return resp, nil
}

// Blob opens input blob digest.
func (c *Client) Blob(ctx context.Context, digest string) (io.ReadCloser, error) {
	resp, err := c.do(ctx, http.MethodGet, PathBlobs+"/"+digest, "", nil)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// Upload stores r's bytes and returns their reference.
func (c *Client) Upload(ctx context.Context, r io.Reader) (spec.ArtifactRef, error) {
	var ref spec.ArtifactRef
	resp, err := c.do(ctx, http.MethodPost, PathBlobs, "application/octet-stream", r)
	if err != nil {
		return ref, err
	}
	defer resp.Body.Close()
	return ref, json.NewDecoder(resp.Body).Decode(&ref)
}

// Report sends rep and returns the API's receipt.
func (c *Client) Report(ctx context.Context, rep *Report) (ReportReceipt, error) {
	var rc ReportReceipt
	body, err := json.Marshal(rep)
	if err != nil {
		return rc, err
	}
	resp, err := c.do(ctx, http.MethodPost, PathReport, "application/json", bytes.NewReader(body))
	if err != nil {
		return rc, err
	}
	defer resp.Body.Close()
	return rc, json.NewDecoder(resp.Body).Decode(&rc)
}

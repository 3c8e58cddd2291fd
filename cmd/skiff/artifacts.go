package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/skiffml/skiff/api"
	"github.com/skiffml/skiff/engine/spec"
)

func artifactsCommand() *cli.Command {
	return &cli.Command{
		Name:  "artifacts",
		Usage: "list and fetch the artifacts a run's tasks produced",
		Subcommands: []*cli.Command{
			{
				Name:      "ls",
				Aliases:   []string{"list"},
				Usage:     "list a run's artifacts",
				ArgsUsage: "RUN",
				Description: `Examples:
  skiff artifacts ls 3f2a
  skiff artifacts ls 3f2a -o json`,
				Flags:  []cli.Flag{outputFlag()},
				Action: artifactsList,
			},
			{
				Name:      "get",
				Usage:     "write an artifact's bytes (decompressed; a directory as a tar stream), a Metrics artifact as a table",
				ArgsUsage: "RUN TASK OUTPUT",
				Description: `Writes the artifact OUTPUT of TASK to FILE (-o), or to standard output; a
Metrics artifact written to standard output is shown as a table of its
values. An artifact list's items are OUTPUT[0], OUTPUT[1], ...

Examples:
  skiff artifacts get 3f2a train model -o model.pkl
  skiff artifacts get 3f2a evaluate metrics`,
				Flags:  []cli.Flag{&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "write to `FILE` (- for standard output)"}},
				Action: artifactGet(false),
			},
			{
				Name:      "cat",
				Usage:     "write an artifact's bytes to standard output",
				ArgsUsage: "RUN TASK OUTPUT",
				Description: `Example:
  skiff artifacts cat 3f2a report summary | less`,
				Action: artifactGet(true),
			},
		},
	}
}

// artifactRow is one artifact of a run.
type artifactRow struct {
	Task   string           `json:"task"`
	Output string           `json:"output"`
	Ref    spec.ArtifactRef `json:"artifact"`
}

// runArtifacts lists the artifacts of a run's tasks, in task order.
func runArtifacts(r api.RunSummary) []artifactRow {
	rows := []artifactRow{}
	for _, t := range r.Tasks {
		names := make([]string, 0, len(t.Outputs))
		for k := range t.Outputs {
			names = append(names, k)
		}
		slices.Sort(names)
		for _, name := range names {
			raw := bytes.TrimSpace(t.Outputs[name])
			var one spec.ArtifactRef
			var list []spec.ArtifactRef
			switch {
			case bytes.HasPrefix(raw, []byte("{")) && json.Unmarshal(raw, &one) == nil && one.Digest != "":
				rows = append(rows, artifactRow{t.Name, name, one})
			case bytes.HasPrefix(raw, []byte("[")) && json.Unmarshal(raw, &list) == nil && len(list) > 0 && list[0].Digest != "":
				for i, a := range list {
					rows = append(rows, artifactRow{t.Name, fmt.Sprintf("%s[%d]", name, i), a})
				}
			}
		}
	}
	return rows
}

func artifactsList(c *cli.Context) error {
	if c.NArg() != 1 {
		return usageError("artifacts ls: expected one RUN id")
	}
	format := c.String("output")
	if err := checkOutput(format); err != nil {
		return err
	}
	k, r, err := dialRun(c, c.Args().First())
	if err != nil {
		return err
	}
	defer k.close()
	rows := runArtifacts(r)
	if ok, err := writeDoc(format, rows); ok {
		return err
	}
	if format == "name" {
		for _, a := range rows {
			fmt.Println(a.Task + "/" + a.Output)
		}
		return nil
	}
	tw := newTable(os.Stdout)
	head := "TASK\tOUTPUT\tTYPE\tSIZE"
	if format == "wide" {
		head += "\tDIGEST"
	}
	fmt.Fprintln(tw, head)
	for _, a := range rows {
		typ := string(a.Ref.Type)
		if a.Ref.Dir {
			typ += " (dir)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s", a.Task, a.Output, dash(typ), byteSize(a.Ref.Size))
		if format == "wide" {
			fmt.Fprintf(tw, "\t%s", a.Ref.Digest)
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}

// byteSize prints n bytes in binary units ("32 B", "1.5 MiB").
func byteSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func artifactGet(raw bool) cli.ActionFunc {
	return func(c *cli.Context) error {
		if c.NArg() != 3 {
			return usageError("artifacts %s: expected RUN TASK OUTPUT", c.Command.Name)
		}
		k, r, err := dialRun(c, c.Args().Get(0))
		if err != nil {
			return err
		}
		defer k.close()
		task, output := c.Args().Get(1), c.Args().Get(2)
		var ref *spec.ArtifactRef
		var have []string
		for _, a := range runArtifacts(r) {
			if a.Task == task {
				have = append(have, a.Output)
				if a.Output == output {
					ref = &a.Ref
				}
			}
		}
		if ref == nil {
			if len(have) == 0 {
				return usageError("run %s: task %q has no artifacts", short(r.RunID), task)
			}
			return usageError("run %s: task %s has no artifact %q (it has %s)", short(r.RunID), task, output, strings.Join(have, ", "))
		}
		rc, err := k.Artifact(c.Context, ref.Digest)
		if err != nil {
			return clientErr(err)
		}
		defer rc.Close()
		rc = verifiedBody(rc, ref.Digest)
		file := ""
		if !raw {
			file = c.String("output")
		}
		if file == "" && !raw && ref.Type == spec.TypeMetrics {
			return printMetrics(rc, ref.Metadata)
		}
		if file == "" || file == "-" {
			_, err = io.Copy(os.Stdout, rc)
			return err
		}
		// A temp file renamed into place: bytes that do not verify are
		// never left under the name asked for.
		f, err := os.CreateTemp(filepath.Dir(file), ".skiff-artifact-*")
		if err != nil {
			return usageError("-o: %v", err)
		}
		defer os.Remove(f.Name())
		if _, err := io.Copy(f, rc); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		if err := os.Chmod(f.Name(), 0o644); err != nil {
			return err
		}
		if err := os.Rename(f.Name(), file); err != nil {
			return usageError("-o: %v", err)
		}
		fmt.Fprintf(os.Stderr, "wrote %s (%s)\n", file, byteSize(ref.Size))
		return nil
	}
}

// printMetrics shows a Metrics artifact (a JSON object, and its metadata)
// as a table of names and values; other content is written as it is.
func printMetrics(r io.Reader, meta json.RawMessage) error {
	data, err := io.ReadAll(io.LimitReader(r, 16<<20))
	if err != nil {
		return err
	}
	rows := metricRows(meta, data)
	if len(rows) == 0 {
		_, err := os.Stdout.Write(data)
		return err
	}
	tw := newTable(os.Stdout)
	fmt.Fprintln(tw, "METRIC\tVALUE")
	for _, kv := range rows {
		fmt.Fprintf(tw, "%s\t%s\n", kv[0], kv[1])
	}
	return tw.Flush()
}

// metricRows are the scalar leaves of a Metrics artifact's metadata and
// content, as dotted names and values.
func metricRows(meta json.RawMessage, data []byte) [][2]string {
	var rows [][2]string
	for _, doc := range [][]byte{meta, data} {
		var v any
		if len(doc) > 0 && json.Unmarshal(doc, &v) == nil {
			flattenJSON(v, "", &rows)
		}
	}
	return rows
}

// flattenJSON lists the scalar leaves of v as dotted names and values.
func flattenJSON(v any, prefix string, out *[][2]string) {
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			name := k
			if prefix != "" {
				name = prefix + "." + k
			}
			flattenJSON(x[k], name, out)
		}
	case []any:
		for i, e := range x {
			flattenJSON(e, fmt.Sprintf("%s[%d]", prefix, i), out)
		}
	default:
		b, _ := json.Marshal(x)
		*out = append(*out, [2]string{prefix, string(b)})
	}
}

// verifiedBody checks, as it is read, that the bytes of rc hash to digest:
// at EOF a mismatch is an error instead. The server verifies what it reads
// from the artifact store, but once it has started sending it can only
// stop, which a client may not see as an error.
func verifiedBody(rc io.ReadCloser, digest string) io.ReadCloser {
	return &verifyingBody{ReadCloser: rc, digest: digest, h: sha256.New()}
}

type verifyingBody struct {
	io.ReadCloser
	digest string
	h      hash.Hash
}

func (v *verifyingBody) Read(p []byte) (int, error) {
	n, err := v.ReadCloser.Read(p)
	v.h.Write(p[:n])
	if err == io.EOF {
		if got := "sha256:" + hex.EncodeToString(v.h.Sum(nil)); got != v.digest {
			return n, fmt.Errorf("artifact %s: the bytes received hash to %s (damaged in the artifact store?)", v.digest, got)
		}
	}
	return n, err
}

package main

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strings"

	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/executors/local"
)

// nodeCaps is what this machine offers the steps the local executor runs.
type nodeCaps struct {
	milliCPU int64
	gpus     int
	// gpuSource says where the GPU count comes from, for messages.
	gpuSource string
}

// thisNode reads this machine's capacity as the local executor will:
// SKIFF_GPUS, else nvidia-smi (asked only when p asks for GPUs).
func thisNode(ctx context.Context, p *spec.Plan) (nodeCaps, error) {
	n := nodeCaps{milliCPU: int64(runtime.NumCPU()) * 1000}
	if !asksGPUs(p) {
		return n, nil
	}
	ids, err := configuredGPUs()
	if err != nil {
		return n, usageError("%v", err)
	}
	if ids != nil {
		n.gpus, n.gpuSource = len(ids), fmt.Sprintf("SKIFF_GPUS=%q", os.Getenv("SKIFF_GPUS"))
		return n, nil
	}
	gpus, err := local.DetectGPUs(ctx)
	if err != nil {
		return n, fmt.Errorf("nvidia-smi: %w", err)
	}
	n.gpus, n.gpuSource = len(gpus), "nvidia-smi"
	return n, nil
}

// preflight finds what would fail the run at its first step although it
// is known before running: a step asking more GPUs or CPU than this node
// has (for steps the local executor runs), a docker step without an image.
// defaultExecutor is run's --executor ("" = local). Each error names the
// field path, as validation errors do.
func preflight(p *spec.Plan, defaultExecutor string, node nodeCaps) []spec.FieldError {
	var errs []spec.FieldError
	var walk func(p *spec.Plan, prefix, def string)
	walk = func(p *spec.Plan, prefix, def string) {
		if p.Executor != "" {
			def = p.Executor
		}
		for i := range p.Tasks {
			t := &p.Tasks[i]
			path := fmt.Sprintf("%stasks[%d]", prefix, i)
			if t.Body != nil {
				walk(t.Body, path+".", def)
				continue
			}
			ex := t.Executor
			if ex == "" {
				ex = def
			}
			switch ex {
			case "", "local":
				r := t.Resources
				if r.GPU > node.gpus {
					errs = append(errs, spec.FieldError{Path: path + ".resources.gpu", Msg: fmt.Sprintf(
						"task %s asks %d GPU(s), more than this node's %d (%s); lower it, or run it where there are more (--server)", t.Name, r.GPU, node.gpus, node.gpuSource)})
				}
				if r.MilliCPU > node.milliCPU {
					errs = append(errs, spec.FieldError{Path: path + ".resources.cpu", Msg: fmt.Sprintf(
						"task %s asks %dm CPU, more than this node's %dm; lower it, or run it where there is more (--server)", t.Name, r.MilliCPU, node.milliCPU)})
				}
			case "docker":
				if t.Image == "" {
					errs = append(errs, spec.FieldError{Path: path + ".image", Msg: fmt.Sprintf(
						"task %s runs with the docker executor but names no image; give it an image: (or run it with executor: local)", t.Name)})
				}
			}
		}
	}
	walk(p, "", defaultExecutor)
	return errs
}

// preflightError is preflight's errors as one bad-input error, or nil.
func preflightError(file string, errs []spec.FieldError) error {
	if len(errs) == 0 {
		return nil
	}
	lines := make([]string, len(errs))
	for i, e := range errs {
		lines[i] = e.Error()
	}
	if len(lines) == 1 {
		return usageError("%s: %s", file, lines[0])
	}
	return usageError("%s: %d errors:\n  %s", file, len(lines), strings.Join(lines, "\n  "))
}

// nodeSelectors lists the paths of the tasks of p (every depth) that have
// a nodeSelector.
func nodeSelectors(p *spec.Plan, prefix string) []string {
	var out []string
	for i := range p.Tasks {
		t := &p.Tasks[i]
		path := fmt.Sprintf("%stasks[%d]", prefix, i)
		if len(t.NodeSelector) > 0 {
			out = append(out, path)
		}
		if t.Body != nil {
			out = append(out, nodeSelectors(t.Body, path+".")...)
		}
	}
	return out
}

func asksGPUs(p *spec.Plan) bool {
	for i := range p.Tasks {
		t := &p.Tasks[i]
		if t.Resources.GPU > 0 || t.Body != nil && asksGPUs(t.Body) {
			return true
		}
	}
	return false
}

// checkPreflight runs preflight for FILE's plan on this node.
func checkPreflight(ctx context.Context, file string, p *spec.Plan, defaultExecutor string) error {
	node, err := thisNode(ctx, p)
	if err != nil {
		return err
	}
	return preflightError(file, preflight(p, defaultExecutor, node))
}

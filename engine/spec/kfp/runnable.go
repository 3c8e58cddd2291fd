package kfp

import (
	"fmt"
	"strings"

	"github.com/skiffml/skiff/engine/spec"
)

// backendImagePrefix marks the steps KFP's backend runs itself, not a
// container: the SDK's kubernetes.CreatePVC and DeletePVC compile to an
// executor whose image is argostub/createpvc or argostub/deletepvc.
const backendImagePrefix = "argostub/"

// Unrunnable warns about each step of p that executor (the default for
// steps that name none; "" is local) cannot run: a KFP backend step
// (CreatePVC, DeletePVC), which only KFP's own backend runs, and, for the
// local executor, a step with no command, which runs its image's
// entrypoint (the docker and kube executors can). Each warning names the
// step by its path in the plan.
func Unrunnable(p *spec.Plan, executor string) []Warning {
	var out []Warning
	var walk func(p *spec.Plan, path, def string)
	walk = func(p *spec.Plan, path, def string) {
		if p.Executor != "" {
			def = p.Executor
		}
		for i := range p.Tasks {
			t := &p.Tasks[i]
			tp := path + t.Name
			if t.Body != nil {
				walk(t.Body, tp+".", def)
				continue
			}
			ex := t.Executor
			if ex == "" {
				ex = def
			}
			switch {
			case strings.HasPrefix(t.Image, backendImagePrefix):
				out = append(out, Warning{Path: "tasks." + tp, Msg: fmt.Sprintf(
					"a KFP backend step (%s, from kfp.kubernetes): only KFP's own backend runs it, no Skiff executor can; the run will fail at this step", strings.TrimPrefix(t.Image, backendImagePrefix))})
			case len(t.Command) == 0 && (ex == "" || ex == "local"):
				out = append(out, Warning{Path: "tasks." + tp, Msg: fmt.Sprintf(
					"no command: the step runs its image's entrypoint (%s), which the local executor cannot; run it with --executor docker", t.Image)})
			}
		}
	}
	walk(p, "", executor)
	return out
}

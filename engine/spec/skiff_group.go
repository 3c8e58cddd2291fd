package spec

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Groups in Skiff YAML: a task with `tasks` (a body), optionally a
// `parallelFor`, or with `if` (and `elif`, `else`): see
// docs/pipeline-format.md.

func (d *skiffDecoder) isGroup(m map[string]any) bool {
	for _, k := range []string{"tasks", "parallelFor", "if", "elif", "else", "pipeline"} {
		if _, ok := m[k]; ok {
			return true
		}
	}
	return false
}

// group decodes a group task; command-step fields left in m are reported by
// Finalize (they are decoded by task already).
func (d *skiffDecoder) group(path string, m map[string]any, t *Task) {
	if pv, ok := m["pipeline"]; ok {
		if _, inline := m["tasks"]; inline {
			d.errs.add(path+".pipeline", "set pipeline (a file) or tasks, not both")
			return
		}
		for _, k := range []string{"parallelFor", "if", "elif", "else", "outputs"} {
			if _, ok := m[k]; ok {
				d.errs.add(path+"."+k, "not with pipeline: a sub-pipeline's outputs are its file's outputs; wrap it in a group for loops and conditions")
			}
		}
		t.Body = d.include(path+".pipeline", d.str(path+".pipeline", pv))
		return
	}
	_, hasIf := m["if"]
	if !hasIf {
		for _, k := range []string{"elif", "else"} {
			if _, ok := m[k]; ok {
				d.errs.add(path+"."+k, "needs an if")
			}
		}
	}
	body := &Plan{Name: t.Name}
	body.Tasks = d.tasks(path+".tasks", m["tasks"])
	body.Outputs = d.outputRefs(path+".outputs", m["outputs"])
	for _, in := range t.Inputs {
		body.Params = append(body.Params, Param{Name: in.Name, Type: in.Type})
	}
	if lv, ok := m["parallelFor"]; ok {
		t.ParallelFor = d.loop(path+".parallelFor", lv, body)
	}
	if !hasIf {
		t.Body = body
		return
	}
	if t.ParallelFor != nil {
		d.errs.add(path+".if", "a loop cannot also be a condition: put the if group inside the loop")
		return
	}
	// if / elif / else: a group whose body holds one group per branch, each
	// guarded by its condition and the negation of the ones before it.
	cond := d.str(path+".if", m["if"])
	outer := &Plan{Name: t.Name, Params: slices.Clone(body.Params)}
	var prev []string
	branch := func(name, c string, b *Plan) {
		when := strings.Join(append(slices.Clone(prev), paren(c)), " && ")
		if c == "" {
			when = strings.Join(prev, " && ")
		}
		bt := Task{Name: name, When: when, Body: b}
		for _, prm := range outer.Params {
			bt.Inputs = append(bt.Inputs, Input{Name: prm.Name, Type: prm.Type, Param: prm.Name})
			b.Params = append(b.Params, Param{Name: prm.Name, Type: prm.Type})
		}
		outer.Tasks = append(outer.Tasks, bt)
		if c != "" {
			prev = append(prev, "!"+paren(c))
		}
	}
	body.Params = nil
	branch("then", cond, body)
	if ev, ok := m["elif"]; ok {
		list, isList := ev.([]any)
		if !isList {
			d.errs.add(path+".elif", "expected a list of {if, tasks}, got "+describe(ev))
		}
		for i, e := range list {
			ep := fmt.Sprintf("%s.elif[%d]", path, i)
			em := d.object(ep, e, elifFields)
			if em == nil {
				continue
			}
			c := d.str(ep+".if", em["if"])
			if c == "" {
				d.errs.add(ep+".if", "required")
			}
			b := &Plan{Name: fmt.Sprintf("%s-elif-%d", t.Name, i+1)}
			b.Tasks = d.tasks(ep+".tasks", em["tasks"])
			b.Outputs = d.outputRefs(ep+".outputs", em["outputs"])
			branch(fmt.Sprintf("elif-%d", i+1), c, b)
		}
	}
	if ev, ok := m["else"]; ok {
		b := &Plan{Name: t.Name + "-else"}
		if list, isList := ev.([]any); isList {
			b.Tasks = d.tasks(path+".else", list)
		} else if em := d.object(path+".else", ev, elseFields); em != nil {
			b.Tasks = d.tasks(path+".else.tasks", em["tasks"])
			b.Outputs = d.outputRefs(path+".else.outputs", em["outputs"])
		}
		branch("else", "", b)
	}
	// The group's outputs: each name any branch declares, from whichever
	// branch ran.
	names := map[string][]Ref{}
	for _, bt := range outer.Tasks {
		for _, o := range bt.Body.Outputs {
			names[o.Name] = append(names[o.Name], Ref{Task: bt.Name, Output: o.Name})
		}
	}
	for _, n := range sortedKeys(names) {
		outer.Outputs = append(outer.Outputs, PlanOutput{Name: n, OneOf: names[n]})
	}
	t.Body = outer
}

func paren(c string) string { return "(" + c + ")" }

func (d *skiffDecoder) tasks(path string, v any) []Task {
	if v == nil {
		d.errs.add(path, "required: a list of tasks")
		return nil
	}
	ts, ok := v.([]any)
	if !ok {
		d.errs.add(path, "expected a list of tasks, got "+describe(v))
		return nil
	}
	out := make([]Task, len(ts))
	for i, tv := range ts {
		d.task(&out[i], fmt.Sprintf("%s[%d]", path, i), tv)
	}
	return out
}

// outputRefs reads `name: TASK.OUTPUT` pairs.
func (d *skiffDecoder) outputRefs(path string, v any) []PlanOutput {
	om := d.object(path, v, nil)
	var outs []PlanOutput
	for _, name := range sortedKeys(om) {
		outs = append(outs, PlanOutput{Name: name, From: d.ref(key(path, name), om[name])})
	}
	return outs
}

func (d *skiffDecoder) loop(path string, v any, body *Plan) *Loop {
	m := d.object(path, v, loopFields)
	if m == nil {
		return &Loop{}
	}
	l := &Loop{ItemParam: d.str(path+".as", m["as"]), Parallelism: d.int(path+".parallelism", m["parallelism"])}
	if l.ItemParam == "" {
		l.ItemParam = "item"
	}
	itemType := Type(d.str(path+".itemType", m["itemType"]))
	switch iv := m["items"].(type) {
	case nil:
		d.errs.add(path+".items", "required: a list, {param: NAME} or {from: TASK.OUTPUT}")
	case []any:
		l.Items = Input{Type: TypeList, Value: d.raw(iv)}
		if itemType == "" {
			itemType = inferElemType(iv)
		}
	default:
		l.Items = d.input(path+".items", "items", iv)
		if l.Items.Value != nil {
			d.errs.add(path+".items", "write a literal list directly: items: [a, b]")
		}
	}
	if itemType == "" && l.Items.From == nil && l.Items.Param == "" {
		itemType = TypeString
	}
	// The item's type may still be unknown (items from a parameter or an
	// output): liftPlan fills it from the source once types are known, or
	// Finalize reports it.
	body.Params = append(body.Params, Param{Name: l.ItemParam, Type: itemType})
	return l
}

// inferElemType is the common type of a literal list's items: int, float
// (ints and floats mixed), string, bool, list or object; "" when mixed.
func inferElemType(items []any) Type {
	var t Type
	for _, it := range items {
		var et Type
		switch v := it.(type) {
		case string:
			et = TypeString
		case bool:
			et = TypeBool
		case []any:
			et = TypeList
		case map[string]any:
			et = TypeObject
		case json.Number:
			if _, err := jsonInt(v); err == nil && !strings.ContainsAny(string(v), ".eE") {
				et = TypeInt
			} else {
				et = TypeFloat
			}
		default:
			return ""
		}
		switch {
		case t == "":
			t = et
		case t == et:
		case (t == TypeInt || t == TypeFloat) && (et == TypeInt || et == TypeFloat):
			t = TypeFloat
		default:
			return ""
		}
	}
	return t
}

// liftPlan lets a body's tasks use the enclosing pipeline's parameters and
// tasks directly, as Skiff YAML allows: each such reference becomes a body
// parameter bound by an input of the group (named after the parameter, or
// TASK--OUTPUT), and an `after` naming an outer task moves to the group.
// It returns what the enclosing group must bind (body only) and the outer
// tasks it must run after.
func liftPlan(p *Plan, isBody bool) (needs []Input, after []string) {
	local := make(map[string]bool, len(p.Tasks))
	for _, t := range p.Tasks {
		local[t.Name] = true
	}
	params := make(map[string]bool, len(p.Params))
	for _, prm := range p.Params {
		params[prm.Name] = true
	}
	need := func(in Input) string {
		name := in.Param
		if in.From != nil {
			name = in.From.Task + "--" + in.From.Output
		}
		if !params[name] {
			params[name] = true
			p.Params = append(p.Params, Param{Name: name})
			src := Input{Name: name, Param: in.Param, From: in.From}
			if in.Field == "" {
				src.Type = in.Type
			}
			needs = append(needs, src)
		}
		return name
	}
	rewrite := func(in *Input) {
		if !isBody {
			return
		}
		switch {
		case in.From != nil && !local[in.From.Task]:
			in.Param, in.From = need(*in), nil
		case in.Param != "" && !params[in.Param]:
			need(*in)
		}
	}
	for i := range p.Tasks {
		t := &p.Tasks[i]
		if t.Body != nil {
			inner, innerAfter := liftPlan(t.Body, true)
			for _, src := range inner {
				if !slices.ContainsFunc(t.Inputs, func(in Input) bool { return in.Name == src.Name }) {
					t.Inputs = append(t.Inputs, src)
				}
			}
			for _, a := range innerAfter {
				if !slices.Contains(t.After, a) {
					t.After = append(t.After, a)
				}
			}
			if t.ParallelFor != nil {
				rewrite(&t.ParallelFor.Items)
			}
		}
		for j := range t.Inputs {
			rewrite(&t.Inputs[j])
		}
		if isBody {
			kept := t.After[:0]
			for _, a := range t.After {
				if local[a] {
					kept = append(kept, a)
				} else if !slices.Contains(after, a) {
					after = append(after, a)
				}
			}
			t.After = kept
		}
	}
	return needs, after
}

// include reads a sub-pipeline file, relative to the including file.
func (d *skiffDecoder) include(path, rel string) *Plan {
	if rel == "" {
		return nil
	}
	if d.file == "" {
		d.errs.add(path, "a sub-pipeline file can only be read from a pipeline file (skiff run FILE)")
		return nil
	}
	dir := filepath.Dir(d.file)
	file := filepath.Join(dir, filepath.FromSlash(rel))
	abs, err := filepath.Abs(file)
	if err != nil {
		d.errs.add(path, err.Error())
		return nil
	}
	if slices.Contains(d.open, abs) {
		d.errs.add(path, fmt.Sprintf("%s includes itself (through %s)", quote(rel), strings.Join(d.open, " -> ")))
		return nil
	}
	data, err := os.ReadFile(file)
	if err != nil {
		d.errs.add(path, fmt.Sprintf("read sub-pipeline: %v", err))
		return nil
	}
	sub := &skiffDecoder{file: file, open: append(slices.Clone(d.open), abs)}
	p, err := decodeSkiff(data, sub)
	if err != nil {
		d.errs.add(path, fmt.Sprintf("in %s: %v", rel, err))
		return nil
	}
	// The sub-pipeline's default executor applies to its own tasks.
	if p.Executor != "" {
		setExecutor(p, p.Executor)
		p.Executor = ""
	}
	// {{pipeline.dir}} in the sub-pipeline means its own directory.
	if rd := filepath.ToSlash(filepath.Dir(rel)); rd != "." {
		rewriteDir(p, rd)
	}
	return p
}

// rewriteDir makes {{pipeline.dir}} in p's templates point at sub, a
// directory relative to the including pipeline's.
func rewriteDir(p *Plan, sub string) {
	fix := func(s string) string { return strings.ReplaceAll(s, "{{pipeline.dir}}", "{{pipeline.dir}}/"+sub) }
	for i := range p.Tasks {
		t := &p.Tasks[i]
		for j := range t.Command {
			t.Command[j] = fix(t.Command[j])
		}
		for j := range t.Args {
			t.Args[j] = fix(t.Args[j])
		}
		for j := range t.Env {
			t.Env[j].Value = fix(t.Env[j].Value)
		}
		t.WorkingDir = fix(t.WorkingDir)
		if t.Body != nil {
			rewriteDir(t.Body, sub)
		}
	}
}

// ParseSkiffFile reads and compiles a Skiff YAML pipeline file; a group's
// `pipeline: FILE` (a sub-pipeline) is read relative to it.
func ParseSkiffFile(file string) (*Plan, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	return ParseSkiffData(data, file)
}

// ParseSkiffData compiles data, read from file: sub-pipeline files are read
// relative to it.
func ParseSkiffData(data []byte, file string) (*Plan, error) {
	abs, err := filepath.Abs(file)
	if err != nil {
		return nil, err
	}
	return parseSkiff(data, &skiffDecoder{file: file, open: []string{abs}})
}

func setExecutor(p *Plan, x string) {
	for i := range p.Tasks {
		t := &p.Tasks[i]
		switch {
		case t.Body != nil:
			setExecutor(t.Body, x)
		case t.Executor == "":
			t.Executor = x
		}
	}
}

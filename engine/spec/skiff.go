package spec

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
)

// ParseSkiff compiles a Skiff YAML pipeline (docs/pipeline-format.md) into
// a finalized plan. Decoding is strict: an unknown field, a value of the
// wrong YAML type or a failed Finalize check is a *ValidationError naming
// the field path of every problem.
func ParseSkiff(data []byte) (*Plan, error) {
	return parseSkiff(data, &skiffDecoder{})
}

func parseSkiff(data []byte, d *skiffDecoder) (*Plan, error) {
	p, err := decodeSkiff(data, d)
	if err != nil {
		return nil, err
	}
	liftPlan(p, false)
	if err := p.Finalize(); err != nil {
		return nil, err
	}
	return p, nil
}

// decodeSkiff decodes a document into a plan, not yet lifted or finalized.
func decodeSkiff(data []byte, d *skiffDecoder) (*Plan, error) {
	doc, err := yamlValue(data)
	if err != nil {
		return nil, YAMLError(err)
	}
	if doc == nil {
		return nil, &ValidationError{Errors: []FieldError{{Msg: "the document is empty"}}}
	}
	p := d.plan(doc)
	if err := d.errs.err(); err != nil {
		return nil, err
	}
	return p, nil
}

// skiffDecoder walks the YAML document (as decoded JSON) and collects
// every error with its path.
type skiffDecoder struct {
	errs errList
	// file is the document's path when read by ParseSkiffFile (sub-pipeline
	// files are read relative to it); open is the chain of files being
	// read, to refuse an include cycle.
	file string
	open []string
}

var (
	planFields  = []string{"name", "description", "executor", "parameters", "tasks", "outputs"}
	paramFields = []string{"type", "default", "description"}
	taskFields  = []string{"name", "description", "executor", "image", "command", "args", "env", "workingDir", "inputs", "outputs", "after", "resources", "nodeSelector", "retry", "cache", "timeout", "when", "ignoreUpstreamFailure",
		"tasks", "parallelFor", "pipeline", "if", "elif", "else"}
	inputFields  = []string{"type", "value", "param", "from", "upstreamStatus", "field"}
	loopFields   = []string{"items", "as", "itemType", "parallelism"}
	elifFields   = []string{"if", "tasks", "outputs"}
	elseFields   = []string{"tasks", "outputs"}
	outputFields = []string{"type"}
	resFields    = []string{"cpu", "memory", "gpu"}
	retryFields  = []string{"limit", "backoff", "factor", "maxBackoff"}
	cacheFields  = []string{"enabled", "maxStaleness", "key"}
)

func (d *skiffDecoder) plan(doc any) *Plan {
	m := d.object("", doc, planFields)
	if m == nil {
		return nil
	}
	p := &Plan{
		Name:        d.str("name", m["name"]),
		Description: d.str("description", m["description"]),
		Executor:    d.str("executor", m["executor"]),
	}
	pm := d.object("parameters", m["parameters"], nil)
	for _, name := range sortedKeys(pm) {
		p.Params = append(p.Params, d.param(key("parameters", name), name, pm[name]))
	}
	if m["tasks"] == nil {
		d.errs.add("tasks", "required: a list of tasks")
	} else if ts, ok := m["tasks"].([]any); !ok {
		d.errs.add("tasks", "expected a list of tasks, got "+describe(m["tasks"]))
	} else {
		p.Tasks = make([]Task, len(ts))
		for i, tv := range ts {
			d.task(&p.Tasks[i], index("tasks", i), tv)
		}
	}
	om := d.object("outputs", m["outputs"], nil)
	for _, name := range sortedKeys(om) {
		path := key("outputs", name)
		p.Outputs = append(p.Outputs, PlanOutput{Name: name, From: d.ref(path, om[name])})
	}
	return p
}

func (d *skiffDecoder) param(path, name string, v any) Param {
	prm := Param{Name: name}
	if s, ok := v.(string); ok { // short form: `k: int`
		prm.Type = Type(s)
		return prm
	}
	m := d.object(path, v, paramFields)
	if m == nil {
		return prm
	}
	prm.Type = Type(d.str(path+".type", m["type"]))
	prm.Description = d.str(path+".description", m["description"])
	if m["default"] != nil {
		prm.Default = d.raw(m["default"])
	}
	return prm
}

// task decodes v into *t (a zero Task): in place, as a Task is large and
// a pipeline may hold tens of thousands.
func (d *skiffDecoder) task(t *Task, path string, v any) {
	m := d.object(path, v, taskFields)
	if m == nil {
		return
	}
	// at is a field's path and value; a field the task leaves out is
	// (no path, nil), which every decoder below takes as absent: the
	// path, only for error messages, is not built for it (most of a
	// task's fields, in a 10,000-task pipeline).
	at := func(name string) (string, any) {
		v := m[name]
		if v == nil {
			return "", nil
		}
		return path + "." + name, v
	}
	t.Name = d.str(at("name"))
	t.Description = d.str(at("description"))
	t.Executor = d.str(at("executor"))
	t.Image = d.str(at("image"))
	t.Command = d.strList(at("command"))
	t.Args = d.strList(at("args"))
	t.WorkingDir = d.str(at("workingDir"))
	t.After = d.strList(at("after"))
	envPath, envV := at("env")
	env := d.object(envPath, envV, nil)
	for _, k := range sortedKeys(env) {
		t.Env = append(t.Env, EnvVar{Name: k, Value: d.str(key(path+".env", k), env[k])})
	}
	insPath, insV := at("inputs")
	ins := d.object(insPath, insV, nil)
	for _, k := range sortedKeys(ins) {
		t.Inputs = append(t.Inputs, d.input(key(path+".inputs", k), k, ins[k]))
	}
	// Decoded for groups too, so that Finalize refuses them there rather
	// than the decoder dropping them unread.
	t.Resources = d.resources(at("resources"))
	t.NodeSelector = d.labels(at("nodeSelector"))
	t.Retry = d.retry(at("retry"))
	t.Cache = d.cache(at("cache"))
	t.Timeout = d.duration(at("timeout"))
	if d.isGroup(m) {
		d.group(path, m, t)
		return
	}
	outPath, outV := at("outputs")
	outs := d.object(outPath, outV, nil)
	for _, k := range sortedKeys(outs) {
		op := key(path+".outputs", k)
		o := Output{Name: k}
		if s, ok := outs[k].(string); ok {
			o.Type = Type(s)
		} else if om := d.object(op, outs[k], outputFields); om != nil {
			o.Type = Type(d.str(op+".type", om["type"]))
		}
		t.Outputs = append(t.Outputs, o)
	}
	t.When = d.str(at("when"))
	if v, ok := m["ignoreUpstreamFailure"]; ok {
		t.IgnoreUpstreamFailure = d.bool(path+".ignoreUpstreamFailure", v)
	}
}

func (d *skiffDecoder) input(path, name string, v any) Input {
	in := Input{Name: name}
	m := d.object(path, v, inputFields)
	if m == nil {
		if v == nil {
			d.errs.add(path, "expected an object with type and one of value, param or from")
		}
		return in
	}
	in.Type = Type(d.str(path+".type", m["type"]))
	in.Param = d.str(path+".param", m["param"])
	if fv, ok := m["from"]; ok && fv != nil {
		r := d.ref(path+".from", fv)
		in.From = &r
	}
	if vv, ok := m["value"]; ok {
		in.Value = d.raw(vv)
	}
	if sv, ok := m["upstreamStatus"]; ok {
		in.UpstreamStatus = d.bool(path+".upstreamStatus", sv)
	}
	in.Field = d.str(path+".field", m["field"])
	return in
}

// ref reads "TASK.OUTPUT".
func (d *skiffDecoder) ref(path string, v any) Ref {
	s := d.str(path, v)
	task, out, ok := strings.Cut(s, ".")
	if s != "" && (!ok || task == "" || out == "") {
		d.errs.add(path, fmt.Sprintf("expected TASK.OUTPUT, got %s", quote(s)))
	} else if s == "" && v == nil {
		d.errs.add(path, "expected TASK.OUTPUT")
	}
	return Ref{Task: task, Output: out}
}

func (d *skiffDecoder) resources(path string, v any) Resources {
	var r Resources
	m := d.object(path, v, resFields)
	if m == nil {
		return r
	}
	if c := m["cpu"]; c != nil {
		n, err := parseCPU(c)
		if err != nil {
			d.errs.add(path+".cpu", err.Error())
		}
		r.MilliCPU = n
	}
	if mem := m["memory"]; mem != nil {
		n, err := parseMemory(mem)
		if err != nil {
			d.errs.add(path+".memory", err.Error())
		}
		r.MemoryBytes = n
	}
	r.GPU = d.int(path+".gpu", m["gpu"])
	return r
}

// labels reads a node selector: an object of label names to values.
func (d *skiffDecoder) labels(path string, v any) map[string]string {
	m := d.object(path, v, nil)
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for _, k := range sortedKeys(m) {
		kp := key(path, k)
		val := d.str(kp, m[k])
		if err := CheckLabel(k, val); err != nil {
			d.errs.add(kp, err.Error())
			continue
		}
		out[k] = val
	}
	return out
}

func (d *skiffDecoder) retry(path string, v any) *Retry {
	m := d.object(path, v, retryFields)
	if m == nil {
		return nil
	}
	return &Retry{
		Limit:      d.int(path+".limit", m["limit"]),
		Backoff:    d.duration(path+".backoff", m["backoff"]),
		Factor:     d.float(path+".factor", m["factor"]),
		MaxBackoff: d.duration(path+".maxBackoff", m["maxBackoff"]),
	}
}

func (d *skiffDecoder) cache(path string, v any) *Cache {
	if b, ok := v.(bool); ok { // short form: `cache: true`
		return &Cache{Enabled: b}
	}
	m := d.object(path, v, cacheFields)
	if m == nil {
		return nil
	}
	c := &Cache{Enabled: true, MaxStaleness: d.duration(path+".maxStaleness", m["maxStaleness"]), Key: d.str(path+".key", m["key"])}
	if e, ok := m["enabled"]; ok && e != nil {
		c.Enabled = d.bool(path+".enabled", e)
	}
	return c
}

// object checks that v is a mapping whose keys are all in fields (any key
// when fields is nil). A null v is an absent field: nil, no error.
func (d *skiffDecoder) object(path string, v any, fields []string) map[string]any {
	if v == nil {
		return nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		d.errs.add(path, "expected a mapping, got "+describe(v))
		return nil
	}
	if fields != nil && hasUnknownKey(m, fields) {
		// Sorted only when one is reported, so the errors come in a
		// stable order: most mappings have none.
		for _, k := range sortedKeys(m) {
			if !slices.Contains(fields, k) {
				d.errs.add(key(path, k), "unknown field; known fields: "+strings.Join(fields, ", "))
			}
		}
	}
	return m
}

// hasUnknownKey reports whether m has a key not in fields.
func hasUnknownKey(m map[string]any, fields []string) bool {
	for k := range m {
		if !slices.Contains(fields, k) {
			return true
		}
	}
	return false
}

func (d *skiffDecoder) str(path string, v any) string {
	if v == nil {
		return ""
	}
	s, ok := v.(string)
	if !ok {
		hint := ""
		switch v.(type) {
		case json.Number, bool:
			hint = " (quote it to make it text)"
		}
		d.errs.add(path, "expected a string, got "+describe(v)+hint)
	}
	return s
}

func (d *skiffDecoder) strList(path string, v any) []string {
	if v == nil {
		return nil
	}
	l, ok := v.([]any)
	if !ok {
		d.errs.add(path, "expected a list of strings, got "+describe(v))
		return nil
	}
	if len(l) == 0 {
		return nil
	}
	out := make([]string, len(l))
	for i, e := range l {
		if s, ok := e.(string); ok {
			out[i] = s
			continue
		}
		if e == nil {
			d.errs.add(index(path, i), "expected a string, got null")
			continue
		}
		out[i] = d.str(index(path, i), e)
	}
	return out
}

func (d *skiffDecoder) int(path string, v any) int {
	if v == nil {
		return 0
	}
	n, ok := v.(json.Number)
	if !ok {
		d.errs.add(path, "expected an integer, got "+describe(v))
		return 0
	}
	i, err := jsonInt(n)
	if err != nil || i > math.MaxInt32 || i < math.MinInt32 {
		d.errs.add(path, "expected an integer, got "+string(n))
		return 0
	}
	return int(i)
}

func (d *skiffDecoder) float(path string, v any) float64 {
	if v == nil {
		return 0
	}
	n, ok := v.(json.Number)
	if !ok {
		d.errs.add(path, "expected a number, got "+describe(v))
		return 0
	}
	f, err := n.Float64()
	if err != nil {
		d.errs.add(path, "expected a number, got "+string(n))
	}
	return f
}

func (d *skiffDecoder) bool(path string, v any) bool {
	b, ok := v.(bool)
	if !ok {
		d.errs.add(path, "expected true or false, got "+describe(v))
	}
	return b
}

func (d *skiffDecoder) duration(path string, v any) Duration {
	if v == nil {
		return 0
	}
	var dur Duration
	switch v.(type) {
	case string, json.Number:
		if err := dur.UnmarshalJSON(d.raw(v)); err != nil {
			d.errs.add(path, err.Error())
		}
	default:
		d.errs.add(path, "expected a duration like 30s or 5m, got "+describe(v))
	}
	return dur
}

// raw re-encodes a decoded value as compact JSON (numbers keep their text).
func (d *skiffDecoder) raw(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil { // cannot happen for decoded JSON
		return json.RawMessage("null")
	}
	return b
}

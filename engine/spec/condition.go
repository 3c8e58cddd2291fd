package spec

import (
	"encoding/json"
	"fmt"
	"sync"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
)

// A task's `when` is a CEL expression over its resolved inputs, available
// as the map `inputs`: parameters as their values (int, double, bool,
// string, list, map), artifacts as {digest, size, type}, and an
// upstreamStatus input as {state, error, tasks}. It must evaluate to a
// bool; false skips the task (and what depends on it).

var (
	celEnvOnce sync.Once
	celEnv     *cel.Env
	celEnvErr  error
	celProgs   sync.Map // expr -> cel.Program
)

func conditionEnv() (*cel.Env, error) {
	celEnvOnce.Do(func() {
		celEnv, celEnvErr = cel.NewEnv(cel.Variable("inputs", cel.MapType(cel.StringType, cel.DynType)))
	})
	return celEnv, celEnvErr
}

// CompileCondition checks that expr is a valid CEL condition (it parses,
// type-checks against `inputs` and yields a bool) and caches its program.
func CompileCondition(expr string) error {
	_, err := conditionProgram(expr)
	return err
}

func conditionProgram(expr string) (cel.Program, error) {
	if p, ok := celProgs.Load(expr); ok {
		return p.(cel.Program), nil
	}
	env, err := conditionEnv()
	if err != nil {
		return nil, err
	}
	ast, iss := env.Compile(expr)
	if iss != nil && iss.Err() != nil {
		return nil, fmt.Errorf("invalid CEL: %v", iss.Err())
	}
	if t := ast.OutputType(); t != cel.BoolType && t != cel.DynType {
		return nil, fmt.Errorf("must be a bool expression, not %s", t)
	}
	prg, err := env.Program(ast, cel.CostLimit(1_000_000))
	if err != nil {
		return nil, fmt.Errorf("invalid CEL: %w", err)
	}
	celProgs.Store(expr, prg)
	return prg, nil
}

// EvalCondition evaluates a task's `when` over its resolved inputs.
func EvalCondition(t *Task, inputs map[string]Value) (bool, error) {
	prg, err := conditionProgram(t.When)
	if err != nil {
		return false, err
	}
	vars := make(map[string]any, len(inputs))
	for _, in := range t.Inputs {
		v, ok := inputs[in.Name]
		if !ok {
			continue
		}
		x, err := celValue(in.Type, v)
		if err != nil {
			return false, fmt.Errorf("input %q: %w", in.Name, err)
		}
		vars[in.Name] = x
	}
	out, _, err := prg.Eval(map[string]any{"inputs": vars})
	if err != nil {
		return false, err
	}
	b, ok := out.(types.Bool)
	if !ok {
		return false, fmt.Errorf("evaluated to %v, not a bool", out)
	}
	return bool(b), nil
}

// celValue converts a resolved input into the CEL value of its type.
func celValue(t Type, v Value) (any, error) {
	if v.Artifact != nil {
		return map[string]any{"digest": v.Artifact.Digest, "size": v.Artifact.Size, "type": string(v.Artifact.Type)}, nil
	}
	switch t {
	case TypeInt:
		var i int64
		err := json.Unmarshal(v.Param, &i)
		return i, err
	case TypeFloat:
		var f float64
		err := json.Unmarshal(v.Param, &f)
		return f, err
	}
	var x any
	err := json.Unmarshal(v.Param, &x)
	return x, err
}

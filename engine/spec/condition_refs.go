package spec

import (
	"fmt"
	"slices"
	"strings"

	celast "github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/operators"
	"github.com/google/cel-go/common/types"
)

// ConditionInputs returns the input names a `when` expression reads:
// `inputs.NAME` and `inputs["NAME"]`, sorted, each once. A name built at
// evaluation time (`inputs[k]`) is not listed.
func ConditionInputs(expr string) ([]string, error) {
	env, err := conditionEnv()
	if err != nil {
		return nil, err
	}
	a, iss := env.Parse(expr)
	if iss != nil && iss.Err() != nil {
		return nil, iss.Err()
	}
	var names []string
	isInputs := func(e celast.Expr) bool { return e.Kind() == celast.IdentKind && e.AsIdent() == "inputs" }
	celast.PreOrderVisit(a.NativeRep().Expr(), celast.NewExprVisitor(func(e celast.Expr) {
		switch e.Kind() {
		case celast.SelectKind:
			if s := e.AsSelect(); isInputs(s.Operand()) {
				names = append(names, s.FieldName())
			}
		case celast.CallKind:
			c := e.AsCall()
			if c.FunctionName() != operators.Index || len(c.Args()) != 2 || !isInputs(c.Args()[0]) {
				return
			}
			if k := c.Args()[1]; k.Kind() == celast.LiteralKind {
				if s, ok := k.AsLiteral().(types.String); ok {
					names = append(names, string(s))
				}
			}
		}
	}))
	slices.Sort(names)
	return slices.Compact(names), nil
}

// checkConditionInputs: a `when` may read only the task's declared inputs
// (an undeclared one would fail at run time, or silently never hold).
func (f *finalizer) checkConditionInputs(path string, t *Task) {
	names, err := ConditionInputs(t.When)
	if err != nil {
		return // CompileCondition reported it
	}
	declared := make([]string, 0, len(t.Inputs))
	for _, in := range t.Inputs {
		declared = append(declared, in.Name)
	}
	for _, n := range names {
		if slices.Contains(declared, n) {
			continue
		}
		have := "the task declares no inputs"
		if len(declared) > 0 {
			have = "its inputs are " + strings.Join(declared, ", ")
		}
		f.add(path+".when", fmt.Sprintf("reads inputs.%s, which the task does not declare (%s)", n, have))
	}
}

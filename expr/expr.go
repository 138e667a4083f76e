// Package expr is the workflow language's expressions: CEL (the Common
// Expression Language, cel.dev/cel-go; architecture log, entry 43) over an
// execution's data. An expression is compiled and type-checked once, when
// a workflow is defined (Compile, with an error that says what is wrong
// and where), and evaluated when a step needs it (Program.Eval), with a
// cost limit, so no expression runs for long or allocates without bound.
//
// What an expression sees:
//
//	input      the execution's input (any JSON value)
//	steps      the outputs of the steps that have run, by step name
//	error      the failure the last catch routed: {name, cause, step}
//	execution  {id, workflowId, workflowVersion, startedAt}
//	result     in a step's output expression, the step's own answer
//
// JSON numbers that are whole and fit in 64 bits are ints, others doubles;
// ints and doubles compare with each other (input.amount > 100 holds for
// 100.5). CEL's standard library is there, with the strings, math, lists
// and encoders extensions.
package expr

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
	"cel.dev/cel-go/ext"
)

// Limits of expressions.
const (
	// MaxSourceBytes bounds an expression's source.
	MaxSourceBytes = 4096
	// MaxCost bounds the work of one evaluation, in CEL's cost units
	// (about one per operation, and per byte or element a function
	// walks): a loop over a 10,000-element list costs about 10,000.
	MaxCost = 1_000_000
	// maxNesting bounds the parser's recursion (deeply nested brackets).
	maxNesting = 100
)

// Kind is what an expression must evaluate to.
type Kind int

const (
	// Any JSON value: a body, an output.
	Any Kind = iota
	// Bool: a choice rule's condition.
	Bool
	// String: a URL or a header value.
	String
)

func (k Kind) String() string {
	switch k {
	case Bool:
		return "a bool"
	case String:
		return "a string"
	}
	return "a JSON value"
}

// Vars are the values an expression is evaluated over. Nil fields are
// absent values (null for input, an empty map for steps and error).
type Vars struct {
	Input     json.RawMessage
	Steps     map[string]json.RawMessage
	Error     *Caught
	Execution Execution
	// Result is the answer of the step an output expression shapes (its
	// own output before the expression); nil elsewhere (null).
	Result json.RawMessage
}

// Caught is the failure a catch routed: its name and cause.
type Caught struct {
	Name  string `json:"name"`
	Cause string `json:"cause"`
	Step  string `json:"step"` // the step that failed
}

// Execution is the metadata an expression sees.
type Execution struct {
	ID              string `json:"id"`
	WorkflowID      string `json:"workflowId"`
	WorkflowVersion int    `json:"workflowVersion"`
	StartedAt       string `json:"startedAt"` // RFC 3339
}

// env is the one CEL environment every expression is compiled in.
var env = sync.OnceValues(func() (*cel.Env, error) {
	return cel.NewEnv(
		cel.Variable("input", cel.DynType),
		cel.Variable("steps", cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable("error", cel.MapType(cel.StringType, cel.StringType)),
		cel.Variable("execution", cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable("result", cel.DynType),
		cel.CrossTypeNumericComparisons(true),
		cel.ParserRecursionLimit(maxNesting),
		cel.ParserExpressionSizeLimit(MaxSourceBytes),
		ext.Strings(),
		ext.Math(),
		ext.Lists(),
		ext.Encoders(),
	)
})

// Program is a compiled expression. Safe for concurrent use.
type Program struct {
	source string
	kind   Kind
	prg    cel.Program
}

// Source returns the expression as written.
func (p *Program) Source() string { return p.source }

// Error is why an expression does not compile or did not evaluate: one
// line, fit for a 400's problem or an execution's failure.
type Error struct {
	Problem string
}

func (e *Error) Error() string { return e.Problem }

// Compile parses and type-checks source as an expression of kind k.
func Compile(source string, k Kind) (*Program, error) {
	if strings.TrimSpace(source) == "" {
		return nil, &Error{Problem: "is empty"}
	}
	if len(source) > MaxSourceBytes {
		return nil, &Error{Problem: fmt.Sprintf("is %d bytes, more than the %d an expression may have", len(source), MaxSourceBytes)}
	}
	e, err := env()
	if err != nil {
		return nil, fmt.Errorf("expr: the environment: %w", err)
	}
	ast, iss := e.Compile(source)
	if iss != nil && iss.Err() != nil {
		return nil, &Error{Problem: oneLine(iss.Err().Error())}
	}
	if want := celType(k); want != nil {
		if got := ast.OutputType(); !got.IsExactType(want) && !got.IsExactType(cel.DynType) {
			return nil, &Error{Problem: fmt.Sprintf("must be %s, and this one is a %s", k, got)}
		}
	}
	prg, err := e.Program(ast, cel.CostLimit(MaxCost), cel.InterruptCheckFrequency(100))
	if err != nil {
		return nil, &Error{Problem: oneLine(err.Error())}
	}
	return &Program{source: source, kind: k, prg: prg}, nil
}

func celType(k Kind) *cel.Type {
	switch k {
	case Bool:
		return cel.BoolType
	case String:
		return cel.StringType
	}
	return nil
}

// oneLine joins CEL's multi-line messages (which draw a caret under the
// column) into one line.
func oneLine(s string) string {
	s = strings.TrimPrefix(s, "ERROR: ")
	var parts []string
	for line := range strings.SplitSeq(s, "\n") {
		t := strings.TrimSpace(line)
		if t == "" || strings.Trim(t, "|.^ ") == "" || strings.HasPrefix(t, "| ") {
			continue
		}
		parts = append(parts, strings.TrimPrefix(t, "ERROR: "))
	}
	return strings.Join(parts, "; ")
}

// Eval evaluates p over v and returns its value as JSON.
func (p *Program) Eval(v Vars) (json.RawMessage, error) {
	val, err := p.eval(v)
	if err != nil {
		return nil, err
	}
	native, err := toJSONValue(val, 0)
	if err != nil {
		return nil, &Error{Problem: err.Error()}
	}
	out, err := json.Marshal(native)
	if err != nil {
		return nil, &Error{Problem: "its value is not JSON: " + err.Error()}
	}
	return out, nil
}

// EvalBool evaluates a Bool expression.
func (p *Program) EvalBool(v Vars) (bool, error) {
	val, err := p.eval(v)
	if err != nil {
		return false, err
	}
	b, ok := val.(types.Bool)
	if !ok {
		return false, &Error{Problem: fmt.Sprintf("must be a bool, and was a %s", val.Type().TypeName())}
	}
	return bool(b), nil
}

// EvalString evaluates a String expression.
func (p *Program) EvalString(v Vars) (string, error) {
	val, err := p.eval(v)
	if err != nil {
		return "", err
	}
	s, ok := val.(types.String)
	if !ok {
		return "", &Error{Problem: fmt.Sprintf("must be a string, and was a %s", val.Type().TypeName())}
	}
	return string(s), nil
}

func (p *Program) eval(v Vars) (ref.Val, error) {
	act, err := activation(v)
	if err != nil {
		return nil, err
	}
	val, _, err := p.prg.Eval(act)
	if err != nil {
		return nil, &Error{Problem: oneLine(err.Error())}
	}
	return val, nil
}

// activation decodes v's JSON into the values CEL reads.
func activation(v Vars) (map[string]any, error) {
	input, err := decode(v.Input)
	if err != nil {
		return nil, &Error{Problem: "the input is not JSON: " + err.Error()}
	}
	steps := make(map[string]any, len(v.Steps))
	for name, out := range v.Steps {
		if steps[name], err = decode(out); err != nil {
			return nil, &Error{Problem: fmt.Sprintf("the output of step %q is not JSON: %v", name, err)}
		}
	}
	caught := map[string]any{}
	if v.Error != nil {
		caught["name"], caught["cause"], caught["step"] = v.Error.Name, v.Error.Cause, v.Error.Step
	}
	result, err := decode(v.Result)
	if err != nil {
		return nil, &Error{Problem: "the step's result is not JSON: " + err.Error()}
	}
	x := v.Execution
	return map[string]any{
		"input":  input,
		"steps":  steps,
		"error":  caught,
		"result": result,
		"execution": map[string]any{
			"id": x.ID, "workflowId": x.WorkflowID, "workflowVersion": int64(x.WorkflowVersion), "startedAt": x.StartedAt,
		},
	}, nil
}

// decode reads JSON into maps, lists, strings, bools, nil, int64 (whole
// numbers that fit) and float64.
func decode(raw json.RawMessage) (any, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	d := json.NewDecoder(strings.NewReader(string(raw)))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	return numbers(v), nil
}

func numbers(v any) any {
	switch t := v.(type) {
	case json.Number:
		if i, err := t.Int64(); err == nil {
			return i
		}
		f, _ := t.Float64()
		return f
	case map[string]any:
		for k, e := range t {
			t[k] = numbers(e)
		}
	case []any:
		for i, e := range t {
			t[i] = numbers(e)
		}
	}
	return v
}

// maxDepth bounds the nesting of a value an expression returns.
const maxDepth = 64

var errDepth = errors.New("its value nests deeper than 64 levels")

// toJSONValue turns a CEL value into what encoding/json writes.
func toJSONValue(v ref.Val, depth int) (any, error) {
	if depth > maxDepth {
		return nil, errDepth
	}
	switch t := v.(type) {
	case types.Null:
		return nil, nil
	case types.Bool:
		return bool(t), nil
	case types.Int:
		return int64(t), nil
	case types.Uint:
		return uint64(t), nil
	case types.Double:
		f := float64(t)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, fmt.Errorf("its value %v is not a JSON number", f)
		}
		return f, nil
	case types.String:
		return string(t), nil
	case types.Bytes:
		return []byte(t), nil // base64, as encoding/json writes bytes
	}
	switch t := v.(type) {
	case traits.Mapper:
		out := map[string]any{}
		it := t.Iterator()
		for it.HasNext() == types.True {
			k := it.Next()
			ks, ok := k.(types.String)
			if !ok {
				return nil, fmt.Errorf("its value is a map with a %s key; JSON keys are strings", k.Type().TypeName())
			}
			e, err := toJSONValue(t.Get(k), depth+1)
			if err != nil {
				return nil, err
			}
			out[string(ks)] = e
		}
		return out, nil
	case traits.Lister:
		n, _ := t.Size().(types.Int)
		out := make([]any, 0, int(n))
		it := t.Iterator()
		for it.HasNext() == types.True {
			e, err := toJSONValue(it.Next(), depth+1)
			if err != nil {
				return nil, err
			}
			out = append(out, e)
		}
		return out, nil
	}
	// Timestamps, durations and the like: their string form.
	if s, ok := v.ConvertToType(types.StringType).(types.String); ok {
		return string(s), nil
	}
	return nil, fmt.Errorf("its value (a %s) has no JSON form", v.Type().TypeName())
}

package expr_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/workflowd/workflowd/expr"
)

var vars = expr.Vars{
	Input: json.RawMessage(`{"amount": 250, "price": 19.5, "customer": {"name": "Ada", "tags": ["vip", "eu"]}, "items": [1, 2, 3]}`),
	Steps: map[string]json.RawMessage{
		"charge": json.RawMessage(`{"id": "ch_1", "ok": true}`),
	},
	Error:     &expr.Caught{Name: "http.status.5xx", Cause: "503 Service Unavailable"},
	Execution: expr.Execution{ID: "x-1", WorkflowID: "w-1", WorkflowVersion: 3, StartedAt: "2026-12-03T10:00:00Z"},
}

func TestEvalBool(t *testing.T) {
	for _, tc := range []struct {
		src  string
		want bool
	}{
		{`input.amount > 100`, true},
		{`input.amount > 100.5`, true}, // an int against a double
		{`input.price < 20`, true},     // a double against an int
		{`input.amount == 250`, true},
		{`input.customer.name == "Ada" && "vip" in input.customer.tags`, true},
		{`size(input.items) == 3`, true},
		{`steps.charge.ok`, true},
		{`"refund" in steps`, false},
		{`has(input.coupon)`, false},
		{`error.name.startsWith("http.status.")`, true},
		{`execution.workflowVersion >= 3`, true},
		{`input.items.exists(i, i > 2)`, true},
		{`input.customer.name.lowerAscii() == "ada"`, true},
	} {
		p, err := expr.Compile(tc.src, expr.Bool)
		if err != nil {
			t.Fatalf("Compile(%q): %v", tc.src, err)
		}
		got, err := p.EvalBool(vars)
		if err != nil || got != tc.want {
			t.Errorf("EvalBool(%q): got (%v, %v), want (%v, nil)", tc.src, got, err, tc.want)
		}
	}
}

func TestEval(t *testing.T) {
	for _, tc := range []struct {
		src, want string
	}{
		{`input.amount * 2`, `500`},
		{`input.price * 2.0`, `39`},
		{`{"order": input.customer.name, "charge": steps.charge.id, "why": error.cause}`, `{"charge":"ch_1","order":"Ada","why":"503 Service Unavailable"}`},
		{`input.items.map(i, i * 10)`, `[10,20,30]`},
		{`null`, `null`},
		{`input`, `{"amount":250,"customer":{"name":"Ada","tags":["vip","eu"]},"items":[1,2,3],"price":19.5}`},
		{`timestamp(execution.startedAt) + duration("1h")`, `"2026-12-03T11:00:00Z"`},
	} {
		p, err := expr.Compile(tc.src, expr.Any)
		if err != nil {
			t.Fatalf("Compile(%q): %v", tc.src, err)
		}
		got, err := p.Eval(vars)
		if err != nil || string(got) != tc.want {
			t.Errorf("Eval(%q): got (%s, %v), want (%s, nil)", tc.src, got, err, tc.want)
		}
	}
}

func TestEvalString(t *testing.T) {
	p, err := expr.Compile(`"https://api.example.com/orders/" + string(input.amount)`, expr.String)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := p.EvalString(vars); err != nil || got != "https://api.example.com/orders/250" {
		t.Fatalf("EvalString: got (%q, %v)", got, err)
	}
}

// Every expression that cannot be right is refused at compile time with
// a one-line reason.
func TestCompileRefuses(t *testing.T) {
	for _, tc := range []struct {
		src  string
		kind expr.Kind
		want string // in the reason
	}{
		{``, expr.Any, "is empty"},
		{`   `, expr.Bool, "is empty"},
		{`input.amount >`, expr.Bool, "Syntax error"},
		{`1 + "a"`, expr.Any, "no matching overload"},
		{`nosuch.field`, expr.Any, "undeclared reference"},
		{`"a string"`, expr.Bool, "must be a bool"},
		{`1 + 2`, expr.String, "must be a string"},
		{`error.name + 1`, expr.Any, "no matching overload"},
		{strings.Repeat("(", 200) + "1" + strings.Repeat(")", 200), expr.Any, "recursion"},
		{strings.Repeat("a", expr.MaxSourceBytes+1), expr.Any, "more than the 4096"},
	} {
		_, err := expr.Compile(tc.src, tc.kind)
		if err == nil {
			t.Errorf("Compile(%.40q): got nil, want an error about %q", tc.src, tc.want)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("Compile(%.40q): got %q, want one line about %q", tc.src, err, tc.want)
		}
	}
}

// What fails at run time fails with an error, never a panic or a hang.
func TestEvalFails(t *testing.T) {
	for _, tc := range []struct {
		src  string
		kind expr.Kind
		want string
	}{
		{`input.coupon`, expr.Any, "no such key"},
		{`input.amount / 0`, expr.Any, "division by zero"},
		{`input.customer.name`, expr.Bool, "must be a bool"},
		{`input.amount`, expr.String, "must be a string"},
		{`{1: "a"}`, expr.Any, "JSON keys are strings"},
		{`1.0 / 0.0`, expr.Any, "not a JSON number"},
		// A loop far past the cost limit ends with an error.
		{`[1,2,3,4,5,6,7,8,9,10].map(a, [1,2,3,4,5,6,7,8,9,10].map(b, [1,2,3,4,5,6,7,8,9,10].map(c, [1,2,3,4,5,6,7,8,9,10].map(d, [1,2,3,4,5,6,7,8,9,10].map(e, [1,2,3,4,5,6,7,8,9,10].map(f, a+b+c+d+e+f))))))`, expr.Any, "cost limit"},
	} {
		p, err := expr.Compile(tc.src, tc.kind)
		if err != nil {
			t.Fatalf("Compile(%q): %v", tc.src, err)
		}
		switch tc.kind {
		case expr.Bool:
			_, err = p.EvalBool(vars)
		case expr.String:
			_, err = p.EvalString(vars)
		default:
			_, err = p.Eval(vars)
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Eval(%.60q): got %v, want an error about %q", tc.src, err, tc.want)
		}
	}
}

func TestEvalOfBadInputIsAnError(t *testing.T) {
	p, err := expr.Compile(`input`, expr.Any)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Eval(expr.Vars{Input: json.RawMessage(`{"a":`)}); err == nil || !strings.Contains(err.Error(), "the input is not JSON") {
		t.Fatalf("Eval of truncated input: got %v", err)
	}
	if got, err := p.Eval(expr.Vars{}); err != nil || string(got) != "null" {
		t.Fatalf("Eval without input: got (%s, %v), want (null, nil)", got, err)
	}
}

// FuzzCompile: any source compiles or is refused with an error; what
// compiles evaluates to a value or an error, never a panic.
func FuzzCompile(f *testing.F) {
	for _, s := range []string{`input.amount > 100`, `{"a": [1, 2.5, "x"]}`, `steps.charge.id + "-" + error.name`, `input.items.map(i, i * 2)`, `((((1))))`, `"\u00e9" + b"\xff".string()`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		for _, k := range []expr.Kind{expr.Any, expr.Bool, expr.String} {
			p, err := expr.Compile(src, k)
			if err != nil {
				if err.Error() == "" {
					t.Fatalf("Compile(%q): an empty error", src)
				}
				continue
			}
			switch k {
			case expr.Bool:
				_, _ = p.EvalBool(vars)
			case expr.String:
				_, _ = p.EvalString(vars)
			default:
				if out, err := p.Eval(vars); err == nil && !json.Valid(out) {
					t.Fatalf("Eval(%q): %q is not JSON", src, out)
				}
			}
		}
	})
}

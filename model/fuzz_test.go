package model_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/workflowd/workflowd/model"
)

// validCommands holds one valid command of each type.
func validCommands() []model.Command {
	wf, x := uuid.MustParse("0b7c3f0e-7d61-4a0e-9a51-3c2f1d9e8b70"), uuid.MustParse("5e2d8c41-0f3a-4b7e-8c19-6a0d2e4f1b93")
	def := model.Definition{Name: "orders", Description: "d", TimeoutSeconds: 60,
		Steps: []model.StepDefinition{{Name: "a", Type: model.StepManual, TimeoutSeconds: 5}, {Name: "b", Type: model.StepManual}}}
	payloads := []model.Payload{
		model.CreateWorkflow{WorkflowUUID: wf, Definition: def},
		model.UpdateWorkflow{WorkflowUUID: wf, Definition: def},
		model.DeleteWorkflow{WorkflowUUID: wf},
		model.StartExecution{WorkflowExecutionUUID: x, WorkflowUUID: wf, Input: json.RawMessage(`{"n":12345678901234567890,"s":"<&>"}`)},
		model.BeginExecution{WorkflowExecutionUUID: x},
		model.IncrementExecution{WorkflowExecutionUUID: x, Step: 1, Output: json.RawMessage(`[1,{"a":null}]`)},
		model.CancelExecution{WorkflowExecutionUUID: x, Reason: "customer asked"},
	}
	var out []model.Command
	for i, p := range payloads {
		out = append(out, model.NewCommand(uuid.NewSHA1(wf, []byte{byte(i)}), p, t0))
	}
	return out
}

func TestDecodeCommandRoundTrip(t *testing.T) {
	for _, c := range validCommands() {
		t.Run(c.Type, func(t *testing.T) {
			b, err := json.Marshal(c)
			if err != nil {
				t.Fatal(err)
			}
			got, err := model.DecodeCommand(b)
			if err != nil {
				t.Fatalf("DecodeCommand(%s): %v", b, err)
			}
			// Raw JSON comes back as json.Marshal writes it (< as \u003c).
			got.Payload, c.Payload = normalize(t, got.Payload), normalize(t, c.Payload)
			if !reflect.DeepEqual(got, c) {
				t.Errorf("got %+v, want %+v", got, c)
			}
		})
	}
}

func TestDecodeCommandRejectsBadMessages(t *testing.T) {
	tests := []struct{ name, msg string }{
		{"not_json", `nope`},
		{"unknown_envelope_field", `{"commandUUID":"5e2d8c41-0f3a-4b7e-8c19-6a0d2e4f1b93","type":"BeginExecution","data":{"workflowExecutionUUID":"5e2d8c41-0f3a-4b7e-8c19-6a0d2e4f1b93"},"x":1}`},
		{"missing_command_uuid", `{"type":"BeginExecution","data":{"workflowExecutionUUID":"5e2d8c41-0f3a-4b7e-8c19-6a0d2e4f1b93"}}`},
		{"unknown_type", `{"commandUUID":"5e2d8c41-0f3a-4b7e-8c19-6a0d2e4f1b93","type":"Explode","data":{}}`},
		{"missing_data", `{"commandUUID":"5e2d8c41-0f3a-4b7e-8c19-6a0d2e4f1b93","type":"BeginExecution"}`},
		{"null_data", `{"commandUUID":"5e2d8c41-0f3a-4b7e-8c19-6a0d2e4f1b93","type":"BeginExecution","data":null}`},
		{"unknown_data_field", `{"commandUUID":"5e2d8c41-0f3a-4b7e-8c19-6a0d2e4f1b93","type":"BeginExecution","data":{"workflowExecutionUUID":"5e2d8c41-0f3a-4b7e-8c19-6a0d2e4f1b93","step":1}}`},
		{"invalid_payload", `{"commandUUID":"5e2d8c41-0f3a-4b7e-8c19-6a0d2e4f1b93","type":"BeginExecution","data":{}}`},
		{"invalid_definition", `{"commandUUID":"5e2d8c41-0f3a-4b7e-8c19-6a0d2e4f1b93","type":"CreateWorkflow","data":{"workflowUUID":"5e2d8c41-0f3a-4b7e-8c19-6a0d2e4f1b93","name":"n","steps":[{"name":"a","type":"http"}]}}`},
		{"step_out_of_range", `{"commandUUID":"5e2d8c41-0f3a-4b7e-8c19-6a0d2e4f1b93","type":"IncrementExecution","data":{"workflowExecutionUUID":"5e2d8c41-0f3a-4b7e-8c19-6a0d2e4f1b93","step":-1}}`},
		{"trailing_data", `{"commandUUID":"5e2d8c41-0f3a-4b7e-8c19-6a0d2e4f1b93","type":"BeginExecution","data":{"workflowExecutionUUID":"5e2d8c41-0f3a-4b7e-8c19-6a0d2e4f1b93"}} {}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := model.DecodeCommand([]byte(tt.msg)); !errors.Is(err, model.ErrBadCommand) {
				t.Errorf("got %v, want an error wrapping ErrBadCommand", err)
			}
		})
	}
}

// FuzzDecodeCommand: DecodeCommand never panics on any bytes; a command it
// accepts re-encodes (json.Marshal) to a message that decodes to an equal
// command, and re-encoding that gives the same bytes.
func FuzzDecodeCommand(f *testing.F) {
	for _, c := range validCommands() {
		b, err := json.Marshal(c)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"commandUUID":"5e2d8c41-0f3a-4b7e-8c19-6a0d2e4f1b93","type":"StartExecution","issuedAt":"2025-01-02T03:04:05+01:00","data":{"workflowExecutionUUID":"5e2d8c41-0f3a-4b7e-8c19-6a0d2e4f1b93","workflowUUID":"0b7c3f0e-7d61-4a0e-9a51-3c2f1d9e8b70","input": [ 1 , 2.50 ]}}`))
	f.Add([]byte(`{"commandUUID":"5e2d8c41-0f3a-4b7e-8c19-6a0d2e4f1b93","type":"IncrementExecution","data":{"workflowExecutionUUID":"5e2d8c41-0f3a-4b7e-8c19-6a0d2e4f1b93","step":0,"output":null}}`))
	f.Add([]byte(`{"type":"Explode"}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := model.DecodeCommand(b)
		if err != nil {
			if !errors.Is(err, model.ErrBadCommand) {
				t.Fatalf("got error %v, want one wrapping ErrBadCommand", err)
			}
			return
		}
		if c.Payload == nil || c.Type != c.Payload.CommandType() || c.CommandUUID == uuid.Nil {
			t.Fatalf("decoded %+v: want a payload of its type and a command UUID", c)
		}
		if _, _, err := model.ParseAggregateID(c.AggregateID()); err != nil {
			t.Fatalf("decoded %+v names no aggregate: %v", c, err)
		}
		enc, err := json.Marshal(c)
		if err != nil {
			t.Fatalf("re-encode %+v: %v", c, err)
		}
		c2, err := model.DecodeCommand(enc)
		if err != nil {
			t.Fatalf("the re-encoded %s does not decode: %v", enc, err)
		}
		if c2.CommandUUID != c.CommandUUID || c2.Type != c.Type || !c2.IssuedAt.Equal(c.IssuedAt) ||
			!reflect.DeepEqual(normalize(t, c2.Payload), normalize(t, c.Payload)) {
			t.Fatalf("round trip changed the command:\n got %+v\nwant %+v", c2, c)
		}
		enc2, err := json.Marshal(c2)
		if err != nil {
			t.Fatalf("re-encode %+v: %v", c2, err)
		}
		if !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding is not stable:\n%s\n%s", enc, enc2)
		}
	})
}

// normalize puts the raw JSON of a payload in the form json.Marshal gives
// it (compact), so that equal JSON values compare equal.
func normalize(t *testing.T, p model.Payload) model.Payload {
	t.Helper()
	compact := func(r json.RawMessage) json.RawMessage {
		if r == nil {
			return nil
		}
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatalf("compact %s: %v", r, err)
		}
		return b
	}
	switch v := p.(type) {
	case model.StartExecution:
		v.Input = compact(v.Input)
		return v
	case model.IncrementExecution:
		v.Output = compact(v.Output)
		return v
	}
	return p
}

// CommandTypes lists exactly the types DecodeCommand knows: each of them
// gets past the type check (its empty data then fails validation), and a
// type not in it does not.
func TestCommandTypesAreTheTypesDecodeCommandKnows(t *testing.T) {
	for _, typ := range model.CommandTypes {
		_, err := model.DecodeCommand([]byte(`{"commandUUID":"` + uuid.NewString() + `","type":"` + typ + `","issuedAt":"2026-12-02T00:00:00Z","data":{}}`))
		if err == nil || strings.Contains(err.Error(), "unknown type") {
			t.Errorf("%s: got %v, want a validation error (a known type with empty data)", typ, err)
		}
	}
	if _, err := model.DecodeCommand([]byte(`{"commandUUID":"` + uuid.NewString() + `","type":"Nope","data":{}}`)); err == nil || !strings.Contains(err.Error(), "unknown type") {
		t.Errorf("an unlisted type: got %v, want unknown type", err)
	}
}

package bus_test

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/workflowd/workflowd/bus"
	"github.com/workflowd/workflowd/model"
)

func TestEveryCommandTypeHasOneQueue(t *testing.T) {
	for _, typ := range model.CommandTypes {
		q := bus.QueueFor(typ)
		if !slices.Contains(bus.Queues, q) {
			t.Errorf("QueueFor(%s): got %q, want one of %v", typ, q, bus.Queues)
		}
	}
	if q := bus.QueueFor("NoSuchCommand"); q != "" {
		t.Errorf("QueueFor(NoSuchCommand): got %q, want none", q)
	}
}

func TestCommandMessageRoutesToTheCommandsQueue(t *testing.T) {
	x := uuid.New()
	tests := []struct {
		name    string
		payload model.Payload
		want    string
	}{
		{"workflow_command", model.DeleteWorkflow{WorkflowUUID: uuid.New()}, bus.QueueWorkflows},
		{"client_execution_command", model.CancelExecution{WorkflowExecutionUUID: x}, bus.QueueExecutions},
		{"system_execution_command", model.RunStep{WorkflowExecutionUUID: x, Step: 0, Attempt: 1}, bus.QueueExecutions},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := model.NewCommand(uuid.New(), tt.payload, time.Now())
			msg, err := bus.CommandMessage(cmd)
			if err != nil {
				t.Fatal(err)
			}
			if got := msg.Attributes[bus.TargetAttribute]; got != tt.want {
				t.Errorf("got target %q, want %q", got, tt.want)
			}
			if msg.Attributes["commandType"] != cmd.Type || msg.Attributes["commandUUID"] != cmd.CommandUUID.String() {
				t.Errorf("got attributes %v, want the command's type and UUID", msg.Attributes)
			}
			back, err := model.DecodeCommand(msg.Body)
			if err != nil || back.CommandUUID != cmd.CommandUUID {
				t.Errorf("body decodes to %+v, %v; want the command back", back, err)
			}
		})
	}
}

func TestCommandMessageRefusesAnOversizeCommand(t *testing.T) {
	big, _ := json.Marshal(string(make([]byte, bus.MaxMessageSize)))
	cmd := model.NewCommand(uuid.New(), model.StartExecution{WorkflowExecutionUUID: uuid.New(), WorkflowUUID: uuid.New(), Input: big}, time.Now())
	if _, err := bus.CommandMessage(cmd); err == nil {
		t.Fatal("got no error for a command over MaxMessageSize")
	}
}

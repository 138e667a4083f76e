package bus

import (
	"encoding/json"
	"fmt"

	"github.com/workflowd/workflowd/model"
)

// Queue names: the topic routes each command to one of them by its
// TargetAttribute, as the SNS filter policies do on AWS.
const (
	QueueWorkflows  = "workflows"
	QueueExecutions = "executions"
)

// Queues lists every queue of a deployment, in the order runtimes create
// and consume them.
var Queues = []string{QueueWorkflows, QueueExecutions}

// routes is the routing table: the queue of each command type. Workflow
// commands and execution commands have a queue each, so that a flood of
// one kind never delays the other.
var routes = map[string]string{
	model.CommandCreateWorkflow:     QueueWorkflows,
	model.CommandUpdateWorkflow:     QueueWorkflows,
	model.CommandDeleteWorkflow:     QueueWorkflows,
	model.CommandStartExecution:     QueueExecutions,
	model.CommandBeginExecution:     QueueExecutions,
	model.CommandIncrementExecution: QueueExecutions,
	model.CommandCancelExecution:    QueueExecutions,
	model.CommandRunStep:            QueueExecutions,
	model.CommandFireTimer:          QueueExecutions,
	model.CommandTimeOutExecution:   QueueExecutions,
	model.CommandRedriveExecution:   QueueExecutions,
	model.CommandPauseExecution:     QueueExecutions,
	model.CommandResumeExecution:    QueueExecutions,
}

// QueueFor returns the queue that handles commands of type commandType (""
// if none).
func QueueFor(commandType string) string { return routes[commandType] }

// CommandMessage encodes a command as a message with the attributes the
// topic routes on (TargetAttribute = the command's queue) and, for logs and
// tooling, its type and UUID.
func CommandMessage(cmd model.Command) (Message, error) {
	body, err := json.Marshal(cmd)
	if err != nil {
		return Message{}, fmt.Errorf("encode %s command: %w", cmd.Type, err)
	}
	if len(body) > MaxMessageSize {
		return Message{}, fmt.Errorf("encode %s command: %w (%d bytes)", cmd.Type, ErrTooLarge, len(body))
	}
	return Message{Body: body, Attributes: map[string]string{
		TargetAttribute: QueueFor(cmd.Type),
		"commandType":   cmd.Type,
		"commandUUID":   cmd.CommandUUID.String(),
	}}, nil
}

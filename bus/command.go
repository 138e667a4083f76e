package bus

import (
	"encoding/json"
	"fmt"

	"github.com/workflowd/workflowd/model"
)

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
		TargetAttribute: cmd.Queue(),
		"commandType":   cmd.Type,
		"commandUUID":   cmd.CommandUUID.String(),
	}}, nil
}

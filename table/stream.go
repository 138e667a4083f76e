package table

import (
	"errors"

	"github.com/aws/aws-lambda-go/events"
	"github.com/workflowd/workflowd/model"
)

// StreamEvents decodes a record of the events table's stream into the
// events it carries; records without a new image (a removal) carry none.
func StreamEvents(rec events.DynamoDBEventRecord) ([]model.Event, error) {
	img := rec.Change.NewImage
	if len(img) == 0 {
		return nil, nil
	}
	var it EventItem
	var err error
	get := func(name string) events.DynamoDBAttributeValue { return img[name] }
	if it.AggregateID, err = str(get("aggregateId")); err != nil {
		return nil, err
	}
	if it.Seq, err = num(get("seq")); err != nil {
		return nil, err
	}
	if it.LastSeq, err = num(get("lastSeq")); err != nil {
		return nil, err
	}
	if it.CommandUUID, err = str(get("commandUUID")); err != nil {
		return nil, err
	}
	if it.OccurredAt, err = str(get("occurredAt")); err != nil {
		return nil, err
	}
	if v := get("events"); v.DataType() == events.DataTypeBinary {
		it.Events = v.Binary()
	} else {
		return nil, errors.New("stream record: events is not binary")
	}
	return it.Decode()
}

func str(v events.DynamoDBAttributeValue) (string, error) {
	if v.DataType() != events.DataTypeString {
		return "", errors.New("stream record: want a string attribute")
	}
	return v.String(), nil
}

func num(v events.DynamoDBAttributeValue) (int64, error) {
	if v.DataType() != events.DataTypeNumber {
		return 0, errors.New("stream record: want a number attribute")
	}
	return v.Integer()
}

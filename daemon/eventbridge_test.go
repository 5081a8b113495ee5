package daemon_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	eb "github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/httpapi"
	"github.com/lakirotator/lakirotator/internal/testutil/motoserver"
	"github.com/lakirotator/lakirotator/providers/eventbridge"
	"github.com/lakirotator/lakirotator/rotator"
)

// A daemon configured with environments.sandbox.eventbridge publishes the
// rotations it runs (a manual one, then a compromise) to the bus; a rule
// routes them to an SQS queue, where they arrive with their fields and
// without any secret value.
func TestDaemonPublishesRotationEventsToEventBridge(t *testing.T) {
	endpoint := motoserver.Start(t)
	t.Setenv("AWS_ACCESS_KEY_ID", motoserver.AccessKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", motoserver.SecretAccessKey)
	ctx := context.Background()
	creds := credentials.NewStaticCredentialsProvider(motoserver.AccessKeyID, motoserver.SecretAccessKey, "")
	ebc := eb.New(eb.Options{Region: motoserver.Region, BaseEndpoint: aws.String(endpoint), Credentials: creds})
	sqc := sqs.New(sqs.Options{Region: motoserver.Region, BaseEndpoint: aws.String(endpoint), Credentials: creds})
	const bus = "lakirotator-sandbox-consumers"
	if _, err := ebc.CreateEventBus(ctx, &eb.CreateEventBusInput{Name: aws.String(bus)}); err != nil {
		t.Fatal(err)
	}
	q, err := sqc.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("consumers")})
	if err != nil {
		t.Fatal(err)
	}
	qa, err := sqc.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: q.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ebc.PutRule(ctx, &eb.PutRuleInput{Name: aws.String("to-sqs"), EventBusName: aws.String(bus),
		EventPattern: aws.String(`{"source":["lakirotator"],"detail":{"environment":["sandbox"]}}`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := ebc.PutTargets(ctx, &eb.PutTargetsInput{Rule: aws.String("to-sqs"), EventBusName: aws.String(bus),
		Targets: []ebtypes.Target{{Id: aws.String("q"), Arn: aws.String(qa.Attributes["QueueArn"])}}}); err != nil {
		t.Fatal(err)
	}

	w := newWorld(t, worldOptions{})
	w.cfgYAML = []byte(strings.Replace(string(w.cfgYAML), "    aws: {region: us-east-1}\n",
		"    aws: {region: us-east-1}\n    eventbridge: {bus: "+bus+", endpoint: \""+endpoint+"\"}\n", 1))
	r := w.run(w.build(rotator.Hooks{}), w.ln)
	for _, cause := range []events.Cause{events.CauseManual, events.CauseCompromise} {
		w.remember(w.current(secCheckout).Secret)
		st, err := r.client.Trigger(ctx, httpapi.TriggerRequest{Secret: secCheckout, Cause: cause, Requester: "ops@example", Reason: "test"})
		if err != nil {
			t.Fatal(err)
		}
		if final := w.waitTrigger(r, st.ID); final.State != httpapi.StateSucceeded {
			t.Fatalf("%s rotation ended %s", cause, final.State)
		}
	}
	w.remember(w.current(secCheckout).Secret)

	type message struct {
		Source     string             `json:"source"`
		DetailType string             `json:"detail-type"`
		Detail     eventbridge.Detail `json:"detail"`
	}
	var got []message
	deadline := time.Now().Add(15 * time.Second)
	for len(got) < 5 && time.Now().Before(deadline) {
		out, err := sqc.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: q.QueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range out.Messages {
			body := aws.ToString(m.Body)
			w.mu.Lock()
			for _, s := range w.created {
				if !s.IsZero() && strings.Contains(body, s.Reveal()) {
					t.Errorf("an EventBridge event carries a secret value (last4 %s)", s.Last4())
				}
			}
			w.mu.Unlock()
			var msg message
			if err := json.Unmarshal([]byte(body), &msg); err != nil {
				t.Fatal(err)
			}
			got = append(got, msg)
		}
	}
	count := map[string]int{}
	for _, m := range got {
		count[m.DetailType]++
		if m.Source != eventbridge.Source || m.Detail.SecretName != secCheckout || m.Detail.Environment != "sandbox" {
			t.Errorf("entry %s: source %q, detail %+v", m.DetailType, m.Source, m.Detail)
		}
	}
	if count[eventbridge.DetailPromoted] != 2 || count[eventbridge.DetailOldEnding] != 2 || count[eventbridge.DetailCompromised] != 1 {
		t.Fatalf("entries by detail type %v; want 2 promoted, 2 old ending, 1 compromised", count)
	}
}

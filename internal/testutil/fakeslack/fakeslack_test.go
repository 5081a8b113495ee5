package fakeslack

import (
	"context"
	"net/http"
	"testing"

	"github.com/slack-go/slack"
)

// What slack-go posts is read back block by block; a scripted answer
// reaches the client, and the next success gets the next ts.
func TestRecordsPostsAndAnswersAsScripted(t *testing.T) {
	s := Start(t, Options{Channel: "C0TEST", OnlyPostMessage: true})
	api := slack.New("xoxb-test-token", slack.OptionAPIURL(s.URL+"/api/"), slack.OptionHTTPClient(s.Client()))
	header := slack.NewHeaderBlock(slack.NewTextBlockObject(slack.PlainTextType, "Rotation succeeded", false, false))
	fields := slack.NewSectionBlock(nil, []*slack.TextBlockObject{
		slack.NewTextBlockObject(slack.MarkdownType, "*Secret*\n`prod/app`", false, false),
	}, nil)
	body := slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, "Nothing to do", false, false), nil, nil)
	ch, ts, err := api.PostMessageContext(context.Background(), "#rotations", slack.MsgOptionText("fallback", false), slack.MsgOptionBlocks(header, fields, body))
	if err != nil || ch != "C0TEST" || ts != "1700000000.000001" {
		t.Fatalf("post: %q %q %v", ch, ts, err)
	}
	msgs := s.Messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages recorded, want 1", len(msgs))
	}
	m := msgs[0]
	if m.Channel != "#rotations" || m.Text != "fallback" || m.Header() != "Rotation succeeded" ||
		m.Fields()["Secret"] != "`prod/app`" || len(m.Sections()) != 1 || m.Sections()[0] != "Nothing to do" {
		t.Errorf("read back %+v: header %q fields %v sections %q", m, m.Header(), m.Fields(), m.Sections())
	}
	if m.Form.Get("token") != "xoxb-test-token" && m.Authorization != "Bearer xoxb-test-token" {
		t.Errorf("the token was not recorded where slack-go sent it: form %q, header %q", m.Form.Get("token"), m.Authorization)
	}

	s.SetAnswer(func(n int) (int, string) {
		if n == 2 {
			return http.StatusOK, `{"ok":false,"error":"channel_not_found"}`
		}
		return 0, ""
	})
	if _, _, err := api.PostMessageContext(context.Background(), "#gone", slack.MsgOptionText("x", false)); err == nil {
		t.Error("the scripted channel_not_found did not reach the client")
	}
	if _, ts, err := api.PostMessageContext(context.Background(), "#rotations", slack.MsgOptionText("y", false)); err != nil || ts != "1700000000.000002" {
		t.Errorf("after a failure: %q %v, want the next ts", ts, err)
	}
	if n := len(s.Messages()); n != 3 {
		t.Errorf("%d messages recorded, want 3 (failed answers included)", n)
	}
	if resp, err := http.Get(s.URL + "/api/auth.test"); err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Errorf("another method with OnlyPostMessage: %v %v, want 400", resp, err)
	} else {
		resp.Body.Close()
	}
}

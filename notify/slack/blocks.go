package slack

import (
	"fmt"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/notify"
)

// Blocks renders n in Block Kit: a header saying what happened, the facts
// as fields, the error and next steps on failure, and a context line.
func Blocks(n notify.Notification) []slack.Block {
	if n.Digest != nil {
		return digestBlocks(n)
	}
	blocks := []slack.Block{
		slack.NewHeaderBlock(slack.NewTextBlockObject(slack.PlainTextType, clip(emoji(n)+" "+n.Title, 150), true, false)),
	}
	// The mention markup (<@U…>, <!subteam^S…>) is made by notify from Slack
	// ids the config checked, so it goes out unescaped; everything else is
	// escaped.
	if n.Mention != "" {
		blocks = append(blocks, slack.NewSectionBlock(md(n.Mention), nil, nil))
	}
	if n.Summary != "" {
		blocks = append(blocks, slack.NewSectionBlock(md(esc(n.Summary)), nil, nil))
	}
	var fields []*slack.TextBlockObject
	add := func(label, value string) {
		if value != "" && len(fields) < 10 { // Slack allows 10 fields per section
			fields = append(fields, md("*"+label+"*\n"+value))
		}
	}
	add("Secret", code(n.Secret))
	add("Environment", esc(n.Environment))
	add("Merchant", code(n.MasterMerchantID))
	add("Key", keyText(n))
	add("Cause", esc(string(n.Cause)))
	add("Requested by", requester(n))
	add("Step", esc(string(n.Step))+" "+esc(string(n.Outcome)))
	if n.Duration > 0 {
		add("Took", n.Duration.Round(10*time.Millisecond).String())
	}
	add("Reason", esc(n.Reason))
	if len(fields) > 0 {
		blocks = append(blocks, slack.NewSectionBlock(nil, fields, nil))
	}
	if n.Error != "" {
		blocks = append(blocks, slack.NewSectionBlock(md("*Error*\n```"+clip(esc(n.Error), 2800)+"```"), nil, nil))
	}
	if n.NextSteps != "" {
		blocks = append(blocks, slack.NewSectionBlock(md("*What you must do*\n"+esc(n.NextSteps)), nil, nil))
	}
	ctx := []slack.MixedElement{}
	if !n.Time.IsZero() {
		ctx = append(ctx, md(n.Time.UTC().Format(time.RFC3339)))
	}
	if n.TriggerID != "" {
		ctx = append(ctx, md("trigger "+code(n.TriggerID)))
	}
	if len(ctx) > 0 {
		blocks = append(blocks, slack.NewContextBlock("", ctx...))
	}
	return blocks
}

func digestBlocks(n notify.Notification) []slack.Block {
	blocks := []slack.Block{slack.NewHeaderBlock(slack.NewTextBlockObject(slack.PlainTextType, ":card_index: "+n.Title, true, false))}
	if n.Mention != "" {
		blocks = append(blocks, slack.NewSectionBlock(md(n.Mention), nil, nil))
	}
	var lines []string
	flush := func() {
		if len(lines) > 0 {
			blocks = append(blocks, slack.NewSectionBlock(md(strings.Join(lines, "\n")), nil, nil))
			lines = nil
		}
	}
	for i, item := range n.Digest {
		if len(blocks) >= 48 { // Slack's limit is 50 blocks per message
			lines = append(lines, fmt.Sprintf("…and %d more", len(n.Digest)-i))
			break
		}
		line := fmt.Sprintf("• %s %s", code(item.Secret), esc(item.Title))
		if k := keyText(item); k != "" {
			line += " — " + k
		}
		if item.Duration > 0 {
			line += fmt.Sprintf(" in %s", item.Duration.Round(10*time.Millisecond))
		}
		lines = append(lines, line)
		if len(lines) == 20 {
			flush()
		}
	}
	flush()
	return blocks
}

func fallbackText(n notify.Notification) string {
	t := emoji(n) + " " + n.Title
	if n.Mention != "" {
		t = n.Mention + " " + t
	}
	return t
}

func emoji(n notify.Notification) string {
	switch {
	case n.Outcome == events.OutcomeFailed || n.Severity == events.SeverityCritical:
		return ":rotating_light:"
	case n.Outcome == events.OutcomeRefused || n.Outcome == events.OutcomeWarning || n.Severity == events.SeverityWarning:
		return ":warning:"
	case n.Outcome == events.OutcomeSucceeded:
		return ":white_check_mark:"
	default:
		return ":arrows_counterclockwise:"
	}
}

func keyText(n notify.Notification) string {
	var parts []string
	if n.KeyID != "" {
		// Only a rotation's own steps make a new key; an alert names an
		// existing one, which may be retired.
		label := "key "
		switch n.Step {
		case events.StepCreate, events.StepTest, events.StepPromote, events.StepRotation:
			label = "new "
		}
		parts = append(parts, label+code(n.KeyID))
	}
	if n.PreviousKeyID != "" {
		parts = append(parts, "was "+code(n.PreviousKeyID))
	}
	if n.KeyLast4 != "" {
		parts = append(parts, "value ends "+code(n.KeyLast4))
	}
	return strings.Join(parts, ", ")
}

func requester(n notify.Notification) string {
	if n.Actor == "" {
		return "" // nobody asked (an alert from a scan): no "Requested by via …"
	}
	who := esc(n.Actor)
	if n.Source == events.SourceSlack && n.Actor != "" && !strings.ContainsAny(n.Actor, "<>&|") {
		who = "<@" + n.Actor + ">"
	}
	if n.Source != "" {
		who = strings.TrimSpace(who + " via " + string(n.Source))
	}
	return who
}

func md(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.MarkdownType, s, false, false)
}

func code(s string) string {
	if s == "" {
		return ""
	}
	return "`" + esc(strings.ReplaceAll(s, "`", "'")) + "`"
}

// esc escapes the three characters Slack's mrkdwn treats as control.
func esc(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

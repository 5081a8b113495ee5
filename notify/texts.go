package notify

import (
	"fmt"
	"strings"

	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/laki"
)

// texts is what a notification says in words: a title, what happened and
// was done (summary), and what the reader must do (next).
type texts struct{ title, summary, next string }

// describe words each kind of event on its own. Emergencies say what was
// exposed or who left, what the rotator did about it, and what is left
// for a person to do.
func describe(e events.Event) texts {
	switch e.Step {
	case events.StepTrigger:
		return describeTrigger(e)
	case events.StepRotation:
		return describeRotation(e)
	case events.StepAlert:
		return describeAlert(e)
	case events.StepViolation:
		return texts{
			title: on("Policy violation", e.Secret), // its message is the event's error
			next:  "Rotate the secret or fix its policy; the violation stays open in `audit report` until then.",
		}
	case events.StepAuth:
		return texts{
			title:   "Request to the rotator refused",
			summary: prose(e.Reason),
			next:    "Check who sent the refused request; repeated refusals may be an attack.",
		}
	case events.StepSweep:
		return describeSweep(e)
	}
	return describeStep(e)
}

func describeTrigger(e events.Event) texts {
	target := e.Secret
	if target == "" {
		target = plural(e.Details["secrets"], "secret")
		if o := e.Details["owner"]; o != "" {
			target += " of " + o
		}
	}
	if e.Outcome == events.OutcomeRefused {
		return texts{
			title:   on("Rotation request refused", e.Secret),
			summary: "Nothing was rotated: " + sentence(e.Error),
			next:    "If the request was meant, correct it and send it again; if nobody sent it, find out who did.",
		}
	}
	switch e.Cause {
	case events.CauseCompromise:
		return texts{
			title: "Credential exposed: rotating " + target + " now",
			summary: join(sentence(e.Reason), "The rotator is replacing it with no grace period: "+
				"the exposed credential stops working as soon as its replacement is current."),
			next: "Watch this thread for the outcome. Consumers that read the secret only at start-up must be restarted once it succeeds. " +
				"Find out how the credential was exposed.",
		}
	case events.CausePersonnel:
		return texts{
			title:   "Personnel change: rotating " + target,
			summary: join(sentence(e.Reason), "Every credential they could have seen is being replaced; the old ones end after the policy's short grace."),
			next:    "Watch this thread for the outcome, and make sure consumers pick up the new values before the grace ends.",
		}
	}
	return texts{
		title:   "Rotation requested: " + target,
		summary: sentence(e.Reason),
	}
}

func describeRotation(e events.Event) texts {
	kind := "Rotation"
	switch e.Cause {
	case events.CauseCompromise:
		kind = "Compromise rotation"
	case events.CausePersonnel:
		kind = "Personnel rotation"
	case events.CauseManual:
		kind = "Manual rotation"
	}
	newKey, oldKey := keyWords(e.KeyID, "the new credential"), keyWords(e.PreviousKeyID, "the old credential")
	switch e.Outcome {
	case events.OutcomeStarted:
		return texts{title: on(kind+" started", e.Secret)}
	case events.OutcomeSucceeded:
		t := texts{title: on(kind+" succeeded", e.Secret)}
		switch e.Cause {
		case events.CauseCompromise:
			t.summary = join(sentence(e.Reason), fmt.Sprintf("Now %s is in AWSCURRENT and %s, the exposed one, ends at once (no grace).", newKey, oldKey))
			t.next = "Make sure every consumer uses the new value (restart those that cache it), then find out how the old one was exposed."
		case events.CausePersonnel:
			t.summary = join(sentence(e.Reason), fmt.Sprintf("Now %s is in AWSCURRENT; %s ends after the policy's grace.", newKey, oldKey))
			t.next = "Make sure every consumer picks up the new value before the grace ends."
		default:
			t.summary = fmt.Sprintf("Now %s is in AWSCURRENT; %s ends after the policy's grace.", newKey, oldKey)
		}
		return t
	case events.OutcomeFailed:
		t := texts{title: on(kind+" failed", e.Secret)}
		retry := ""
		if e.Details["retry"] == "true" {
			retry = "The rotator tries again after a backoff."
		}
		switch e.Cause {
		case events.CauseCompromise:
			t.summary = join(sentence(e.Reason), "The exposed credential was not replaced and may still work at LakiConnect.", retry)
			t.next = "Act now: if the exposed key still works, revoke it at LakiConnect by hand (its consumers fail until the rotation succeeds). " +
				"Fix the cause in the error, then trigger the compromise rotation again."
		default:
			t.summary = join("AWSCURRENT still holds the old credential, so consumers are not affected.", retry)
			t.next = "Check the error and the daemon's log, then trigger the rotation again."
		}
		return t
	}
	return describeStep(e)
}

func describeAlert(e events.Event) texts {
	t := texts{summary: prose(e.Reason)}
	switch code := e.Details["reason"]; {
	case e.Details["action"] == "old_key_still_used":
		t.title = on("Old credential still in use", e.Secret)
		t.summary = fmt.Sprintf("The old credential was last used at %s and stops working at %s.", e.Details["last_used_at"], e.Details["ends_at"])
		t.next = "Find the consumer still using the old credential and move it to AWSCURRENT before then."
	case code == "exposed_key_unmanaged":
		t.title = "Exposed key held by no managed secret"
		t.next = "Revoke the key at LakiConnect by hand now, and find who uses it: the rotator cannot replace a key it does not manage."
	case code == "current_key_revoked":
		t.title = on("Current key revoked at LakiConnect", e.Secret)
		t.next = "Its consumers are failing now: rotate the secret at once (`lakirotator rotate SECRET --cause compromise`)."
	case code == "auth_failure_spike":
		t.title = on("Burst of refused requests at LakiConnect", e.Secret)
		t.next = "Find who is calling with this key: someone guessing, or a consumer still using a retired key."
	case code == "audit_unwritable":
		t.title = "Audit trail cannot be written: rotations paused"
		t.next = "Make the audit writable again (free space on the audit file's disk, or fix the error shown): scheduled and manual rotations resume by themselves, and queued records are written."
	case code == "audit_unavailable":
		t.title = on("Compromise rotation running without an audit trail", e.Secret)
		t.next = "Make the audit writable again: this rotation's records are queued and written as soon as it is."
	case code == "security_event_unhandled":
		t.title = "Security event not acted on"
		t.next = "Check the daemon's log for the cause; once it is fixed, LakiConnect's redelivery is acted on."
	case strings.HasPrefix(code, "unauthorized_on_") || strings.HasPrefix(code, "forbidden_on_"):
		// The 401/403 watch: its numbers are in the error line.
		t.title, t.next = authWatchWords(code, e.Secret)
	default:
		t.title = on("Alert", e.Secret)
		t.next = "Check the alert's details and the daemon's log."
	}
	return t
}

// authWatchWords words the 401/403 watch's findings by their reason code.
func authWatchWords(code, secretName string) (title, next string) {
	switch code {
	case "unauthorized_on_retired_key":
		return on("Retired key still presented", secretName), "A consumer still uses the retired key: move it to AWSCURRENT."
	case "unauthorized_on_current_key":
		return on("Current key refused (401)", secretName), "The current key may be revoked or leaked: check at LakiConnect and rotate it if in doubt."
	case "forbidden_on_current_key":
		return on("Current key refused for missing scopes (403)", secretName), "A consumer calls what its policy does not grant: fix the consumer or the policy."
	case "forbidden_on_retired_key":
		return on("Retired key refused (403)", secretName), "A consumer still uses the retired key: move it to AWSCURRENT."
	}
	return "Refused requests with a key the rotator does not manage", "Someone may be guessing keys, or a consumer has a mistyped one: find the caller."
}

func describeSweep(e events.Event) texts {
	t := texts{title: "Orphan sweep " + string(e.Outcome), summary: sentence(e.Reason)}
	if e.Outcome == events.OutcomeFailed {
		t.next = "Orphaned keys may still be active at LakiConnect: run the sweep again or revoke them by hand."
	}
	return t
}

// describeStep words the steps inside one rotation.
func describeStep(e events.Event) texts {
	what := string(e.Step)
	switch e.Step {
	case events.StepCreate:
		what = "New credential"
	case events.StepTest:
		what = "Test of new credential"
	case events.StepPromote:
		what = "Promotion to AWSCURRENT"
	case events.StepRetire:
		what = "Retirement of old credential"
	}
	t := texts{title: on(what+" "+string(e.Outcome), e.Secret)}
	if e.Outcome != events.OutcomeFailed {
		return t
	}
	switch e.Step {
	case events.StepCreate, events.StepTest:
		t.next = "Nothing changed for consumers: AWSCURRENT still holds the old credential. Fix the cause in the error, then trigger the rotation again; the pending version is reused."
	case events.StepPromote:
		t.next = "The new credential is proven but not yet current. Trigger the rotation again to finish promoting it; check the AWSPENDING stage if it keeps failing."
	case events.StepRetire:
		t.next = "The new credential is current. Check at LakiConnect that the old key is expired and revoke it by hand if not."
	default:
		t.next = "Check the error and the daemon's log, then trigger the rotation again."
	}
	return t
}

func on(what, secretName string) string {
	if secretName == "" {
		return what
	}
	return what + ": " + secretName
}

func keyWords(id, otherwise string) string {
	if id == "" {
		return otherwise
	}
	return "key " + laki.ShortID(id)
}

// sentence makes s a sentence: capitalised, ending in a full stop.
func sentence(s string) string {
	if s == "" {
		return ""
	}
	r := []rune(s)
	if r[0] >= 'a' && r[0] <= 'z' {
		r[0] -= 'a' - 'A'
	}
	switch r[len(r)-1] {
	case '.', '!', '?':
	default:
		r = append(r, '.')
	}
	return string(r)
}

// prose returns s as a sentence when it is words, not a reason code.
func prose(s string) string {
	if !strings.Contains(s, " ") {
		return ""
	}
	return sentence(s)
}

// join joins the non-empty sentences with a space.
func join(sentences ...string) string {
	var out []string
	for _, s := range sentences {
		if s != "" {
			out = append(out, s)
		}
	}
	return strings.Join(out, " ")
}

func plural(n, word string) string {
	switch n {
	case "":
		return "secrets"
	case "1":
		return "1 " + word
	}
	return n + " " + word + "s"
}

package secretstore

import (
	"errors"
	"strings"
	"testing"

	"github.com/lakirotator/lakirotator/internal/secret"
)

func TestCheckPut(t *testing.T) {
	id32 := strings.Repeat("a", 32)
	for _, tc := range []struct {
		versionID, value, wantIn string
	}{
		{id32, "v", ""},
		{strings.Repeat("a", 64), "v", ""},
		{strings.Repeat("a", 31), "v", "has 31 characters; AWS wants 32 to 64"},
		{strings.Repeat("a", 65), "v", "has 65 characters"},
		{id32, "", "the value is empty"},
	} {
		err := CheckPut("team/key", tc.versionID, secret.New(tc.value))
		if tc.wantIn == "" {
			if err != nil {
				t.Errorf("CheckPut(%q) = %v, want nil", tc.versionID, err)
			}
			continue
		}
		var se *Error
		if !errors.As(err, &se) || !errors.Is(err, ErrInvalidRequest) || se.Op != "PutPending" || se.Secret != "team/key" ||
			!strings.Contains(err.Error(), tc.wantIn) {
			t.Errorf("CheckPut(%q) = %v, want an invalid PutPending of team/key saying %q", tc.versionID, err, tc.wantIn)
		}
	}
}

func TestCheckMove(t *testing.T) {
	for _, tc := range []struct {
		stage, to, from string
		ok              bool
	}{
		{StageCurrent, "v2", "v1", true},
		{StagePending, "", "v1", true},
		{StagePending, "v2", "", true},
		{"", "v2", "v1", false},
		{StageCurrent, "", "", false},
	} {
		err := CheckMove("team/key", tc.stage, tc.to, tc.from)
		if (err == nil) != tc.ok {
			t.Errorf("CheckMove(%q, %q, %q) = %v, want ok %v", tc.stage, tc.to, tc.from, err, tc.ok)
		}
		if err != nil && (!errors.Is(err, ErrInvalidRequest) || !strings.Contains(err.Error(), `MoveStage "team/key"`)) {
			t.Errorf("CheckMove error %q does not name the operation and secret as an invalid request", err)
		}
	}
}

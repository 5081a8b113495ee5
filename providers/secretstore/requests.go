package secretstore

import (
	"errors"
	"fmt"

	"github.com/lakirotator/lakirotator/internal/secret"
)

// CheckPut holds a PutPending to Secrets Manager's constraints, so that
// every store refuses the same input with the same words before it calls
// anything: a version id of 32 to 64 characters and a value.
func CheckPut(name, versionID string, value secret.Value) error {
	if n := len(versionID); n < 32 || n > 64 {
		return invalid("PutPending", name, fmt.Errorf("version id %q has %d characters; AWS wants 32 to 64", versionID, n))
	}
	if value.IsZero() {
		return invalid("PutPending", name, errors.New("the value is empty"))
	}
	return nil
}

// CheckMove holds a MoveStage to naming a stage and a version to move it
// to or from, as every store needs.
func CheckMove(name, stage, toVersionID, fromVersionID string) error {
	if stage == "" || (toVersionID == "" && fromVersionID == "") {
		return invalid("MoveStage", name, errors.New("need a stage and a version to move it to or from"))
	}
	return nil
}

func invalid(op, name string, err error) error {
	return &Error{Op: op, Secret: name, Kind: ErrInvalidRequest, Err: err}
}

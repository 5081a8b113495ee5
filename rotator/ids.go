package rotator

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
)

// VersionID is the Secrets Manager version id (ClientRequestToken) of one
// rotation: a UUID-formatted (36 chars, RFC 9562 version 8) digest of the
// secret's ARN (or name when it has none) and the cause id. A retry, a
// restart or a second replica acting on the same secret and cause computes the
// same id, and so converges on one version and one LakiConnect key.
func VersionID(secretRef, causeID string) string {
	h := sha256.Sum256([]byte("lakirotator/version/v1\x00" + secretRef + "\x00" + causeID))
	b := h[:16]
	b[6] = (b[6] & 0x0f) | 0x80 // version 8: custom
	b[8] = (b[8] & 0x3f) | 0x80 // RFC variant
	x := hex.EncodeToString(b)
	return x[0:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:32]
}

// maxNameInKey bounds the secret name part of an idempotency key so that the
// whole key stays within LakiConnect's 255 characters.
const maxNameInKey = 150

// IdempotencyKey is the LakiConnect Idempotency-Key of one step of one
// rotation: rotate-<name>-<version id>-<step>. A name that is long or not
// printable ASCII is replaced by a digest of it.
func IdempotencyKey(secretName, versionID, step string) string {
	return fmt.Sprintf("rotate-%s-%s-%s", keyName(secretName), versionID, step)
}

func keyName(name string) string {
	ok := len(name) > 0 && len(name) <= maxNameInKey
	for i := 0; ok && i < len(name); i++ {
		if name[i] < 0x21 || name[i] > 0x7e {
			ok = false
		}
	}
	if ok {
		return name
	}
	h := sha256.Sum256([]byte(name))
	return "h" + hex.EncodeToString(h[:12])
}

// Package audit keeps the tamper-evident audit trail: one JSON line per
// lifecycle fact, each carrying a sequence number, the SHA-256 of the
// previous line (a hash chain) and the SHA-256 of itself, so that an edited,
// deleted, inserted or reordered record is found by Verify. Records hold ids
// and last-4s only, never a secret value: they are built from events.Event,
// which carries none.
package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/lakirotator/lakirotator/events"
)

// GenesisHash is the PrevHash of the first record of a chain.
const GenesisHash = "0000000000000000000000000000000000000000000000000000000000000000"

// Record is one line of the audit trail.
type Record struct {
	Seq  uint64    `json:"seq"`
	Time time.Time `json:"time"`
	// PrevHash is the hex SHA-256 of the previous record's line (without its newline).
	PrevHash string       `json:"prev_hash"`
	Event    events.Event `json:"event"`
	// Hash is the hex SHA-256 of this line with the hash field left out. It
	// must stay the last field: Verify finds it at the end of the line, so an
	// edit that does not recompute it is pinned to its own line, the last
	// line included.
	Hash string `json:"hash"`
}

// Head is where a chain ends: the sequence number and line hash of its last
// record. The zero Head is an empty chain.
type Head struct {
	Seq  uint64
	Hash string // hex SHA-256 of the last line; "" for an empty chain
}

// prevHash is the PrevHash the next record after h carries.
func (h Head) prevHash() string {
	if h.Hash == "" {
		return GenesisHash
	}
	return h.Hash
}

// LineHash is the hex SHA-256 of a record line without its trailing newline.
func LineHash(line []byte) string {
	sum := sha256.Sum256(bytes.TrimRight(line, "\n"))
	return hex.EncodeToString(sum[:])
}

const hashSuffixLen = len(`,"hash":"`) + 64 + len(`"}`)

// encodeRecord builds the line (without newline) of the record that follows head.
func encodeRecord(head Head, at time.Time, e events.Event) ([]byte, Head, error) {
	r := Record{Seq: head.Seq + 1, Time: at.UTC(), PrevHash: head.prevHash(), Event: e}
	body, err := json.Marshal(r)
	if err != nil {
		return nil, Head{}, fmt.Errorf("audit: encode record %d: %w", r.Seq, err)
	}
	// body ends in `,"hash":""}`; hash the line with the hash field cut out.
	const emptyHash = `,"hash":""}`
	if !bytes.HasSuffix(body, []byte(emptyHash)) {
		return nil, Head{}, fmt.Errorf("audit: encode record %d: hash is not the last field", r.Seq)
	}
	unsigned := append(body[:len(body)-len(emptyHash):len(body)-len(emptyHash)], '}')
	sum := sha256.Sum256(unsigned)
	line := make([]byte, 0, len(unsigned)+hashSuffixLen)
	line = append(line, unsigned[:len(unsigned)-1]...)
	line = append(line, `,"hash":"`...)
	line = append(line, hex.EncodeToString(sum[:])...)
	line = append(line, `"}`...)
	return line, Head{Seq: r.Seq, Hash: LineHash(line)}, nil
}

// selfHashOK reports whether the hash field at the end of line matches the rest of it.
func selfHashOK(line []byte) bool {
	if len(line) < hashSuffixLen || !bytes.HasPrefix(line[len(line)-hashSuffixLen:], []byte(`,"hash":"`)) {
		return false
	}
	want := line[len(line)-hashSuffixLen+len(`,"hash":"`) : len(line)-2]
	unsigned := append(append([]byte(nil), line[:len(line)-hashSuffixLen]...), '}')
	sum := sha256.Sum256(unsigned)
	return hex.EncodeToString(sum[:]) == string(want)
}

// decodeHead parses a record line far enough to continue the chain after it.
func decodeHead(line []byte) (Head, error) {
	var r struct {
		Seq uint64 `json:"seq"`
	}
	if err := json.Unmarshal(line, &r); err != nil || r.Seq == 0 {
		return Head{}, fmt.Errorf("not an audit record")
	}
	return Head{Seq: r.Seq, Hash: LineHash(line)}, nil
}

// EncodeRecord builds the line (without newline) of the record for e that
// follows head, and the new head. Sinks get it through Append's next; it
// is exported for tools that rebuild chains (and for tests that play an
// attacker who recomputes them, which is why the chain alone is no proof).
func EncodeRecord(head Head, at time.Time, e events.Event) ([]byte, Head, error) {
	return encodeRecord(head, at, e)
}

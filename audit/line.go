package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"time"
)

// LineInfo is what a verifier needs from one record line.
type LineInfo struct {
	Seq      uint64
	Time     time.Time
	PrevHash string
	// Hash is the line's hash (what its successor names as prev_hash).
	Hash string
	// SelfHashOK says the line's own hash field matches its content.
	SelfHashOK bool
	// ContentKey identifies the record's content (its time and event)
	// whatever its seq and chain fields say: a record renumbered or
	// re-chained by someone who recomputed the hashes keeps its key.
	ContentKey string
}

// ParseLine reads a record line (without its newline).
func ParseLine(raw []byte) (LineInfo, error) {
	var r struct {
		Seq      uint64          `json:"seq"`
		Time     time.Time       `json:"time"`
		PrevHash string          `json:"prev_hash"`
		Event    json.RawMessage `json:"event"`
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		return LineInfo{}, errors.New("not valid JSON")
	}
	if r.Seq == 0 {
		return LineInfo{}, errors.New("no seq")
	}
	if len(r.PrevHash) != len(GenesisHash) {
		return LineInfo{}, errors.New("no prev_hash")
	}
	h := sha256.New()
	h.Write([]byte(r.Time.UTC().Format(time.RFC3339Nano)))
	h.Write([]byte{0})
	h.Write(r.Event)
	return LineInfo{
		Seq: r.Seq, Time: r.Time, PrevHash: r.PrevHash, Hash: LineHash(raw),
		SelfHashOK: selfHashOK(raw), ContentKey: hex.EncodeToString(h.Sum(nil)),
	}, nil
}

package audit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
)

// ProblemKind names what Verify found wrong.
type ProblemKind string

const (
	ProblemMalformed ProblemKind = "malformed" // not a record line
	ProblemEdited    ProblemKind = "edited"    // the line's content changed
	ProblemDeleted   ProblemKind = "deleted"   // records are missing before this line
	ProblemInserted  ProblemKind = "inserted"  // this line was not written by the chain
	ProblemReordered ProblemKind = "reordered" // a genuine record out of place
)

// Problem is the first break in a chain.
type Problem struct {
	Line   int         `json:"line"` // 1-based line number of the bad record
	Seq    uint64      `json:"seq,omitempty"`
	Kind   ProblemKind `json:"kind"`
	Detail string      `json:"detail"`
}

func (p Problem) String() string {
	return fmt.Sprintf("line %d (seq %d): %s: %s", p.Line, p.Seq, p.Kind, p.Detail)
}

// Result is what Verify found.
type Result struct {
	Records int      `json:"records"`
	LastSeq uint64   `json:"last_seq"`
	Problem *Problem `json:"problem,omitempty"`
}

// OK reports whether the whole chain is intact.
func (r Result) OK() bool { return r.Problem == nil }

func (r Result) String() string {
	if r.Problem != nil {
		return fmt.Sprintf("audit chain BROKEN after %d records: %s", r.Records, r.Problem)
	}
	return fmt.Sprintf("audit chain OK: %d records, last seq %d", r.Records, r.LastSeq)
}

type verifyLine struct {
	raw      []byte
	seq      uint64
	prevHash string
	hash     string // line hash
	err      string // why the line is malformed
}

// Verify walks the chain in r and reports the first edited, deleted,
// inserted, reordered or malformed record. The error is for reading
// failures only; a broken chain is a Result with a Problem. What no chain
// can show: records cut off the end, or records appended by someone who
// recomputed the hashes; ship records to a remote sink for that.
func Verify(r io.Reader) (Result, error) {
	var lines []verifyLine
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 16*1024*1024)
	for sc.Scan() {
		raw := bytes.Clone(sc.Bytes())
		l := verifyLine{raw: raw, hash: LineHash(raw)}
		var rec struct {
			Seq      uint64 `json:"seq"`
			PrevHash string `json:"prev_hash"`
		}
		switch {
		case len(raw) == 0:
			l.err = "empty line"
		case json.Unmarshal(raw, &rec) != nil:
			l.err = "not valid JSON"
		case rec.Seq == 0:
			l.err = "no seq"
		case len(rec.PrevHash) != len(GenesisHash):
			l.err = "no prev_hash"
		}
		l.seq, l.prevHash = rec.Seq, rec.PrevHash
		lines = append(lines, l)
	}
	if err := sc.Err(); err != nil {
		return Result{}, fmt.Errorf("audit verify: read line %d: %w", len(lines)+1, err)
	}

	byHash := make(map[string]int, len(lines)) // line hash -> index
	for i, l := range lines {
		if l.err == "" {
			byHash[l.hash] = i
		}
	}
	// chains reports whether line i directly follows line j (j = -1: the genesis).
	chains := func(i, j int) bool {
		if j < 0 {
			return lines[i].seq == 1 && lines[i].prevHash == GenesisHash
		}
		return lines[i].seq == lines[j].seq+1 && lines[i].prevHash == lines[j].hash
	}
	// pred is the index of the line i names as its predecessor, -1 for the genesis, -2 if absent.
	pred := func(i int) int {
		if lines[i].prevHash == GenesisHash && lines[i].seq == 1 {
			return -1
		}
		if j, ok := byHash[lines[i].prevHash]; ok && lines[j].seq+1 == lines[i].seq {
			return j
		}
		return -2
	}

	res := Result{}
	fail := func(i int, kind ProblemKind, format string, args ...any) (Result, error) {
		res.Problem = &Problem{Line: i + 1, Seq: lines[i].seq, Kind: kind, Detail: fmt.Sprintf(format, args...)}
		return res, nil
	}
	for i, l := range lines {
		if l.err != "" {
			return fail(i, ProblemMalformed, "%s", l.err)
		}
		if !selfHashOK(l.raw) {
			return fail(i, ProblemEdited, "the record's content does not match its own hash")
		}
		if chains(i, i-1) {
			res.Records++
			res.LastSeq = l.seq
			continue
		}
		if i > 0 && lines[i-1].hash == l.hash {
			return fail(i, ProblemInserted, "a copy of line %d", i)
		}
		prevSeq := uint64(0)
		if i > 0 {
			prevSeq = lines[i-1].seq
		}
		nextChainsToPrev := i+1 < len(lines) && lines[i+1].err == "" && chains(i+1, i-1)
		switch p := pred(i); {
		case p > i:
			return fail(i, ProblemReordered, "record seq %d comes before its predecessor seq %d (line %d)", l.seq, lines[p].seq, p+1)
		case p >= -1 && p < i-1:
			// This record is genuine but something sits between it and its
			// predecessor: if the previous line claims the same predecessor,
			// that line was slipped in.
			if i > 0 && pred(i-1) == p {
				return fail(i-1, ProblemInserted, "record seq %d claims the place of record seq %d (line %d)", lines[i-1].seq, l.seq, i+1)
			}
			return fail(i, ProblemReordered, "record seq %d belongs after seq %d (line %d)", l.seq, lines[p].seq, p+1)
		case l.seq == prevSeq+1:
			// The record is where it belongs but its predecessor's line changed.
			if i == 0 {
				return fail(i, ProblemEdited, "the first record does not start the chain")
			}
			return fail(i-1, ProblemEdited, "the record does not match the hash its successor seq %d recorded", l.seq)
		case nextChainsToPrev:
			return fail(i, ProblemInserted, "the records around this line chain to each other without it")
		case l.seq > prevSeq+1:
			return fail(i, ProblemDeleted, "records seq %d to %d are missing before this line", prevSeq+1, l.seq-1)
		default:
			return fail(i, ProblemInserted, "record seq %d does not belong after seq %d", l.seq, prevSeq)
		}
	}
	return res, nil
}

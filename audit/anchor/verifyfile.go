package anchor

import (
	"bufio"
	"bytes"
	"fmt"
	"io"

	"github.com/lakirotator/lakirotator/audit"
)

type fileLine struct {
	n       int // 1-based line number
	raw     []byte
	info    audit.LineInfo
	truth   int  // index into truth, -1 when the line is not a shipped record
	rechain bool // matched by content only: its seq or chain fields were recomputed
}

// verifyFile compares the file with the records the digests vouch for.
// Without a bucket it can only walk the file's own (unkeyed) chain.
func verifyFile(r io.Reader, truth []record, anchored bool, rep *Report) error {
	var data bytes.Buffer
	if _, err := io.Copy(&data, r); err != nil {
		return fmt.Errorf("reading the audit file: %w", err)
	}
	if !anchored {
		res, err := audit.Verify(bytes.NewReader(data.Bytes()))
		if err != nil {
			return err
		}
		rep.FileRecords, rep.chain = res.Records, res.String()
		if p := res.Problem; p != nil {
			rep.add(Finding{Kind: string(p.Kind), Copy: "file", FirstSeq: p.Seq, Line: p.Line, Detail: p.Detail})
		}
		f := Finding{Kind: KindUnanchored, Copy: "file",
			Detail: "no bucket given: only the file's own hash chain was checked, which anyone who can write the file can recompute"}
		if res.LastSeq > 0 {
			f.FirstSeq, f.LastSeq = 1, res.LastSeq
		}
		rep.add(f)
		return nil
	}

	var lines []fileLine
	sc := bufio.NewScanner(bytes.NewReader(data.Bytes()))
	sc.Buffer(make([]byte, 0, 64*1024), 16*1024*1024)
	for n := 1; sc.Scan(); n++ {
		raw := bytes.Clone(sc.Bytes())
		info, err := audit.ParseLine(raw)
		if err != nil {
			rep.add(Finding{Kind: KindMalformed, Copy: "file", Line: n, Detail: err.Error()})
			continue
		}
		lines = append(lines, fileLine{n: n, raw: raw, info: info, truth: -1})
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("reading the audit file: %w", err)
	}
	rep.FileRecords = len(lines)

	byHash := map[string]int{}
	byContent := map[string][]int{}
	for i, t := range truth {
		byHash[t.info.Hash] = i
		byContent[t.info.ContentKey] = append(byContent[t.info.ContentKey], i)
	}
	matched := make([]bool, len(truth))
	lastMatched := -1 // index into lines
	for i := range lines {
		l := &lines[i]
		if ti, ok := byHash[l.info.Hash]; ok && !matched[ti] {
			l.truth, matched[ti] = ti, true
		} else {
			for _, ti := range byContent[l.info.ContentKey] {
				if !matched[ti] {
					l.truth, l.rechain, matched[ti] = ti, true, true
					break
				}
			}
		}
		if l.truth >= 0 {
			lastMatched = i
		}
	}
	var maxSeq uint64
	if n := len(truth); n > 0 {
		maxSeq = truth[n-1].info.Seq
	}

	// Reordered: a genuine record after one that was shipped later.
	var highest uint64
	for _, l := range lines {
		if l.truth < 0 {
			continue
		}
		seq := truth[l.truth].info.Seq
		if seq < highest {
			rep.add(Finding{Kind: KindReordered, Copy: "file", FirstSeq: seq, FirstTime: timePtr(truth[l.truth].info.Time), Line: l.n,
				Detail: fmt.Sprintf("record seq %d stands after seq %d", seq, highest)})
		}
		highest = max(highest, seq)
	}

	// Re-chained: genuine content under recomputed fields.
	emitRange(rep, lines, func(l fileLine) bool { return l.truth >= 0 && l.rechain }, func(first, last fileLine) Finding {
		a, b := truth[first.truth].info, truth[last.truth].info
		return Finding{Kind: KindRechained, Copy: "file", FirstSeq: a.Seq, LastSeq: b.Seq, FirstTime: timePtr(a.Time), LastTime: timePtr(b.Time), Line: first.n,
			Detail: "the records' content is genuine but their seq, prev_hash or hash fields were recomputed (records around them were removed, added or changed)"}
	})

	// Lines that are not shipped records: either in place of a missing
	// record (edited), after the anchored range (unanchored), or slipped in.
	claimed := map[uint64]int{} // seq → index into lines of an unknown line claiming it
	for i, l := range lines {
		if l.truth < 0 && l.info.Seq <= maxSeq {
			if _, ok := claimed[l.info.Seq]; !ok {
				claimed[l.info.Seq] = i
			}
		}
	}
	edited := map[int]bool{}
	var missing []int // truth indexes of deleted records
	for ti, ok := range matched {
		if ok {
			continue
		}
		seq := truth[ti].info.Seq
		if li, ok := claimed[seq]; ok && !edited[li] {
			edited[li] = true
			rep.add(Finding{Kind: KindEdited, Copy: "file", FirstSeq: seq, FirstTime: timePtr(truth[ti].info.Time), Line: lines[li].n,
				Detail: "the record differs from the one shipped and signed for"})
			continue
		}
		missing = append(missing, ti)
	}
	for start := 0; start < len(missing); {
		end := start
		for end+1 < len(missing) && truth[missing[end+1]].info.Seq == truth[missing[end]].info.Seq+1 {
			end++
		}
		a, b := truth[missing[start]].info, truth[missing[end]].info
		detail := "records shipped and signed for are missing from the file"
		if b.Seq == maxSeq {
			detail = "the file's tail is missing: records shipped and signed for end here"
		}
		rep.add(Finding{Kind: KindDeleted, Copy: "file", FirstSeq: a.Seq, LastSeq: b.Seq, FirstTime: timePtr(a.Time), LastTime: timePtr(b.Time), Detail: detail})
		start = end + 1
	}

	var unanchored []fileLine
	var beforeUnanchored *fileLine // the file line before the first unanchored one
	for i, l := range lines {
		switch {
		case l.truth >= 0 || edited[i]:
		case i > lastMatched:
			// After every anchored record: not anchored yet (renumbered,
			// if records before were removed); the chain check below
			// catches one that does not follow.
			if len(unanchored) == 0 && i > 0 {
				beforeUnanchored = &lines[i-1]
			}
			unanchored = append(unanchored, l)
		default:
			rep.add(Finding{Kind: KindInserted, Copy: "file", FirstSeq: l.info.Seq, FirstTime: timePtr(l.info.Time), Line: l.n,
				Detail: "no signed digest vouches for this record"})
		}
	}
	if len(unanchored) > 0 {
		a, b := unanchored[0], unanchored[len(unanchored)-1]
		rep.add(Finding{Kind: KindUnanchored, Copy: "file", FirstSeq: a.info.Seq, LastSeq: b.info.Seq, FirstTime: timePtr(a.info.Time), LastTime: timePtr(b.info.Time), Line: a.n,
			Detail: "written after the last digest: not anchored yet (the next digest covers them)"})
		// They are checked against the file line before them: a re-chained
		// or deleted anchored range is reported above already.
		prevHash := audit.GenesisHash
		prevSeq := uint64(0)
		if beforeUnanchored != nil {
			prevHash, prevSeq = beforeUnanchored.info.Hash, beforeUnanchored.info.Seq
		}
		for _, l := range unanchored {
			switch {
			case !l.info.SelfHashOK:
				rep.add(Finding{Kind: KindEdited, Copy: "file", FirstSeq: l.info.Seq, FirstTime: timePtr(l.info.Time), Line: l.n,
					Detail: "the record's content does not match its own hash"})
			case l.info.PrevHash != prevHash || l.info.Seq != prevSeq+1:
				rep.add(Finding{Kind: KindInserted, Copy: "file", FirstSeq: l.info.Seq, FirstTime: timePtr(l.info.Time), Line: l.n,
					Detail: fmt.Sprintf("the record does not follow seq %d on the chain", prevSeq)})
			}
			prevHash, prevSeq = l.info.Hash, l.info.Seq
		}
	}
	return nil
}

// emitRange adds one finding per run of consecutive lines matching in.
func emitRange(rep *Report, lines []fileLine, in func(fileLine) bool, mk func(first, last fileLine) Finding) {
	for i := 0; i < len(lines); i++ {
		if !in(lines[i]) {
			continue
		}
		j := i
		for j+1 < len(lines) && in(lines[j+1]) {
			j++
		}
		rep.add(mk(lines[i], lines[j]))
		i = j
	}
}

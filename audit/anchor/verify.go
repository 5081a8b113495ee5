// Verify: the bucket's streams, what no single stream shows, and the file
// matched to the stream it was shipped as.

package anchor

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/lakirotator/lakirotator/audit"
)

// Options say what to verify.
type Options struct {
	Bucket     Bucket // nil: the file's own chain only (no anchor)
	BucketName string // for the report
	Prefix     string
	Verifier   SignatureVerifier
	// File, when set, is checked against what the digests vouch for.
	File     io.Reader
	FileName string
	Now      time.Time
}

type record struct {
	raw  []byte
	info audit.LineInfo
}

// Verify checks the digests, the shipped records and the file.
func Verify(ctx context.Context, o Options) (Report, error) {
	rep := Report{Bucket: o.BucketName, Prefix: o.Prefix, File: o.FileName, Findings: []Finding{}}
	var fileData []byte
	if o.File != nil {
		var err error
		if fileData, err = io.ReadAll(o.File); err != nil {
			return rep, fmt.Errorf("reading the audit file: %w", err)
		}
	}
	var truth []record // the records the digests vouch for, of the file's stream
	if o.Bucket != nil {
		streams, err := verifyStreams(ctx, o, &rep)
		if err != nil {
			return rep, err
		}
		if o.File != nil {
			if st := fileStream(o.Prefix, fileData, streams); st != nil {
				truth, rep.FileStream, rep.LastAnchoredSeq = st.truth, st.id, st.lastSeq
			} else if len(streams) > 0 {
				rep.add(Finding{Kind: KindUnanchored, Copy: "file",
					Detail: "no stream in the bucket holds this file's records: it has not been shipped yet, or it is not the file the rotator wrote"})
			}
		}
	}
	if o.File != nil {
		rep.stream = rep.FileStream
		if err := verifyFile(bytes.NewReader(fileData), truth, o.Bucket != nil, &rep); err != nil {
			return rep, err
		}
	}
	sort.SliceStable(rep.Findings, func(i, j int) bool {
		if rep.Findings[i].Stream != rep.Findings[j].Stream {
			return rep.Findings[i].Stream < rep.Findings[j].Stream
		}
		return rep.Findings[i].FirstSeq < rep.Findings[j].FirstSeq
	})
	rep.OK = true
	for _, f := range rep.Findings {
		if !f.Warning {
			rep.OK = false
		}
	}
	return rep, nil
}

// stream is one audit file's chain in the bucket, as verified.
type stream struct {
	id      string // the key prefix under <prefix>streams/
	prefix  string
	truth   []record
	first   *Digest
	last    *Digest
	lastSeq uint64
}

// verifyStreams checks every stream under the prefix, then what no single
// stream shows: records shipped twice, records anchored late, digests stopped.
func verifyStreams(ctx context.Context, o Options, rep *Report) ([]*stream, error) {
	all, err := o.Bucket.Versions(ctx, o.Prefix+streamsDir)
	if err != nil {
		return nil, err
	}
	var streams []*stream
	seen := map[string]bool{}
	for _, v := range all {
		id, _, ok := strings.Cut(strings.TrimPrefix(v.Key, o.Prefix+streamsDir), "/")
		if !ok || seen[id] {
			continue
		}
		seen[id] = true
		streams = append(streams, &stream{id: id, prefix: o.Prefix + streamsDir + id + "/"})
	}
	for _, st := range streams {
		rep.stream = st.id
		if err := verifyStream(ctx, o, st, rep); err != nil {
			return nil, err
		}
		rep.AnchoredRecords += len(st.truth)
		if st.last != nil && (rep.LastDigestTime == nil || st.last.Time.After(*rep.LastDigestTime)) {
			rep.LastDigestTime = timePtr(st.last.Time)
		}
	}
	rep.Streams = len(streams)

	// One record in two streams: a file re-shipped under a new first record.
	owner := map[string]*stream{}
	for _, st := range streams {
		rep.stream = st.id
		var dup []record
		var other *stream
		for _, r := range st.truth {
			if o, ok := owner[r.info.ContentKey]; ok {
				dup, other = append(dup, r), o
				continue
			}
			owner[r.info.ContentKey] = st
		}
		if len(dup) > 0 {
			a, b := dup[0].info, dup[len(dup)-1].info
			rep.add(Finding{Kind: KindReshipped, Copy: "bucket", FirstSeq: a.Seq, LastSeq: b.Seq, FirstTime: timePtr(a.Time), LastTime: timePtr(b.Time),
				Detail: fmt.Sprintf("%d records were already shipped in stream %s: the audit file was replaced by a copy with a different first record", len(dup), other.id)})
		}
		if d := st.first; d != nil && d.FirstTime != nil && d.IntervalSeconds > 0 {
			every := time.Duration(d.IntervalSeconds) * time.Second
			if d.Time.Sub(*d.FirstTime) > 2*every {
				rep.add(Finding{Kind: KindLateAnchored, Copy: "bucket", FirstSeq: d.FirstSeq, LastSeq: d.LastSeq, FirstTime: d.FirstTime, LastTime: d.LastTime, Object: d.Key,
					Detail: fmt.Sprintf("the stream's first digest came %s after its first record: these records could have been changed before they were anchored", d.Time.Sub(*d.FirstTime).Round(time.Second))})
			}
		}
	}

	// Only the newest stream should still be getting digests.
	var newest *stream
	for _, st := range streams {
		if st.last != nil && (newest == nil || st.last.Time.After(newest.last.Time)) {
			newest = st
		}
	}
	if newest != nil && !o.Now.IsZero() {
		d := newest.last
		every := time.Duration(d.IntervalSeconds) * time.Second
		if every > 0 && o.Now.Sub(d.Time) > 2*every {
			rep.stream = newest.id
			rep.add(Finding{Kind: KindStale, Copy: "bucket", FirstTime: timePtr(d.Time), LastTime: timePtr(o.Now), Object: d.Key,
				Detail: fmt.Sprintf("no digest for %s (interval %s): the rotator is stopped, or later digests are missing", o.Now.Sub(d.Time).Round(time.Second), every)})
		}
	}
	rep.stream = ""
	return streams, nil
}

// fileStream picks the stream the file was shipped as: named after its
// first record, or else the one sharing the most records with it (the
// first record may be the one that was edited or deleted).
func fileStream(prefix string, data []byte, streams []*stream) *stream {
	var keys []audit.LineInfo
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 16*1024*1024)
	for sc.Scan() {
		if info, err := audit.ParseLine(sc.Bytes()); err == nil {
			keys = append(keys, info)
		}
	}
	if len(keys) > 0 {
		want := StreamPrefix(prefix, keys[0])
		for _, st := range streams {
			if st.prefix == want {
				return st
			}
		}
	}
	var best *stream
	bestN := 0
	for _, st := range streams {
		in := map[string]bool{}
		for _, r := range st.truth {
			in[r.info.ContentKey] = true
		}
		n := 0
		for _, k := range keys {
			if in[k.ContentKey] {
				n++
			}
		}
		if n > bestN {
			best, bestN = st, n
		}
	}
	return best
}

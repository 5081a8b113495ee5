// verify.go is long on purpose: the verifier is one pass over file, batches
// and digests, and each finding kind is reported where it is detected, so an
// auditor can follow a finding to its rule in one read.

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

// Kinds of finding. Tampering kinds fail the verification; the warnings
// (KindUnanchored, KindDigestGap, KindStale) say what the digests cannot
// vouch for yet.
const (
	KindEdited            = "edited"             // a record's content differs from what was shipped
	KindReordered         = "reordered"          // a genuine record out of place
	KindInserted          = "inserted"           // a record that was never shipped
	KindDeleted           = "deleted"            // shipped records missing from the file (the tail included)
	KindRechained         = "rechained"          // genuine content under recomputed seq/hash fields
	KindMalformed         = "malformed"          // a line that is not a record
	KindMissingDigest     = "missing_digest"     // the chain of digests is broken
	KindBadSignature      = "bad_signature"      // a digest object whose signature does not verify
	KindDigestSwapped     = "digest_swapped"     // a signed digest stored under another digest's key
	KindOverwritten       = "overwritten"        // an object with more than one version
	KindHidden            = "hidden"             // a delete marker hides an object from plain listings
	KindBatchEdited       = "batch_edited"       // a records object that does not match its digest
	KindMissingBatch      = "missing_batch"      // records a digest vouches for are not in the bucket
	KindUnreferencedBatch = "unreferenced_batch" // a records object no digest names
	KindUnanchored        = "unanchored"         // records after the last digest (warning)
	KindDigestGap         = "digest_gap"         // a longer pause between digests than the interval (warning)
	KindStale             = "stale"              // no digest for longer than the interval (warning)
	KindReshipped         = "reshipped"          // records of one stream shipped again in another (a file's first record changed)
	KindLateAnchored      = "late_anchored"      // a stream's first records predate its first digest by much (warning)
)

var warningKinds = map[string]bool{KindUnanchored: true, KindDigestGap: true, KindStale: true, KindLateAnchored: true}

// Finding is one thing the verifier found, with the sequence numbers and
// times it covers (0 and nil where not known).
type Finding struct {
	Kind      string     `json:"kind"`
	Source    string     `json:"source"` // file, bucket
	FirstSeq  uint64     `json:"first_seq,omitempty"`
	LastSeq   uint64     `json:"last_seq,omitempty"`
	FirstTime *time.Time `json:"first_time,omitempty"`
	LastTime  *time.Time `json:"last_time,omitempty"`
	Line      int        `json:"line,omitempty"` // 1-based line in the file
	Object    string     `json:"object,omitempty"`
	Stream    string     `json:"stream,omitempty"` // the audit file's stream in the bucket
	Detail    string     `json:"detail"`
	Warning   bool       `json:"warning"`
}

func (f Finding) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-18s %s", f.Kind, f.Source)
	switch {
	case f.FirstSeq > 0 && f.LastSeq > f.FirstSeq:
		fmt.Fprintf(&b, " seq %d-%d", f.FirstSeq, f.LastSeq)
	case f.FirstSeq > 0:
		fmt.Fprintf(&b, " seq %d", f.FirstSeq)
	}
	if f.FirstTime != nil {
		fmt.Fprintf(&b, " %s", f.FirstTime.UTC().Format(time.RFC3339))
		if f.LastTime != nil && !f.LastTime.Equal(*f.FirstTime) {
			fmt.Fprintf(&b, " to %s", f.LastTime.UTC().Format(time.RFC3339))
		}
	}
	if f.Line > 0 {
		fmt.Fprintf(&b, " (line %d)", f.Line)
	}
	if f.Object != "" {
		fmt.Fprintf(&b, " [%s]", f.Object)
	} else if f.Stream != "" {
		fmt.Fprintf(&b, " [stream %s]", f.Stream)
	}
	fmt.Fprintf(&b, ": %s", f.Detail)
	return b.String()
}

// Report is what Verify found.
type Report struct {
	OK              bool       `json:"ok"`
	Bucket          string     `json:"bucket,omitempty"`
	Prefix          string     `json:"prefix,omitempty"`
	File            string     `json:"file,omitempty"`
	Streams         int        `json:"streams"` // audit files shipped under the prefix (one per file: per task, replica or new file)
	Digests         int        `json:"digests"`
	AnchoredRecords int        `json:"anchored_records"` // records the digests vouch for
	LastAnchoredSeq uint64     `json:"last_anchored_seq"`
	LastDigestTime  *time.Time `json:"last_digest_time,omitempty"`
	FileRecords     int        `json:"file_records"`
	FileStream      string     `json:"file_stream,omitempty"` // the stream the file was compared with
	Findings        []Finding  `json:"findings"`

	stream string // the stream being checked, for add
	chain  string // the file's own chain walk, when there is no bucket
}

func (r Report) String() string {
	var b strings.Builder
	status := "OK"
	if !r.OK {
		status = "TAMPERING FOUND"
	}
	fmt.Fprintf(&b, "audit verify: %s\n", status)
	if r.Bucket != "" {
		last := "never"
		if r.LastDigestTime != nil {
			last = r.LastDigestTime.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(&b, "  bucket s3://%s/%s: %d streams, %d signed digests, %d records anchored, last digest %s\n",
			r.Bucket, r.Prefix, r.Streams, r.Digests, r.AnchoredRecords, last)
	}
	if r.chain != "" {
		fmt.Fprintf(&b, "  %s\n", r.chain)
	}
	if r.File != "" {
		fmt.Fprintf(&b, "  file %s: %d records", r.File, r.FileRecords)
		if r.FileStream != "" {
			fmt.Fprintf(&b, ", compared with stream %s (last anchored seq %d)", r.FileStream, r.LastAnchoredSeq)
		}
		b.WriteString("\n")
	}
	for _, f := range r.Findings {
		level := "FAIL"
		if f.Warning {
			level = "warn"
		}
		fmt.Fprintf(&b, "  %s %s\n", level, f)
	}
	return b.String()
}

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
				rep.add(Finding{Kind: KindUnanchored, Source: "file",
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
			rep.add(Finding{Kind: KindReshipped, Source: "bucket", FirstSeq: a.Seq, LastSeq: b.Seq, FirstTime: timePtr(a.Time), LastTime: timePtr(b.Time),
				Detail: fmt.Sprintf("%d records were already shipped in stream %s: the audit file was replaced by a copy with a different first record", len(dup), other.id)})
		}
		if d := st.first; d != nil && d.FirstTime != nil && d.IntervalSeconds > 0 {
			every := time.Duration(d.IntervalSeconds) * time.Second
			if d.Time.Sub(*d.FirstTime) > 2*every {
				rep.add(Finding{Kind: KindLateAnchored, Source: "bucket", FirstSeq: d.FirstSeq, LastSeq: d.LastSeq, FirstTime: d.FirstTime, LastTime: d.LastTime, Object: d.Key,
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
			rep.add(Finding{Kind: KindStale, Source: "bucket", FirstTime: timePtr(d.Time), LastTime: timePtr(o.Now), Object: d.Key,
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

func (r *Report) add(f Finding) {
	f.Warning = warningKinds[f.Kind]
	if f.Stream == "" {
		f.Stream = r.stream
	}
	r.Findings = append(r.Findings, f)
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

type signedDigest struct {
	d    Digest
	body []byte
}

// verifyStream checks every digest object and records object of a stream
// and keeps the records the valid digests vouch for.
func verifyStream(ctx context.Context, o Options, st *stream, rep *Report) error {
	versions, err := o.Bucket.Versions(ctx, st.prefix+digestsDir)
	if err != nil {
		return err
	}
	byKey := map[string][]ObjectVersion{}
	var keys []string
	for _, v := range hideMarkers(versions, rep) {
		if _, ok := byKey[v.Key]; !ok {
			keys = append(keys, v.Key)
		}
		byKey[v.Key] = append(byKey[v.Key], v)
	}
	sort.Strings(keys)
	var digests []signedDigest
	for _, key := range keys {
		vs := byKey[key]
		if len(vs) > 1 {
			rep.add(Finding{Kind: KindOverwritten, Source: "bucket", Object: key,
				Detail: fmt.Sprintf("the digest has %d versions: it was written over; the first version is the one checked", len(vs))})
		}
		body, err := o.Bucket.Get(ctx, key, vs[0].VersionID)
		if err != nil {
			return err
		}
		d, err := openDigest(ctx, body, o.Verifier)
		if err != nil {
			rep.add(Finding{Kind: KindBadSignature, Source: "bucket", Object: key, Detail: err.Error()})
			continue
		}
		if d.Key != key {
			rep.add(Finding{Kind: KindDigestSwapped, Source: "bucket", Object: key, FirstSeq: d.FirstSeq, LastSeq: d.LastSeq, FirstTime: timePtr(d.Time),
				Detail: fmt.Sprintf("the object holds the signed digest written as %s", d.Key)})
			continue
		}
		digests = append(digests, signedDigest{d: d, body: body})
	}
	rep.Digests += len(digests)

	var truth []record
	referenced := map[string]bool{}
	var prev *signedDigest
	for i := range digests {
		cur := &digests[i]
		d := cur.d
		checkDigestLink(prev, cur, rep)
		if d.RecordsKey != "" {
			referenced[d.RecordsKey] = true
			recs, ok, err := readBatch(ctx, o.Bucket, d, rep)
			if err != nil {
				return err
			}
			if ok {
				want := uint64(1)
				prevHash := audit.GenesisHash
				if n := len(truth); n > 0 {
					want, prevHash = truth[n-1].info.Seq+1, truth[n-1].info.Hash
				}
				if recs[0].info.Seq > want {
					rep.add(Finding{Kind: KindMissingBatch, Source: "bucket", FirstSeq: want, LastSeq: recs[0].info.Seq - 1,
						Detail: "no records object in the bucket holds these records"})
				} else if recs[0].info.PrevHash != prevHash {
					rep.add(Finding{Kind: KindRechained, Source: "bucket", FirstSeq: recs[0].info.Seq, FirstTime: timePtr(recs[0].info.Time), Object: d.RecordsKey,
						Detail: "the batch does not continue the chain of the batch before it"})
				}
				truth = append(truth, recs...)
			}
		}
		st.lastSeq = d.LastSeq
		if st.first == nil {
			st.first = &cur.d
		}
		st.last = &cur.d
		prev = cur
	}
	st.truth = truth

	// Records objects no digest names.
	rv, err := o.Bucket.Versions(ctx, st.prefix+recordsDir)
	if err != nil {
		return err
	}
	seen := map[string]int{}
	for _, v := range hideMarkers(rv, rep) {
		seen[v.Key]++
	}
	var rkeys []string
	for k := range seen {
		rkeys = append(rkeys, k)
	}
	sort.Strings(rkeys)
	for _, k := range rkeys {
		if !referenced[k] {
			rep.add(Finding{Kind: KindUnreferencedBatch, Source: "bucket", Object: k, Detail: "no signed digest names this records object"})
		}
		if seen[k] > 1 {
			rep.add(Finding{Kind: KindOverwritten, Source: "bucket", Object: k,
				Detail: fmt.Sprintf("the records object has %d versions: it was written over; the first version is the one checked", seen[k])})
		}
	}
	return nil
}

// hideMarkers reports delete markers and returns the real versions.
func hideMarkers(vs []ObjectVersion, rep *Report) []ObjectVersion {
	var out []ObjectVersion
	for _, v := range vs {
		if v.DeleteMarker {
			rep.add(Finding{Kind: KindHidden, Source: "bucket", Object: v.Key,
				Detail: "someone deleted the object without a version id: a delete marker hides it from plain listings; its locked version is still the one checked"})
			continue
		}
		out = append(out, v)
	}
	return out
}

// checkDigestLink checks that cur names prev as its predecessor.
func checkDigestLink(prev, cur *signedDigest, rep *Report) {
	d := cur.d
	switch {
	case prev == nil && (d.PreviousKey != "" || d.Number > 1):
		f := Finding{Kind: KindMissingDigest, Source: "bucket", LastTime: timePtr(d.Time), Object: d.PreviousKey,
			Detail: fmt.Sprintf("the earliest digest found (%s) names a previous digest that is missing", d.Key)}
		if d.FirstSeq > 1 {
			f.FirstSeq, f.LastSeq = 1, d.FirstSeq-1
		}
		rep.add(f)
	case prev != nil && (d.PreviousKey != prev.d.Key || d.PreviousSHA256 != sha256Hex(prev.body) || d.Number != prev.d.Number+1):
		f := Finding{Kind: KindMissingDigest, Source: "bucket", FirstTime: timePtr(prev.d.Time), LastTime: timePtr(d.Time), Object: d.PreviousKey,
			Detail: fmt.Sprintf("digest %s follows %s, not the digest before it in the bucket", d.Key, d.PreviousKey)}
		if d.FirstSeq > prev.d.LastSeq+1 {
			f.FirstSeq, f.LastSeq = prev.d.LastSeq+1, d.FirstSeq-1
		}
		rep.add(f)
	case prev != nil:
		every := time.Duration(prev.d.IntervalSeconds) * time.Second
		if every > 0 && d.Time.Sub(prev.d.Time) > 2*every {
			rep.add(Finding{Kind: KindDigestGap, Source: "bucket", FirstTime: timePtr(prev.d.Time), LastTime: timePtr(d.Time),
				Detail: fmt.Sprintf("no digest for %s (interval %s): the rotator was stopped", d.Time.Sub(prev.d.Time).Round(time.Second), every)})
		}
	}
}

// readBatch reads and checks the records object of d.
func readBatch(ctx context.Context, b Bucket, d Digest, rep *Report) ([]record, bool, error) {
	fail := func(kind, detail string) ([]record, bool, error) {
		rep.add(Finding{Kind: kind, Source: "bucket", FirstSeq: d.FirstSeq, LastSeq: d.LastSeq, FirstTime: d.FirstTime, LastTime: d.LastTime,
			Object: d.RecordsKey, Detail: detail})
		return nil, false, nil
	}
	vs, err := b.Versions(ctx, d.RecordsKey)
	if err != nil {
		return nil, false, err
	}
	var version string
	for _, v := range vs {
		if v.Key == d.RecordsKey && !v.DeleteMarker {
			version = v.VersionID
			break
		}
	}
	if version == "" {
		return fail(KindMissingBatch, "the records object the digest names is not in the bucket")
	}
	body, err := b.Get(ctx, d.RecordsKey, version)
	if err != nil {
		return nil, false, err
	}
	if sha256Hex(body) != d.RecordsSHA256 {
		return fail(KindBatchEdited, "the records object does not match the SHA-256 in its signed digest")
	}
	var out []record
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 0, 64*1024), 16*1024*1024)
	for sc.Scan() {
		raw := bytes.Clone(sc.Bytes())
		info, err := audit.ParseLine(raw)
		if err != nil {
			return fail(KindMalformed, "a signed records object holds a line that is not a record: "+err.Error())
		}
		out = append(out, record{raw: raw, info: info})
	}
	if len(out) == 0 || out[0].info.Seq != d.FirstSeq || out[len(out)-1].info.Seq != d.LastSeq || out[len(out)-1].info.Hash != d.LastHash {
		return fail(KindBatchEdited, "the records object does not hold the range its digest names")
	}
	return out, true, nil
}

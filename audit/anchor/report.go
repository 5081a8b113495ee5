// What the verifier reports: the kinds of finding, which of them are
// warnings, and the report as an auditor reads it.

package anchor

import (
	"fmt"
	"strings"
	"time"
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
	Copy      string     `json:"source"` // which copy of the trail: file, bucket
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
	fmt.Fprintf(&b, "%-18s %s", f.Kind, f.Copy)
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

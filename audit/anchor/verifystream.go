// One stream in the bucket: its signed digests, the chain they form, and
// the records objects they vouch for.

package anchor

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/lakirotator/lakirotator/audit"
)

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
			rep.add(Finding{Kind: KindOverwritten, Copy: "bucket", Object: key,
				Detail: fmt.Sprintf("the digest has %d versions: it was written over; the first version is the one checked", len(vs))})
		}
		body, err := o.Bucket.Get(ctx, key, vs[0].VersionID)
		if err != nil {
			return err
		}
		d, err := openDigest(ctx, body, o.Verifier)
		if err != nil {
			rep.add(Finding{Kind: KindBadSignature, Copy: "bucket", Object: key, Detail: err.Error()})
			continue
		}
		if d.Key != key {
			rep.add(Finding{Kind: KindDigestSwapped, Copy: "bucket", Object: key, FirstSeq: d.FirstSeq, LastSeq: d.LastSeq, FirstTime: timePtr(d.Time),
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
					rep.add(Finding{Kind: KindMissingBatch, Copy: "bucket", FirstSeq: want, LastSeq: recs[0].info.Seq - 1,
						Detail: "no records object in the bucket holds these records"})
				} else if recs[0].info.PrevHash != prevHash {
					rep.add(Finding{Kind: KindRechained, Copy: "bucket", FirstSeq: recs[0].info.Seq, FirstTime: timePtr(recs[0].info.Time), Object: d.RecordsKey,
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
			rep.add(Finding{Kind: KindUnreferencedBatch, Copy: "bucket", Object: k, Detail: "no signed digest names this records object"})
		}
		if seen[k] > 1 {
			rep.add(Finding{Kind: KindOverwritten, Copy: "bucket", Object: k,
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
			rep.add(Finding{Kind: KindHidden, Copy: "bucket", Object: v.Key,
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
		f := Finding{Kind: KindMissingDigest, Copy: "bucket", LastTime: timePtr(d.Time), Object: d.PreviousKey,
			Detail: fmt.Sprintf("the earliest digest found (%s) names a previous digest that is missing", d.Key)}
		if d.FirstSeq > 1 {
			f.FirstSeq, f.LastSeq = 1, d.FirstSeq-1
		}
		rep.add(f)
	case prev != nil && (d.PreviousKey != prev.d.Key || d.PreviousSHA256 != sha256Hex(prev.body) || d.Number != prev.d.Number+1):
		f := Finding{Kind: KindMissingDigest, Copy: "bucket", FirstTime: timePtr(prev.d.Time), LastTime: timePtr(d.Time), Object: d.PreviousKey,
			Detail: fmt.Sprintf("digest %s follows %s, not the digest before it in the bucket", d.Key, d.PreviousKey)}
		if d.FirstSeq > prev.d.LastSeq+1 {
			f.FirstSeq, f.LastSeq = prev.d.LastSeq+1, d.FirstSeq-1
		}
		rep.add(f)
	case prev != nil:
		every := time.Duration(prev.d.IntervalSeconds) * time.Second
		if every > 0 && d.Time.Sub(prev.d.Time) > 2*every {
			rep.add(Finding{Kind: KindDigestGap, Copy: "bucket", FirstTime: timePtr(prev.d.Time), LastTime: timePtr(d.Time),
				Detail: fmt.Sprintf("no digest for %s (interval %s): the rotator was stopped", d.Time.Sub(prev.d.Time).Round(time.Second), every)})
		}
	}
}

// readBatch reads and checks the records object of d.
func readBatch(ctx context.Context, b Bucket, d Digest, rep *Report) ([]record, bool, error) {
	fail := func(kind, detail string) ([]record, bool, error) {
		rep.add(Finding{Kind: kind, Copy: "bucket", FirstSeq: d.FirstSeq, LastSeq: d.LastSeq, FirstTime: d.FirstTime, LastTime: d.LastTime,
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

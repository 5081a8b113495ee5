package anchor

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/lakirotator/lakirotator/audit"
	"github.com/lakirotator/lakirotator/internal/clock"
)

// DefaultInterval is how often a digest is written (CloudTrail: hourly;
// shorter here, since a rotation is over in seconds).
const DefaultInterval = 5 * time.Minute

// maxBatch bounds one records object; a larger backlog makes several.
const maxBatch = 5000

// Shipper ships the audit file's records to the bucket and writes a signed
// digest every interval, and once more when it stops.
type Shipper struct {
	File     string // the audit file (the chain the digests vouch for)
	Bucket   Bucket
	Prefix   string // object key prefix, e.g. "lakirotator/production/"
	Signer   Signer
	Interval time.Duration
	Clock    clock.Clock
	Logger   *slog.Logger

	mu      sync.Mutex
	stream  string // key prefix of the file's stream; "" until the file has a record
	resumed bool
	head    audit.Head // last record shipped
	prevKey string     // last digest written
	prevNum uint64     // its number
	prevSum string     // its sha256
	offset  int64      // where in File the next unshipped line starts
}

// Run writes digests every interval until ctx ends. The owner calls Tick
// once more at shutdown, after the last record is written.
func (s *Shipper) Run(ctx context.Context) {
	every := s.Interval
	if every <= 0 {
		every = DefaultInterval
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.Clock.After(every):
			if err := s.Tick(ctx); err != nil {
				s.logger().Error("audit anchor: digest not written; retrying next interval", "error", err)
			}
		}
	}
}

func (s *Shipper) logger() *slog.Logger {
	if s.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Logger
}

// Tick ships the records written since the last digest and writes the
// next digest (one per batch when the backlog is large).
func (s *Shipper) Tick(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	stream, err := s.currentStream()
	if err != nil {
		return err
	}
	if stream == "" {
		return nil // no record yet: nothing to vouch for
	}
	if stream != s.stream {
		// A new file (first start, or the file was replaced: a new task
		// on ECS starts a new file): a new stream with its own chain.
		s.stream, s.resumed, s.head, s.prevKey, s.prevSum, s.prevNum, s.offset = stream, false, audit.Head{}, "", "", 0, 0
	}
	if !s.resumed {
		if err := s.resume(ctx); err != nil {
			return err
		}
		s.resumed = true
	}
	for first := true; ; first = false {
		lines, next, err := s.readNew()
		if err != nil {
			return err
		}
		if len(lines) == 0 && !first {
			return nil
		}
		if err := s.ship(ctx, lines); err != nil {
			return err
		}
		s.offset = next
		if len(lines) < maxBatch {
			return nil
		}
	}
}

// resume finds the last digest in the bucket so that the chain of digests
// continues across restarts.
func (s *Shipper) resume(ctx context.Context) error {
	keys, err := s.Bucket.Keys(ctx, s.stream+digestsDir)
	if err != nil {
		return err
	}
	if len(keys) == 0 {
		return nil
	}
	last := keys[len(keys)-1]
	body, err := s.Bucket.Get(ctx, last, "")
	if err != nil {
		return err
	}
	var env envelope
	var d Digest
	if err := jsonUnmarshal(body, &env); err != nil {
		return fmt.Errorf("last digest %s: %w", last, err)
	}
	if err := jsonUnmarshal(env.Digest, &d); err != nil {
		return fmt.Errorf("last digest %s: %w", last, err)
	}
	s.head = audit.Head{Seq: d.LastSeq, Hash: d.LastHash}
	s.prevKey, s.prevSum, s.prevNum = last, sha256Hex(body), d.Number
	return nil
}

// currentStream names the stream of the file as it is now: every audit
// file is its own stream (its own chain from seq 1), named after its first
// record, so replicas and restarts with a fresh file never share keys.
func (s *Shipper) currentStream() (string, error) {
	f, err := os.Open(s.File)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	defer f.Close()
	first, err := bufio.NewReaderSize(f, 64*1024).ReadBytes('\n')
	if err != nil {
		return "", nil // no complete line yet
	}
	info, err := audit.ParseLine(bytes.TrimSuffix(first, []byte("\n")))
	if err != nil {
		return "", fmt.Errorf("the first line of %s is not an audit record: %w", s.File, err)
	}
	return StreamPrefix(s.Prefix, info), nil
}

// StreamPrefix is the key prefix of the stream whose first record is first.
func StreamPrefix(prefix string, first audit.LineInfo) string {
	return fmt.Sprintf("%s%s%s-%s/", prefix, streamsDir, first.Time.UTC().Format("20060102T150405Z"), first.Hash[:16])
}

type shippedLine struct {
	raw  []byte
	info audit.LineInfo
}

// readNew returns up to maxBatch complete lines after the shipped head,
// and the file offset after them. A partial last line (a torn write not
// yet repaired) is left for later.
func (s *Shipper) readNew() ([]shippedLine, int64, error) {
	f, err := os.Open(s.File)
	if errors.Is(err, os.ErrNotExist) {
		return nil, s.offset, nil
	}
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, 0, err
	}
	start := s.offset
	if start > fi.Size() {
		start = 0 // the file was cut or replaced: look again from the start
	}
	if _, err := f.Seek(start, io.SeekStart); err != nil {
		return nil, 0, err
	}
	r := bufio.NewReaderSize(f, 64*1024)
	var out []shippedLine
	pos := start
	for len(out) < maxBatch {
		raw, err := r.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			break // a partial line, or none
		}
		if err != nil {
			return nil, 0, err
		}
		pos += int64(len(raw))
		raw = bytes.TrimSuffix(raw, []byte("\n"))
		info, perr := audit.ParseLine(raw)
		if perr != nil || info.Seq <= s.head.Seq {
			continue // shipped already, or not a record (verify reports it)
		}
		out = append(out, shippedLine{raw: raw, info: info})
	}
	return out, pos, nil
}

func (s *Shipper) ship(ctx context.Context, lines []shippedLine) error {
	now := s.Clock.Now().UTC()
	every := s.Interval
	if every <= 0 {
		every = DefaultInterval
	}
	d := Digest{
		Version: FormatVersion, Time: now, IntervalSeconds: int64(every / time.Second),
		LastSeq: s.head.Seq, LastHash: s.head.Hash,
		PreviousKey: s.prevKey, PreviousSHA256: s.prevSum,
		SigningKeyID: s.Signer.KeyID(), Algorithm: SigningAlgorithm,
	}
	if len(lines) > 0 {
		first, last := lines[0].info, lines[len(lines)-1].info
		var body bytes.Buffer
		for _, l := range lines {
			body.Write(l.raw)
			body.WriteByte('\n')
		}
		d.FirstSeq, d.LastSeq, d.LastHash = first.Seq, last.Seq, last.Hash
		ft, lt := first.Time.UTC(), last.Time.UTC()
		d.FirstTime, d.LastTime = &ft, &lt
		d.RecordsKey = recordsKey(s.stream, first.Seq, last.Seq)
		d.RecordsSHA256 = sha256Hex(body.Bytes())
		if err := s.Bucket.Put(ctx, d.RecordsKey, body.Bytes()); err != nil {
			return err
		}
	}
	d.Number = s.prevNum + 1
	d.Key = digestKey(s.stream, now, d.Number)
	obj, err := sealDigest(ctx, d, s.Signer)
	if err != nil {
		return err
	}
	if err := s.Bucket.Put(ctx, d.Key, obj); err != nil {
		return err
	}
	s.head = audit.Head{Seq: d.LastSeq, Hash: d.LastHash}
	s.prevKey, s.prevSum, s.prevNum = d.Key, sha256Hex(obj), d.Number
	s.logger().Debug("audit anchor: digest written", "key", d.Key, "first_seq", d.FirstSeq, "last_seq", d.LastSeq)
	return nil
}

// NormalizePrefix makes a key prefix end in "/" (or stay empty).
func NormalizePrefix(p string) string {
	p = strings.TrimLeft(p, "/")
	if p != "" && !strings.HasSuffix(p, "/") {
		p += "/"
	}
	return p
}

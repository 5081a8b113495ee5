package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"maps"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// callProxy sits between serve and moto and counts every call by
// operation, the calls that name one of the managed secrets, and each full
// discovery listing (ListSecrets filtered by the run's tag value, from a
// first page asked without NextToken to a page answered without one) with
// the calls made while it ran. Other ListSecrets calls (the readiness
// probe's one page) count as "ListSecrets (probe)".
type callProxy struct {
	url     string
	srv     *http.Server
	managed map[string]bool
	marker  string // the tag value only the discovery listing filters by

	mu       sync.Mutex
	calls    map[string]int
	named    map[string]int
	listings []*listingRun
}

type listingRun struct {
	start, end time.Time
	pages      int
	done       bool
	other      map[string]int
	perSecret  map[string]int
}

// probeOp names a ListSecrets call that is not part of the discovery listing.
const probeOp = "ListSecrets (probe)"

// listingHeader marks a discovery listing's request on its way to moto.
const listingHeader = "X-Lakibench-Listing"

func startCallProxy(target string, managed map[string]bool, marker string) (*callProxy, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &callProxy{url: "http://" + ln.Addr().String(), managed: managed, marker: marker, calls: map[string]int{}, named: map[string]int{}}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ErrorLog = log.New(io.Discard, "", 0)
	rp.ModifyResponse = func(resp *http.Response) error {
		if resp.Request.Header.Get(listingHeader) == "" || resp.StatusCode != http.StatusOK {
			return nil
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		resp.Body = io.NopCloser(bytes.NewReader(body))
		var page struct{ NextToken *string }
		if json.Unmarshal(body, &page) == nil && (page.NextToken == nil || *page.NextToken == "") {
			p.mu.Lock()
			if l := p.current(); l != nil {
				l.done, l.end = true, time.Now()
			}
			p.mu.Unlock()
		}
		return nil
	}
	p.srv = &http.Server{ReadHeaderTimeout: time.Minute, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		var in struct {
			SecretId  string
			NextToken string
			Filters   []struct{ Values []string }
		}
		_ = json.Unmarshal(body, &in)
		o := op(r, body)
		if o == "ListSecrets" {
			o = probeOp
			for _, f := range in.Filters {
				if slices.Contains(f.Values, p.marker) {
					o = "ListSecrets"
					r.Header.Set(listingHeader, "1")
				}
			}
		}
		p.mu.Lock()
		p.calls[o]++
		if p.managed[in.SecretId] {
			p.named[o]++
		}
		switch {
		case o == "ListSecrets" && in.NextToken == "":
			p.listings = append(p.listings, &listingRun{start: time.Now(), pages: 1, other: map[string]int{}, perSecret: map[string]int{}})
		case o == "ListSecrets":
			if l := p.current(); l != nil {
				l.pages++
			}
		default:
			if l := p.current(); l != nil {
				l.other[o]++
				if p.managed[in.SecretId] {
					l.perSecret[o]++
				}
			}
		}
		p.mu.Unlock()
		rp.ServeHTTP(w, r)
	})}
	go func() { _ = p.srv.Serve(ln) }()
	return p, nil
}

// op names the call: Secrets Manager's X-Amz-Target, or the Action of a
// query-protocol call (STS GetCallerIdentity, which the store makes once
// at start-up to learn its account).
func op(r *http.Request, body []byte) string {
	if t := r.Header.Get("X-Amz-Target"); t != "" {
		return strings.TrimPrefix(t, "secretsmanager.")
	}
	if q, err := url.ParseQuery(string(body)); err == nil && q.Get("Action") != "" {
		return "sts:" + q.Get("Action")
	}
	return "unknown"
}

// current is the listing under way, if any (p.mu held).
func (p *callProxy) current() *listingRun {
	if len(p.listings) == 0 || p.listings[len(p.listings)-1].done {
		return nil
	}
	return p.listings[len(p.listings)-1]
}

// listing reports the no-th listing (from 1) once it is complete.
func (p *callProxy) listing(no int) (Listing, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.listings) < no || !p.listings[no-1].done {
		return Listing{}, false
	}
	l := p.listings[no-1]
	return Listing{Pages: l.pages, Seconds: l.end.Sub(l.start).Seconds(), Other: maps.Clone(l.other), PerSecret: maps.Clone(l.perSecret)}, true
}

func (p *callProxy) totals() (calls, named map[string]int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return maps.Clone(p.calls), maps.Clone(p.named)
}

// summary says what the proxy saw, for an error.
func (p *callProxy) summary() string {
	calls, _ := p.totals()
	p.mu.Lock()
	defer p.mu.Unlock()
	var ls []string
	for _, l := range p.listings {
		ls = append(ls, fmt.Sprintf("%d pages (done %t)", l.pages, l.done))
	}
	return fmt.Sprintf("%s; listings: %s", opCounts(calls), strings.Join(ls, ", "))
}

func (p *callProxy) close() { _ = p.srv.Close() }

package dashboard

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/lakirotator/lakirotator/httpapi"
)

// sessionCookie is the browser session's cookie. It holds the principal and
// an expiry, signed with a key made when the process starts, so that a
// restart ends every session and no key is ever stored.
const sessionCookie = "lakirotator_ui"

// auth decides who a dashboard request is: a verified client certificate,
// a bearer token (as the API takes), or a session cookie a token login made.
type auth struct {
	tokens    httpapi.TokenMatcher
	clientCAs *x509.CertPool
	key       []byte
	ttl       time.Duration
	now       func() time.Time
}

func newAuth(tokens httpapi.TokenMatcher, cas *x509.CertPool, ttl time.Duration, now func() time.Time) (*auth, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("dashboard: session key: %w", err)
	}
	return &auth{tokens: tokens, clientCAs: cas, key: key, ttl: ttl, now: now}, nil
}

// principal returns who r authenticated as, or "" and why not.
func (a *auth) principal(r *http.Request) (string, string) {
	if a.clientCAs != nil && r.TLS != nil && len(r.TLS.VerifiedChains) > 0 {
		return "cert:" + r.TLS.VerifiedChains[0][0].Subject.CommonName, ""
	}
	if h := r.Header.Get("Authorization"); h != "" {
		token, ok := strings.CutPrefix(h, "Bearer ")
		if !ok || token == "" {
			return "", "authorization is not a bearer token"
		}
		return a.matchToken(token)
	}
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return "", "not logged in"
	}
	return a.verifySession(c.Value)
}

func (a *auth) matchToken(token string) (string, string) {
	if a.tokens == nil {
		return "", "no API tokens are configured"
	}
	name, ok := a.tokens.Match(token)
	if !ok {
		return "", "unknown token"
	}
	return "token:" + name, ""
}

func (a *auth) sign(payload string) string {
	m := hmac.New(sha256.New, a.key)
	m.Write([]byte(payload))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// newSession is the cookie value for principal: "principal|unix-expiry|mac".
func (a *auth) newSession(principal string) string {
	exp := a.now().Add(a.ttl)
	payload := base64.RawURLEncoding.EncodeToString([]byte(principal)) + "|" + strconv.FormatInt(exp.Unix(), 10)
	return payload + "|" + a.sign(payload)
}

func (a *auth) verifySession(v string) (string, string) {
	i := strings.LastIndexByte(v, '|')
	if i < 0 {
		return "", "session cookie is malformed"
	}
	payload, mac := v[:i], v[i+1:]
	if !hmac.Equal([]byte(mac), []byte(a.sign(payload))) {
		return "", "session cookie is not signed by this daemon"
	}
	who, expS, ok := strings.Cut(payload, "|")
	exp, err := strconv.ParseInt(expS, 10, 64)
	if !ok || err != nil {
		return "", "session cookie is malformed"
	}
	if !a.now().Before(time.Unix(exp, 0)) {
		return "", "session expired"
	}
	p, err := base64.RawURLEncoding.DecodeString(who)
	if err != nil {
		return "", "session cookie is malformed"
	}
	return string(p), ""
}

// cookie builds the session cookie: HttpOnly, SameSite=Strict, and Secure
// unless the daemon answers on loopback (where plain http is allowed). It
// is a browser-session cookie: the expiry that counts is the signed one in
// its value, on the daemon's clock, which the browser's may not agree with.
func (a *auth) cookie(r *http.Request, value string) *http.Cookie {
	return &http.Cookie{
		Name: sessionCookie, Value: value, Path: "/ui/",
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil || !servedOnLoopback(r),
	}
}

func servedOnLoopback(r *http.Request) bool {
	addr, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok {
		return false
	}
	host, _, err := net.SplitHostPort(addr.String())
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

package daemon_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/httpapi"
	"github.com/lakirotator/lakirotator/internal/testutil/testcerts"
	"github.com/lakirotator/lakirotator/rotator"
)

// testCA issues certificates for the mutual-TLS tests.
type testCA struct {
	*testcerts.CA
	t    *testing.T
	pool *x509.CertPool
	pem  []byte
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	ca := testcerts.NewCA(t, "test CA")
	return &testCA{CA: ca, t: t, pool: ca.Pool, pem: ca.PEM}
}

// issue returns a certificate (PEM) and its key (PEM) for cn.
func (ca *testCA) issue(cn string, server bool) (certPEM, keyPEM []byte) {
	ca.t.Helper()
	return ca.Issue(ca.t, cn, server)
}

func (ca *testCA) clientTLS(cn string) *tls.Config {
	cfg := &tls.Config{RootCAs: ca.pool, MinVersion: tls.VersionTLS12}
	if cn != "" {
		c, k := ca.issue(cn, false)
		pair, err := tls.X509KeyPair(c, k)
		if err != nil {
			ca.t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg
}

// A client CA makes a credential compulsory: an allow-listed certificate
// (recorded as cert:<name>) or a token. A certificate the CA signed but the
// list does not name gets 403; no certificate and no token gets 401.
func TestMutualTLSAllowListAndCertificateActor(t *testing.T) {
	w := newWorld(t, worldOptions{})
	ca := newTestCA(t)
	write := func(name string, b []byte) string {
		p := filepath.Join(w.dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	sc, sk := ca.issue("127.0.0.1", true)
	w.cfgYAML = []byte(strings.Replace(string(w.cfgYAML), "http:\n", "http:\n  tls:\n"+
		"    cert_file: "+write("server.pem", sc)+"\n"+
		"    key_file: "+write("server-key.pem", sk)+"\n"+
		"    client_ca_file: "+write("ca.pem", ca.pem)+"\n"+
		"    clients:\n      - {name: deploy-bot, common_name: deploy-bot.ci.example}\n", 1))
	// The client CA is read once, with the config: the service is built
	// and serves on that pool, and never reads the file again.
	w.afterParse = func() {
		if err := os.Remove(filepath.Join(w.dir, "ca.pem")); err != nil {
			t.Fatal(err)
		}
	}
	r := w.runTLS(w.build(rotator.Hooks{}), nil, ca.clientTLS(""))

	post := func(cn, token string) (int, httpapi.TriggerStatus) {
		t.Helper()
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: ca.clientTLS(cn)}}
		req, _ := http.NewRequest(http.MethodPost, r.url+"/v1/triggers",
			strings.NewReader(`{"secret":"`+secReporting+`","cause":"manual","requester":"someone-else"}`))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var st httpapi.TriggerStatus
		_ = json.NewDecoder(resp.Body).Decode(&st)
		return resp.StatusCode, st
	}

	if code, _ := post("", ""); code != http.StatusUnauthorized {
		t.Errorf("no certificate, no token: %d, want 401", code)
	}
	if code, _ := post("random-intern-laptop", ""); code != http.StatusForbidden {
		t.Errorf("a CA-signed certificate outside the allow-list: %d, want 403", code)
	}
	code, st := post("deploy-bot.ci.example", "")
	if code != http.StatusAccepted || st.Actor != "cert:deploy-bot" || st.OnBehalfOf != "someone-else" {
		t.Fatalf("allow-listed certificate: %d, actor %q on behalf of %q; want 202, cert:deploy-bot on behalf of someone-else", code, st.Actor, st.OnBehalfOf)
	}
	w.waitTrigger(r, st.ID)
	if code, st := post("", apiToken); code != http.StatusAccepted || st.Actor != "token:tester" {
		t.Errorf("token without a certificate: %d actor %q; want 202 token:tester", code, st.Actor)
	} else {
		w.waitTrigger(r, st.ID)
	}
	r.stop()

	accepted := triggerRecords(auditRecords(t, w), events.OutcomeSucceeded, func(e events.Event) bool { return e.TriggerID == st.ID })
	if len(accepted) != 1 || accepted[0].Actor != "cert:deploy-bot" || accepted[0].OnBehalfOf != "someone-else" {
		t.Errorf("audit of the certificate's trigger: %+v; want one record, actor cert:deploy-bot on behalf of someone-else", accepted)
	}
	refused := 0
	for _, rec := range auditRecords(t, w) {
		if rec.Event.Step == events.StepAuth && rec.Event.Outcome == events.OutcomeRefused {
			refused++
			if c := rec.Event.Details["reason"]; c != "missing_credentials" && c != "client_cert_not_allowed" {
				t.Errorf("unexpected refusal code %q", c)
			}
		}
	}
	if refused != 2 {
		t.Errorf("%d refusal records, want 2 (401 and 403)", refused)
	}
}

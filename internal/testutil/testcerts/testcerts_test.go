package testcerts

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"testing"
)

// A server and a client certificate the CA issued verify against its pool
// for their uses, and the CA's PEM parses back to the CA.
func TestIssuedCertificatesVerifyAgainstTheCA(t *testing.T) {
	ca := NewCA(t, "test CA")
	block, _ := pem.Decode(ca.PEM)
	if block == nil {
		t.Fatal("the CA's PEM holds no block")
	}
	if parsed, err := x509.ParseCertificate(block.Bytes); err != nil || !parsed.IsCA {
		t.Fatalf("the CA's PEM: %v, IsCA %v", err, parsed != nil && parsed.IsCA)
	}
	for _, tc := range []struct {
		name   string
		server bool
		usage  x509.ExtKeyUsage
	}{{"127.0.0.1", true, x509.ExtKeyUsageServerAuth}, {"alice", false, x509.ExtKeyUsageClientAuth}} {
		certPEM, keyPEM := ca.Issue(t, tc.name, tc.server)
		pair, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		leaf, err := x509.ParseCertificate(pair.Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		opts := x509.VerifyOptions{Roots: ca.Pool, KeyUsages: []x509.ExtKeyUsage{tc.usage}}
		if tc.server {
			opts.DNSName = "127.0.0.1"
		}
		if _, err := leaf.Verify(opts); err != nil {
			t.Errorf("%s: does not verify against the CA: %v", tc.name, err)
		}
		if leaf.Subject.CommonName != tc.name {
			t.Errorf("common name %q, want %q", leaf.Subject.CommonName, tc.name)
		}
	}
	a, _ := ca.Issue(t, "x", false)
	b, _ := ca.Issue(t, "x", false)
	if string(a) == string(b) {
		t.Error("two issued certificates are the same")
	}
}

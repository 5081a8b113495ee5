package httpapi

import (
	"crypto/x509"
	"net/http"
	"slices"

	"github.com/lakirotator/lakirotator/inbound"
)

// ClientCert is one entry of the mutual-TLS allow-list: a verified client
// certificate whose common name, or one of whose SANs (DNS name, URI,
// e-mail address), matches is the principal "cert:<Name>".
type ClientCert struct {
	Name       string
	CommonName string
	SAN        string
}

func (c ClientCert) matches(leaf *x509.Certificate) bool {
	if c.CommonName != "" && leaf.Subject.CommonName == c.CommonName {
		return true
	}
	if c.SAN == "" {
		return false
	}
	if slices.Contains(leaf.DNSNames, c.SAN) || slices.Contains(leaf.EmailAddresses, c.SAN) {
		return true
	}
	for _, u := range leaf.URIs {
		if u.String() == c.SAN {
			return true
		}
	}
	return false
}

// certPrincipal maps a verified client certificate to its allow-listed
// name. A certificate the CA signed but the list does not name is refused:
// being signed by the CA says who someone is, not that they may rotate.
func (s *server) certPrincipal(leaf *x509.Certificate) (string, *inbound.Refusal) {
	for _, c := range s.o.ClientCerts {
		if c.matches(leaf) {
			return "cert:" + c.Name, nil
		}
	}
	return "", &inbound.Refusal{
		Status: http.StatusForbidden, Code: "client_cert_not_allowed",
		Reason: "client certificate " + inbound.Clip(leaf.Subject.String(), 120) + " is not in http.tls.clients",
	}
}

package laki

import "strings"

// Prefixes of LakiConnect's ids and secrets (the patterns of its OpenAPI
// document). An id is its prefix and then alphanumerics.
const (
	KeyIDPrefix            = "key_"     // an API key: key_ + 24
	EndpointIDPrefix       = "we_"      // a webhook endpoint: we_ + 24
	WebhookSecretIDPrefix  = "whs_"     // a webhook signing secret: whs_ + 24
	MasterMerchantIDPrefix = "mm_"      // a master merchant: mm_ + 16
	EventIDPrefix          = "evt_"     // a security event: evt_ + 24
	WebhookSecretPrefix    = "whsec_"   // a signing secret's value: whsec_ + base64 of 32 bytes
	LiveKeySecretPrefix    = "lk_live_" // a production key's secret: lk_live_ + 40
	TestKeySecretPrefix    = "lk_test_" // a sandbox key's secret: lk_test_ + 40

	ResourceIDLength       = 24 // alphanumerics after a key, endpoint, secret or event prefix
	MasterMerchantIDLength = 16 // alphanumerics after mm_
	KeySecretLength        = 40 // alphanumerics after lk_live_ / lk_test_
)

// IsMasterMerchantID reports whether s has the shape of a master merchant id.
func IsMasterMerchantID(s string) bool {
	return hasIDShape(s, MasterMerchantIDPrefix, MasterMerchantIDLength)
}

// IsEndpointID reports whether s has the shape of a webhook endpoint id.
func IsEndpointID(s string) bool { return hasIDShape(s, EndpointIDPrefix, ResourceIDLength) }

func hasIDShape(s, prefix string, n int) bool {
	rest, ok := strings.CutPrefix(s, prefix)
	if !ok || len(rest) != n {
		return false
	}
	for _, c := range rest {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// ShortID shows an id by its last 4 characters only ("…abcd"): enough for a
// person to tell keys apart in a message or a report, too little to look
// one up by guessing.
func ShortID(id string) string {
	if id == "" {
		return ""
	}
	r := []rune(id)
	if len(r) <= 4 {
		return "…" + id
	}
	return "…" + string(r[len(r)-4:])
}

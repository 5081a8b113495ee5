package laki_test

import (
	"context"
	"slices"
	"strconv"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/lakirotator/lakirotator/laki"
	"github.com/lakirotator/lakirotator/providers/lakiconnect/openapi"
)

func loadSpec(t *testing.T) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(openapi.Spec())
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return doc
}

func enum[T ~string](t *testing.T, doc *openapi3.T, schema string) []T {
	t.Helper()
	ref, ok := doc.Components.Schemas[schema]
	if !ok {
		t.Fatalf("the API document has no schema %s", schema)
	}
	var out []T
	for _, v := range ref.Value.Enum {
		out = append(out, T(v.(string)))
	}
	return out
}

// The vocabulary is the API's: every enum value, in the document's order.
func TestVocabularyIsTheAPIDocuments(t *testing.T) {
	doc := loadSpec(t)
	if got := enum[laki.Scope](t, doc, "Scope"); !slices.Equal(got, laki.AllScopes) {
		t.Errorf("Scope enum of the API is %v, laki.AllScopes is %v", got, laki.AllScopes)
	}
	if got, want := enum[laki.Environment](t, doc, "Environment"), []laki.Environment{laki.Sandbox, laki.Production}; !slices.Equal(got, want) {
		t.Errorf("Environment enum of the API is %v, laki has %v", got, want)
	}
	if got, want := enum[laki.KeyStatus](t, doc, "KeyStatus"), []laki.KeyStatus{laki.StatusActive, laki.StatusExpiring, laki.StatusRevoked}; !slices.Equal(got, want) {
		t.Errorf("KeyStatus enum of the API is %v, laki has %v", got, want)
	}
}

// Every id pattern of the API document is one laki names, with its length.
func TestIDShapesAreTheAPIDocuments(t *testing.T) {
	doc := loadSpec(t)
	patterns := map[string]bool{}
	var walk func(s *openapi3.Schema, seen map[*openapi3.Schema]bool)
	walk = func(s *openapi3.Schema, seen map[*openapi3.Schema]bool) {
		if s == nil || seen[s] {
			return
		}
		seen[s] = true
		if s.Pattern != "" {
			patterns[s.Pattern] = true
		}
		for _, p := range s.Properties {
			walk(p.Value, seen)
		}
		if s.Items != nil {
			walk(s.Items.Value, seen)
		}
		for _, group := range []openapi3.SchemaRefs{s.AllOf, s.OneOf, s.AnyOf} {
			for _, r := range group {
				walk(r.Value, seen)
			}
		}
	}
	seen := map[*openapi3.Schema]bool{}
	for _, s := range doc.Components.Schemas {
		walk(s.Value, seen)
	}
	for _, p := range doc.Components.Parameters {
		if p.Value.Schema != nil {
			walk(p.Value.Schema.Value, seen)
		}
	}
	for _, item := range doc.Paths.Map() {
		for _, op := range item.Operations() {
			for _, p := range op.Parameters {
				if p.Value != nil && p.Value.Schema != nil {
					walk(p.Value.Schema.Value, seen)
				}
			}
		}
	}
	alnum := func(prefix string, n int) string {
		return "^" + prefix + "[A-Za-z0-9]{" + strconv.Itoa(n) + "}$"
	}
	want := map[string]string{
		alnum(laki.KeyIDPrefix, laki.ResourceIDLength):                             "key id",
		alnum(laki.EndpointIDPrefix, laki.ResourceIDLength):                        "endpoint id",
		alnum(laki.WebhookSecretIDPrefix, laki.ResourceIDLength):                   "webhook secret id",
		alnum(laki.EventIDPrefix, laki.ResourceIDLength):                           "event id",
		alnum(laki.MasterMerchantIDPrefix, laki.MasterMerchantIDLength):            "master merchant id",
		"^lk_(test|live)_[A-Za-z0-9]{" + strconv.Itoa(laki.KeySecretLength) + "}$": "key secret",
		"^" + laki.WebhookSecretPrefix + "[A-Za-z0-9+/]{43}=$":                     "webhook secret",
	}
	for p, what := range want {
		if !patterns[p] {
			t.Errorf("the API document has no pattern %s (laki's %s)", p, what)
		}
	}
	for p := range patterns {
		if _, ok := want[p]; !ok {
			t.Errorf("the API document's pattern %s is not one laki names", p)
		}
	}
	if laki.Sandbox.SecretPrefix() != laki.TestKeySecretPrefix || laki.Production.SecretPrefix() != laki.LiveKeySecretPrefix ||
		laki.TestKeySecretPrefix != "lk_test_" || laki.LiveKeySecretPrefix != "lk_live_" {
		t.Errorf("key secret prefixes: sandbox %q, production %q", laki.Sandbox.SecretPrefix(), laki.Production.SecretPrefix())
	}
}

func TestIDShapes(t *testing.T) {
	for _, c := range []struct {
		is   func(string) bool
		id   string
		want bool
	}{
		{laki.IsEndpointID, "we_" + "ABCDEFGHIJKLMNOPQRSTUVW0", true},
		{laki.IsEndpointID, "we_" + "ABCDEFGHIJKLMNOPQRSTUVW", false},
		{laki.IsEndpointID, "we_" + "ABCDEFGHIJKLMNOPQRSTUV-0", false},
		{laki.IsEndpointID, "whs_" + "ABCDEFGHIJKLMNOPQRSTUVW0", false},
		{laki.IsMasterMerchantID, "mm_" + "abcdefgh12345678", true},
		{laki.IsMasterMerchantID, "mm_" + "abcdefgh1234567", false},
		{laki.IsMasterMerchantID, "mm_" + "abcdefgh123456789", false},
		{laki.IsMasterMerchantID, "MM_" + "abcdefgh12345678", false},
	} {
		if got := c.is(c.id); got != c.want {
			t.Errorf("%q: got %v, want %v", c.id, got, c.want)
		}
	}
}

func TestShortID(t *testing.T) {
	for in, want := range map[string]string{"": "", "abc": "…abc", "key_abcdefghijklmnopqrstuvwx": "…uvwx", "whs_ßüöä1": "…üöä1"} {
		if got := laki.ShortID(in); got != want {
			t.Errorf("ShortID(%q) = %q, want %q", in, got, want)
		}
	}
}

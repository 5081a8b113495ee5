package lakisim_test

import (
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lakirotator/lakirotator/internal/secret"
	"github.com/lakirotator/lakirotator/laki"
	"github.com/lakirotator/lakirotator/providers/lakiconnect"
	"github.com/lakirotator/lakirotator/providers/lakisim/lakisimtest"
)

var (
	keyIDPattern   = regexp.MustCompile(`^key_[A-Za-z0-9]{24}$`)
	testKeyPattern = regexp.MustCompile(`^lk_test_[A-Za-z0-9]{40}$`)
	liveKeyPattern = regexp.MustCompile(`^lk_live_[A-Za-z0-9]{40}$`)
	merchantIDPat  = regexp.MustCompile(`^mm_[A-Za-z0-9]{16}$`)
)

func TestWhoAmIInBothEnvironments(t *testing.T) {
	f := lakisimtest.Start(t, lakisimtest.WithTLS())
	if !merchantIDPat.MatchString(f.MasterMerchantID) {
		t.Fatalf("merchant id %q does not match mm_ + 16 alphanumerics", f.MasterMerchantID)
	}
	for _, env := range []laki.Environment{laki.Sandbox, laki.Production} {
		a := get(t, f, f.URL(env)+"/whoami", f.Key(env))
		if a.status != http.StatusOK {
			t.Fatalf("%s whoami: %d %s", env, a.status, a.body)
		}
		var w laki.WhoAmI
		a.decode(t, &w)
		if w.Environment != env || w.MasterMerchantID != f.MasterMerchantID || w.Status != laki.StatusActive || !slices.Equal(w.Scopes, laki.AllScopes) {
			t.Fatalf("%s whoami = %+v", env, w)
		}
	}
	if !testKeyPattern.MatchString(f.SandboxKey.Reveal()) || !liveKeyPattern.MatchString(f.ProductionKey.Reveal()) {
		t.Fatal("seeded keys do not have the lk_test_/lk_live_ + 40 alphanumerics form")
	}
}

func TestKeyOfOtherEnvironmentOrUnknownGets401(t *testing.T) {
	f := lakisimtest.Start(t)
	cases := map[string]request{
		"sandbox key on production": {method: "GET", url: f.ProductionURL + "/whoami", key: f.SandboxKey},
		"production key on sandbox": {method: "GET", url: f.SandboxURL + "/whoami", key: f.ProductionKey},
		"no key":                    {method: "GET", url: f.SandboxURL + "/whoami"},
		"unknown key":               {method: "GET", url: f.SandboxURL + "/whoami", key: secret.New("lk_test_" + strings.Repeat("a", 40))},
		"basic auth":                {method: "GET", url: f.SandboxURL + "/whoami", headers: map[string]string{"Authorization": "Basic " + f.SandboxKey.Reveal()}},
	}
	for name, r := range cases {
		t.Run(name, func(t *testing.T) {
			send(t, f, r).wantError(t, http.StatusUnauthorized, lakiconnect.ErrTypeAuthentication, lakiconnect.CodeInvalidAPIKey)
		})
	}
}

func TestEnvironmentHandlerServesOneEnvironmentAtV1(t *testing.T) {
	f := lakisimtest.Start(t)
	srv := httptestServer(t, f.Sim.EnvironmentHandler(laki.Production))
	for key, want := range map[secret.Value]int{f.ProductionKey: 200, f.SandboxKey: 401} {
		req, _ := http.NewRequest("GET", srv+"/v1/whoami", nil)
		req.Header.Set("Authorization", "Bearer "+key.Reveal())
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("status %d, want %d", resp.StatusCode, want)
		}
	}
}

func TestCreateKeyReturnsTheSecretOnlyOnce(t *testing.T) {
	f := lakisimtest.Start(t)
	expires := lakisimtest.Epoch().Add(90 * 24 * time.Hour)
	body := mustJSON(t, map[string]any{
		"name": "checkout", "scopes": []string{"payments:read", "payments:write"},
		"expires_at": expires, "metadata": map[string]string{"secret_name": "prod/checkout"},
	})
	for _, env := range []laki.Environment{laki.Sandbox, laki.Production} {
		k := createKey(t, f, env, f.Key(env), body)
		pattern := testKeyPattern
		if env == laki.Production {
			pattern = liveKeyPattern
		}
		if !keyIDPattern.MatchString(k.ID) || !pattern.MatchString(k.Secret) {
			t.Fatalf("%s: id %q / secret of wrong form", env, k.ID)
		}
		creator := f.SandboxKeyID
		if env == laki.Production {
			creator = f.ProductionKeyID
		}
		if k.CreatedBy == nil || *k.CreatedBy != creator {
			t.Fatalf("created_by = %v, want %s", k.CreatedBy, creator)
		}
		if k.SecretLast4 != k.Secret[len(k.Secret)-4:] || k.Status != laki.StatusActive || k.Name != "checkout" ||
			k.Metadata["secret_name"] != "prod/checkout" || k.ExpiresAt == nil || !k.ExpiresAt.Equal(expires) ||
			!k.CreatedAt.Equal(lakisimtest.Epoch()) || k.LastUsedAt != nil || k.Environment != env {
			t.Fatalf("created key = %+v", k.APIKey)
		}
		one := get(t, f, f.URL(env)+"/api_keys/"+k.ID, f.Key(env))
		list := get(t, f, f.URL(env)+"/api_keys", f.Key(env))
		for _, a := range []answer{one, list} {
			if a.status != 200 {
				t.Fatalf("status %d %s", a.status, a.body)
			}
			if _, found := containsAny(a.body, k.Secret, f.Key(env).Reveal()); found {
				t.Fatalf("a read answer contains a secret: %s", a.body)
			}
		}
		// The new key works, with exactly the scopes it was given.
		a := get(t, f, f.URL(env)+"/api_keys", k.value())
		a.wantError(t, http.StatusForbidden, lakiconnect.ErrTypePermission, lakiconnect.CodeMissingScope)
		var w laki.WhoAmI
		get(t, f, f.URL(env)+"/whoami", k.value()).decode(t, &w)
		if w.KeyID != k.ID || w.ExpiresAt == nil || !w.ExpiresAt.Equal(expires) {
			t.Fatalf("whoami of new key = %+v", w)
		}
	}
}

func TestCreateKeyRefusesInvalidBodies(t *testing.T) {
	f := lakisimtest.Start(t, lakisimtest.WithResponseContractOnly())
	now := lakisimtest.Epoch()
	many := map[string]string{}
	for i := range 21 {
		many[fmt.Sprintf("k%d", i)] = "v"
	}
	cases := map[string]struct {
		body  any
		param string
	}{
		"no name":          {map[string]any{"scopes": []string{"payments:read"}}, "name"},
		"empty name":       {map[string]any{"name": "", "scopes": []string{"payments:read"}}, "name"},
		"name too long":    {map[string]any{"name": strings.Repeat("n", 101), "scopes": []string{"payments:read"}}, "name"},
		"no scopes":        {map[string]any{"name": "x"}, "scopes"},
		"empty scopes":     {map[string]any{"name": "x", "scopes": []string{}}, "scopes"},
		"duplicate scopes": {map[string]any{"name": "x", "scopes": []string{"payments:read", "payments:read"}}, "scopes"},
		"unknown scope":    {map[string]any{"name": "x", "scopes": []string{"payments:delete"}}, "scopes"},
		"expires in past":  {map[string]any{"name": "x", "scopes": []string{"payments:read"}, "expires_at": now.Add(-time.Second)}, "expires_at"},
		"expires too late": {map[string]any{"name": "x", "scopes": []string{"payments:read"}, "expires_at": now.Add(401 * 24 * time.Hour)}, "expires_at"},
		"21 metadata":      {map[string]any{"name": "x", "scopes": []string{"payments:read"}, "metadata": many}, "metadata"},
		"long metadata":    {map[string]any{"name": "x", "scopes": []string{"payments:read"}, "metadata": map[string]string{"a": strings.Repeat("v", 501)}}, "metadata[a]"},
		"unknown field":    {map[string]any{"name": "x", "scopes": []string{"payments:read"}, "owner": "me"}, ""},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			a := post(t, f, f.SandboxURL+"/api_keys", f.SandboxKey, mustJSON(t, c.body))
			a.wantError(t, http.StatusBadRequest, lakiconnect.ErrTypeInvalidRequest, lakiconnect.CodeParameterInvalid)
			var e lakiconnect.ErrorBody
			a.decode(t, &e)
			if c.param != "" && (e.Error.Param == nil || *e.Error.Param != c.param) {
				t.Fatalf("param = %v, want %s (message %q)", e.Error.Param, c.param, e.Error.Message)
			}
		})
	}
	if n := len(f.Sim.Keys(laki.Sandbox, f.MasterMerchantID)); n != 1 {
		t.Fatalf("%d keys after refused creates, want only the management key", n)
	}
	// The limits themselves are allowed.
	createKey(t, f, laki.Sandbox, f.SandboxKey, mustJSON(t, map[string]any{
		"name": strings.Repeat("n", 100), "scopes": []string{"payments:read"},
		"expires_at": now.Add(400 * 24 * time.Hour), "metadata": map[string]string{"a": strings.Repeat("v", 500)},
	}))
}

func TestRBACMissingScopeAndEscalation(t *testing.T) {
	f := lakisimtest.Start(t)
	reader := createKey(t, f, laki.Sandbox, f.SandboxKey, `{"name":"reader","scopes":["api_keys:read","webhooks:read"]}`)
	writer := createKey(t, f, laki.Sandbox, f.SandboxKey, `{"name":"writer","scopes":["api_keys:write","payments:read"]}`)

	post(t, f, f.SandboxURL+"/api_keys", reader.value(), `{"name":"x","scopes":["api_keys:read"]}`).
		wantError(t, http.StatusForbidden, lakiconnect.ErrTypePermission, lakiconnect.CodeMissingScope)
	post(t, f, f.SandboxURL+"/api_keys", writer.value(), `{"name":"x","scopes":["payments:write"]}`).
		wantError(t, http.StatusForbidden, lakiconnect.ErrTypePermission, lakiconnect.CodeScopeEscalation)
	// Granting what it holds itself is fine.
	createKey(t, f, laki.Sandbox, writer.value(), `{"name":"x","scopes":["payments:read"]}`)

	scopeOf := map[string]secret.Value{ // endpoint → a key lacking its scope
		"GET /api_keys":                                          writer.value(),
		"GET /api_keys/" + reader.ID:                             writer.value(),
		"POST /api_keys/" + writer.ID + "/revoke":                reader.value(),
		"POST /api_keys/" + writer.ID + "/expire":                reader.value(),
		"GET /webhook_endpoints":                                 writer.value(),
		"GET /security/auth_failures?since=2026-01-01T00:00:00Z": writer.value(),
	}
	for ep, key := range scopeOf {
		method, path, _ := strings.Cut(ep, " ")
		send(t, f, request{method: method, url: f.SandboxURL + path, key: key}).
			wantError(t, http.StatusForbidden, lakiconnect.ErrTypePermission, lakiconnect.CodeMissingScope)
	}
	// whoami needs no scope.
	if a := get(t, f, f.SandboxURL+"/whoami", reader.value()); a.status != 200 {
		t.Fatalf("whoami: %d", a.status)
	}
}

func TestKeyLimitPerMerchantAndEnvironment(t *testing.T) {
	f := lakisimtest.Start(t)
	var last createdKey
	for i := 1; i < laki.MaxKeysPerMerchant; i++ { // the management key is the first
		last = createKey(t, f, laki.Sandbox, f.SandboxKey, fmt.Sprintf(`{"name":"k%d","scopes":["payments:read"]}`, i))
	}
	post(t, f, f.SandboxURL+"/api_keys", f.SandboxKey, `{"name":"one too many","scopes":["payments:read"]}`).
		wantError(t, http.StatusConflict, lakiconnect.ErrTypeConflict, lakiconnect.CodeKeyLimitReached)
	// Production is counted apart.
	createKey(t, f, laki.Production, f.ProductionKey, `{"name":"prod","scopes":["payments:read"]}`)
	// A revoked key frees a place.
	if a := post(t, f, f.SandboxURL+"/api_keys/"+last.ID+"/revoke", f.SandboxKey, ""); a.status != 200 {
		t.Fatalf("revoke: %d %s", a.status, a.body)
	}
	createKey(t, f, laki.Sandbox, f.SandboxKey, `{"name":"after revoke","scopes":["payments:read"]}`)
}

func TestExpireAndRevokeFollowTheClock(t *testing.T) {
	f := lakisimtest.Start(t, lakisimtest.WithResponseContractOnly())
	now := lakisimtest.Epoch()
	k := createKey(t, f, laki.Sandbox, f.SandboxKey, `{"name":"old","scopes":["payments:read"]}`)
	expireURL := f.SandboxURL + "/api_keys/" + k.ID + "/expire"

	for name, at := range map[string]time.Time{"past": now.Add(-time.Second), "over 7 days": now.Add(7*24*time.Hour + time.Second)} {
		post(t, f, expireURL, f.SandboxKey, mustJSON(t, map[string]any{"expires_at": at})).
			wantError(t, http.StatusBadRequest, lakiconnect.ErrTypeInvalidRequest, lakiconnect.CodeParameterInvalid)
		_ = name
	}
	var got laki.APIKey
	a := post(t, f, expireURL, f.SandboxKey, mustJSON(t, map[string]any{"expires_at": now.Add(2 * time.Hour)}))
	a.decode(t, &got)
	if a.status != 200 || got.Status != laki.StatusExpiring || !got.ExpiresAt.Equal(now.Add(2*time.Hour)) {
		t.Fatalf("expire: %d %+v", a.status, got)
	}
	// Expiring again moves expires_at.
	post(t, f, expireURL, f.SandboxKey, mustJSON(t, map[string]any{"expires_at": now.Add(time.Hour)})).decode(t, &got)
	if got.Status != laki.StatusExpiring || !got.ExpiresAt.Equal(now.Add(time.Hour)) {
		t.Fatalf("re-expire: %+v", got)
	}
	// It still works until then...
	f.Clock.Advance(59 * time.Minute)
	if a := get(t, f, f.SandboxURL+"/whoami", k.value()); a.status != 200 {
		t.Fatalf("expiring key refused before expires_at: %d", a.status)
	}
	// ...and not after.
	f.Clock.Advance(time.Minute)
	get(t, f, f.SandboxURL+"/whoami", k.value()).wantError(t, 401, lakiconnect.ErrTypeAuthentication, lakiconnect.CodeInvalidAPIKey)
	get(t, f, f.SandboxURL+"/api_keys/"+k.ID, f.SandboxKey).decode(t, &got)
	if got.Status != laki.StatusRevoked || got.RevokedAt == nil || !got.RevokedAt.Equal(now.Add(time.Hour)) {
		t.Fatalf("after expires_at: %+v", got)
	}
	post(t, f, expireURL, f.SandboxKey, "").wantError(t, http.StatusConflict, lakiconnect.ErrTypeConflict, lakiconnect.CodeKeyRevoked)

	// Omitted expires_at: revoked at once.
	k2 := createKey(t, f, laki.Sandbox, f.SandboxKey, `{"name":"now","scopes":["payments:read"]}`)
	post(t, f, f.SandboxURL+"/api_keys/"+k2.ID+"/expire", f.SandboxKey, `{}`).decode(t, &got)
	if got.Status != laki.StatusRevoked {
		t.Fatalf("expire without expires_at: %+v", got)
	}
	get(t, f, f.SandboxURL+"/whoami", k2.value()).wantError(t, 401, lakiconnect.ErrTypeAuthentication, lakiconnect.CodeInvalidAPIKey)

	// Revoke is immediate and idempotent.
	k3 := createKey(t, f, laki.Sandbox, f.SandboxKey, `{"name":"revoke me","scopes":["payments:read"]}`)
	var first, second laki.APIKey
	post(t, f, f.SandboxURL+"/api_keys/"+k3.ID+"/revoke", f.SandboxKey, "").decode(t, &first)
	f.Clock.Advance(time.Hour)
	post(t, f, f.SandboxURL+"/api_keys/"+k3.ID+"/revoke", f.SandboxKey, "").decode(t, &second)
	if first.Status != laki.StatusRevoked || second.RevokedAt == nil || !second.RevokedAt.Equal(*first.RevokedAt) {
		t.Fatalf("revoke twice: %+v then %+v", first, second)
	}
	get(t, f, f.SandboxURL+"/whoami", k3.value()).wantError(t, 401, lakiconnect.ErrTypeAuthentication, lakiconnect.CodeInvalidAPIKey)

	// Unknown and other-merchant keys are 404.
	other := f.Sim.AddMasterMerchant("")
	ok, err := f.Sim.CreateKey(laki.Sandbox, other, "other", []laki.Scope{laki.ScopePaymentsRead})
	if err != nil {
		t.Fatal(err)
	}
	post(t, f, f.SandboxURL+"/api_keys/"+ok.ID+"/revoke", f.SandboxKey, "").
		wantError(t, http.StatusNotFound, lakiconnect.ErrTypeInvalidRequest, lakiconnect.CodeResourceMissing)
}

func TestCreateWithExpiresAtEndsByTheClock(t *testing.T) {
	f := lakisimtest.Start(t)
	k := createKey(t, f, laki.Sandbox, f.SandboxKey, mustJSON(t, map[string]any{
		"name": "short", "scopes": []string{"payments:read"}, "expires_at": lakisimtest.Epoch().Add(30 * 24 * time.Hour),
	}))
	f.Clock.Advance(30*24*time.Hour - time.Second)
	if a := get(t, f, f.SandboxURL+"/whoami", k.value()); a.status != 200 {
		t.Fatalf("before expires_at: %d", a.status)
	}
	f.Clock.Advance(time.Second)
	get(t, f, f.SandboxURL+"/whoami", k.value()).wantError(t, 401, lakiconnect.ErrTypeAuthentication, lakiconnect.CodeInvalidAPIKey)
	got, _ := f.Sim.Key(k.ID)
	if got.Status != laki.StatusRevoked {
		t.Fatalf("status %s", got.Status)
	}
}

func TestLastUsedAtToTheMinuteOnSuccessOnly(t *testing.T) {
	f := lakisimtest.Start(t)
	k := createKey(t, f, laki.Sandbox, f.SandboxKey, `{"name":"used","scopes":["payments:read"]}`)
	f.Clock.Advance(3*time.Minute + 42*time.Second)
	get(t, f, f.SandboxURL+"/whoami", k.value())
	got, _ := f.Sim.Key(k.ID)
	want := lakisimtest.Epoch().Add(3 * time.Minute)
	if got.LastUsedAt == nil || !got.LastUsedAt.Equal(want) {
		t.Fatalf("last_used_at = %v, want %v", got.LastUsedAt, want)
	}
	// A refused request (403) does not count as use.
	f.Clock.Advance(10 * time.Minute)
	get(t, f, f.SandboxURL+"/api_keys", k.value())
	got, _ = f.Sim.Key(k.ID)
	if !got.LastUsedAt.Equal(want) {
		t.Fatalf("last_used_at moved on a 403: %v", got.LastUsedAt)
	}
}

func TestPagination(t *testing.T) {
	f := lakisimtest.Start(t, lakisimtest.WithResponseContractOnly())
	for i := range 24 {
		if i%5 == 0 {
			f.Clock.Advance(time.Second) // some share created_at, some do not
		}
		createKey(t, f, laki.Sandbox, f.SandboxKey, fmt.Sprintf(`{"name":"k%d","scopes":["payments:read"]}`, i))
	}
	var all []laki.APIKey
	var page lakiconnect.List[laki.APIKey]
	get(t, f, f.SandboxURL+"/api_keys", f.SandboxKey).decode(t, &page)
	if len(page.Data) != 20 || !page.HasMore {
		t.Fatalf("default page: %d items, has_more %v", len(page.Data), page.HasMore)
	}
	url := f.SandboxURL + "/api_keys?limit=7"
	for {
		get(t, f, url, f.SandboxKey).decode(t, &page)
		all = append(all, page.Data...)
		if !page.HasMore {
			break
		}
		url = f.SandboxURL + "/api_keys?limit=7&starting_after=" + page.Data[len(page.Data)-1].ID
	}
	if len(all) != 25 {
		t.Fatalf("walked %d keys, want 25", len(all))
	}
	for i := 1; i < len(all); i++ {
		a, b := all[i-1], all[i]
		if a.CreatedAt.After(b.CreatedAt) || (a.CreatedAt.Equal(b.CreatedAt) && a.ID >= b.ID) {
			t.Fatalf("not ordered by created_at, id at %d: %s %s / %s %s", i, a.CreatedAt, a.ID, b.CreatedAt, b.ID)
		}
	}
	for _, bad := range []string{"limit=0", "limit=101", "limit=x", "starting_after=key_nope", "status=gone"} {
		get(t, f, f.SandboxURL+"/api_keys?"+bad, f.SandboxKey).
			wantError(t, http.StatusBadRequest, lakiconnect.ErrTypeInvalidRequest, lakiconnect.CodeParameterInvalid)
	}
	get(t, f, f.SandboxURL+"/api_keys?limit=100&status=revoked", f.SandboxKey).decode(t, &page)
	if len(page.Data) != 0 || page.HasMore {
		t.Fatalf("status=revoked: %+v", page)
	}
}

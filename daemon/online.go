package daemon

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/lakirotator/lakirotator/config"
	"github.com/lakirotator/lakirotator/internal/clock"
	"github.com/lakirotator/lakirotator/laki"
	"github.com/lakirotator/lakirotator/providers/lakiconnect"
	"github.com/lakirotator/lakirotator/providers/secretsmanager"
	"github.com/lakirotator/lakirotator/providers/secretstore"
)

// OnlineCheck is one thing `config validate --online` looked at outside.
type OnlineCheck struct {
	Check       string `json:"check"` // secret_exists, management_key_works
	Environment string `json:"environment"`
	Secret      string `json:"secret"`
	Field       string `json:"field"` // where the config names it
	OK          bool   `json:"ok"`
	Message     string `json:"message,omitempty"`
	// Unreachable: the store or LakiConnect could not be asked (credentials,
	// network, permissions), as opposed to an answer that says no.
	Unreachable bool `json:"unreachable,omitempty"`
}

// CheckOnline checks, reading only, that every secret the config names
// exists in its environment's store and that every management key is
// accepted by LakiConnect for its environment and master merchant. It never
// writes, and reads each management key once.
func CheckOnline(ctx context.Context, cfg *config.Config, o BuildOptions) []OnlineCheck {
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	var out []OnlineCheck
	s := &Service{}
	stores, err := s.buildStores(ctx, cfg, o)
	if err != nil {
		// Building a store already asks AWS (the account behind its
		// credentials): explain that failure as any other store call's.
		msg := err.Error()
		if f := secretsmanager.Explain(err); f != nil {
			msg = f.Line
		}
		return []OnlineCheck{{Check: "store", Field: "store", Message: msg, Unreachable: true}}
	}
	defer func() { _ = s.Close(context.Background()) }()

	type named struct {
		env         laki.Environment
		name, field string
	}
	var secrets []named
	for i, sc := range cfg.Secrets {
		secrets = append(secrets, named{sc.Environment, sc.Name, fmt.Sprintf("secrets[%d].name", i)})
	}
	for _, env := range cfg.EnvironmentNames() {
		ec, _ := cfg.Environment(env)
		for i, m := range ec.LakiConnect.MasterMerchants {
			base := fmt.Sprintf("environments.%s.lakiconnect.master_merchants[%d]", env, i)
			secrets = append(secrets, named{env, m.ManagementKey.Secret, base + ".management_key.secret"})
			if w := m.SecurityWebhook; w != nil {
				secrets = append(secrets, named{env, w.Secret, base + ".security_webhook.secret"})
			}
		}
	}
	for _, r := range cfg.SecretRefs() {
		if r.Ref.AWSSecret != "" {
			secrets = append(secrets, named{r.Ref.Environment, r.Ref.AWSSecret, r.Field})
		}
	}
	sort.SliceStable(secrets, func(i, j int) bool { return secrets[i].env < secrets[j].env })
	for _, n := range secrets {
		c := OnlineCheck{Check: "secret_exists", Environment: string(n.env), Secret: n.name, Field: n.field}
		st, ok := stores[n.env]
		if !ok {
			c.Message = fmt.Sprintf("environment %q is not configured", n.env)
			out = append(out, c)
			continue
		}
		_, err := st.Describe(ctx, n.name)
		c.OK, c.Message, c.Unreachable = judge(err, fmt.Sprintf("no secret %q in the %s store", n.name, n.env))
		out = append(out, c)
	}

	for _, env := range cfg.EnvironmentNames() {
		ec, _ := cfg.Environment(env)
		for i, m := range ec.LakiConnect.MasterMerchants {
			c := OnlineCheck{Check: "management_key_works", Environment: string(env), Secret: m.ManagementKey.Secret,
				Field: fmt.Sprintf("environments.%s.lakiconnect.master_merchants[%d].management_key", env, i)}
			c.OK, c.Message, c.Unreachable = checkManagementKey(ctx, stores[env], ec, env, m, o)
			out = append(out, c)
		}
	}
	return out
}

// judge turns a store answer into a check result: not found is a no,
// anything else is the outside being unreachable.
func judge(err error, notFound string) (ok bool, msg string, unreachable bool) {
	switch {
	case err == nil:
		return true, "", false
	case errors.Is(err, secretstore.ErrNotFound), errors.Is(err, secretstore.ErrScheduledForDeletion):
		return false, notFound, false
	}
	if f := secretsmanager.Explain(err); f != nil {
		return false, f.Line, true
	}
	return false, err.Error(), true
}

func checkManagementKey(ctx context.Context, st secretstore.Store, ec config.EnvironmentConfig, env laki.Environment, m config.MasterMerchantConfig, o BuildOptions) (bool, string, bool) {
	v, err := st.Get(ctx, m.ManagementKey.Secret, secretstore.ByStage(secretstore.StageCurrent))
	if err != nil {
		return judge(err, fmt.Sprintf("no secret %q in the %s store", m.ManagementKey.Secret, env))
	}
	cred, err := secretstore.DecodeCredential(m.ManagementKey.Secret, v.Value)
	if err != nil {
		return false, err.Error(), false
	}
	c, err := lakiconnect.NewClient(lakiconnect.Config{BaseURL: ec.LakiConnect.BaseURL, APIKey: cred.Secret, Timeout: ec.LakiConnect.Timeout.Std(), RootCAs: o.RootCAs, MaxRetries: -1})
	if err != nil {
		return false, err.Error(), false
	}
	who, err := c.WhoAmI(ctx)
	var apiErr *lakiconnect.APIError
	switch {
	case errors.As(err, &apiErr):
		return false, fmt.Sprintf("LakiConnect refused the management key %s: %v", cred.KeyID, err), false
	case err != nil:
		return false, fmt.Sprintf("cannot reach LakiConnect at %s: %v", ec.LakiConnect.BaseURL, err), true
	case who.Environment != env:
		return false, fmt.Sprintf("the management key %s belongs to %s, not %s", cred.KeyID, who.Environment, env), false
	case who.MasterMerchantID != m.ID:
		return false, fmt.Sprintf("the management key %s belongs to master merchant %s, not %s", cred.KeyID, who.MasterMerchantID, m.ID), false
	case who.Status == laki.StatusRevoked:
		return false, fmt.Sprintf("the management key %s is %s", cred.KeyID, who.Status), false
	}
	return true, "", false
}

// OpenStore opens one environment's store as the daemon would (bootstrap
// writes a first management key through it). close releases it.
func OpenStore(ctx context.Context, cfg *config.Config, env laki.Environment, o BuildOptions) (st secretstore.Store, close func(), err error) {
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	s := &Service{}
	stores, err := s.buildStores(ctx, cfg, o)
	if err != nil {
		return nil, nil, err
	}
	st, ok := stores[env]
	if !ok {
		_ = s.Close(context.Background())
		return nil, nil, fmt.Errorf("environment %q is not configured", env)
	}
	return st, func() { _ = s.Close(context.Background()) }, nil
}

package cli

import (
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/lakirotator/lakirotator/daemon"
	"github.com/lakirotator/lakirotator/internal/secret"
	"github.com/lakirotator/lakirotator/laki"
	"github.com/lakirotator/lakirotator/providers/lakiconnect"
	"github.com/lakirotator/lakirotator/providers/secretstore"
)

// BootstrapResult is what bootstrap stored (never the key).
type BootstrapResult struct {
	Secret           string   `json:"secret"`
	Environment      string   `json:"environment"`
	MasterMerchantID string   `json:"master_merchant_id"`
	KeyID            string   `json:"key_id"`
	Scopes           []string `json:"scopes"`
	VersionID        string   `json:"version_id"`
}

// creator is a store that can create a secret (the local store); Secrets
// Manager secrets are created by Terraform and only written here.
type creator interface {
	Create(ctx context.Context, name, description string, tags map[string]string, initial *secret.Value) (secretstore.Secret, error)
}

func newBootstrapCmd(stdio IO, g *globalFlags) *cobra.Command {
	var envName, merchant string
	cmd := &cobra.Command{
		Use:   "bootstrap --environment ENV [--master-merchant ID]",
		Short: "Store a master merchant's first management key, read from standard input, where the config says",
		Long: "The rotator rotates its management keys itself, but the first one comes from a person: create it in\n" +
			"LakiConnect's dashboard, then pipe it to bootstrap. The key is read from standard input, never from the\n" +
			"command line (which other users and shell history can see). bootstrap asks LakiConnect who the key is,\n" +
			"refuses one of another environment or master merchant, and stores it as the secret\n" +
			"environments.ENV.lakiconnect.master_merchants[].management_key.secret names, as AWSCURRENT.",
		Example: "  lakirotator bootstrap --config lakirotator.yaml --environment sandbox < mgmt-key.txt\n" +
			"  pbpaste | lakirotator bootstrap --config lakirotator.yaml --environment production --master-merchant mm_PRODUCTION000001",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := g.checkOutput(); err != nil {
				return err
			}
			if envName == "" {
				return usageErr("bootstrap needs --environment (sandbox or production); see `lakirotator bootstrap --help`")
			}
			cfg, err := loadConfig(stdio, g, "")
			if err != nil {
				return err
			}
			env := laki.Environment(envName)
			ec, ok := cfg.Environment(env)
			if !ok {
				return usageErr("--environment %q is not configured in %s", envName, cfg.File())
			}
			mms := ec.LakiConnect.MasterMerchants
			if merchant == "" && len(mms) == 1 {
				merchant = mms[0].ID
			}
			mm, ok := cfg.MasterMerchant(env, merchant)
			if !ok {
				var ids []string
				for _, m := range mms {
					ids = append(ids, m.ID)
				}
				return usageErr("--master-merchant %q: give one of %s", merchant, strings.Join(ids, ", "))
			}
			if stdio.isTerminal() {
				fmt.Fprint(stdio.Err, "Paste the management key and press Enter: ")
			}
			key, err := readKey(stdio.In)
			if err != nil {
				return usageErr("%v", err)
			}
			ctx := cmd.Context()
			client, err := lakiconnect.NewClient(lakiconnect.Config{BaseURL: ec.LakiConnect.BaseURL, APIKey: key, Timeout: ec.LakiConnect.Timeout.Std()})
			if err != nil {
				return usageErr("environments.%s.lakiconnect.base_url: %v", env, err)
			}
			who, err := client.WhoAmI(ctx)
			if err != nil {
				return withCode(ExitFailure, fmt.Errorf("LakiConnect does not accept this key (nothing stored): %w", err))
			}
			switch {
			case who.Environment != env:
				return withCode(ExitFailure, fmt.Errorf("the key %s belongs to %s, not %s (nothing stored)", who.KeyID, who.Environment, env))
			case who.MasterMerchantID != mm.ID:
				return withCode(ExitFailure, fmt.Errorf("the key %s belongs to master merchant %s, not %s (nothing stored)", who.KeyID, who.MasterMerchantID, mm.ID))
			case who.Status == laki.StatusRevoked:
				return withCode(ExitFailure, fmt.Errorf("the key %s is revoked (nothing stored)", who.KeyID))
			}
			cred := secretstore.Credential{Type: secretstore.TypeAPIKey, Environment: string(env), MasterMerchantID: mm.ID, KeyID: who.KeyID,
				Secret: key, Scopes: laki.ScopeNames(who.Scopes), CreatedAt: time.Now().UTC()}
			value, err := cred.Encode()
			if err != nil {
				return withCode(ExitFailure, err)
			}
			st, closeStore, err := daemon.OpenStore(ctx, cfg, env, daemon.BuildOptions{})
			if err != nil {
				return withCode(ExitFailure, err)
			}
			defer closeStore()
			name := mm.ManagementKey.Secret
			versionID := bootstrapVersionID(name, who.KeyID)
			existing, err := st.Describe(ctx, name)
			switch {
			case errors.Is(err, secretstore.ErrNotFound):
				c, ok := st.(creator)
				if !ok {
					return withCode(ExitFailure, fmt.Errorf("secret %q does not exist in the %s store: create it first (terraform/ does), then run bootstrap again", name, env))
				}
				if _, err := c.Create(ctx, name, "lakirotator management key", nil, nil); err != nil {
					return withCode(ExitFailure, err)
				}
				existing = secretstore.Secret{}
			case err != nil:
				return withCode(ExitFailure, err)
			}
			// The same key bootstrapped again is already current: nothing to write.
			switch cur, ok := existing.VersionWithStage(secretstore.StageCurrent); {
			case ok && cur.ID != versionID:
				return withCode(ExitFailure, fmt.Errorf("secret %q already holds a management key (version %s): the rotator rotates it from here; nothing stored", name, cur.ID))
			case !ok:
				if err := st.PutPending(ctx, name, versionID, value); err != nil {
					return withCode(ExitFailure, err)
				}
				if err := st.MoveStage(ctx, name, secretstore.StageCurrent, versionID, ""); err != nil {
					return withCode(ExitFailure, err)
				}
			}
			res := BootstrapResult{Secret: name, Environment: string(env), MasterMerchantID: mm.ID, KeyID: who.KeyID, Scopes: cred.Scopes, VersionID: versionID}
			if res.Scopes == nil {
				res.Scopes = []string{}
			}
			if g.output == "json" {
				return writeJSON(stdio.Out, res)
			}
			fmt.Fprintf(stdio.Out, "stored management key %s (ending %s) of %s in %s as %s, version %s\n",
				who.KeyID, key.Last4(), mm.ID, env, name, versionID)
			return nil
		},
	}
	cmd.Flags().StringVar(&envName, "environment", "", "sandbox or production")
	cmd.Flags().StringVar(&merchant, "master-merchant", "", "master merchant id (default: the environment's only one)")
	return cmd
}

// readKey reads one line from r: the key, never echoed back.
func readKey(r io.Reader) (secret.Value, error) {
	line, err := bufio.NewReader(io.LimitReader(r, 4096)).ReadString('\n')
	line = strings.TrimSpace(line)
	if line == "" {
		if err != nil && !errors.Is(err, io.EOF) {
			return secret.Value{}, fmt.Errorf("reading the key from standard input: %w", err)
		}
		return secret.Value{}, errors.New("no key on standard input: pipe the management key to bootstrap (it is never taken from the command line)")
	}
	return secret.New(line), nil
}

// bootstrapVersionID is the version a bootstrap writes: derived from the
// secret and the key, so running the same bootstrap twice writes once.
func bootstrapVersionID(name, keyID string) string {
	h := sha256.Sum256([]byte("lakirotator bootstrap\x00" + name + "\x00" + keyID))
	x := fmt.Sprintf("%x", h[:16])
	return x[0:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:32]
}

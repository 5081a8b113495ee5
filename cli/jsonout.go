package cli

import (
	"sort"
	"time"

	"github.com/lakirotator/lakirotator/daemon"
	"github.com/lakirotator/lakirotator/httpapi"
	"github.com/lakirotator/lakirotator/laki"
	"github.com/lakirotator/lakirotator/rotator"
)

// The -o json shapes: snake_case fields, and [] (never null) for an empty
// list, so that scripts can iterate without a nil check.

func inventoryJSON(inv httpapi.Inventory) httpapi.Inventory {
	if inv.Secrets == nil {
		inv.Secrets = []httpapi.SecretStatus{}
	}
	for i := range inv.Secrets {
		if inv.Secrets[i].Owners == nil {
			inv.Secrets[i].Owners = []string{}
		}
	}
	return inv
}

func triggerJSON(st httpapi.TriggerStatus) httpapi.TriggerStatus {
	if st.Secrets == nil {
		st.Secrets = []httpapi.SecretProgress{}
	}
	return st
}

func planJSON(items []daemon.PlanItem) []daemon.PlanItem {
	if items == nil {
		return []daemon.PlanItem{}
	}
	for i := range items {
		if items[i].Violations == nil {
			items[i].Violations = []string{}
		}
	}
	return items
}

// SweptKeyJSON is one key the sweep looked at.
type SweptKeyJSON struct {
	KeyID            string    `json:"key_id"`
	Name             string    `json:"name"`
	Environment      string    `json:"environment"`
	MasterMerchantID string    `json:"master_merchant_id"`
	Secret           string    `json:"secret"`
	CreatedAt        time.Time `json:"created_at"`
}

// SweepEnvironmentJSON is one environment's sweep.
type SweepEnvironmentJSON struct {
	Environment string         `json:"environment"`
	Revoked     []SweptKeyJSON `json:"revoked"`
	Young       []SweptKeyJSON `json:"young"`
	Foreign     []SweptKeyJSON `json:"foreign"`
}

// SweepJSON is what `sweep -o json` prints.
type SweepJSON struct {
	Environments []SweepEnvironmentJSON `json:"environments"`
	Error        string                 `json:"error,omitempty"`
}

func sweepJSON(results map[laki.Environment]rotator.SweepResult, err error) SweepJSON {
	keys := func(ks []rotator.SweptKey) []SweptKeyJSON {
		out := []SweptKeyJSON{}
		for _, k := range ks {
			out = append(out, SweptKeyJSON{KeyID: k.KeyID, Name: k.Name, Environment: string(k.Environment),
				MasterMerchantID: k.MasterMerchantID, Secret: k.Secret, CreatedAt: k.CreatedAt.UTC()})
		}
		return out
	}
	out := SweepJSON{Environments: []SweepEnvironmentJSON{}}
	for env, r := range results {
		out.Environments = append(out.Environments, SweepEnvironmentJSON{Environment: string(env), Revoked: keys(r.Revoked), Young: keys(r.Young), Foreign: keys(r.Foreign)})
	}
	sort.Slice(out.Environments, func(i, j int) bool { return out.Environments[i].Environment < out.Environments[j].Environment })
	if err != nil {
		out.Error = err.Error()
	}
	return out
}

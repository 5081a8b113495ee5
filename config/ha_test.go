package config

import (
	"strings"
	"testing"
	"time"
)

const haBase = `version: 1
environments:
  production:
    aws: {region: eu-west-1}
    lakiconnect:
      base_url: https://api.lakiconnect.example/v1
      master_merchants:
        - id: mm_AAAAAAAAAAAAAAAA
          management_key: {secret: production/management}
`

func TestHAConfig(t *testing.T) {
	cfg, err := Parse("conf/ha.yaml", []byte(haBase+"ha: {kind: dynamodb, table: lakirotator-lease, region: eu-west-1}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HA == nil || cfg.HA.Table != "lakirotator-lease" || cfg.HA.TTL.Std() != 15*time.Second {
		t.Fatalf("ha read as %+v; want the table and the default TTL of 15s", cfg.HA)
	}
	cfg, err = Parse("conf/ha.yaml", []byte(haBase))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HA != nil {
		t.Errorf("a config without ha has a lease: %+v", cfg.HA)
	}
}

func TestBrokenHAConfigs(t *testing.T) {
	for _, tc := range []struct{ name, ha, want string }{
		{"another kind", "{kind: etcd, table: t1x, region: eu-west-1}", `ha.kind: "etcd" is not a lease kind`},
		{"no table", "{kind: dynamodb, region: eu-west-1}", "ha.table: required"},
		{"bad table", "{kind: dynamodb, table: 'a b', region: eu-west-1}", `ha.table: "a b" is not a DynamoDB table name`},
		{"no region", "{kind: dynamodb, table: t1x}", "ha.region: required"},
		{"ttl too short", "{kind: dynamodb, table: t1x, region: eu-west-1, ttl: 1s}", "ha.ttl: 1s is out of range"},
		{"plain http elsewhere", "{kind: dynamodb, table: t1x, region: eu-west-1, endpoint: 'http://dynamo.example.com'}",
			"ha.endpoint: http:// is allowed only to loopback"},
		{"unknown field", "{kind: dynamodb, table: t1x, region: eu-west-1, tabel: x}", "tabel"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("conf/ha.yaml", []byte(haBase+"ha: "+tc.ha+"\n"))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v; want one containing %q", err, tc.want)
			}
			if !strings.Contains(err.Error(), "conf/ha.yaml:") {
				t.Errorf("error %v does not name the file and line", err)
			}
		})
	}
}

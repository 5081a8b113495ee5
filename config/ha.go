package config

import (
	"regexp"
	"time"
)

// HAKindDynamoDB is the only lease kind: a DynamoDB item written with
// conditional writes (package ha).
const HAKindDynamoDB = "dynamodb"

// DefaultHATTL is the lease's duration when ha.ttl is unset.
const DefaultHATTL = Duration(15 * time.Second)

// HAConfig shares one deployment among several replicas: the holder of the
// lease runs scheduled slots, sweeps and scans; every replica takes
// triggers and security events. Unset, a single daemon runs everything.
type HAConfig struct {
	Kind     string   `yaml:"kind"`
	Table    string   `yaml:"table"`
	Name     string   `yaml:"name"`
	Region   string   `yaml:"region"`
	Endpoint string   `yaml:"endpoint"`
	TTL      Duration `yaml:"ttl"`
}

var dynamoTableRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{3,255}$`)

func (v *validator) ha() {
	h := v.c.HA
	if h == nil {
		return
	}
	if h.Kind != HAKindDynamoDB {
		v.ps.add("ha.kind", "%q is not a lease kind; the one kind is dynamodb", h.Kind)
	}
	if h.Table == "" {
		v.ps.add("ha.table", "required: the DynamoDB table of the lease")
	} else if !dynamoTableRE.MatchString(h.Table) {
		v.ps.add("ha.table", "%q is not a DynamoDB table name (3-255 of letters, digits, _ . -)", h.Table)
	}
	switch {
	case h.Region == "":
		v.ps.add("ha.region", "required, as in eu-west-1")
	case !regionRE.MatchString(h.Region):
		v.ps.add("ha.region", "%q is not an AWS region, as in eu-west-1", h.Region)
	}
	v.url("ha.endpoint", h.Endpoint, false)
	if h.TTL.Std() < 3*time.Second || h.TTL.Std() > 5*time.Minute {
		v.ps.add("ha.ttl", "%s is out of range: between 3s and 5m (the holder renews every fifth of it)", h.TTL.Std())
	}
}

package daemon

import (
	"context"
	"fmt"
	"os"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/lakirotator/lakirotator/config"
	"github.com/lakirotator/lakirotator/ha"
	"github.com/lakirotator/lakirotator/internal/awsaccess"
)

// buildLease makes the replicas' lease from ha: in the config; nil without one.
func buildLease(ctx context.Context, cfg *config.Config, o BuildOptions) (Leadership, error) {
	h := cfg.HA
	if h == nil {
		return nil, nil
	}
	awsCfg, err := awsaccess.Load(ctx, awsaccess.Config{Region: h.Region, RegionField: "ha.region", Endpoint: h.Endpoint, Credentials: o.AWSCredentials})
	if err != nil {
		return nil, fmt.Errorf("ha: %w", err)
	}
	client := dynamodb.NewFromConfig(awsCfg, func(do *dynamodb.Options) {
		if h.Endpoint != "" {
			do.BaseEndpoint = aws.String(h.Endpoint)
		}
	})
	host, err := os.Hostname()
	if err != nil {
		// Only a label: ha adds a random suffix that keeps holders unique.
		host = "unknown-host"
	}
	l, err := ha.New(ha.Options{
		Client: client, Table: h.Table, Name: h.Name, Holder: host + "-" + strconv.Itoa(os.Getpid()),
		TTL: h.TTL.Std(), Clock: o.Clock, Logger: o.Logger.With("component", "lease"),
	})
	if err != nil {
		return nil, fmt.Errorf("ha: %w", err)
	}
	return l, nil
}

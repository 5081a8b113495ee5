package daemon

import (
	"context"
	"fmt"
	"os"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go/logging"

	"github.com/lakirotator/lakirotator/config"
	"github.com/lakirotator/lakirotator/ha"
)

// buildLease makes the replicas' lease from ha: in the config; nil without one.
func buildLease(ctx context.Context, cfg *config.Config, o BuildOptions) (Leadership, error) {
	h := cfg.HA
	if h == nil {
		return nil, nil
	}
	load := []func(*awsconfig.LoadOptions) error{awsconfig.WithRegion(h.Region), awsconfig.WithLogger(logging.Nop{})}
	if o.AWSCredentials != nil {
		load = append(load, awsconfig.WithCredentialsProvider(o.AWSCredentials))
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx, load...)
	if err != nil {
		return nil, fmt.Errorf("ha: load AWS config: %w", err)
	}
	client := dynamodb.NewFromConfig(awsCfg, func(do *dynamodb.Options) {
		if h.Endpoint != "" {
			do.BaseEndpoint = aws.String(h.Endpoint)
		}
	})
	host, _ := os.Hostname()
	l, err := ha.New(ha.Options{
		Client: client, Table: h.Table, Name: h.Name, Holder: host + "-" + strconv.Itoa(os.Getpid()),
		TTL: h.TTL.Std(), Clock: o.Clock, Logger: o.Logger.With("component", "lease"),
	})
	if err != nil {
		return nil, fmt.Errorf("ha: %w", err)
	}
	return l, nil
}

// Package awsconf builds the DynamoDB client both commands use: the AWS
// SDK's default chain, an optional endpoint override, and dummy credentials
// for DynamoDB Local on loopback.
package awsconf

import (
	"context"
	"fmt"
	"net"
	"net/url"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// DynamoClient builds a DynamoDB client from the SDK's default chain
// (AWS_REGION, credentials, profiles, web identity). An explicit endpoint overrides the resolution; for a loopback one
// (DynamoDB Local) without a region or access key in the environment, a
// dummy region and static credentials are filled in.
func DynamoClient(ctx context.Context, endpoint string, getenv func(string) string) (*dynamodb.Client, error) {
	var opts []func(*config.LoadOptions) error
	if isLoopback(endpoint) {
		if getenv("AWS_REGION") == "" && getenv("AWS_DEFAULT_REGION") == "" {
			opts = append(opts, config.WithRegion("us-east-1"))
		}
		if getenv("AWS_ACCESS_KEY_ID") == "" {
			opts = append(opts, config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("local", "local", "")))
		}
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("aws config: %w", err)
	}
	if cfg.Region == "" {
		return nil, fmt.Errorf("aws config: no region: set AWS_REGION")
	}
	return dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
	}), nil
}

func isLoopback(endpoint string) bool {
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" {
		return false
	}
	h := u.Hostname()
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

package s3store

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Config says where the store lives. Credentials are not part of it: they come from the usual
// AWS sources (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, AWS_PROFILE with the shared
// credentials file, ...) through the SDK's default chain, so they never sit in a flag, a URL or
// a log line.
type Config struct {
	Bucket string
	// Prefix is the key prefix every object of the store is under ("" = the bucket's root).
	Prefix string
	// Endpoint is an S3-compatible server's base URL; "" means AWS.
	Endpoint string
	Region   string
	// PathStyle addresses the bucket in the path (http://host/bucket/key), as most
	// S3-compatible servers want; ParseURL turns it on when an endpoint is given.
	PathStyle bool
	// PartSize is the size of the parts bytes are sent to S3 in (and of the two buffers a PATCH
	// holds); default DefaultPartSize, at least MinPartSize.
	PartSize int64
}

// ParseURL reads s3://bucket/prefix?endpoint=http://host:port&region=us-east-1[&path_style=false].
func ParseURL(raw string) (Config, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "s3" {
		return Config{}, errors.New("the store URL must look like s3://bucket/prefix?endpoint=https://host&region=us-east-1")
	}
	if u.User != nil {
		// Not repeated: it may carry a secret.
		return Config{}, errors.New("the store URL must not carry credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or a shared credentials file) instead")
	}
	c := Config{Bucket: u.Host, Prefix: strings.Trim(u.Path, "/")}
	if c.Bucket == "" {
		return Config{}, fmt.Errorf("the store URL %q names no bucket", raw)
	}
	q := u.Query()
	c.Endpoint, c.Region = q.Get("endpoint"), q.Get("region")
	if c.Endpoint != "" {
		e, err := url.Parse(c.Endpoint)
		if err != nil || (e.Scheme != "http" && e.Scheme != "https") || e.Host == "" {
			return Config{}, fmt.Errorf("the store URL's endpoint %q must be an http:// or https:// URL", c.Endpoint)
		}
		c.PathStyle = true
	}
	if v := q.Get("path_style"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return Config{}, fmt.Errorf("the store URL's path_style %q is not true or false", v)
		}
		c.PathStyle = b
	}
	for k := range q {
		switch k {
		case "endpoint", "region", "path_style":
		default:
			return Config{}, fmt.Errorf("the store URL has an unknown parameter %q (known: endpoint, region, path_style)", k)
		}
	}
	return c, nil
}

// NewClient builds an S3 client for c with credentials from the default AWS chain.
func NewClient(ctx context.Context, c Config) (*s3.Client, error) {
	opts := []func(*awsconfig.LoadOptions) error{}
	if c.Region != "" {
		opts = append(opts, awsconfig.WithRegion(c.Region))
	}
	ac, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("s3store: loading AWS configuration: %w", err)
	}
	if ac.Region == "" {
		ac.Region = "us-east-1" // S3-compatible servers rarely care; the SDK refuses none
	}
	return s3.NewFromConfig(ac, func(o *s3.Options) {
		if c.Endpoint != "" {
			o.BaseEndpoint = aws.String(c.Endpoint)
		}
		o.UsePathStyle = c.PathStyle
		// ferry hashes every byte with SHA-256 itself; a CRC on top costs CPU for nothing.
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	}), nil
}

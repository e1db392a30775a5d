package store_test

import (
	"context"
	"os"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"go.yaml.in/yaml/v4"

	"github.com/postflight/postflight/internal/testenv"
	"github.com/postflight/postflight/store"
)

// cfnTable is the part of deploy/cloudformation/table.yaml the store
// depends on (intrinsic functions such as !Ref are in fields not decoded).
type cfnTable struct {
	Resources struct {
		Table struct {
			Type           string `yaml:"Type"`
			DeletionPolicy string `yaml:"DeletionPolicy"`
			Properties     struct {
				AttributeDefinitions []struct {
					AttributeName string `yaml:"AttributeName"`
					AttributeType string `yaml:"AttributeType"`
				} `yaml:"AttributeDefinitions"`
				KeySchema              []cfnKey `yaml:"KeySchema"`
				GlobalSecondaryIndexes []struct {
					IndexName  string   `yaml:"IndexName"`
					KeySchema  []cfnKey `yaml:"KeySchema"`
					Projection struct {
						ProjectionType   string   `yaml:"ProjectionType"`
						NonKeyAttributes []string `yaml:"NonKeyAttributes"`
					} `yaml:"Projection"`
					ContributorInsightsSpecification struct {
						Enabled bool `yaml:"Enabled"`
					} `yaml:"ContributorInsightsSpecification"`
				} `yaml:"GlobalSecondaryIndexes"`
				TimeToLiveSpecification struct {
					AttributeName string `yaml:"AttributeName"`
					Enabled       bool   `yaml:"Enabled"`
				} `yaml:"TimeToLiveSpecification"`
				PointInTimeRecoverySpecification struct {
					PointInTimeRecoveryEnabled bool `yaml:"PointInTimeRecoveryEnabled"`
				} `yaml:"PointInTimeRecoverySpecification"`
				DeletionProtectionEnabled        bool `yaml:"DeletionProtectionEnabled"`
				ContributorInsightsSpecification struct {
					Enabled bool `yaml:"Enabled"`
				} `yaml:"ContributorInsightsSpecification"`
			} `yaml:"Properties"`
		} `yaml:"Table"`
	} `yaml:"Resources"`
}

type cfnKey struct {
	AttributeName string `yaml:"AttributeName"`
	KeyType       string `yaml:"KeyType"`
}

func keysOf(ks []types.KeySchemaElement) []cfnKey {
	var out []cfnKey
	for _, k := range ks {
		out = append(out, cfnKey{*k.AttributeName, string(k.KeyType)})
	}
	return out
}

// TestCloudFormationMatchesTable: the CloudFormation template describes the
// table store.CreateTable makes (created on DynamoDB Local and described
// back): the same key schema and attribute types, the same index with the
// same keys and projection, TTL on the same attribute; and it keeps what
// production needs and DynamoDB Local cannot show (point-in-time recovery,
// deletion protection, contributor insights, Retain).
func TestCloudFormationMatchesTable(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../deploy/cloudformation/table.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var tpl cfnTable
	if err := yaml.Unmarshal(b, &tpl); err != nil {
		t.Fatal(err)
	}
	tbl := tpl.Resources.Table
	p := tbl.Properties
	if tbl.Type != "AWS::DynamoDB::Table" {
		t.Fatalf("Resources.Table is %q", tbl.Type)
	}

	ep := testenv.DynamoDBEndpoint(t)
	db := testenv.DynamoDBClient(t, ep)
	name := testenv.TableName(t)
	st, err := store.New(db, store.Config{Table: name}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := st.CreateTable(ctx); err != nil {
		t.Fatal(err)
	}
	desc, err := db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: &name})
	if err != nil {
		t.Fatal(err)
	}
	ttl, err := db.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: &name})
	if err != nil {
		t.Fatal(err)
	}
	real := desc.Table

	if got, want := p.KeySchema, keysOf(real.KeySchema); !slices.Equal(got, want) {
		t.Errorf("KeySchema %v, store.CreateTable makes %v", got, want)
	}
	realAttrs := map[string]string{}
	for _, a := range real.AttributeDefinitions {
		realAttrs[*a.AttributeName] = string(a.AttributeType)
	}
	tplAttrs := map[string]string{}
	for _, a := range p.AttributeDefinitions {
		tplAttrs[a.AttributeName] = a.AttributeType
	}
	if !mapsEqual(tplAttrs, realAttrs) {
		t.Errorf("AttributeDefinitions %v, store.CreateTable makes %v", tplAttrs, realAttrs)
	}
	if len(p.GlobalSecondaryIndexes) != len(real.GlobalSecondaryIndexes) {
		t.Fatalf("%d indexes in the template, %d made by store.CreateTable", len(p.GlobalSecondaryIndexes), len(real.GlobalSecondaryIndexes))
	}
	for i, g := range real.GlobalSecondaryIndexes {
		tg := p.GlobalSecondaryIndexes[i]
		if tg.IndexName != *g.IndexName {
			t.Errorf("index %q, store.CreateTable makes %q", tg.IndexName, *g.IndexName)
		}
		if got, want := tg.KeySchema, keysOf(g.KeySchema); !slices.Equal(got, want) {
			t.Errorf("index %s KeySchema %v, store.CreateTable makes %v", tg.IndexName, got, want)
		}
		if tg.Projection.ProjectionType != string(g.Projection.ProjectionType) || !slices.Equal(tg.Projection.NonKeyAttributes, g.Projection.NonKeyAttributes) {
			t.Errorf("index %s projection %+v, store.CreateTable makes %s %v", tg.IndexName, tg.Projection, g.Projection.ProjectionType, g.Projection.NonKeyAttributes)
		}
		if !tg.ContributorInsightsSpecification.Enabled {
			t.Errorf("index %s: contributor insights off (hot keys are found there)", tg.IndexName)
		}
	}
	if d := ttl.TimeToLiveDescription; d == nil || d.AttributeName == nil || *d.AttributeName != p.TimeToLiveSpecification.AttributeName || !p.TimeToLiveSpecification.Enabled {
		t.Errorf("TTL %+v in the template, store.CreateTable enables %+v", p.TimeToLiveSpecification, d)
	}
	if !p.PointInTimeRecoverySpecification.PointInTimeRecoveryEnabled || !p.DeletionProtectionEnabled ||
		!p.ContributorInsightsSpecification.Enabled || tbl.DeletionPolicy != "Retain" {
		t.Errorf("template lacks PITR %v, deletion protection %v, contributor insights %v or DeletionPolicy Retain (%q)",
			p.PointInTimeRecoverySpecification.PointInTimeRecoveryEnabled, p.DeletionProtectionEnabled,
			p.ContributorInsightsSpecification.Enabled, tbl.DeletionPolicy)
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

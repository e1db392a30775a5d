package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/postflight/postflight/keydesign"
)

// CreateTable creates the table and its index with on-demand billing and
// enables TTL on the expiry attribute. An existing table is left as it is
// (TTL is still ensured), so it is safe to run on every start of `dev`.
func (s *Store) CreateTable(ctx context.Context) error {
	str := types.ScalarAttributeTypeS
	_, err := s.db.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:   &s.table,
		BillingMode: types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String(keydesign.AttrPK), AttributeType: str},
			{AttributeName: aws.String(keydesign.AttrSK), AttributeType: str},
			{AttributeName: aws.String(keydesign.AttrIndexPK), AttributeType: str},
			{AttributeName: aws.String(keydesign.AttrIndexSK), AttributeType: str},
		},
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String(keydesign.AttrPK), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String(keydesign.AttrSK), KeyType: types.KeyTypeRange},
		},
		GlobalSecondaryIndexes: []types.GlobalSecondaryIndex{{
			IndexName: aws.String(keydesign.IndexName),
			KeySchema: []types.KeySchemaElement{
				{AttributeName: aws.String(keydesign.AttrIndexPK), KeyType: types.KeyTypeHash},
				{AttributeName: aws.String(keydesign.AttrIndexSK), KeyType: types.KeyTypeRange},
			},
			// Lists return whole messages: projecting everything saves a
			// BatchGetItem per page at the price of index storage.
			Projection: &types.Projection{ProjectionType: types.ProjectionTypeAll},
		}},
	})
	var inUse *types.ResourceInUseException
	switch {
	case errors.As(err, &inUse):
		s.log.Info("table exists", "table", s.table)
	case err != nil:
		return fmt.Errorf("create table %s: %w", s.table, err)
	default:
		s.log.Info("table created", "table", s.table)
	}
	w := dynamodb.NewTableExistsWaiter(s.db)
	if err := w.Wait(ctx, &dynamodb.DescribeTableInput{TableName: &s.table}, 2*time.Minute); err != nil {
		return fmt.Errorf("wait for table %s: %w", s.table, err)
	}
	ttl, err := s.db.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: &s.table})
	if err != nil {
		return fmt.Errorf("describe ttl: %w", err)
	}
	if d := ttl.TimeToLiveDescription; d != nil && (d.TimeToLiveStatus == types.TimeToLiveStatusEnabled || d.TimeToLiveStatus == types.TimeToLiveStatusEnabling) {
		return nil
	}
	_, err = s.db.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
		TableName:               &s.table,
		TimeToLiveSpecification: &types.TimeToLiveSpecification{AttributeName: aws.String(aTTL), Enabled: aws.Bool(true)},
	})
	if err != nil {
		return fmt.Errorf("enable ttl: %w", err)
	}
	return nil
}

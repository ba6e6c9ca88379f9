package dynamolocal

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/chatgo/serverless-chat/internal/samtemplate"
)

// CreateTables creates every table the template defines, naming each
// name(logicalID), with TTL enabled where the template enables it. A table
// that already exists is left as it is.
func CreateTables(ctx context.Context, client *dynamodb.Client, tmpl *samtemplate.Template, name func(logicalID string) string) error {
	tables, err := tmpl.Tables()
	if err != nil {
		return err
	}
	for _, t := range tables {
		in := &dynamodb.CreateTableInput{TableName: aws.String(name(t.LogicalID)), BillingMode: types.BillingModePayPerRequest}
		for _, a := range t.Attributes {
			in.AttributeDefinitions = append(in.AttributeDefinitions, types.AttributeDefinition{
				AttributeName: aws.String(a.Name), AttributeType: types.ScalarAttributeType(a.Type)})
		}
		for _, k := range t.Keys {
			in.KeySchema = append(in.KeySchema, types.KeySchemaElement{
				AttributeName: aws.String(k.Name), KeyType: types.KeyType(k.Type)})
		}
		if _, err := client.CreateTable(ctx, in); err != nil {
			if _, exists := errors.AsType[*types.ResourceInUseException](err); exists {
				continue
			}
			return fmt.Errorf("create table %s: %w", *in.TableName, err)
		}
		if t.TTLAttribute != "" {
			if _, err := client.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
				TableName: in.TableName,
				TimeToLiveSpecification: &types.TimeToLiveSpecification{
					AttributeName: aws.String(t.TTLAttribute), Enabled: aws.Bool(true)},
			}); err != nil {
				return fmt.Errorf("enable TTL on %s: %w", *in.TableName, err)
			}
		}
	}
	return nil
}

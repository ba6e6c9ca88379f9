// Package dynamolocal gives tests and the local stack a real DynamoDB: it
// starts DynamoDB Local (or reuses one) and creates the tables that
// template.yaml defines, so local and cloud tables cannot drift.
//
// Where the endpoint comes from, in order:
//  1. DYNAMODB_ENDPOINT, if set: one already running; nothing is started.
//  2. Java on PATH: software.amazon.dynamodb:DynamoDBLocal from Maven Central,
//     fetched once with mvn into .cache/dynamodb-local (git-ignored) and run
//     in memory on a free port.
//  3. A running Docker engine: the amazon/dynamodb-local image.
//
// It is what httptest.NewServer is to HTTP; it has no part in the Lambda
// functions. The helpers for tests (a TestMain, fresh tables per test) are
// in dynamolocaltest, so that the local gateway does not link testing.
package dynamolocal

// Package store keeps connections and messages in DynamoDB. The key design
// and its reasons are in docs/storage.md; the tables are defined once, in
// template.yaml.
//
// Every read that decides who receives a message is a strongly consistent
// Query on the base table, paginated past 1 MB; nothing on a request path
// scans. DynamoDB deletes expired items lazily, so every read also filters
// out items whose expiresAt has passed.
//
// The store is tested against DynamoDB Local only; nothing fakes it.
package store

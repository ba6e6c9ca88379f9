// Package samtemplate reads the facts the rest of the project needs from
// template.yaml: the DynamoDB tables, the functions and their environment,
// the WebSocket routes. The template is the single source of truth; code
// and tests read it through this package instead of restating it.
//
// It understands the CloudFormation YAML that template.yaml uses (short and
// long intrinsic functions are kept as tags, not evaluated). It does not
// validate the template; cfn-lint does.
package samtemplate

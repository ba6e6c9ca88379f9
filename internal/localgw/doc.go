// Package localgw emulates an API Gateway WebSocket API on one machine,
// closely enough that the same Lambda handlers, page and tests run against
// it as against AWS.
//
// It knows API Gateway, not the chat: the routes, the stage and the route
// selection expression come from the caller (cmd/localgw reads them from
// template.yaml), and functions are reached through an Invoker, either
// handlers compiled into this process or the Lambda Invoke API (sam local
// start-lambda, or the Lambda Runtime Interface Emulator running each built
// bootstrap).
//
// What it does as API Gateway does, and what it leaves out, is listed in
// docs/local-gateway.md.
package localgw

// Package metrics writes the chat's metrics as CloudWatch Embedded Metric
// Format records: log lines whose "_aws" member tells CloudWatch Logs which
// of their members are metrics, so that a function needs no API call (and
// no IAM permission) to publish them. Locally they are readable log lines
// of the same stream.
//
// The metric names are defined here once; template.yaml's dashboard and
// alarms use them, and a test keeps the two in step. The format is
// https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
package metrics

// Package sqslocal gives the local stack and the tests a real SQS-compatible
// server: ElasticMQ, fetched from Maven Central once with mvn into
// .cache/elasticmq (git-ignored) and run in memory on a free port, or one
// already running at SQS_ENDPOINT. It creates the queues template.yaml
// defines, with their visibility timeouts and redrive policies, so local
// and cloud queues cannot drift. It has no part in the Lambda functions.
//
// Why ElasticMQ: it speaks SQS's JSON protocol (the SDK's since 2024),
// with visibility timeouts, redrive to a dead-letter queue and long
// polling as SQS has them; it runs on the Java the local stack already
// needs for DynamoDB Local, and it starts in about a second. moto's server
// (which the deploy check uses for S3) would add a Python environment to
// `make run`; goaws implements fewer of SQS's semantics.
package sqslocal

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/chatgo/serverless-chat/internal/jvm"
	"github.com/chatgo/serverless-chat/internal/samtemplate"
)

// EnvEndpoint names the variable that points at an SQS-compatible server
// already running, which Start then reuses.
const EnvEndpoint = "SQS_ENDPOINT"

// Version is the ElasticMQ release fetched; pom.xml names the same one.
const Version = "1.6.14"

//go:embed pom.xml
var pom []byte

// Server is an SQS-compatible server that Start started or found.
type Server struct {
	Endpoint  string       // http://127.0.0.1:PORT
	proc      *jvm.Process // the process Start launched, if it did
	removeDir func()       // removes its folder (jvm.TempDir: its configuration), in Close
}

// Start returns a server ready to serve; getenv is os.Getenv in programs
// and tests alike. The caller must Close it.
func Start(ctx context.Context, getenv func(string) string) (*Server, error) {
	if ep := getenv(EnvEndpoint); ep != "" {
		s := &Server{Endpoint: ep}
		if err := s.wait(ctx, 10*time.Second); err != nil {
			return nil, fmt.Errorf("%s=%s does not answer: %w", EnvEndpoint, ep, err)
		}
		return s, nil
	}
	if _, err := exec.LookPath("java"); err != nil {
		return nil, errors.New("the local SQS server (ElasticMQ) needs Java 17 (apt-get install openjdk-17-jre-headless), or set " + EnvEndpoint)
	}
	lib, err := jvm.Fetch(ctx, "elasticmq", Version, "elasticmq-server_2.13-"+Version+".jar", pom)
	if err != nil {
		return nil, fmt.Errorf("ElasticMQ: %w, or set %s", err, EnvEndpoint)
	}
	dir, removeDir, err := jvm.TempDir("elasticmq")
	if err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "elasticmq.conf")
	launch := func(port int) (*jvm.Process, error) {
		// Queues are created through the API (CreateQueues); no statistics
		// server; strict limits, as SQS has them.
		config := fmt.Sprintf(`include classpath("application.conf")
node-address { protocol = http, host = "127.0.0.1", port = %[1]d, context-path = "" }
rest-sqs { enabled = true, bind-port = %[1]d, bind-hostname = "127.0.0.1", sqs-limits = strict }
rest-stats { enabled = false }
`, port)
		if err := os.WriteFile(conf, []byte(config), 0o644); err != nil {
			return nil, err
		}
		return jvm.Start(dir, nil, "-Xmx512m", "-Dconfig.file="+conf, "-cp", filepath.Join(lib, "*"), "org.elasticmq.server.Main")
	}
	proc, port, err := jvm.Serve(ctx, 60*time.Second, launch, func(ctx context.Context, port int) error {
		return answers(ctx, endpoint(port))
	})
	if err != nil {
		removeDir()
		return nil, fmt.Errorf("ElasticMQ did not start: %w", err)
	}
	return &Server{Endpoint: endpoint(port), proc: proc, removeDir: removeDir}, nil
}

func endpoint(port int) string { return "http://127.0.0.1:" + strconv.Itoa(port) }

// Exited is closed when a server Start launched exits; nil for one found
// running.
func (s *Server) Exited() <-chan struct{} {
	if s.proc == nil {
		return nil
	}
	return s.proc.Exited()
}

// Close stops what Start started; a reused endpoint is left running.
func (s *Server) Close() error {
	if s.proc != nil {
		s.proc.Stop()
		s.removeDir()
	}
	return nil
}

func (s *Server) wait(ctx context.Context, limit time.Duration) error {
	return jvm.Await(ctx, limit, nil, func(ctx context.Context) error { return answers(ctx, s.Endpoint) })
}

// answers checks that the SQS at endpoint answers ListQueues.
func answers(ctx context.Context, endpoint string) error {
	_, err := Client(endpoint).ListQueues(ctx, &sqs.ListQueuesInput{})
	return err
}

// Client returns an SQS client for a local endpoint, with fixed
// credentials and region (ElasticMQ checks neither).
func Client(endpoint string) *sqs.Client {
	return sqs.New(sqs.Options{
		BaseEndpoint: aws.String(endpoint),
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("local", "local", ""),
	})
}

// CreateQueues creates the template's queues, each named name(logicalID),
// dead-letter queues first, and returns their URLs by logical id. A queue
// that exists already is reused (CreateQueue is idempotent for the same
// attributes).
func CreateQueues(ctx context.Context, client *sqs.Client, tmpl *samtemplate.Template, name func(logicalID string) string) (map[string]string, error) {
	queues, err := tmpl.Queues()
	if err != nil {
		return nil, err
	}
	urls := map[string]string{}
	arns := map[string]string{}
	for _, q := range queues {
		attrs := map[string]string{
			string(types.QueueAttributeNameVisibilityTimeout):      strconv.Itoa(q.VisibilityTimeout),
			string(types.QueueAttributeNameMessageRetentionPeriod): strconv.Itoa(q.RetentionPeriod),
		}
		if q.DeadLetter != "" {
			attrs[string(types.QueueAttributeNameRedrivePolicy)] = fmt.Sprintf(`{"deadLetterTargetArn":%q,"maxReceiveCount":"%d"}`,
				arns[q.DeadLetter], q.MaxReceiveCount)
		}
		out, err := client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name(q.LogicalID)), Attributes: attrs})
		if err != nil {
			return nil, fmt.Errorf("create queue %s: %w", q.LogicalID, err)
		}
		urls[q.LogicalID] = *out.QueueUrl
		got, err := client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: out.QueueUrl,
			AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameQueueArn}})
		if err != nil {
			return nil, fmt.Errorf("get the ARN of queue %s: %w", q.LogicalID, err)
		}
		arns[q.LogicalID] = got.Attributes[string(types.QueueAttributeNameQueueArn)]
	}
	return urls, nil
}

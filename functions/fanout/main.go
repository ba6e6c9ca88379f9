// Command fanout is the Lambda function behind the fan-out queue: each
// record is one shard of a large room's broadcast.
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/chatgo/serverless-chat/internal/app"
)

func main() {
	h, err := app.New(context.Background(), os.Getenv)
	if err != nil {
		slog.Error("init failed", "err", err)
		os.Exit(1)
	}
	lambda.Start(h.Deliver)
}

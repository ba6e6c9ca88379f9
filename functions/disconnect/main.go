// Command disconnect is the Lambda function behind the WebSocket API's
// $disconnect route.
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
	lambda.Start(h.Disconnect)
}

// Command authorize is the Lambda function behind the $connect route's
// REQUEST authorizer, when sign-in is on (template parameter Auth=jwt).
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/chatgo/serverless-chat/internal/app"
)

func main() {
	a, err := app.NewAuthorizer(context.Background(), os.Getenv)
	if err != nil {
		slog.Error("init failed", "err", err)
		os.Exit(1)
	}
	lambda.Start(a.Authorize)
}

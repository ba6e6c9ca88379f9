package localgw

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"runtime/debug"
	"sync"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

// Handlers invokes functions compiled into this process, by name. Each
// value is a handler function of any form lambda.Start accepts.
type Handlers map[string]any

// Invoke runs the named handler with a Lambda context carrying a fresh
// request id, and turns a panic into an error as the Lambda runtime would.
// Unlike Lambda, it runs invocations of one function concurrently, so each
// gets its own lambda.Handler (which reuses its buffers between calls).
func (h Handlers) Invoke(ctx context.Context, function string, payload []byte) (out []byte, err error) {
	fn, ok := h[function]
	if !ok {
		return nil, fmt.Errorf("no function %q in this process", function)
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("function %s panicked: %v\n%s", function, r, debug.Stack())
		}
	}()
	ctx = lambdacontext.NewContext(ctx, &lambdacontext.LambdaContext{AwsRequestID: rand.Text(),
		InvokedFunctionArn: "arn:aws:lambda:local:000000000000:function:" + function})
	out, err = lambda.NewHandler(fn).Invoke(ctx, payload)
	if err != nil {
		return nil, &FunctionError{Function: function, Message: err.Error()}
	}
	return out, nil
}

// FunctionError is a function's own error: its handler returned one (or,
// through the Invoke API, X-Amz-Function-Error was set).
type FunctionError struct {
	Function string
	Message  string // the errorMessage
}

func (e *FunctionError) Error() string { return "function " + e.Function + " failed: " + e.Message }

// LambdaAPI invokes functions through the Lambda Invoke API:
// sam local start-lambda, or one Lambda Runtime Interface Emulator per
// function.
type LambdaAPI struct {
	// URL returns the invocation URL of a function, e.g.
	// http://127.0.0.1:3001/2015-03-31/functions/NAME/invocations.
	URL    func(function string) string
	Client *http.Client
	// Serial invokes each URL one call at a time, for the Runtime
	// Interface Emulator, which runs one invocation at a time.
	Serial bool

	mu    sync.Mutex
	locks map[string]*sync.Mutex
}

// InvokeURL is the Invoke API path of a function under base.
func InvokeURL(base, function string) string {
	return base + "/2015-03-31/functions/" + function + "/invocations"
}

func (l *LambdaAPI) lock(url string) *sync.Mutex {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.locks == nil {
		l.locks = map[string]*sync.Mutex{}
	}
	if l.locks[url] == nil {
		l.locks[url] = &sync.Mutex{}
	}
	return l.locks[url]
}

// Invoke posts the event and returns the function's result. A function
// error (X-Amz-Function-Error) is an error, as API Gateway treats it.
func (l *LambdaAPI) Invoke(ctx context.Context, function string, payload []byte) ([]byte, error) {
	url := l.URL(function)
	if l.Serial {
		m := l.lock(url)
		m.Lock()
		defer m.Unlock()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(payload))
	if err != nil {
		return nil, err
	}
	client := l.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("invoke %s: %w", function, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("invoke %s: read: %w", function, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("invoke %s: status %d: %s", function, resp.StatusCode, out)
	}
	// Lambda flags a function's error with X-Amz-Function-Error; the Runtime
	// Interface Emulator answers 200 with only the error's body.
	var body struct {
		ErrorMessage *string         `json:"errorMessage"`
		ErrorType    *string         `json:"errorType"`
		StackTrace   json.RawMessage `json:"stackTrace"`
	}
	flagged := resp.Header.Get("X-Amz-Function-Error") != ""
	dec := json.NewDecoder(bytes.NewReader(out))
	dec.DisallowUnknownFields()
	isError := dec.Decode(&body) == nil && body.ErrorMessage != nil && body.ErrorType != nil
	if flagged || isError {
		msg := string(out)
		if body.ErrorMessage != nil {
			msg = *body.ErrorMessage
		}
		return nil, &FunctionError{Function: function, Message: msg}
	}
	return out, nil
}

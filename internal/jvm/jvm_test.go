package jvm

import (
	"context"
	"errors"
	"testing"
	"time"
)

// Two servers started at once can be handed the same free port; the one
// that binds it second must move, not hang or answer as the other.
func TestServeMovesOffATakenPort(t *testing.T) {
	var launched []*Process
	var ports []int
	launch := func(port int) (*Process, error) {
		ports = append(ports, port)
		script := "exec sleep 60" // serves (as far as ready can tell)
		if len(ports) == 1 {
			// As ElasticMQ does: it says so and stays up.
			script = "echo 'java.net.BindException: Address already in use'; exec sleep 60"
		}
		p, err := start(t.TempDir(), nil, "sh", "-c", script)
		if err == nil {
			launched = append(launched, p)
		}
		return p, err
	}
	// The first program does not answer before it has said why.
	p, port, err := Serve(t.Context(), 10*time.Second, 0, launch, func(_ context.Context, port int) error {
		if port == ports[0] && !launched[0].portTaken() {
			return errors.New("not yet")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	if len(ports) != 2 || ports[0] == ports[1] || port != ports[1] || p != launched[1] {
		t.Fatalf("launched on %v, serving on %d: want a second launch on another port", ports, port)
	}
	select {
	case <-launched[0].Exited():
	case <-time.After(5 * time.Second):
		t.Fatal("the server that lost its port was left running")
	}
}

package localgw

import (
	"math/rand/v2"
	"sync"
	"time"
)

// Faults makes the gateway fail as AWS sometimes does, on demand, so that
// what the chat promises can be tested rather than hoped for. The zero
// value injects nothing. Each fraction is from 0 to 1.
type Faults struct {
	// Seed makes the decisions reproducible: the same seed gives the same
	// sequence of decisions, taken in the order the calls arrive.
	Seed uint64
	// PostThrottle answers this fraction of PostToConnection calls with
	// 429 LimitExceededException (API Gateway's account throttle, or a
	// client whose buffer is full); nothing is delivered.
	PostThrottle float64
	// PostError answers this fraction with a 500; nothing is delivered.
	PostError float64
	// PostSlow delays this fraction by PostDelay before delivering them.
	PostSlow  float64
	PostDelay time.Duration
	// DropDisconnect never invokes $disconnect for this fraction of
	// connections (AWS delivers it on a best-effort basis).
	DropDisconnect float64
	// InvokeJitter delays each message route's invocation by a random
	// time up to it, so that one client's frames overtake each other (API
	// Gateway invokes them concurrently, in no particular order).
	InvokeJitter time.Duration
}

// faults draws the decisions of a Faults from one seeded source.
type faults struct {
	Faults
	mu  sync.Mutex
	rng *rand.Rand
}

func newFaults(f Faults) *faults {
	return &faults{Faults: f, rng: rand.New(rand.NewPCG(f.Seed, f.Seed^0x9e3779b97f4a7c15))}
}

func (f *faults) float() float64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.rng.Float64()
}

// postFault is what happens to one PostToConnection.
type postFault int

const (
	postOK postFault = iota
	postThrottled
	postFailed
	postSlow
)

func (f *faults) post() postFault {
	if f.PostThrottle+f.PostError+f.PostSlow == 0 {
		return postOK
	}
	switch x := f.float(); {
	case x < f.PostThrottle:
		return postThrottled
	case x < f.PostThrottle+f.PostError:
		return postFailed
	case x < f.PostThrottle+f.PostError+f.PostSlow:
		return postSlow
	}
	return postOK
}

func (f *faults) dropDisconnect() bool {
	return f.DropDisconnect > 0 && f.float() < f.DropDisconnect
}

func (f *faults) invokeDelay() time.Duration {
	if f.InvokeJitter <= 0 {
		return 0
	}
	return time.Duration(f.float() * float64(f.InvokeJitter))
}

package localgw

import (
	"bytes"
	"encoding/binary"
	"net"
	"strings"
	"sync"
	"sync/atomic"
)

// MaxFrameBytes is API Gateway's limit on one WebSocket frame (a message
// may be up to 128 KB, in frames of up to 32 KB).
const MaxFrameBytes = 32 << 10

// Listen wraps a listener so that the gateway sees two things on the wire
// that Go's HTTP server and the WebSocket library hide: the header names
// of a handshake as the client wrote them (API Gateway passes them on so),
// and the size of each frame the client sends (API Gateway closes the
// connection with 1009 when one is over 32 KB). Serve the gateway on the
// listener it returns.
func (g *Gateway) Listen(ln net.Listener) net.Listener { return &wireListener{Listener: ln, g: g} }

type wireListener struct {
	net.Listener
	g *Gateway
}

func (l *wireListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	addr := c.RemoteAddr().String()
	w := &wire{Conn: c, names: map[string]string{}, forget: func() { l.g.wires.Delete(addr) }}
	l.g.wires.Store(addr, w)
	return w, nil
}

// wire watches one TCP connection's inbound bytes.
type wire struct {
	net.Conn
	mu       sync.Mutex
	head     []byte            // the request head, until it is complete
	names    map[string]string // header name in lower case → as written
	upgrade  bool              // the request asked for a WebSocket
	frame    []byte            // a frame header being read
	skip     uint64            // payload bytes of the current frame still to come
	tooBig   atomic.Bool       // a frame over MaxFrameBytes came
	headDone bool
	forget   func()
}

func (w *wire) Read(p []byte) (int, error) {
	n, err := w.Conn.Read(p)
	if n > 0 {
		w.observe(p[:n])
	}
	return n, err
}

func (w *wire) observe(b []byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.headDone {
		w.head = append(w.head, b...)
		i := bytes.Index(w.head, []byte("\r\n\r\n"))
		if i < 0 {
			if len(w.head) > 64<<10 { // not a request head we care about
				w.headDone, w.head = true, nil
			}
			return
		}
		w.parseHead(w.head[:i])
		b, w.head, w.headDone = w.head[i+4:], nil, true
	}
	if !w.upgrade {
		return
	}
	for len(b) > 0 {
		if w.skip > 0 {
			n := min(w.skip, uint64(len(b)))
			w.skip -= n
			b = b[n:]
			continue
		}
		w.frame = append(w.frame, b[0])
		b = b[1:]
		if length, ok := frameHeader(w.frame); ok {
			if length > MaxFrameBytes {
				w.tooBig.Store(true)
			}
			w.skip, w.frame = length, w.frame[:0]
		}
	}
}

// frameHeader decodes a WebSocket frame header (RFC 6455, 5.2) once h holds
// all of it: the payload's length.
func frameHeader(h []byte) (length uint64, ok bool) {
	if len(h) < 2 {
		return 0, false
	}
	size := 2
	length = uint64(h[1] & 0x7f)
	switch length {
	case 126:
		size += 2
	case 127:
		size += 8
	}
	if h[1]&0x80 != 0 { // masked, as every client frame is
		size += 4
	}
	if len(h) < size {
		return 0, false
	}
	switch length {
	case 126:
		length = uint64(binary.BigEndian.Uint16(h[2:4]))
	case 127:
		length = binary.BigEndian.Uint64(h[2:10])
	}
	return length, true
}

func (w *wire) parseHead(head []byte) {
	lines := strings.Split(string(head), "\r\n")
	for _, l := range lines[1:] {
		name, value, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		w.names[strings.ToLower(name)] = name
		if strings.EqualFold(name, "Upgrade") && strings.EqualFold(strings.TrimSpace(value), "websocket") {
			w.upgrade = true
		}
	}
}

func (w *wire) Close() error {
	w.forget()
	return w.Conn.Close()
}

// wireOf returns what the wire saw of the connection a request came on,
// nil if the gateway is not served on its own listener.
func (g *Gateway) wireOf(remoteAddr string) *wire {
	v, ok := g.wires.Load(remoteAddr)
	if !ok {
		return nil
	}
	return v.(*wire)
}

// rawName returns a header's name as the client wrote it.
func (w *wire) rawName(canonical string) string {
	if w == nil {
		return canonical
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if n, ok := w.names[strings.ToLower(canonical)]; ok {
		return n
	}
	return canonical
}

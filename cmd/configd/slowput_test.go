package main_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/configd/configd/api"
)

// slowPut is a PUT over a raw connection whose handler is running and
// waiting for the body: it sends the headers with Expect: 100-continue and
// returns once the server asks for the body.
type slowPut struct {
	t     *testing.T
	conn  net.Conn
	br    *bufio.Reader
	value string
}

func startSlowPut(t *testing.T, addr, key, value string) *slowPut {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if err := conn.SetDeadline(time.Now().Add(waitLimit)); err != nil {
		t.Fatal(err)
	}
	_, err = fmt.Fprintf(conn, "PUT /v1/kv/%s HTTP/1.1\r\nHost: %s\r\nContent-Type: text/plain\r\n"+
		"Content-Length: %d\r\nExpect: 100-continue\r\n%s: test\r\n\r\n", key, addr, len(value), api.HeaderActor)
	if err != nil {
		t.Fatal(err)
	}
	p := &slowPut{t: t, conn: conn, br: bufio.NewReader(conn), value: value}
	// The server sends 100 Continue when the handler starts reading.
	resp, err := http.ReadResponse(p.br, nil)
	if err != nil {
		t.Fatalf("waiting for 100 Continue: %v", err)
	}
	if resp.StatusCode != http.StatusContinue {
		t.Fatalf("got %s, want 100 Continue", resp.Status)
	}
	return p
}

// finish sends the body and returns the final answer.
func (p *slowPut) finish() (int, string) {
	p.t.Helper()
	if _, err := io.WriteString(p.conn, p.value); err != nil {
		p.t.Fatalf("send body: %v", err)
	}
	resp, err := http.ReadResponse(p.br, nil)
	if err != nil {
		p.t.Fatalf("read answer: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

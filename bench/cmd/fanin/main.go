// Command fanin measures a snapshot stampede: it starts configd, writes
// --keys values of --value-size bytes under one prefix, then opens
// --watchers watches of that prefix with since=0 at once, each on its own
// connection (in this process, separate from the server), and waits until
// every one has received its whole snapshot. It reports configd's peak
// resident memory (VmHWM), the time from the watches' requests to the
// last snapshot's last byte, and what configd allocated and the CPU time it
// used meanwhile (go_memstats_alloc_bytes_total on /metrics, and
// /proc/PID/stat), for each transport:
//
//   - stream: GET /v1/watch upgraded to the watch stream (the SDK's default)
//   - grpc: the gRPC Watch over HTTP/2 without TLS
//   - sse: GET /v1/watch with Accept: text/event-stream
//
// The clients read each snapshot as it arrives and keep only counts, so
// their own memory stays small whatever configd sends. By default they read
// as fast as loopback allows; --client-kib-per-s makes each stream and SSE
// client read at most that fast, as clients behind a network would, so
// that configd holds what it sends for longer (the gRPC clients' HTTP/2
// window, 4 MiB, takes a snapshot whole whatever they read).
//
//	go run ./cmd/fanin --configd ../bin/configd --watchers 2000 --keys 3000 --value-size 1024
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/configd/configd/api"
	"github.com/configd/configd/api/configdpb"
	"github.com/configd/configd/bench/internal/daemon"
)

// prefix is the watched prefix.
const prefix = "bench/fanin/"

// clientRate is --client-kib-per-s.
var clientRate int64

func main() {
	bin := flag.String("configd", "../bin/configd", "the configd binary to start")
	watchers := flag.Int("watchers", 2000, "watches opened at once")
	keys := flag.Int("keys", 3000, "keys under the watched prefix")
	valueSize := flag.Int("value-size", 1024, "bytes per value")
	transports := flag.String("transports", "stream,grpc,sse", "comma-separated: stream, grpc, sse")
	maxHWM := flag.Int64("max-hwm-mib", 0, "exit 1 when configd's peak resident memory exceeds this many MiB (0: no check)")
	flag.Int64Var(&clientRate, "client-kib-per-s", 0, "how fast each stream and SSE client reads, in KiB/s (0: as fast as it can)")
	flag.Parse()
	failed := false
	for _, tr := range strings.Split(*transports, ",") {
		tr = strings.TrimSpace(tr)
		open, ok := openers[tr]
		if !ok {
			fmt.Fprintf(os.Stderr, "fanin: unknown transport %q (stream, grpc, sse)\n", tr)
			os.Exit(2)
		}
		res, err := run(*bin, open, *watchers, *keys, *valueSize)
		if err != nil {
			fmt.Fprintf(os.Stderr, "fanin: %s: %v\n", tr, err)
			os.Exit(1)
		}
		fmt.Printf("transport=%s watchers=%d keys=%d value=%dB client_kib_per_s=%d snapshot=%.1fMiB last_snapshot_after=%s configd_hwm=%.0fMiB configd_hwm_before=%.0fMiB configd_rss_after=%.0fMiB configd_allocated=%.0fMiB configd_cpu=%s\n",
			tr, *watchers, *keys, *valueSize, clientRate, float64(res.snapshotBytes)/(1<<20), res.last.Round(time.Millisecond),
			mib(res.hwm), mib(res.hwmBefore), mib(res.rssAfter), mib(res.allocated), res.cpu)
		if *maxHWM > 0 && res.hwm > *maxHWM<<20 {
			fmt.Fprintf(os.Stderr, "fanin: %s: configd's peak resident memory %.0f MiB is over %d MiB\n", tr, mib(res.hwm), *maxHWM)
			failed = true
		}
	}
	if failed {
		os.Exit(1)
	}
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

type result struct {
	hwmBefore, hwm, rssAfter int64
	allocated                int64         // bytes configd allocated during the stampede
	cpu                      time.Duration // CPU time configd used during the stampede
	last                     time.Duration // from the requests to the last snapshot received
	snapshotBytes            int64         // one snapshot message, as received
}

// opener returns start, which sends one watch's request and reads until
// its snapshot has arrived, and closeConn, which closes its connection.
// The stream and SSE clients dial in start: an HTTP/1.1 connection dialed
// before the stampede would sit idle while thousands of others are
// served, and configd closes one that sends nothing for 10s. The gRPC
// clients connect before it (TCP and the HTTP/2 preface), as gRPC clients
// keep their connections, so that a client starved of CPU by thousands of
// others cannot be late with its preface.
type opener func(ctx context.Context, addr string) (start func() (snapshot, error), closeConn func(), err error)

var openers = map[string]opener{"stream": openStream, "grpc": openGRPC, "sse": openSSE}

// snapshot is what a client counted of the snapshot it received.
type snapshot struct {
	events int
	bytes  int64
}

func run(bin string, open opener, n, keys, valueSize int) (result, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d, err := daemon.Start(ctx, bin)
	if err != nil {
		return result{}, err
	}
	defer d.Stop()
	if err := seed(d.Addr, keys, valueSize); err != nil {
		return result{}, err
	}
	var res result
	if res.hwmBefore, err = d.HWM(); err != nil {
		return res, err
	}
	alloc0, err := allocated(d.Addr)
	if err != nil {
		return res, err
	}
	cpu0, err := d.CPU()
	if err != nil {
		return res, err
	}

	starts := make([]func() (snapshot, error), n)
	for i := range starts {
		start, closeConn, err := open(ctx, d.Addr)
		if err != nil {
			return res, fmt.Errorf("connection %d: %w", i, err)
		}
		defer closeConn()
		starts[i] = start
	}
	var wg sync.WaitGroup
	begin := make(chan struct{})
	snaps := make([]snapshot, n)
	errs := make([]error, n)
	done := make([]time.Time, n)
	for i, start := range starts {
		wg.Go(func() {
			<-begin
			snaps[i], errs[i] = start()
			done[i] = time.Now()
		})
	}
	t0 := time.Now()
	close(begin)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return res, fmt.Errorf("watch %d: %w", i, err)
		}
		if snaps[i].events != keys {
			return res, fmt.Errorf("watch %d: snapshot of %d keys, want %d", i, snaps[i].events, keys)
		}
		res.last = max(res.last, done[i].Sub(t0))
		res.snapshotBytes = snaps[i].bytes
	}
	if res.hwm, err = d.HWM(); err != nil {
		return res, err
	}
	if res.rssAfter, err = d.RSS(); err != nil {
		return res, err
	}
	cpu1, err := d.CPU()
	if err != nil {
		return res, err
	}
	res.cpu = cpu1 - cpu0
	alloc1, err := allocated(d.Addr)
	res.allocated = alloc1 - alloc0
	return res, err
}

// allocated returns the bytes configd has allocated since it started.
func allocated(addr string) (int64, error) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_memstats_alloc_bytes_total "); ok {
			f, err := strconv.ParseFloat(v, 64)
			return int64(f), err
		}
	}
	return 0, errors.New("no go_memstats_alloc_bytes_total on /metrics")
}

// seed writes the keys in one transaction.
func seed(addr string, keys, valueSize int) error {
	value := strings.Repeat("0123456789abcdef", valueSize/16+1)[:valueSize]
	txn := api.TxnRequest{Reason: "fanin benchmark"}
	for i := range keys {
		txn.Ops = append(txn.Ops, api.TxnOp{Op: "put", Key: fmt.Sprintf("%skey-%05d", prefix, i), Value: value})
	}
	body, err := json.Marshal(txn)
	if err != nil {
		return err
	}
	resp, err := http.Post("http://"+addr+"/v1/txn", "application/json", bytes.NewReader(body))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("seed: %s: %s", resp.Status, msg)
	}
	return nil
}

func watchQuery() string {
	return "/v1/watch?" + url.Values{"prefix": {prefix}, "since": {"0"}}.Encode()
}

// openHTTP opens a GET /v1/watch with the request headers header on a
// connection of its own, expecting status; read reads the snapshot from
// the answer (r is the connection after the answer's head).
func openHTTP(header string, status int, read func(r *bufio.Reader, resp *http.Response) (snapshot, error)) opener {
	return func(ctx context.Context, addr string) (func() (snapshot, error), func(), error) {
		var c net.Conn
		start := func() (snapshot, error) {
			var err error
			if c, err = (&net.Dialer{}).DialContext(ctx, "tcp", addr); err != nil {
				return snapshot{}, err
			}
			if _, err := io.WriteString(c, "GET "+watchQuery()+" HTTP/1.1\r\nHost: "+addr+"\r\n"+header+"\r\n"); err != nil {
				return snapshot{}, err
			}
			r := bufio.NewReaderSize(throttle(c), 64<<10)
			resp, err := http.ReadResponse(r, nil)
			if err != nil {
				return snapshot{}, err
			}
			if resp.StatusCode != status {
				return snapshot{}, fmt.Errorf("watch: %s", resp.Status)
			}
			return read(r, resp)
		}
		return start, func() { closeIfOpen(c) }, nil
	}
}

// openStream: the watch stream, as the SDK opens it.
var openStream = openHTTP("Connection: Upgrade\r\nUpgrade: "+api.WatchStreamProtocol+"\r\n", http.StatusSwitchingProtocols,
	func(r *bufio.Reader, _ *http.Response) (snapshot, error) {
		return readSnapshot(r, func(r *bufio.Reader) (int64, error) { return readUvarint(r) })
	})

// openSSE: server-sent events.
var openSSE = openHTTP("Accept: text/event-stream\r\n", http.StatusOK,
	func(_ *bufio.Reader, resp *http.Response) (snapshot, error) {
		return readSSESnapshot(bufio.NewReaderSize(resp.Body, 64<<10))
	})

func closeIfOpen(c net.Conn) {
	if c != nil {
		c.Close()
	}
}

// openGRPC: the gRPC Watch, a stream of its own connection (HTTP/2
// without TLS, which configd's port serves beside HTTP/1.1).
func openGRPC(ctx context.Context, addr string) (func() (snapshot, error), func(), error) {
	var protocols http.Protocols
	protocols.SetUnencryptedHTTP2(true)
	cc, err := (&http.Transport{Protocols: &protocols}).NewClientConn(ctx, "http", addr)
	if err != nil {
		return nil, nil, err
	}
	pr, pw := io.Pipe()
	start := func() (snapshot, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+configdpb.Config_Watch_FullMethodName, pr)
		if err != nil {
			return snapshot{}, err
		}
		req.Header.Set("Content-Type", "application/grpc")
		req.Header.Set("TE", "trailers")
		msg, err := proto.Marshal(&configdpb.WatchRequest{Request: &configdpb.WatchRequest_Create{
			Create: &configdpb.WatchCreate{WatchId: 1, Prefixes: []string{prefix}}}})
		if err != nil {
			return snapshot{}, err
		}
		go func() {
			// The request stays open: configd ends the Watch when it closes.
			frame := append([]byte{0, byte(len(msg) >> 24), byte(len(msg) >> 16), byte(len(msg) >> 8), byte(len(msg))}, msg...)
			pw.Write(frame)
		}()
		resp, err := cc.RoundTrip(req)
		if err != nil {
			return snapshot{}, err
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			return snapshot{}, fmt.Errorf("grpc: %s", resp.Status)
		}
		r := bufio.NewReaderSize(resp.Body, 64<<10)
		return readSnapshot(r, readGRPCLength)
	}
	return start, func() { pw.Close(); cc.Close() }, nil
}

// readGRPCLength reads a gRPC message's 5-byte prefix.
func readGRPCLength(r *bufio.Reader) (int64, error) {
	var h [5]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, err
	}
	if h[0] != 0 {
		return 0, errors.New("grpc: compressed message")
	}
	return int64(h[1])<<24 | int64(h[2])<<16 | int64(h[3])<<8 | int64(h[4]), nil
}

// readSSESnapshot reads events until the "snapshot" one, counting the
// keys of its data line as it streams by.
func readSSESnapshot(r *bufio.Reader) (snapshot, error) {
	event := ""
	for {
		line, err := r.ReadSlice('\n')
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return snapshot{}, err
		}
		switch {
		case bytes.HasPrefix(line, []byte("event: ")):
			event = strings.TrimSpace(string(line[len("event: "):]))
		case bytes.HasPrefix(line, []byte("data: ")):
			s, err := countData(r, line, err)
			if err != nil {
				return s, err
			}
			switch event {
			case "snapshot":
				return s, nil
			case "error":
				return s, errors.New("sse: error event")
			}
		}
	}
}

// countData counts the events of a data line whose first piece is first
// (cut when err is bufio.ErrBufferFull), reading the rest of it from r.
func countData(r *bufio.Reader, first []byte, err error) (snapshot, error) {
	marker := []byte(`{"key":`)
	var s snapshot
	var carry []byte // the end of the pieces so far, shorter than a marker
	piece := first
	for {
		s.bytes += int64(len(piece))
		// A marker cut between two pieces is found in carry+piece; carry
		// is too short to hold one already counted.
		buf := append(carry, piece...)
		s.events += bytes.Count(buf, marker)
		carry = append(carry[:0:0], buf[len(buf)-min(len(buf), len(marker)-1):]...)
		if !errors.Is(err, bufio.ErrBufferFull) {
			return s, err
		}
		piece, err = r.ReadSlice('\n')
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return s, err
		}
	}
}

// readSnapshot reads length-prefixed WatchResponse messages (the length
// read by length) until a SNAPSHOT, counting its events without keeping
// them.
func readSnapshot(r *bufio.Reader, length func(*bufio.Reader) (int64, error)) (snapshot, error) {
	for {
		n, err := length(r)
		if err != nil {
			return snapshot{}, err
		}
		m, err := scanMessage(r, n)
		if err != nil {
			return snapshot{}, err
		}
		switch m.kind {
		case configdpb.WatchResponse_SNAPSHOT:
			return snapshot{events: m.events, bytes: n}, nil
		case configdpb.WatchResponse_CANCELED, configdpb.WatchResponse_RESYNC:
			return snapshot{}, fmt.Errorf("watch ended: %s: %s", m.kind, m.err)
		}
	}
}

type scanned struct {
	kind   configdpb.WatchResponse_Kind
	events int
	err    string
}

// scanMessage reads one WatchResponse of n bytes from r, field by field,
// skipping the events' contents.
func scanMessage(r *bufio.Reader, n int64) (scanned, error) {
	var m scanned
	lr := &countingReader{r: r, left: n}
	for lr.left > 0 {
		tag, err := readUvarint(lr)
		if err != nil {
			return m, err
		}
		field, wire := tag>>3, tag&7
		switch wire {
		case 0:
			v, err := readUvarint(lr)
			if err != nil {
				return m, err
			}
			if field == 2 {
				m.kind = configdpb.WatchResponse_Kind(v)
			}
		case 2:
			l, err := readUvarint(lr)
			if err != nil {
				return m, err
			}
			switch field {
			case 6:
				m.events++
				if err := lr.discard(l); err != nil {
					return m, err
				}
			case 7:
				b := make([]byte, min(l, 4096))
				if _, err := io.ReadFull(lr, b); err != nil {
					return m, err
				}
				m.err = string(b)
				if err := lr.discard(l - int64(len(b))); err != nil {
					return m, err
				}
			default:
				if err := lr.discard(l); err != nil {
					return m, err
				}
			}
		default:
			return m, fmt.Errorf("unexpected wire type %d", wire)
		}
	}
	return m, nil
}

// countingReader reads at most left bytes of a message from r.
type countingReader struct {
	r    *bufio.Reader
	left int64
}

func (c *countingReader) ReadByte() (byte, error) {
	if c.left <= 0 {
		return 0, io.ErrUnexpectedEOF
	}
	b, err := c.r.ReadByte()
	if err == nil {
		c.left--
	}
	return b, err
}

func (c *countingReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		return 0, io.ErrUnexpectedEOF
	}
	p = p[:min(int64(len(p)), c.left)]
	n, err := c.r.Read(p)
	c.left -= int64(n)
	return n, err
}

func (c *countingReader) discard(n int64) error {
	if n > c.left {
		return io.ErrUnexpectedEOF
	}
	for n > 0 {
		k, err := c.r.Discard(int(min(n, 1<<30)))
		n -= int64(k)
		c.left -= int64(k)
		if err != nil {
			return err
		}
	}
	return nil
}

// readUvarint reads a protobuf varint.
func readUvarint(r io.ByteReader) (int64, error) {
	var v uint64
	for shift := uint(0); shift < 64; shift += 7 {
		b, err := r.ReadByte()
		if err != nil {
			return 0, err
		}
		v |= uint64(b&0x7f) << shift
		if b < 0x80 {
			return int64(v), nil
		}
	}
	return 0, errors.New("varint too long")
}

// throttle returns r, reading at most clientRate KiB/s when it is set.
func throttle(r io.Reader) io.Reader {
	if clientRate <= 0 {
		return r
	}
	return &throttled{r: r, rate: clientRate << 10}
}

// throttled reads no faster than rate bytes/s from its first read.
type throttled struct {
	r     io.Reader
	rate  int64
	start time.Time
	n     int64
}

func (t *throttled) Read(p []byte) (int, error) {
	if t.start.IsZero() {
		t.start = time.Now()
	}
	p = p[:min(len(p), 16<<10)]
	n, err := t.r.Read(p)
	t.n += int64(n)
	// Pace: the bytes read so far are due at start + n/rate.
	time.Sleep(time.Until(t.start.Add(time.Duration(float64(t.n) / float64(t.rate) * float64(time.Second)))))
	return n, err
}

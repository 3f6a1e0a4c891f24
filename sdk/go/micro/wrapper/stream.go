package wrapper

import (
	"errors"
	"io"
	"sync"

	"github.com/configd/configd/sdk/go/micro/client"
)

// endStream is a client stream that reports its end once: the error Recv returned first (nil
// for io.EOF, the handler's clean end), or nil when the caller closed it before that.
type endStream struct {
	client.Stream
	once  sync.Once
	onEnd func(error)
}

// watchEnd returns st reporting its end to onEnd.
func watchEnd(st client.Stream, onEnd func(error)) client.Stream {
	return &endStream{Stream: st, onEnd: onEnd}
}

func (s *endStream) end(err error) {
	if errors.Is(err, io.EOF) {
		err = nil
	}
	s.once.Do(func() { s.onEnd(err) })
}

func (s *endStream) Recv(msg any) error {
	err := s.Stream.Recv(msg)
	if err != nil {
		s.end(err)
	}
	return err
}

func (s *endStream) Close() error {
	err := s.Stream.Close()
	s.end(nil)
	return err
}

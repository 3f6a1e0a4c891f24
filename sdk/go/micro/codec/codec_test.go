package codec_test

import (
	"errors"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/configd/configd/sdk/go/micro/codec"
)

type hello struct {
	Name string `json:"name"`
}

func TestRoundTrip(t *testing.T) {
	set := codec.Default()
	for _, tc := range []struct {
		contentType string
		in, out     any
		check       func(out any) bool
	}{
		{"application/json", &hello{Name: "bob"}, &hello{}, func(o any) bool { return o.(*hello).Name == "bob" }},
		{"application/json; charset=utf-8", wrapperspb.String("x"), &wrapperspb.StringValue{}, func(o any) bool { return o.(*wrapperspb.StringValue).Value == "x" }},
		{"application/protobuf", wrapperspb.String("p"), &wrapperspb.StringValue{}, func(o any) bool { return o.(*wrapperspb.StringValue).Value == "p" }},
		{"application/x-protobuf", wrapperspb.Int64(7), &wrapperspb.Int64Value{}, func(o any) bool { return o.(*wrapperspb.Int64Value).Value == 7 }},
		{"application/octet-stream", []byte("raw"), new([]byte), func(o any) bool { return string(*o.(*[]byte)) == "raw" }},
	} {
		t.Run(tc.contentType, func(t *testing.T) {
			c, err := set.Get(tc.contentType)
			if err != nil {
				t.Fatal(err)
			}
			b, err := c.Marshal(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Unmarshal(b, tc.out); err != nil {
				t.Fatal(err)
			}
			if !tc.check(tc.out) {
				t.Fatalf("round trip through %s gave %v", tc.contentType, tc.out)
			}
		})
	}
}

func TestMismatchIsAClearError(t *testing.T) {
	protoBytes, _ := proto.Marshal(wrapperspb.String(strings.Repeat("z", 10)))
	for _, tc := range []struct {
		name string
		run  func() error
		want string
	}{
		{"struct to protobuf", func() error { _, err := codec.Proto{}.Marshal(&hello{}); return err }, "*codec_test.hello"},
		{"protobuf into struct", func() error { return codec.Proto{}.Unmarshal(nil, &hello{}) }, "proto.Message"},
		{"protobuf bytes as json", func() error { return codec.JSON{}.Unmarshal(protoBytes, &hello{}) }, "json"},
		{"json bytes as protobuf", func() error {
			return codec.Proto{}.Unmarshal([]byte(`{"value":"x"}`), &wrapperspb.StringValue{})
		}, "protobuf"},
		{"string to raw", func() error { _, err := codec.Raw{}.Marshal("s"); return err }, "string"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.run()
			if !errors.Is(err, codec.ErrMismatch) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want ErrMismatch mentioning %q", err, tc.want)
			}
		})
	}
}

func TestUnsupportedContentTypeNamesIt(t *testing.T) {
	_, err := codec.Default().Get("application/xml")
	if !errors.Is(err, codec.ErrUnsupported) || !strings.Contains(err.Error(), "application/xml") ||
		!strings.Contains(err.Error(), "application/json") {
		t.Fatalf("err = %v, want ErrUnsupported naming the type and the ones available", err)
	}
	only := codec.NewSet(codec.Proto{})
	if _, err := only.Get("application/json"); !errors.Is(err, codec.ErrUnsupported) {
		t.Fatalf("a protobuf-only set accepted json: %v", err)
	}
}

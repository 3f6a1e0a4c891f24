package grpcapi

import (
	"io"
	"log/slog"
	"testing"

	grpcstatus "google.golang.org/grpc/status"

	"github.com/configd/configd/server/apierror"
	"github.com/configd/configd/server/apierror/apierrortest"
)

// TestTheGRPCAPIAnswersEveryErrorAsTheTableDoes sends every error of the
// shared table through the gRPC API's answer (and a watch's CANCELED
// code), and checks the gRPC code the table gives and the message of the
// one classification the HTTP API's answer carries too (httpapi's
// TestEveryDoorAnswersEveryErrorAlike and web's
// TestTheUIAnswersEveryErrorAsTheAPIDoes check the other doors against
// the same table).
func TestTheGRPCAPIAnswersEveryErrorAsTheTableDoes(t *testing.T) {
	svc := &configService{opts: options{logger: slog.New(slog.NewTextHandler(io.Discard, nil))}}
	for _, c := range apierrortest.Cases() {
		st, _ := grpcstatus.FromError(svc.grpcError("test", c.Err))
		if want := apierror.Classify(c.Err).Body().Message; st.Code() != c.GRPC || st.Message() != want {
			t.Errorf("%s: gRPC %v %q, want %v %q", c.Name, st.Code(), st.Message(), c.GRPC, want)
		}
		if got := errorCode(c.Err); got != c.Code {
			t.Errorf("%s: a watch's CANCELED code is %s, want %s", c.Name, got, c.Code)
		}
	}
}

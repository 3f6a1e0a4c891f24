package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/configd/configd/api"
	"github.com/configd/configd/audit"
	"github.com/configd/configd/keyspace"
)

func TestErrorBodyMapsEveryStoreError(t *testing.T) {
	for _, tc := range []struct {
		err    error
		status int
		code   string
	}{
		{fmt.Errorf("x: %w", keyspace.ErrInvalidKey), 400, api.CodeBadKey},
		{fmt.Errorf("%w: \"k\"", audit.ErrNotFound), 404, api.CodeNotFound},
		{fmt.Errorf("%w: revision 0", audit.ErrRevisionGone), 404, api.CodeRevisionGone},
		{fmt.Errorf("%w: 9 > 3", audit.ErrFutureRevision), 400, api.CodeBadRevision},
		{fmt.Errorf("%w: 5 > 2", audit.ErrBadRange), 400, api.CodeBadRevision},
		{fmt.Errorf("commit: %w", &audit.ConflictError{Key: "k", Expected: 1, Actual: 2, Rev: 7}), 409, api.CodeConflict},
		{audit.ErrConflict, 409, api.CodeConflict},
		{fmt.Errorf("%w: big", audit.ErrTooLarge), 413, api.CodeTooLarge},
		{fmt.Errorf("%w: image/png", audit.ErrContentType), 415, api.CodeBadContentType},
		{fmt.Errorf("%w: bad json", audit.ErrInvalidValue), 422, api.CodeInvalidValue},
		{fmt.Errorf("%w: empty", audit.ErrBadRequest), 400, api.CodeBadRequest},
		{fmt.Errorf("%w: key \"k\" cannot be secret", audit.ErrNoMasterKey), 400, api.CodeNoMasterKey},
		{audit.ErrClosed, 503, api.CodeUnavailable},
		{fmt.Errorf("%w: database or disk is full (13)", audit.ErrDiskFull), 507, api.CodeDiskFull},
		{context.Canceled, 503, api.CodeUnavailable},
		{errors.New("disk I/O error\nat page 7"), 500, api.CodeInternal},
		{badRequest("bad %s", "thing"), 400, api.CodeBadRequest},
	} {
		t.Run(tc.err.Error(), func(t *testing.T) {
			status, body, known := errorBody(withKey(tc.err, "the/key"))
			if status != tc.status || body.Code != tc.code {
				t.Errorf("got %d %s, want %d %s", status, body.Code, tc.status, tc.code)
			}
			if known != (status != http.StatusInternalServerError) {
				t.Errorf("known = %v for status %d", known, status)
			}
			switch {
			case status == 500 && body.Message == tc.err.Error():
				t.Errorf("500 message exposes the cause: %q", body.Message)
			case tc.code == api.CodeDiskFull && body.Message != diskFullMessage:
				t.Errorf("disk full message %q, want %q", body.Message, diskFullMessage)
			case status != 500 && tc.code != api.CodeUnavailable && tc.code != api.CodeDiskFull && body.Message != tc.err.Error():
				t.Errorf("message %q, want the error's own %q", body.Message, tc.err.Error())
			}
			if strings.ContainsAny(body.Message, "\n\r") {
				t.Errorf("message %q is not one line", body.Message)
			}
			if body.Key != "the/key" && tc.code != api.CodeConflict && status != 500 {
				t.Errorf("key %q, want the/key", body.Key)
			}
		})
	}
	_, body, _ := errorBody(&audit.ConflictError{Key: "k", Expected: 1, Actual: 2, Rev: 7})
	if body.Rev != 7 || body.Key != "k" {
		t.Errorf("conflict body %+v, want rev 7 key k", body)
	}
}

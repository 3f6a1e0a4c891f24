package httpapi

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/configd/configd/api"
	"github.com/configd/configd/audit"
	"github.com/configd/configd/server/apierror"
	"github.com/configd/configd/server/authz"
	"github.com/configd/configd/server/writeops"
)

// decodeBody decodes the JSON body of r into v, strictly: unknown fields,
// trailing data and a body larger than the handler's cap are refused.
func (h *handler) decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	if r.ContentLength > h.opts.maxRequestBody {
		return apierror.New(api.CodeTooLarge,
			"request body is %d bytes; the limit is %d", r.ContentLength, h.opts.maxRequestBody)
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, h.opts.maxRequestBody))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		if dec.Decode(&struct{}{}) != io.EOF {
			return apierror.BadRequest("malformed request body: more data after the JSON object")
		}
		return nil
	}
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return apierror.New(api.CodeTooLarge,
			"request body is larger than the limit of %d bytes", h.opts.maxRequestBody)
	case errors.Is(err, io.EOF):
		return apierror.BadRequest("malformed request body: it is empty, a JSON object is expected")
	}
	return bodyError(err, "malformed request body: %v")
}

// bodyError is the answer to a body that could not be read: its own when
// it has one (authz.BodyDeadline's), else 400 with format's message.
func bodyError(err error, format string) error {
	var he *apierror.Error
	if errors.As(err, &he) {
		return he
	}
	return apierror.BadRequest(format, err)
}

// POST /v1/txn
func (h *handler) txn(w http.ResponseWriter, r *http.Request) {
	if err := checkParams(r.URL.Query()); err != nil {
		h.fail(w, r, err)
		return
	}
	var req api.TxnRequest
	if err := h.decodeBody(w, r, &req); err != nil {
		h.fail(w, r, err)
		return
	}
	ops, err := h.txnOps(req.Ops)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	for _, o := range req.Ops {
		if !h.authorize(w, r, api.PermissionWrite, o.Key) {
			return
		}
	}
	reason := req.Reason
	if reason == "" {
		reason = r.Header.Get(api.HeaderReason)
	}
	rev, err := h.st.Commit(r.Context(), audit.Txn{
		Actor:  authz.ActorFrom(r.Context()),
		Reason: reason,
		Origin: writeops.OriginAPI,
		Ops:    ops,
	})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	setRev(w, rev.Rev)
	apierror.WriteJSON(w, http.StatusOK, api.WriteResponse{Rev: rev.Rev, Changed: len(rev.Changes) > 0})
}

// txnOps checks the operations of a transaction and converts them for the
// store: the JSON shape here (op names, base64 values), the rules every
// door shares in writeops. Each error names the operation by its index.
func (h *handler) txnOps(in []api.TxnOp) ([]audit.Op, error) {
	t, err := writeops.NewTxn(h.st, len(in))
	if err != nil {
		return nil, err
	}
	for i, o := range in {
		if err := t.Key(i, o.Key); err != nil {
			return nil, err
		}
		op := writeops.Op{Key: o.Key, ContentType: o.ContentType, Secret: o.Secret, IfModRev: o.IfModRev}
		switch o.Op {
		case "put":
			if o.Encoding != "" && o.Encoding != api.EncodingBase64 {
				return nil, apierror.WithKey(apierror.BadRequest("ops[%d]: encoding %q: want empty or %q", i, o.Encoding, api.EncodingBase64), o.Key)
			}
			if op.Value, err = api.DecodeValue(o.Value, o.Encoding); err != nil {
				return nil, apierror.WithKey(apierror.BadRequest("ops[%d]: value is not valid base64: %v", i, err), o.Key)
			}
		case "delete":
			op.Delete, op.Value, op.Encoding = true, []byte(o.Value), o.Encoding
		default:
			return nil, apierror.WithKey(apierror.BadRequest("ops[%d]: unknown op %q: want \"put\" or \"delete\"", i, o.Op), o.Key)
		}
		if err := t.Add(i, op); err != nil {
			return nil, err
		}
	}
	return t.Ops(), nil
}

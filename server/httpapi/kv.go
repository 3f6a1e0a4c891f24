package httpapi

import (
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/configd/configd/api"
	"github.com/configd/configd/audit"
	"github.com/configd/configd/keyspace"
	"github.com/configd/configd/server/apierror"
	"github.com/configd/configd/server/authz"
	"github.com/configd/configd/server/writeops"
)

// pathParam returns the rest of the path of a route ending in /*, a key
// or a prefix (what names it in a message), percent-decoded: chi routes
// on the escaped path when the URL has one (a key with %2F or invalid
// UTF-8 in it), so the parameter is then still escaped.
func pathParam(r *http.Request, what string) (string, error) {
	p := chi.URLParam(r, "*")
	if r.URL.RawPath != "" {
		u, err := url.PathUnescape(p)
		if err != nil {
			return "", apierror.WithKey(fmt.Errorf("%w: %s %q is not a valid URL path", keyspace.ErrInvalidKey, what, p), p)
		}
		p = u
	}
	return p, nil
}

// keyParam returns the key of a /v1/kv/{key...} route, percent-decoded and
// validated.
func keyParam(r *http.Request) (string, error) {
	key, err := pathParam(r, "key")
	if err != nil {
		return "", err
	}
	if err := keyspace.Validate(key); err != nil {
		if key == "" {
			err = fmt.Errorf("%w (to list keys, GET /v1/kv?prefix=P)", err)
		}
		return "", apierror.WithKey(err, key)
	}
	return key, nil
}

// GET /v1/kv/{key...}[?rev=N][&raw=true]
func (h *handler) get(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if err := checkParams(q, append([]string{"rev", "raw"}, fenceParams...)...); err != nil {
		h.fail(w, r, err)
		return
	}
	key, err := keyParam(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if err := h.awaitFence(r); err != nil {
		h.fail(w, r, err)
		return
	}
	rev, err := revParam(q, "rev")
	if err != nil {
		h.fail(w, r, err)
		return
	}
	raw, err := boolParam(q, "raw")
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var opts []audit.ReadOption
	readRev := rev
	if rev > 0 {
		opts = append(opts, audit.AtRev(rev))
	} else {
		// Read before the value, so the value is at least this new and a
		// watch from this revision misses nothing.
		readRev = h.st.Rev()
	}
	kv, err := h.st.Get(r.Context(), key, opts...)
	setRev(w, readRev)
	if err != nil {
		if errors.Is(err, audit.ErrNotFound) {
			msg := fmt.Sprintf("key %q not found", key)
			if rev > 0 {
				msg += fmt.Sprintf(" at revision %d", rev)
			}
			err = &apierror.Error{Code: api.CodeNotFound, Message: msg, Key: key}
		}
		h.fail(w, r, apierror.WithKey(err, key))
		return
	}
	if kv.Secret && !authz.SecureRequest(r) {
		h.fail(w, r, &apierror.Error{Code: api.CodeForbidden, Key: key,
			Message: fmt.Sprintf("key %q is secret: its value is served only over TLS or from a loopback address", key)})
		return
	}
	if raw {
		w.Header().Set("Content-Type", kv.ContentType)
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(kv.Value)
		return
	}
	apierror.WriteJSON(w, http.StatusOK, toAPIKV(kv))
}

// formMessage answers a PUT typed application/x-www-form-urlencoded: what
// curl -d and --data-binary send by default. -d also strips newlines, so
// such a value is refused rather than stored as something else.
const formMessage = "Content-Type application/x-www-form-urlencoded is not a value type; it is what curl sends " +
	"unless told otherwise, and curl -d also strips newlines: send the value with --data-binary and name its type, " +
	"e.g. curl -X PUT --data-binary @value.txt -H 'Content-Type: text/plain' " +
	"(or application/json, application/yaml, application/octet-stream)"

// PUT /v1/kv/{key...}[?if_mod_rev=N][&secret=true]
func (h *handler) put(w http.ResponseWriter, r *http.Request) {
	key, cas, err := keyWrite(r, "secret")
	if err == nil {
		// Checked again by the store; here so that it comes first.
		err = apierror.WithKey(keyspace.ValidateNew(key), key)
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	secret, err := boolParam(r.URL.Query(), "secret")
	if err != nil {
		h.fail(w, r, apierror.WithKey(err, key))
		return
	}
	if secret && !h.st.SecretsEnabled() {
		h.fail(w, r, writeops.NoMasterKey(key))
		return
	}
	ct := r.Header.Get("Content-Type")
	if mt, _, err := mime.ParseMediaType(ct); err == nil && mt == "application/x-www-form-urlencoded" {
		h.fail(w, r, &apierror.Error{Code: api.CodeBadContentType, Message: formMessage, Key: key})
		return
	}
	value, err := h.readValue(w, r)
	if err != nil {
		h.fail(w, r, apierror.WithKey(err, key))
		return
	}
	op := audit.Put(key, value, ct)
	op.Secret = secret
	rev, err := h.commitOne(r, cas(op))
	if err != nil {
		h.fail(w, r, apierror.WithKey(err, key))
		return
	}
	setRev(w, rev.Rev)
	apierror.WriteJSON(w, http.StatusOK, api.WriteResponse{Rev: rev.Rev, Changed: len(rev.Changes) > 0})
}

// keyWrite parses what PUT and DELETE of a key share: the key and an
// optional ?if_mod_rev=N, returned as a function that makes an op
// conditional on it (or leaves it as it is). more are the other query
// parameters the route takes.
func keyWrite(r *http.Request, more ...string) (string, func(audit.Op) audit.Op, error) {
	q := r.URL.Query()
	if err := checkParams(q, append([]string{"if_mod_rev"}, more...)...); err != nil {
		return "", nil, err
	}
	key, err := keyParam(r)
	if err != nil {
		return "", nil, err
	}
	ifModRev, cas, err := optRevParam(q, "if_mod_rev")
	if err != nil {
		return "", nil, err
	}
	return key, func(op audit.Op) audit.Op {
		if cas {
			return op.WithModRev(ifModRev)
		}
		return op
	}, nil
}

// commitOne commits op as one revision by the request's actor, with the
// reason from its header.
func (h *handler) commitOne(r *http.Request, op audit.Op) (audit.Revision, error) {
	return h.st.Commit(r.Context(), audit.Txn{
		Actor:  authz.ActorFrom(r.Context()),
		Reason: r.Header.Get(api.HeaderReason),
		Origin: writeops.OriginAPI,
		Ops:    []audit.Op{op},
	})
}

// readValue reads a PUT body of at most the store's MaxValueSize bytes. A
// larger body is refused without reading it all; a body cut short (the
// client went away) is an error, so nothing is committed.
func (h *handler) readValue(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	limit := h.st.MaxValueSize()
	if r.ContentLength > int64(limit) {
		return nil, writeops.ValueTooLarge(fmt.Sprintf("%d bytes", r.ContentLength), limit)
	}
	// One byte more than the limit, so that a value of exactly the limit
	// reads whole and a larger one is caught at limit+1 bytes.
	body := http.MaxBytesReader(w, r.Body, int64(limit)+1)
	value, err := writeops.ReadValue(body, r.ContentLength)
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe), err == nil && len(value) > limit:
		return nil, writeops.ValueTooLarge(fmt.Sprintf("more than %d bytes", limit), limit)
	case err != nil:
		h.opts.logger.Debug("request body cut short", "method", r.Method, "path", r.URL.Path, "err", err)
		return nil, bodyError(err, "could not read the whole request body: %v")
	}
	return value, nil
}

// DELETE /v1/kv/{key...}[?if_mod_rev=N]
func (h *handler) del(w http.ResponseWriter, r *http.Request) {
	key, cas, err := keyWrite(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	rev, err := h.commitOne(r, cas(audit.Delete(key)))
	if err != nil {
		h.fail(w, r, apierror.WithKey(err, key))
		return
	}
	setRev(w, rev.Rev)
	if err := writeops.Deleted(key, rev); err != nil {
		h.fail(w, r, err)
		return
	}
	apierror.WriteJSON(w, http.StatusOK, api.WriteResponse{Rev: rev.Rev, Changed: true})
}

// GET /v1/kv?prefix=P[&format=tree][&rev=N]
func (h *handler) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if err := checkParams(q, append([]string{"prefix", "format", "rev"}, fenceParams...)...); err != nil {
		h.fail(w, r, err)
		return
	}
	if err := h.awaitFence(r); err != nil {
		h.fail(w, r, err)
		return
	}
	prefix, err := keyspace.Prefix(q.Get("prefix"))
	if err != nil {
		h.fail(w, r, apierror.WithKey(err, q.Get("prefix")))
		return
	}
	format := q.Get("format")
	if format != "" && format != "list" && format != "tree" {
		h.fail(w, r, apierror.BadRequest("format=%q: want list or tree", format))
		return
	}
	rev, err := revParam(q, "rev")
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var opts []audit.ReadOption
	if rev > 0 {
		opts = append(opts, audit.AtRev(rev))
	}
	kvs, readRev, err := h.st.List(r.Context(), prefix, opts...)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	setRev(w, readRev)
	if !authz.SecureRequest(r) {
		// Secrets are listed, their values withheld.
		for i := range kvs {
			if kvs[i].Secret {
				if kvs[i], err = h.st.Withhold(kvs[i]); err != nil {
					h.fail(w, r, err)
					return
				}
			}
		}
	}
	if format == "tree" {
		apierror.WriteJSON(w, http.StatusOK, api.TreeResponse{Rev: readRev, Prefix: prefix, Tree: buildTree(prefix, kvs)})
		return
	}
	apierror.WriteJSON(w, http.StatusOK, api.ListResponse{Rev: readRev, Prefix: prefix, KVs: toAPIKVs(kvs)})
}

// normalType returns the bare, lower-case media type of a content type,
// with the YAML aliases folded into application/yaml.
func normalType(ct string) string {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		mt = strings.ToLower(strings.TrimSpace(ct))
	}
	switch mt {
	case "", "text/plain":
		return api.TypeText
	case "text/yaml", "application/x-yaml", "text/x-yaml":
		return api.TypeYAML
	}
	return mt
}

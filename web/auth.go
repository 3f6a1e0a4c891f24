package web

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/configd/configd/api"
	"github.com/configd/configd/audit"
)

// ErrUnauthenticated is wrapped by the errors of an Authenticator for a
// token configd does not accept.
var ErrUnauthenticated = errors.New("unauthenticated")

// Principal is a user of the UI when authentication is on: a token.
type Principal interface {
	// Name is the token's name, the actor of the rollbacks it makes.
	Name() string
	// Allows reports whether the token has perm (api.PermissionRead,
	// Write or Admin, or stronger) on target, a key or a canonical prefix
	// ("" is every key).
	Allows(perm, target string) bool
}

// Authenticator checks the tokens of the UI's users (see WithAuth). The
// server implements it over its token table, so that the UI accepts
// exactly the tokens the API accepts.
type Authenticator interface {
	// Authenticate returns the principal of a token's secret, or an error
	// wrapping ErrUnauthenticated when the token is unknown or revoked.
	Authenticate(secret string) (Principal, error)
	// Recheck returns p's principal as it is now, or an error wrapping
	// ErrUnauthenticated once its token is revoked. A session calls it on
	// every request.
	Recheck(p Principal) (Principal, error)
	// WithPrincipal returns ctx carrying p as the request's identity, for
	// the middleware (WithMiddleware) and handlers (WithWatch) that run
	// after the UI has authenticated a request.
	WithPrincipal(ctx context.Context, p Principal) context.Context
}

// WithAuth turns the UI's authentication on: every page and JSON route
// but the login page and the static files needs a session (POST
// {base}/login) or an "Authorization: Bearer" token that a accepts, and
// shows or changes only what the token's grants allow. Without it (the
// default) the UI is open, for configd without authentication.
func WithAuth(a Authenticator) Option { return func(o *options) { o.auth = a } }

// WithMiddleware adds middleware that runs once the UI knows who a request
// comes from (after WithAuth's check), such as per-identity rate limits.
func WithMiddleware(mw ...func(http.Handler) http.Handler) Option {
	return func(o *options) { o.middleware = append(o.middleware, mw...) }
}

// WithWatch serves h at GET {base}/api/watch for the live timeline, which
// then watches there instead of {api}/watch: under the UI's path the
// session cookie reaches it. h runs after the UI's authentication, with
// the principal in the request's context (Authenticator.WithPrincipal).
func WithWatch(h http.Handler) Option { return func(o *options) { o.watch = h } }

// identity is who a request comes from, as identify found it.
type identity struct {
	p Principal
	// session: p comes from the session cookie (else from a bearer token).
	session bool
	// err is why a bearer token was refused.
	err error
	// ended: the request carried a session cookie of a session that is
	// over (expired, logged out, or its token revoked).
	ended bool
}

type identityKey struct{}

func identityFrom(r *http.Request) *identity {
	id, _ := r.Context().Value(identityKey{}).(*identity)
	if id == nil {
		return &identity{}
	}
	return id
}

// principal returns the request's principal: nil with authentication off
// (or when the request has none).
func principal(r *http.Request) Principal { return identityFrom(r).p }

// identify finds who a request comes from: a bearer token when the
// request has an Authorization header, else the session cookie. It refuses
// nothing; requireUser does. With authentication off it does nothing.
func (u *ui) identify(next http.Handler) http.Handler {
	if u.opts.auth == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := &identity{}
		if h := r.Header.Get(api.HeaderAuthorization); h != "" {
			scheme, secret, ok := strings.Cut(strings.TrimSpace(h), " ")
			if !ok || !strings.EqualFold(scheme, "bearer") || strings.TrimSpace(secret) == "" {
				id.err = errors.New("send the token as 'Authorization: Bearer <token>'")
			} else if p, err := u.opts.auth.Authenticate(strings.TrimSpace(secret)); err != nil {
				id.err = err
			} else {
				id.p = p
			}
		} else if c, err := r.Cookie(sessionCookie); err == nil {
			if p, ok := u.sessions.Get(c.Value); !ok {
				id.ended = true
			} else if p, err = u.opts.auth.Recheck(p); err != nil {
				// The token was revoked: the session ends with it.
				u.endSession(r.Context(), c.Value)
				id.ended = true
			} else {
				id.p, id.session = p, true
			}
			// The cookie of an ended session is left in place (login
			// replaces it, logout clears it, it expires by itself): every
			// page reached with it then says why it asks for a login, not
			// only the first request to notice — often the timeline's live
			// watch, in the background.
		}
		ctx := context.WithValue(r.Context(), identityKey{}, id)
		if id.p != nil {
			ctx = u.opts.auth.WithPrincipal(ctx, id.p)
		}
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// requirePage lets a page request through when it has a principal (or
// authentication is off); a browser without one goes to the login page.
func (u *ui) requirePage(next http.Handler) http.Handler {
	return u.require(next, false)
}

// requireJSON is requirePage for the JSON routes: 401 with a JSON error.
func (u *ui) requireJSON(next http.Handler) http.Handler {
	return u.require(next, true)
}

func (u *ui) require(next http.Handler, asJSON bool) http.Handler {
	if u.opts.auth == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := identityFrom(r)
		switch {
		case id.p != nil:
			next.ServeHTTP(w, r)
		case asJSON || id.err != nil:
			u.unauthenticated(w, r, asJSON, id.err)
		default:
			q := url.Values{}
			if r.Method == http.MethodGet {
				q.Set("next", r.URL.RequestURI())
			}
			if id.ended {
				q.Set("ended", "1")
			}
			to := u.opts.base + "/login"
			if len(q) > 0 {
				to += "?" + q.Encode()
			}
			http.Redirect(w, r, to, http.StatusSeeOther)
		}
	})
}

// unauthenticated answers 401: a refused bearer token, or a JSON route
// without a session or token.
func (u *ui) unauthenticated(w http.ResponseWriter, r *http.Request, asJSON bool, err error) {
	msg := "authentication required: log in at " + u.opts.base + "/login, or send 'Authorization: Bearer <token>'"
	if err != nil {
		msg = "token refused: " + err.Error()
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="configd"`)
	if asJSON {
		writeJSON(w, r, http.StatusUnauthorized, map[string]jsonError{"error": {Code: api.CodeUnauthenticated, Message: msg}})
		return
	}
	u.render(w, r, http.StatusUnauthorized, "error", page{Title: "Not logged in", Bare: true,
		Data: errorView{Status: http.StatusUnauthorized, Heading: "Not logged in", Message: msg}})
}

// allows reports whether the request's principal has perm on target; with
// authentication off everything is allowed.
func (u *ui) allows(r *http.Request, perm, target string) bool {
	if u.opts.auth == nil {
		return true
	}
	p := principal(r)
	return p != nil && p.Allows(perm, target)
}

// readFilter returns the filter of the keys the request may read, or nil
// when it may read every key under the canonical prefix within (or
// authentication is off).
func (u *ui) readFilter(r *http.Request, within string) func(key string) bool {
	if u.opts.auth == nil {
		return nil
	}
	p := principal(r)
	if p == nil {
		return func(string) bool { return false }
	}
	if p.Allows(api.PermissionRead, within) {
		return nil
	}
	return func(key string) bool { return p.Allows(api.PermissionRead, key) }
}

// visibleOnly returns rev with only the changes may allows; the count of
// changes becomes that of the visible ones, so that the page says nothing
// of the others.
func visibleOnly(rev audit.Revision, may func(string) bool) audit.Revision {
	if may == nil {
		return rev
	}
	out := make([]audit.Change, 0, len(rev.Changes))
	for _, c := range rev.Changes {
		if may(c.Key) {
			out = append(out, c)
		}
	}
	rev.Changes, rev.NumChanges = out, len(out)
	var lc []audit.LayerChange
	for _, c := range rev.LayerChanges {
		if may(c.Key) {
			lc = append(lc, c)
		}
	}
	rev.LayerChanges = lc
	return rev
}

// --- Login and logout ----------------------------------------------------

// loginView is the Data of the login page.
type loginView struct {
	Next    string
	Message string
	// Error: Message says the login failed.
	Error bool
}

// safeNext returns where to go after logging in: next when it is a page
// of the UI, else the timeline.
func (u *ui) safeNext(next string) string {
	if strings.HasPrefix(next, u.opts.base+"/") && !strings.ContainsAny(next, "\\\r\n") &&
		!strings.HasPrefix(next, u.opts.base+"/login") {
		if p, err := url.Parse(next); err == nil && p.Scheme == "" && p.Host == "" {
			return next
		}
	}
	return u.opts.base + "/"
}

// GET {base}/login
func (u *ui) loginPage(w http.ResponseWriter, r *http.Request) {
	if u.opts.auth == nil {
		http.Redirect(w, r, u.opts.base+"/", http.StatusSeeOther)
		return
	}
	next := u.safeNext(r.URL.Query().Get("next"))
	if id := identityFrom(r); id.p != nil && id.session {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	v := loginView{Next: next}
	if r.URL.Query().Get("ended") != "" {
		v.Message = "Your session has ended (it expired, you logged out, or its token was revoked): log in again."
	}
	u.render(w, r, http.StatusOK, "login", page{Title: "Log in", Bare: true, Data: v})
}

// POST {base}/login (behind the CSRF check): token=SECRET&next=PATH
func (u *ui) login(w http.ResponseWriter, r *http.Request) {
	if u.opts.auth == nil {
		http.Redirect(w, r, u.opts.base+"/", http.StatusSeeOther)
		return
	}
	next := u.safeNext(r.PostFormValue("next"))
	secret := strings.TrimSpace(r.PostFormValue("token"))
	var p Principal
	err := errors.New("paste a token")
	if secret != "" {
		p, err = u.opts.auth.Authenticate(secret)
	}
	if err != nil {
		msg := "Paste a token to log in."
		if secret != "" {
			msg = "configd does not accept this token: it is unknown or has been revoked."
			u.opts.logger.Info("web: login refused", "remote", r.RemoteAddr)
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="configd"`)
		u.render(w, r, http.StatusUnauthorized, "login", page{Title: "Log in", Bare: true,
			Data: loginView{Next: next, Message: msg, Error: true}})
		return
	}
	// A new session id at every login, never one the browser already had.
	if c, err := r.Cookie(sessionCookie); err == nil {
		u.endSession(r.Context(), c.Value)
	}
	id, err := u.sessions.Create(r.Context(), p)
	if err != nil {
		u.opts.logger.Error("web: cannot open a session", "token", p.Name(), "err", err)
		u.render(w, r, http.StatusServiceUnavailable, "login", page{Title: "Log in", Bare: true,
			Data: loginView{Next: next, Error: true,
				Message: "configd cannot open a session now (its session table is unavailable): try again in a moment, or send the token as 'Authorization: Bearer <token>'."}})
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name:     sessionCookie,
		Value:    id,
		Path:     u.opts.base,
		MaxAge:   int(SessionMaxAge.Seconds()),
		HttpOnly: true,
		SameSite: http.SameSiteStrictMode,
		Secure:   r.TLS != nil,
	})
	u.newCSRFToken(w, r) // and a new CSRF token for the new session
	u.opts.logger.Info("web: login", "token", p.Name(), "remote", r.RemoteAddr)
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// POST {base}/logout (behind the CSRF check)
func (u *ui) logout(w http.ResponseWriter, r *http.Request) {
	if u.opts.auth == nil {
		http.Redirect(w, r, u.opts.base+"/", http.StatusSeeOther)
		return
	}
	if c, err := r.Cookie(sessionCookie); err == nil {
		u.endSession(r.Context(), c.Value)
	}
	u.clearSessionCookie(w, r)
	http.Redirect(w, r, u.opts.base+"/login", http.StatusSeeOther)
}

// endSession ends the session of id. A table that could not tell every
// replica has still ended it here: the error is logged, not shown.
func (u *ui) endSession(ctx context.Context, id string) {
	if err := u.sessions.End(ctx, id); err != nil {
		u.opts.logger.Warn("web: a session ended here but its table did not hear of it", "err", err)
	}
}

func (u *ui) clearSessionCookie(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{
		Name:     sessionCookie,
		Value:    "",
		Path:     u.opts.base,
		MaxAge:   -1,
		HttpOnly: true,
		SameSite: http.SameSiteStrictMode,
		Secure:   r.TLS != nil,
	})
}

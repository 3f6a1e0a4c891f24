package web

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"mime"
	"net/http"
)

// CSRF protection of POST routes, in two independent layers:
//
//  1. http.CrossOriginProtection refuses requests that a browser marks as
//     cross-site (Sec-Fetch-Site) or whose Origin names another host.
//  2. A double-submit token: every page sets a random per-session token
//     in an HttpOnly, SameSite=Strict cookie and puts the same token in
//     the page (body data-csrf). A POST must carry it in the X-CSRF-Token
//     header (the script's requests) or, from an HTML form (login,
//     logout), in the form field csrf; the two are compared in constant
//     time. Another site can neither read the page nor set the header
//     without a CORS preflight, which configd never grants, nor read the
//     token to put it in a form.
const (
	csrfCookie = "configd_csrf"
	csrfHeader = "X-CSRF-Token"
	csrfField  = "csrf"
	csrfBytes  = 32
	// maxFormBody caps the body of a form POST (login, logout).
	maxFormBody = 16 << 10
)

var crossOrigin = http.NewCrossOriginProtection()

// csrfToken returns the session's token, minting one (and setting its
// cookie) when the request carries none that is well formed.
func (u *ui) csrfToken(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(csrfCookie); err == nil && validToken(c.Value) {
		return c.Value
	}
	return u.newCSRFToken(w, r)
}

// newCSRFToken mints a token and sets its cookie; login calls it, so that
// a session never uses a token from before it.
func (u *ui) newCSRFToken(w http.ResponseWriter, r *http.Request) string {
	b := make([]byte, csrfBytes)
	_, _ = rand.Read(b) // never fails (crypto/rand panics rather)
	tok := base64.RawURLEncoding.EncodeToString(b)
	http.SetCookie(w, &http.Cookie{
		Name:     csrfCookie,
		Value:    tok,
		Path:     u.opts.base + "/",
		HttpOnly: true,
		SameSite: http.SameSiteStrictMode,
		Secure:   r.TLS != nil,
	})
	return tok
}

func validToken(s string) bool {
	b, err := base64.RawURLEncoding.DecodeString(s)
	return err == nil && len(b) == csrfBytes
}

// csrf refuses, with 403, a request that comes from another site or that
// lacks the session's token.
func (u *ui) csrf(next http.Handler) http.Handler {
	forbid := func(w http.ResponseWriter, r *http.Request, msg string) {
		writeJSON(w, r, http.StatusForbidden, map[string]jsonError{"error": {Code: "forbidden", Message: msg}})
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := crossOrigin.Check(r); err != nil {
			forbid(w, r, "cross-site request refused: "+err.Error())
			return
		}
		c, err := r.Cookie(csrfCookie)
		sent := r.Header.Get(csrfHeader)
		if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); sent == "" && mt == "application/x-www-form-urlencoded" {
			r.Body = http.MaxBytesReader(w, r.Body, maxFormBody)
			sent = r.PostFormValue(csrfField)
		}
		if err != nil || !validToken(c.Value) || sent == "" ||
			subtle.ConstantTimeCompare([]byte(c.Value), []byte(sent)) != 1 {
			forbid(w, r, "missing or invalid CSRF token: reload the page and try again")
			return
		}
		next.ServeHTTP(w, r)
	})
}

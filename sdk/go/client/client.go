// Package client is the former name of package apiclient, the Go client
// of configd's HTTP API. It shared its name with the RPC core's
// sdk/go/micro/client, which a service imports beside it.
//
// Deprecated: import github.com/configd/configd/sdk/go/apiclient. This
// package only forwards to it, so that code written against it still
// builds; it will be removed.
package client

import "github.com/configd/configd/sdk/go/apiclient"

// The types of package apiclient.
type (
	Client       = apiclient.Client
	Option       = apiclient.Option
	ReadOption   = apiclient.ReadOption
	WriteOption  = apiclient.WriteOption
	ScopeOption  = apiclient.ScopeOption
	HistoryQuery = apiclient.HistoryQuery
	BackupInfo   = apiclient.BackupInfo
	Error        = apiclient.Error
)

// DefaultUserAgent is apiclient.DefaultUserAgent.
const DefaultUserAgent = apiclient.DefaultUserAgent

// The functions of package apiclient.
var (
	New             = apiclient.New
	WithActor       = apiclient.WithActor
	WithHTTPClient  = apiclient.WithHTTPClient
	WithTLS         = apiclient.WithTLS
	WithTimeout     = apiclient.WithTimeout
	WithToken       = apiclient.WithToken
	WithUserAgent   = apiclient.WithUserAgent
	AtRev           = apiclient.AtRev
	Key             = apiclient.Key
	Prefix          = apiclient.Prefix
	IfModRev        = apiclient.IfModRev
	WithContentType = apiclient.WithContentType
	WithReason      = apiclient.WithReason
)

// The errors of package apiclient: the same values, so errors.Is matches
// either name.
var (
	ErrNotFound        = apiclient.ErrNotFound
	ErrRevisionGone    = apiclient.ErrRevisionGone
	ErrConflict        = apiclient.ErrConflict
	ErrBadKey          = apiclient.ErrBadKey
	ErrBadRequest      = apiclient.ErrBadRequest
	ErrBadRevision     = apiclient.ErrBadRevision
	ErrTooLarge        = apiclient.ErrTooLarge
	ErrBadContentType  = apiclient.ErrBadContentType
	ErrInvalidValue    = apiclient.ErrInvalidValue
	ErrUnauthenticated = apiclient.ErrUnauthenticated
	ErrForbidden       = apiclient.ErrForbidden
	ErrUnavailable     = apiclient.ErrUnavailable
	ErrInternal        = apiclient.ErrInternal
	ErrUnreachable     = apiclient.ErrUnreachable
	ErrTLS             = apiclient.ErrTLS
	ErrBackupCorrupt   = apiclient.ErrBackupCorrupt
)

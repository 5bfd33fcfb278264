package store

import (
	"encoding/json"
	"fmt"
)

// Error codes of the etcd v2 API. The numbers, messages and HTTP statuses are
// the wire contract (reference/etcd-v2.md §2.2): clients match on the code.
const (
	EcodeKeyNotFound      = 100
	EcodeTestFailed       = 101
	EcodeNotFile          = 102
	EcodeNoMorePeer       = 103
	EcodeNotDir           = 104
	EcodeNodeExist        = 105
	EcodeKeyIsPreserved   = 106
	EcodeRootROnly        = 107
	EcodeDirNotEmpty      = 108
	EcodeExistingPeerAddr = 109
	EcodeUnauthorized     = 110

	EcodeValueRequired        = 200
	EcodePrevValueRequired    = 201
	EcodeTTLNaN               = 202
	EcodeIndexNaN             = 203
	EcodeValueOrTTLRequired   = 204
	EcodeTimeoutNaN           = 205
	EcodeNameRequired         = 206
	EcodeIndexOrValueRequired = 207
	EcodeIndexValueMutex      = 208
	EcodeInvalidField         = 209
	EcodeInvalidForm          = 210
	EcodeRefreshValue         = 211
	EcodeRefreshTTLRequired   = 212

	EcodeRaftInternal = 300
	EcodeLeaderElect  = 301

	EcodeWatcherCleared     = 400
	EcodeEventIndexCleared  = 401
	EcodeStandbyInternal    = 402
	EcodeInvalidActiveSize  = 403
	EcodeInvalidRemoveDelay = 404
	EcodeClientInternal     = 500
)

var errorMessages = map[int]string{
	EcodeKeyNotFound:      "Key not found",
	EcodeTestFailed:       "Compare failed",
	EcodeNotFile:          "Not a file",
	EcodeNoMorePeer:       "Reached the max number of peers in the cluster",
	EcodeNotDir:           "Not a directory",
	EcodeNodeExist:        "Key already exists",
	EcodeKeyIsPreserved:   "The prefix of given key is a keyword in etcd",
	EcodeRootROnly:        "Root is read only",
	EcodeDirNotEmpty:      "Directory not empty",
	EcodeExistingPeerAddr: "Peer address has existed",
	EcodeUnauthorized:     "The request requires user authentication",

	EcodeValueRequired:        "Value is Required in POST form",
	EcodePrevValueRequired:    "PrevValue is Required in POST form",
	EcodeTTLNaN:               "The given TTL in POST form is not a number",
	EcodeIndexNaN:             "The given index in POST form is not a number",
	EcodeValueOrTTLRequired:   "Value or TTL is required in POST form",
	EcodeTimeoutNaN:           "The given timeout in POST form is not a number",
	EcodeNameRequired:         "Name is required in POST form",
	EcodeIndexOrValueRequired: "Index or value is required",
	EcodeIndexValueMutex:      "Index and value cannot both be specified",
	EcodeInvalidField:         "Invalid field",
	EcodeInvalidForm:          "Invalid POST form",
	EcodeRefreshValue:         "Value provided on refresh",
	EcodeRefreshTTLRequired:   "A TTL must be provided on refresh",

	EcodeRaftInternal: "Raft Internal Error",
	EcodeLeaderElect:  "During Leader Election",

	EcodeWatcherCleared:     "watcher is cleared due to etcd recovery",
	EcodeEventIndexCleared:  "The event in requested index is outdated and cleared",
	EcodeStandbyInternal:    "Standby Internal Error",
	EcodeInvalidActiveSize:  "Invalid active size",
	EcodeInvalidRemoveDelay: "Standby remove delay",
	EcodeClientInternal:     "Client Internal Error",
}

// Error is the one etcd v2 error type. Its JSON form is the body of every
// failed /v2/keys response: {"errorCode":..,"message":..,"cause":..,"index":..}.
type Error struct {
	ErrorCode int    `json:"errorCode"`
	Message   string `json:"message"`
	Cause     string `json:"cause,omitempty"`
	Index     uint64 `json:"index"`
}

// NewError returns the error for code with the table's message.
func NewError(code int, cause string, index uint64) *Error {
	return &Error{ErrorCode: code, Message: errorMessages[code], Cause: cause, Index: index}
}

// Error implements error.
func (e *Error) Error() string {
	if e.Cause == "" {
		return e.Message
	}
	return e.Message + " (" + e.Cause + ")"
}

// StatusCode is the HTTP status etcd 2.x sends for the error (§1.2.7).
// The numbers are literal so that store stays free of net/http.
func (e *Error) StatusCode() int {
	switch e.ErrorCode {
	case EcodeKeyNotFound:
		return 404
	case EcodeNotFile, EcodeDirNotEmpty:
		return 403
	case EcodeTestFailed, EcodeNodeExist:
		return 412
	case EcodeUnauthorized:
		return 401
	}
	if e.ErrorCode/100 == 3 {
		return 500
	}
	return 400
}

// MarshalBody is the error's JSON body with etcd's trailing newline.
func (e *Error) MarshalBody() []byte {
	b, err := json.Marshal(e)
	if err != nil { // cannot happen: all fields are plain values
		panic(fmt.Sprintf("store: marshal error: %v", err))
	}
	return append(b, '\n')
}

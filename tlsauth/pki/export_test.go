package pki

// Internals the external tests (package pki_test) look at.
var (
	DevHosts     = devHosts
	LeafUsable   = leafUsable
	ColonHex     = colonHex
	ReadCertFile = readCertFile
	ReadKeyFile  = readKeyFile
)

const (
	DevCAValidity   = devCAValidity
	DevLeafValidity = devLeafValidity
	DevRenewBefore  = devRenewBefore
	KeyFileMode     = keyFileMode
)

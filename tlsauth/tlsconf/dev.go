package tlsconf

import (
	"github.com/cairnkv/cairn/tlsauth/pki"
)

// DevFiles returns the material files of the node of a development PKI
// (made by EnsureDev or EnsureNodeCert).
func DevFiles(p pki.Dev) Files {
	return Files{CAFile: p.CAFile, CertFile: p.CertFile, KeyFile: p.KeyFile}
}

// DevClientFiles returns the material files of the root client of a
// development PKI made by EnsureDev.
func DevClientFiles(p pki.Dev) Files {
	return Files{CAFile: p.CAFile, CertFile: p.ClientCertFile, KeyFile: p.ClientKeyFile}
}

package tlsconf

import (
	"crypto/x509"
	"fmt"
	"net"
	"slices"
)

// CheckServing checks a certificate a port will serve as its own, for the
// advertised address addr (host:port). A certificate whose extended key
// usage excludes serverAuth (a client certificate) is an error: every
// handshake would fail. An addr whose host the certificate does not name is
// a warning: clients that dial that address refuse the certificate unless
// they dial another name it has.
func CheckServing(cert *x509.Certificate, addr string) (warning string, err error) {
	if len(cert.ExtKeyUsage) > 0 && !slices.Contains(cert.ExtKeyUsage, x509.ExtKeyUsageServerAuth) && !slices.Contains(cert.ExtKeyUsage, x509.ExtKeyUsageAny) {
		return "", fmt.Errorf("tlsauth: the serving certificate (%s) is for clients only: its extended key usage lacks serverAuth, so every handshake would fail; serve a node certificate (cairn cert issue --node NAME, or openssl with extendedKeyUsage = serverAuth, clientAuth)", describeCert(cert))
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return "", nil
	}
	if err := cert.VerifyHostname(host); err != nil {
		return fmt.Sprintf("the serving certificate (%s) does not name the advertised host %s (it names %v %v); clients that dial %s will refuse it", describeCert(cert), host, cert.DNSNames, cert.IPAddresses, addr), nil
	}
	return "", nil
}

func describeCert(c *x509.Certificate) string {
	if len(c.URIs) > 0 {
		return c.URIs[0].String()
	}
	return "CN=" + c.Subject.CommonName
}

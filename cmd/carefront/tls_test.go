package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"testing"
	"time"
)

// selfSigned makes a certificate for 127.0.0.1 with the given key.
func selfSigned(t *testing.T, key crypto.Signer) tls.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TLS 1.2 handshakes succeed with ECDHE AEAD suites only; CBC and static-RSA
// suites, which Go's defaults still offer, are refused.
func TestServerTLSOffersOnlyAEADSuitesOnTLS12(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	for _, tc := range []struct {
		name   string
		key    crypto.Signer
		good   []uint16
		refuse []uint16
	}{
		{"ecdsa", ec,
			[]uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256},
			[]uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA}},
		{"rsa", rk,
			[]uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256},
			[]uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA, tls.TLS_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_RSA_WITH_AES_128_CBC_SHA}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := serverTLS(selfSigned(t, tc.key))
			ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					go func() { c.(*tls.Conn).Handshake(); c.Close() }()
				}
			}()
			dial := func(suite uint16, version uint16) (uint16, error) {
				c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{
					InsecureSkipVerify: true, MinVersion: version, MaxVersion: version, CipherSuites: []uint16{suite},
				})
				if err != nil {
					return 0, err
				}
				defer c.Close()
				return c.ConnectionState().CipherSuite, nil
			}
			for _, s := range tc.good {
				if got, err := dial(s, tls.VersionTLS12); err != nil || got != s {
					t.Errorf("TLS 1.2 with %s: %v (got %s)", tls.CipherSuiteName(s), err, tls.CipherSuiteName(got))
				}
			}
			for _, s := range tc.refuse {
				if _, err := dial(s, tls.VersionTLS12); err == nil {
					t.Errorf("TLS 1.2 with %s was accepted", tls.CipherSuiteName(s))
				}
			}
			if _, err := dial(tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, tls.VersionTLS11); err == nil {
				t.Error("TLS 1.1 was accepted")
			}
			if _, err := dial(tls.TLS_AES_128_GCM_SHA256, tls.VersionTLS13); err != nil {
				t.Errorf("TLS 1.3: %v", err)
			}
		})
	}
}

package web

import (
	"net"
	"net/http"
	"net/netip"
	"strings"

	"carefront/internal/telemetry"
)

// clientAddr is the address of the client that made the request: the TCP
// peer, or, when the peer is one of the trusted proxies, the address the
// proxies say they were asked by. It is the one address used for rate
// limits, audit records and the session list.
func clientAddr(r *http.Request) string {
	if a := telemetry.ClientAddr(r.Context()); a != "" {
		return a
	}
	return peerAddr(r)
}

func peerAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// withClientAddr records the request's client address in its context.
func (s *Server) withClientAddr(r *http.Request) *http.Request {
	a := resolveClient(peerAddr(r), r.Header.Values("X-Forwarded-For"), s.opts.TrustedProxies)
	return r.WithContext(telemetry.WithClientAddr(r.Context(), a))
}

// resolveClient applies --trusted-proxies: X-Forwarded-For is read only
// when the peer is a trusted proxy, and then from the right, each hop a
// trusted proxy added, to the first address no trusted proxy has: the
// client. Everything left of it could have been written by the client, so
// it is never believed. A hop that is not an address ends the walk at the
// proxy that passed it on; if every hop is a trusted proxy, the leftmost
// is the client.
func resolveClient(peer string, xff []string, trusted []netip.Prefix) string {
	p, err := netip.ParseAddr(peer)
	if err != nil || !isTrusted(p, trusted) {
		return peer
	}
	var hops []string
	for _, h := range xff {
		hops = append(hops, strings.Split(h, ",")...)
	}
	client := p
	for i := len(hops) - 1; i >= 0; i-- {
		a, ok := hopAddr(strings.TrimSpace(hops[i]))
		if !ok {
			break
		}
		client = a.Unmap()
		if !isTrusted(client, trusted) {
			break
		}
	}
	return client.String()
}

// hopAddr reads one X-Forwarded-For hop: an address, or an address with a
// port as some balancers write it (1.2.3.4:5678, [2001:db8::1]:5678).
func hopAddr(h string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(h); err == nil {
		return a, true
	}
	if ap, err := netip.ParseAddrPort(h); err == nil {
		return ap.Addr(), true
	}
	return netip.Addr{}, false
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	a = a.Unmap()
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

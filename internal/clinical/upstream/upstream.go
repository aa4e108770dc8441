// Package upstream is the clinical data source for a health system that
// already has an EHR: it reads from the EHR's FHIR R4 API. It authenticates
// with SMART Backend Services (client_credentials with a private_key_jwt
// assertion signed ES384 or RS384) or a static bearer token, bounds every
// call with a timeout, retries idempotent reads with backoff, and stops
// calling a failing server for a while (circuit breaker). Every failure to
// get an answer is an apperr.Unavailable error, so a page can show what it
// has with a notice instead of failing.
package upstream

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"carefront/internal/apperr"
	"carefront/internal/fhir"
)

// Options configure a Client.
type Options struct {
	// BaseURL is the EHR's FHIR R4 base, e.g. https://ehr.example/fhir/R4.
	BaseURL string
	// Token is a static bearer token; Backend takes precedence.
	Token string
	// Backend, when set, gets tokens by SMART Backend Services.
	Backend *Backend
	// Timeout bounds each HTTP call (default 10s).
	Timeout time.Duration
	// Retries is how many times a failed read is tried again (default 2).
	Retries int
	// Backoff is the first retry's wait, doubled each time (default 200ms).
	Backoff time.Duration
	// BreakAfter consecutive failures open the circuit for BreakFor
	// (defaults 5 and 30s).
	BreakAfter int
	BreakFor   time.Duration
	// HTTP is the transport; nil uses a client with sane limits.
	HTTP *http.Client
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Client reads clinical data from an upstream FHIR server. It implements
// clinical.Source.
type Client struct {
	base *url.URL
	opts Options
	http *http.Client
	now  func() time.Time

	mu       sync.Mutex
	failures int
	openTill time.Time
}

// maxBody bounds an upstream response.
const maxBody = 64 << 20

// New checks opts and returns a client.
func New(opts Options) (*Client, error) {
	u, err := url.Parse(strings.TrimSuffix(opts.BaseURL, "/"))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, errors.New("upstream FHIR URL must be an http(s) URL like https://ehr.example/fhir/R4")
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.Retries < 0 {
		opts.Retries = 0
	} else if opts.Retries == 0 {
		opts.Retries = 2
	}
	if opts.Backoff <= 0 {
		opts.Backoff = 200 * time.Millisecond
	}
	if opts.BreakAfter <= 0 {
		opts.BreakAfter = 5
	}
	if opts.BreakFor <= 0 {
		opts.BreakFor = 30 * time.Second
	}
	c := &Client{base: u, opts: opts, http: opts.HTTP, now: opts.Now}
	if c.http == nil {
		c.http = &http.Client{Transport: &http.Transport{
			Proxy: http.ProxyFromEnvironment, MaxIdleConnsPerHost: 16, IdleConnTimeout: 90 * time.Second,
			TLSHandshakeTimeout: 10 * time.Second, ResponseHeaderTimeout: opts.Timeout,
		}}
	}
	if c.now == nil {
		c.now = time.Now
	}
	if opts.Backend != nil {
		if err := opts.Backend.init(c); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// unavailable wraps cause as Unavailable. A *url.Error names the request's
// URL, whose query holds a patient id and codes: only the operation and
// the underlying error are kept, so the logs that show the cause carry no
// PHI.
func unavailable(cause error) error {
	var ue *url.Error
	if errors.As(cause, &ue) {
		cause = fmt.Errorf("%s upstream: %w", ue.Op, ue.Err)
	}
	return apperr.Wrap(cause, apperr.Unavailable, "the health system's records cannot be reached right now")
}

// Read returns TYPE/id from the upstream server.
func (c *Client) Read(ctx context.Context, typ, id string) (*fhir.Resource, error) {
	if !fhir.KnownType(typ) || !fhir.ValidID(id) {
		return nil, apperr.New(apperr.Invalid, "%s/%s is not a valid reference", typ, id)
	}
	body, err := c.get(ctx, c.base.String()+"/"+typ+"/"+id)
	if err != nil {
		return nil, err
	}
	r, err := fhir.Parse(body)
	if err != nil {
		return nil, unavailable(fmt.Errorf("read %s: upstream sent an invalid resource: %w", typ, err))
	}
	if r.Type != typ || r.ID != id {
		return nil, unavailable(fmt.Errorf("read %s: upstream sent a different resource", typ))
	}
	return r, nil
}

// Search runs q upstream. The compartment limit becomes a patient
// parameter, so the upstream server narrows the search itself (the
// gateway checks every result again). Paging follows the server's own next
// links, carried in the cursor.
func (c *Client) Search(ctx context.Context, q *fhir.Query) (*fhir.Page, error) {
	var u string
	if q.Cursor != "" {
		next, err := c.decodeCursor(q.Cursor)
		if err != nil {
			return nil, err
		}
		u = next
	} else {
		vals, err := url.ParseQuery(q.Encode(""))
		if err != nil {
			return nil, err
		}
		if q.Compartment != "" {
			switch {
			case q.Type == "Patient":
				vals.Add("_id", q.Compartment)
			case q.Type == "Schedule":
				vals.Add("actor", "Patient/"+q.Compartment)
			default:
				if _, ok := fhir.LookupParam(q.Type, "patient"); !ok {
					return nil, apperr.New(apperr.Invalid, "%s cannot be searched for one patient", q.Type)
				}
				vals.Add("patient", q.Compartment)
			}
		}
		u = c.base.String() + "/" + q.Type + "?" + vals.Encode()
	}
	body, err := c.get(ctx, u)
	if err != nil {
		return nil, err
	}
	return c.page(q.Type, body)
}

func (c *Client) page(typ string, body []byte) (*fhir.Page, error) {
	b, err := fhir.ParseBundle(body)
	if err != nil || b.Type != "searchset" {
		return nil, unavailable(fmt.Errorf("search %s: upstream sent no searchset Bundle", typ))
	}
	page := &fhir.Page{Total: b.Total}
	for _, e := range b.Entry {
		if e == nil || len(e.Resource) == 0 {
			continue
		}
		r, err := fhir.Parse(e.Resource)
		if err != nil {
			return nil, unavailable(fmt.Errorf("search %s: upstream sent an invalid resource: %w", typ, err))
		}
		if r.Type == "OperationOutcome" {
			continue // warnings about the search itself
		}
		if e.Search != nil && e.Search.Mode == "include" {
			page.Included = append(page.Included, r)
		} else {
			page.Matches = append(page.Matches, r)
		}
	}
	for _, l := range b.Link {
		if l.Relation == "next" && l.URL != "" {
			if _, err := c.checkURL(l.URL); err == nil {
				page.Next = base64.RawURLEncoding.EncodeToString([]byte(l.URL))
			}
		}
	}
	return page, nil
}

// decodeCursor returns the next-page URL a cursor carries, refusing any
// that does not lie under the upstream base.
func (c *Client) decodeCursor(s string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return "", apperr.New(apperr.Invalid, "_cursor is not a paging position this server made; start the search again")
	}
	return c.checkURL(string(b))
}

func (c *Client) checkURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != c.base.Scheme || u.Host != c.base.Host || !strings.HasPrefix(u.Path, c.base.Path+"/") {
		return "", apperr.New(apperr.Invalid, "_cursor is not a paging position this server made; start the search again")
	}
	return u.String(), nil
}

// get fetches u with retries, the circuit breaker and authentication.
func (c *Client) get(ctx context.Context, u string) ([]byte, error) {
	if err := c.allow(); err != nil {
		return nil, err
	}
	var lastErr error
	wait := c.opts.Backoff
	for attempt := 0; attempt <= c.opts.Retries; attempt++ {
		if attempt > 0 {
			// Full jitter keeps many instances from retrying in step.
			d := wait/2 + rand.N(wait/2+1)
			var ra *retryAfter
			if errors.As(lastErr, &ra) && ra.d > d {
				d = min(ra.d, 5*time.Second)
			}
			select {
			case <-time.After(d):
			case <-ctx.Done():
				c.record(false)
				return nil, unavailable(ctx.Err())
			}
			wait *= 2
		}
		body, err := c.once(ctx, u)
		if err == nil {
			c.record(true)
			return body, nil
		}
		var final *finalError
		if errors.As(err, &final) {
			c.record(true) // the server answered; it is up
			return nil, final.err
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
	}
	c.record(false)
	return nil, unavailable(lastErr)
}

// finalError is an answer that retrying will not change (404, 400, ...).
type finalError struct{ err error }

func (e *finalError) Error() string { return e.err.Error() }

// retryAfter is a 429 or 503 with a Retry-After the server asked for.
type retryAfter struct {
	d      time.Duration
	status int
}

func (e *retryAfter) Error() string { return "upstream answered " + strconv.Itoa(e.status) }

func (c *Client) once(ctx context.Context, u string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	status, body, hdr, err := c.do(ctx, u, false)
	if err == nil && status == http.StatusUnauthorized && c.opts.Backend != nil {
		// The token may have been revoked early: get a new one, once.
		status, body, hdr, err = c.do(ctx, u, true)
	}
	if err != nil {
		return nil, err
	}
	switch {
	case status == http.StatusOK:
		return body, nil
	case status == http.StatusNotFound:
		return nil, &finalError{apperr.New(apperr.NotFound, "the record is not known to the health system")}
	case status == http.StatusGone:
		return nil, &finalError{apperr.New(apperr.Gone, "the record was deleted at the health system")}
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return nil, &finalError{unavailable(fmt.Errorf("upstream refused carefront's credentials (%d)", status))}
	case status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable:
		secs, _ := strconv.Atoi(hdr.Get("Retry-After"))
		return nil, &retryAfter{d: time.Duration(secs) * time.Second, status: status}
	case status >= 500:
		return nil, fmt.Errorf("upstream answered %d", status)
	default:
		// The upstream's diagnostics may echo request values: not shown.
		return nil, &finalError{apperr.New(apperr.Invalid, "the health system rejected the request (%d)", status)}
	}
}

func (c *Client) do(ctx context.Context, u string, freshToken bool) (int, []byte, http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, nil, nil, err
	}
	req.Header.Set("Accept", "application/fhir+json")
	switch {
	case c.opts.Backend != nil:
		tok, err := c.opts.Backend.token(ctx, freshToken)
		if err != nil {
			return 0, nil, nil, err
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	case c.opts.Token != "":
		req.Header.Set("Authorization", "Bearer "+c.opts.Token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return 0, nil, nil, err
	}
	if len(body) > maxBody {
		return 0, nil, nil, &finalError{unavailable(errors.New("upstream response too large"))}
	}
	return resp.StatusCode, bytes.TrimSpace(body), resp.Header, nil
}

// allow fails fast while the circuit is open; after BreakFor one call goes
// through to test the server.
func (c *Client) allow() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failures >= c.opts.BreakAfter && c.now().Before(c.openTill) {
		return unavailable(errors.New("circuit open after repeated upstream failures"))
	}
	if c.failures >= c.opts.BreakAfter {
		c.openTill = c.now().Add(c.opts.BreakFor) // half-open: this call tests it
	}
	return nil
}

func (c *Client) record(ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ok {
		c.failures = 0
		return
	}
	c.failures++
	if c.failures >= c.opts.BreakAfter {
		c.openTill = c.now().Add(c.opts.BreakFor)
	}
}

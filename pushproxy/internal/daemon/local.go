package daemon

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Doer sends one HTTP request; *http.Client is one.
type Doer interface {
	Do(*http.Request) (*http.Response, error)
}

// localDoer delivers requests aimed at the proxy's own push endpoints
// (<PublicURL>/push/…) straight to the push service's handler, and every
// other request through next. The proxy's own endpoints are the common
// case on a disconnected site, and PublicURL usually names nginx, which
// the proxy node may not be able to reach, or would only reach by a
// needless round trip.
type localDoer struct {
	origin  string // scheme://host:port of PublicURL
	handler http.Handler
	next    Doer
}

// maxLocalResponse bounds what the in-process push service may answer;
// its answers are a few hundred bytes.
const maxLocalResponse = 64 << 10

func newLocalDoer(public *url.URL, handler http.Handler, next Doer) *localDoer {
	return &localDoer{origin: origin(public), handler: handler, next: next}
}

func (d *localDoer) Do(req *http.Request) (*http.Response, error) {
	if origin(req.URL) != d.origin {
		return d.next.Do(req)
	}
	r := req.Clone(req.Context())
	r.RequestURI = req.URL.RequestURI()
	r.RemoteAddr = "127.0.0.1:0" // in-process: the proxy itself
	if r.Body == nil {
		r.Body = http.NoBody
	}
	w := &recorder{header: http.Header{}}
	d.handler.ServeHTTP(w, r)
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return &http.Response{
		Status:        strconv.Itoa(w.code) + " " + http.StatusText(w.code),
		StatusCode:    w.code,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        w.header,
		Body:          io.NopCloser(bytes.NewReader(w.body.Bytes())),
		ContentLength: int64(w.body.Len()),
		Request:       req,
	}, nil
}

// origin returns scheme://host:port with the default port made explicit,
// so https://x and https://x:443 compare equal.
func origin(u *url.URL) string {
	scheme := strings.ToLower(u.Scheme)
	host := strings.ToLower(u.Hostname())
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[scheme]
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}

// recorder is the ResponseWriter of an in-process request.
type recorder struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (w *recorder) Header() http.Header { return w.header }

func (w *recorder) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
}

func (w *recorder) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	if w.body.Len()+len(p) > maxLocalResponse {
		return 0, fmt.Errorf("daemon: in-process response over %d bytes", maxLocalResponse)
	}
	return w.body.Write(p)
}

// newPushClient is the client for push services other than our own: a
// bounded timeout, the system trust store (where the installer puts the
// site CA), no proxy from the environment (a disconnected site has no
// egress proxy, and a stray HTTPS_PROXY must not leak endpoints), and no
// redirects (UnifiedPush: a push endpoint must not redirect).
func newPushClient(timeout time.Duration, roots *x509.CertPool) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: roots}
	tr.MaxIdleConnsPerHost = 16
	tr.ResponseHeaderTimeout = timeout
	return &http.Client{
		Transport: tr,
		Timeout:   timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

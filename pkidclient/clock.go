package pkidclient

import (
	"context"
	"crypto/x509"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// ClockSlack is how far a certificate's notBefore may lie after this
// machine's clock before it counts as signed on a CA clock running ahead:
// pkid dates certificates a minute back, and clocks a few minutes apart
// are not worth a renewal.
const ClockSlack = 5 * time.Minute

// ClockRecheck is how often, by default, a certificate not valid yet
// makes its renewal loop ask the CA's clock again.
const ClockRecheck = time.Minute

// NotYetValid is how far leaf's validity starts after now, beyond
// ClockSlack; 0 for a certificate valid now or nearly.
//
// Such a certificate was signed while the CA's clock ran ahead of this
// one. Every peer with a right clock refuses it until its notBefore, so
// it is renewed as soon as the CA's clock agrees with this one again (a
// renewal while it does not would bring another such certificate); until
// then the loop asks the CA's clock every ClockRecheck, which costs one
// GET and no certificate.
func NotYetValid(now time.Time, leaf *x509.Certificate) time.Duration {
	if d := leaf.NotBefore.Sub(now); d > ClockSlack {
		return d
	}
	return 0
}

// CAClockAhead asks the CA for its time, the Date of its GET /healthz
// answer, and says how far it is ahead of this machine's clock (negative:
// behind), to the second.
func CAClockAhead(ctx context.Context, hc *http.Client, caURL string) (time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(caURL, "/")+"/healthz", nil)
	if err != nil {
		return 0, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, fmt.Errorf("ask the CA's clock: %w", ExplainTLS(err))
	}
	resp.Body.Close()
	at, err := http.ParseTime(resp.Header.Get("Date"))
	if err != nil {
		return 0, fmt.Errorf("ask the CA's clock: its answer has no Date: %w", err)
	}
	return at.Sub(time.Now().Truncate(time.Second)), nil
}

// CAClockAgrees reports whether a certificate not valid yet (NotYetValid)
// is worth renewing now: the CA's clock is no more than ClockSlack ahead
// of this one. Otherwise it says why not, for the log.
func CAClockAgrees(ctx context.Context, hc *http.Client, caURL string) (bool, string) {
	ahead, err := CAClockAhead(ctx, hc, caURL)
	if err != nil {
		return false, err.Error()
	}
	if ahead > ClockSlack {
		return false, fmt.Sprintf("the CA's clock is %s ahead of this one: a certificate renewed now would not be valid yet either (one of the two clocks is wrong)", ahead)
	}
	return true, ""
}

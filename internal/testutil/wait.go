package testutil

import "time"

// DutyWait bounds a test's wait for work the server does on its own: a
// timer duty (server certificate or OCSP responder renewal, CRL refresh,
// pruning) after the test moves the clock, or a request finishing after
// its client left. Each takes milliseconds on an idle machine, but the
// suite's packages run side by side, and on a loaded 2-core machine a
// commit's fsync has been seen to stall long enough to miss a 5-second
// wait. The wait ends as soon as the work is seen, so a generous bound
// costs nothing when tests pass. A bound the contract itself names (a
// revocation on the CRL and OCSP within 2 seconds) is asserted as named,
// not with this.
const DutyWait = 30 * time.Second

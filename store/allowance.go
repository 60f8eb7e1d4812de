package store

import (
	"encoding/binary"
	"time"
)

// gcra is the generic cell rate algorithm behind TakeAllowance. A key's
// state is one time, its "theoretical arrival time" (tat): the moment its
// allowance would be whole again, zero for a whole one. A certificate
// moves it per/certificates later, and it may run at most per ahead of
// now, so a key gets certificates at once and then one every
// per/certificates. gcra returns the key's next tat if one is spent now,
// or how long until one may be.
func gcra(tat, now time.Time, certificates int, per time.Duration) (time.Time, time.Duration) {
	if certificates <= 0 || per <= 0 {
		return tat, 0
	}
	// Takes leave tat at most per ahead of their clock. One further ahead
	// was left while the clock ran ahead, since stepped back, and is
	// forgotten: kept, it would refuse every request until this clock
	// caught up with that one. The key gets one burst more than its due.
	if tat.Before(now) || tat.After(now.Add(per)) {
		tat = now
	}
	next := tat.Add(per / time.Duration(certificates))
	if wait := next.Sub(now) - per; wait > 0 {
		return tat, wait
	}
	return next, 0
}

// encodeTAT and decodeTAT store a tat as 8 bytes of big-endian Unix
// nanoseconds; a missing or short value is a whole allowance.
func encodeTAT(t time.Time) []byte { return binary.BigEndian.AppendUint64(nil, uint64(t.UnixNano())) }

func decodeTAT(v []byte) time.Time {
	if len(v) != 8 {
		return time.Time{}
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(v)))
}

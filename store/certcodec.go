package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// certFormatDER marks a certificate record stored as its fields in JSON
// followed by the raw DER. Whole-JSON records carry the DER in base64,
// which made a P-256 leaf's record ~1,380 bytes: two to a 4 KB page, a
// third of each page left empty. Without the base64 a record is ~1,130
// bytes and three fit, so the file and the pages a commit writes shrink
// by a third. Records written as whole JSON (their first byte is '{') are
// still read.
const certFormatDER = 0x01

// encodeCert is a record's stored form: certFormatDER, the length of the
// JSON as a uvarint, the JSON of every field but the DER, the DER.
func encodeCert(rec *CertRecord) ([]byte, error) {
	meta := *rec
	meta.DER = nil
	j, err := json.Marshal(&meta)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, 1+binary.MaxVarintLen64+len(j)+len(rec.DER))
	out = append(out, certFormatDER)
	out = binary.AppendUvarint(out, uint64(len(j)))
	out = append(out, j...)
	return append(out, rec.DER...), nil
}

// decodeCert reads either stored form. v may be bbolt's memory, valid only
// in its transaction: nothing of it is kept.
func decodeCert(v []byte) (*CertRecord, error) {
	var rec CertRecord
	switch {
	case len(v) > 0 && v[0] == '{':
		if err := json.Unmarshal(v, &rec); err != nil {
			return nil, err
		}
		return &rec, nil
	case len(v) > 0 && v[0] == certFormatDER:
		n, k := binary.Uvarint(v[1:])
		if k <= 0 || n > uint64(len(v)-1-k) {
			return nil, errors.New("certificate record: bad length of its fields")
		}
		body := v[1+k:]
		if err := json.Unmarshal(body[:n], &rec); err != nil {
			return nil, fmt.Errorf("certificate record fields: %w", err)
		}
		rec.DER = bytes.Clone(body[n:])
		return &rec, nil
	}
	return nil, fmt.Errorf("certificate record of unknown format (first byte %#x)", firstByte(v))
}

func firstByte(v []byte) int {
	if len(v) == 0 {
		return -1
	}
	return int(v[0])
}

// getCert reads the record stored under seq.
func getCert(certs *bolt.Bucket, seq []byte) (*CertRecord, error) {
	return decodeCertAt(seq, certs.Get(seq))
}

// decodeCertAt decodes v, the value stored under seq (nil: no record),
// for a caller that already holds it.
func decodeCertAt(seq, v []byte) (*CertRecord, error) {
	if v == nil {
		return nil, ErrNotFound
	}
	rec, err := decodeCert(v)
	if err != nil {
		return nil, fmt.Errorf("decode %x: %w", seq, err)
	}
	return rec, nil
}

package policies

import (
	"crypto/x509/pkix"
	"encoding/asn1"
)

func pkixExt(oid ...int) pkix.Extension {
	return pkix.Extension{Id: asn1.ObjectIdentifier(oid), Value: []byte{0x30, 0x00}}
}

package api

import (
	"bytes"
	"encoding/json"
	"slices"
	"sync/atomic"
	"time"

	"pkid/ca"
)

// issueAnswer is IssueResponse as the server writes it. The chain is the
// same in every answer under one intermediate, so it goes out as JSON
// encoded once (chainJSON) instead of being re-encoded, escapes and all,
// for every certificate.
type issueAnswer struct {
	Serial      string          `json:"serial"`
	Certificate string          `json:"certificate"`
	Chain       json.RawMessage `json:"chain"`
	NotBefore   time.Time       `json:"not_before"`
	NotAfter    time.Time       `json:"not_after"`
	PrivateKey  string          `json:"private_key,omitempty"`
}

func (s *Server) issueResponse(iss *ca.Issued, keyPEM []byte) issueAnswer {
	return issueAnswer{Serial: iss.Record.Serial, Certificate: string(iss.PEM), Chain: s.chainJS.get(iss.Chain),
		NotBefore: iss.Record.NotBefore, NotAfter: iss.Record.NotAfter, PrivateKey: string(keyPEM)}
}

// chainJSON keeps the JSON of the chain it encoded last, for as long as
// answers carry that chain.
type chainJSON struct {
	last atomic.Pointer[encodedChain]
}

type encodedChain struct {
	pems [][]byte
	json json.RawMessage
}

func (c *chainJSON) get(chain [][]byte) json.RawMessage {
	if e := c.last.Load(); e != nil && slices.EqualFunc(e.pems, chain, bytes.Equal) {
		return e.json
	}
	var strs []string // an empty chain stays null, as IssueResponse writes it
	for _, p := range chain {
		strs = append(strs, string(p))
	}
	j, err := json.Marshal(strs)
	if err != nil {
		panic(err) // strings always encode
	}
	c.last.Store(&encodedChain{pems: slices.Clone(chain), json: j})
	return j
}

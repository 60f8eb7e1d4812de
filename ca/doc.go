// Package ca is pkid's certificate authority: it owns the issuance pipeline
// (parse and verify the CSR, evaluate the role, build the certificate from a
// template, re-check it, sign with the intermediate as a crypto.Signer,
// commit the record, return), revocation, CRLs and the creation of a CA
// hierarchy. It never speaks HTTP; it returns *errs.Error for anything a
// client may be told.
//
// Time comes from an injected Clock, never from time.Now, so tests move
// time instead of sleeping.
package ca

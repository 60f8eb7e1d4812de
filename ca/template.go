package ca

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"text/template"

	"go.step.sm/crypto/x509util"
)

// roleTemplate is a role's x509util template, parsed once when the
// Authority is made, with x509util's functions (sprig without env, the
// asn1 helpers). x509util.WithTemplate would parse the text and build the
// function map again for every certificate.
type roleTemplate struct {
	t *template.Template
}

// CheckTemplate parses text as role's x509util template without keeping it,
// so `pkid config check` refuses what serve would refuse at start.
func CheckTemplate(role, text string) error {
	_, err := parseRoleTemplate(role, text)
	return err
}

func parseRoleTemplate(role, text string) (*roleTemplate, error) {
	t, err := template.New(role).Funcs(x509util.GetFuncMap()).Parse(text)
	if err != nil {
		return nil, fmt.Errorf("template of role %s: %w", role, err)
	}
	return &roleTemplate{t: t}, nil
}

// certificate runs the template for csr and returns what it describes.
// The CSR's signature is not checked here: the doors that take a CSR
// from outside check it when they parse it, and a renewal without a new
// key hands over an unsigned request built from the certificate in use
// (x509util.NewCertificate would refuse that one).
func (rt *roleTemplate) certificate(csr *x509.CertificateRequest, data x509util.TemplateData) (*x509.Certificate, error) {
	// A clone per certificate, so "fail" reports to this run only.
	t, err := rt.t.Clone()
	if err != nil {
		return nil, err
	}
	terr := new(x509util.TemplateError)
	t.Funcs(template.FuncMap{"fail": func(msg string) (string, error) {
		terr.Message = msg
		return "", errors.New(msg)
	}})
	// x509util marks the copy's SAN extension critical when the subject is
	// empty: it must not write into the caller's request.
	cr := *csr
	cr.Extensions = slices.Clone(csr.Extensions)
	run := func(_ *x509.CertificateRequest, o *x509util.Options) error {
		data.SetCertificateRequest(&cr)
		buf := new(bytes.Buffer)
		if err := t.Execute(buf, data); err != nil {
			if terr.Message != "" {
				return terr
			}
			return fmt.Errorf("execute template: %w", err)
		}
		o.CertBuffer = buf
		return nil
	}
	// NewCertificateFromX509 applies the options as NewCertificate does,
	// taking the public key from this stand-in for the request.
	c, err := x509util.NewCertificateFromX509(&x509.Certificate{
		PublicKey: csr.PublicKey, PublicKeyAlgorithm: csr.PublicKeyAlgorithm, Subject: csr.Subject,
		DNSNames: csr.DNSNames, EmailAddresses: csr.EmailAddresses, IPAddresses: csr.IPAddresses, URIs: csr.URIs,
	}, run)
	if err != nil {
		return nil, err
	}
	return c.GetCertificate(), nil
}

import java.io.FileInputStream;
import java.security.cert.CertPathValidator;
import java.security.cert.CertPathValidatorException;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.security.cert.PKIXParameters;
import java.security.cert.PKIXRevocationChecker;
import java.security.cert.TrustAnchor;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.Collections;
import java.util.EnumSet;
import java.util.List;

/**
 * PKIXCheck ROOT CHAIN MODE validates CHAIN (PEM, leaf first) up to ROOT
 * with Java's PKIX validator and revocation checking at every level, and
 * prints VALID or INVALID with the index of the certificate at fault and
 * the reason. MODE crl: CRLs only (run with
 * -Dcom.sun.security.enableCRLDP=true); MODE ocsp: OCSP where a
 * certificate names a responder, its CRL otherwise (Java's default).
 * TestJavaPKIX runs it; it is a relying party pkid shares no code with.
 */
public class PKIXCheck {
    public static void main(String[] args) throws Exception {
        CertificateFactory cf = CertificateFactory.getInstance("X.509");
        X509Certificate root;
        try (FileInputStream in = new FileInputStream(args[0])) {
            root = (X509Certificate) cf.generateCertificate(in);
        }
        List<X509Certificate> chain = new ArrayList<>();
        try (FileInputStream in = new FileInputStream(args[1])) {
            for (Certificate c : cf.generateCertificates(in)) {
                chain.add((X509Certificate) c);
            }
        }
        CertPathValidator validator = CertPathValidator.getInstance("PKIX");
        PKIXRevocationChecker revocation = (PKIXRevocationChecker) validator.getRevocationChecker();
        if (args[2].equals("crl")) {
            revocation.setOptions(EnumSet.of(PKIXRevocationChecker.Option.PREFER_CRLS, PKIXRevocationChecker.Option.NO_FALLBACK));
        }
        PKIXParameters params = new PKIXParameters(Collections.singleton(new TrustAnchor(root, null)));
        params.addCertPathChecker(revocation);
        try {
            validator.validate(cf.generateCertPath(chain), params);
            System.out.println("VALID");
        } catch (CertPathValidatorException e) {
            System.out.println("INVALID index=" + e.getIndex() + " reason=" + e.getReason() + ": " + e.getMessage());
        }
    }
}

//! `verify_and_map`: reading the names out of a client certificate into the
//! core's [`CertificateIdentity`], which the auth policy matches against the
//! configured users (`percore_core::auth::certificate`).
//!
//! The subject's string form follows Go's `pkix.Name` (what nats-server
//! compares user names with): only the well-known attributes, one RDN per
//! attribute type, most specific first (`CN=alice,OU=eng,O=Acme,C=US`),
//! whatever order the certificate lists them in; `DC=` parts are then tried
//! appended. The DN form for equal/reordered matching keeps every attribute.

use rustls::pki_types::CertificateDer;
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

use sha2::{Digest, Sha256};

use crate::auth::certificate::Attribute;
use crate::auth::CertificateIdentity;
use crate::connection::PeerCert;

/// (OID, short name) for the attributes Go's `pkix.Name` keeps, in the
/// order its `ToRDNSequence` lists them (the string form reverses it).
const PKIX_ORDER: &[(&str, &str)] = &[
    ("2.5.4.6", "C"),
    ("2.5.4.8", "ST"),
    ("2.5.4.7", "L"),
    ("2.5.4.9", "STREET"),
    ("2.5.4.17", "POSTALCODE"),
    ("2.5.4.10", "O"),
    ("2.5.4.11", "OU"),
    ("2.5.4.3", "CN"),
    ("2.5.4.5", "SERIALNUMBER"),
];

/// Other attribute types a DN in a user name may use.
const OTHER_NAMES: &[(&str, &str)] = &[
    ("0.9.2342.19200300.100.1.25", "DC"),
    ("0.9.2342.19200300.100.1.1", "UID"),
    ("1.2.840.113549.1.9.1", "EMAILADDRESS"),
];

const DC_OID: &str = "0.9.2342.19200300.100.1.25";

/// The names `verify_and_map` may use, or `None` if the certificate does
/// not parse (the verifier accepted it, so that does not happen in practice).
pub fn certificate_identity(cert: &CertificateDer<'_>) -> Option<CertificateIdentity> {
    let (_, cert) = X509Certificate::from_der(cert.as_ref()).ok()?;
    Some(CertificateIdentity {
        san_names: san_names(&cert),
        subject: subject_dn(&cert),
        subject_names: subject_names(&cert),
    })
}

/// E-mail, then DNS, then URI names (nats-server's order).
fn san_names(cert: &X509Certificate<'_>) -> Vec<String> {
    let Ok(Some(san)) = cert.subject_alternative_name() else {
        return Vec::new();
    };
    let names = &san.value.general_names;
    let mut out = Vec::new();
    for pick in [0, 1, 2] {
        for name in names {
            match (pick, name) {
                (0, GeneralName::RFC822Name(n))
                | (1, GeneralName::DNSName(n))
                | (2, GeneralName::URI(n)) => out.push(n.to_string()),
                _ => {}
            }
        }
    }
    out
}

/// Every attribute of the subject, RDNs most specific first.
fn subject_dn(cert: &X509Certificate<'_>) -> Vec<Vec<Attribute>> {
    let mut rdns: Vec<Vec<Attribute>> = cert
        .subject()
        .iter()
        .map(|rdn| {
            rdn.iter()
                .filter_map(|attr| {
                    let oid = attr.attr_type().to_id_string();
                    let value = attr.as_str().ok()?.to_string();
                    Some((short_name(&oid).unwrap_or(oid), value))
                })
                .collect()
        })
        .filter(|rdn: &Vec<Attribute>| !rdn.is_empty())
        .collect();
    rdns.reverse();
    rdns
}

fn short_name(oid: &str) -> Option<String> {
    PKIX_ORDER
        .iter()
        .chain(OTHER_NAMES)
        .find(|(o, _)| *o == oid)
        .map(|(_, name)| name.to_string())
}

/// `/connz` `tls_peer_certs` for a client's chain, as nats-server prints
/// them (`?auth=1`): Go's subject string and hex sha256 digests of the
/// SubjectPublicKeyInfo and of the whole certificate.
pub fn peer_certs(chain: &[CertificateDer<'_>]) -> Vec<PeerCert> {
    chain
        .iter()
        .map(|der| {
            let subject = X509Certificate::from_der(der.as_ref())
                .map(|(_, cert)| go_subject(&cert))
                .unwrap_or_default();
            PeerCert {
                subject,
                spki_sha256: super::config::spki_sha256(der).unwrap_or_default(),
                cert_sha256: hex(&Sha256::digest(der.as_ref())),
            }
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Go's `pkix.Name.String()`: the well-known attributes (most specific
/// first), then the others as `<oid>=#<hex DER>`.
fn go_subject(cert: &X509Certificate<'_>) -> String {
    let mut parts = vec![known_attributes(cert)];
    let mut others: Vec<String> = cert
        .subject()
        .iter_attributes()
        .filter(|a| {
            let oid = a.attr_type().to_id_string();
            !PKIX_ORDER.iter().any(|(o, _)| *o == oid)
        })
        .map(|a| {
            let value = a.attr_value();
            format!(
                "{}=#{}",
                a.attr_type().to_id_string(),
                hex(&der_of(value.tag().0, value.data))
            )
        })
        .collect();
    others.reverse();
    parts.extend(others);
    parts.retain(|p| !p.is_empty());
    parts.join(",")
}

/// A primitive universal DER value: tag, length, contents.
fn der_of(tag: u32, contents: &[u8]) -> Vec<u8> {
    let mut der = vec![tag.min(30) as u8];
    let len = contents.len();
    if len < 0x80 {
        der.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        der.push(0x80 | bytes.len() as u8);
        der.extend(bytes);
    }
    der.extend_from_slice(contents);
    der
}

/// Go's `ToRDNSequence().String()`: the well-known attributes only.
fn known_attributes(cert: &X509Certificate<'_>) -> String {
    let mut rdns = Vec::new();
    for (oid, name) in PKIX_ORDER {
        let found: Vec<String> = cert
            .subject()
            .iter_attributes()
            .filter(|a| a.attr_type().to_id_string() == *oid)
            .filter_map(|a| a.as_str().ok().map(|v| format!("{name}={}", escape(v))))
            .collect();
        if !found.is_empty() {
            rdns.push(found.join("+"));
        }
    }
    rdns.reverse();
    rdns.join(",")
}

/// Go's RDN string, with the `DC=` parts appended (if any), then without.
fn subject_names(cert: &X509Certificate<'_>) -> Vec<String> {
    let values = |wanted: &str| -> Vec<String> {
        cert.subject()
            .iter_attributes()
            .filter(|a| a.attr_type().to_id_string() == wanted)
            .filter_map(|a| a.as_str().ok().map(str::to_string))
            .collect()
    };
    let plain = known_attributes(cert);
    let dcs: Vec<String> = values(DC_OID)
        .iter()
        .map(|v| format!("DC={}", escape(v)))
        .collect();
    let mut names = Vec::new();
    if !dcs.is_empty() {
        names.push(format!("{plain},{}", dcs.join(",")));
    }
    if !plain.is_empty() {
        names.push(plain);
    }
    names
}

/// RFC 2253 escaping, as Go's `pkix` applies it.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == ' ' || c == '#'))
            || (i == last && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, SanType};

    #[test]
    fn names_in_nats_servers_order() {
        let mut params = CertificateParams::new(vec!["host.example.com".to_string()]).unwrap();
        params
            .subject_alt_names
            .push(SanType::Rfc822Name("alice@example.com".try_into().unwrap()));
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CountryName, "US");
        dn.push(DnType::OrganizationName, "Acme, Inc");
        dn.push(DnType::CommonName, "alice");
        dn.push(
            DnType::CustomDnType(vec![0, 9, 2342, 19200300, 100, 1, 25]),
            "example",
        );
        params.distinguished_name = dn;
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let identity = certificate_identity(cert.der()).unwrap();
        assert_eq!(
            identity.san_names,
            vec!["alice@example.com", "host.example.com"]
        );
        assert_eq!(
            identity.subject_names,
            vec![
                "CN=alice,O=Acme\\, Inc,C=US,DC=example",
                "CN=alice,O=Acme\\, Inc,C=US"
            ]
        );
        assert_eq!(identity.subject[0], vec![("DC".into(), "example".into())]);
        assert_eq!(identity.subject[1], vec![("CN".into(), "alice".into())]);
        // /connz tls_peer_certs: Go's Name.String(), other attributes last.
        let certs = peer_certs(std::slice::from_ref(cert.der()));
        assert!(
            certs[0]
                .subject
                .starts_with("CN=alice,O=Acme\\, Inc,C=US,0.9.2342.19200300.100.1.25=#"),
            "{}",
            certs[0].subject
        );
        assert!(
            certs[0].subject.ends_with("076578616d706c65"),
            "{}",
            certs[0].subject
        );
        assert_eq!(certs[0].cert_sha256.len(), 64);
        assert_eq!(
            Some(certs[0].spki_sha256.clone()),
            crate::tls::config::spki_sha256(cert.der())
        );
    }
}

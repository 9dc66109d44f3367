//! Client TLS as clients see it (issue 13): async-nats with `require_tls`
//! and the test CA, on both shards; mutual TLS; a client that does not
//! trust the server's CA; `verify_and_map` with two users; a plaintext
//! client on a TLS port (nats-server's exact bytes: INFO, then a close);
//! the handshake timeout; `allow_non_tls`; `handshake_first`.
//!
//! Certificates are made by each test with rcgen and written to a
//! directory of its own; the keys are generated too, except the one RSA key
//! (`tests/keys/README.md` says why).

mod support;

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Duration;

use async_nats::client::RequestErrorKind;
use async_nats::ConnectOptions;
use futures::StreamExt;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, SanType,
};
use support::interest::interest_ready;
use support::server_pings::ServerPings;
use support::{one_client_per_shard, Broker, RawClient};

const SHARDS: u64 = 2;
const WAIT: Duration = Duration::from_secs(10);

/// A CA and what it signed, as PEM files in a directory removed on drop.
struct Pki {
    dir: PathBuf,
    issuer: Issuer<'static, KeyPair>,
}

impl Pki {
    fn new(name: &str) -> Pki {
        let dir = std::env::temp_dir().join(format!("percore-tls-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, format!("percore test CA {name}"));
        let key = KeyPair::generate().expect("ca key");
        let cert = params.self_signed(&key).expect("ca cert");
        std::fs::write(dir.join("ca.pem"), cert.pem()).expect("write ca");
        Pki {
            dir,
            issuer: Issuer::new(params, key),
        }
    }

    fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// Signs a certificate and writes `<name>.pem` and `<name>-key.pem`.
    fn issue(&self, name: &str, params: CertificateParams) -> (PathBuf, PathBuf) {
        self.issue_for(name, params, KeyPair::generate().expect("key"))
    }

    /// [`Pki::issue`] with a given key.
    fn issue_for(&self, name: &str, params: CertificateParams, key: KeyPair) -> (PathBuf, PathBuf) {
        let cert = params.signed_by(&key, &self.issuer).expect("sign");
        let (cert_path, key_path) = (
            self.dir.join(format!("{name}.pem")),
            self.dir.join(format!("{name}-key.pem")),
        );
        std::fs::write(&cert_path, cert.pem()).expect("write cert");
        std::fs::write(&key_path, key.serialize_pem()).expect("write key");
        (cert_path, key_path)
    }

    /// The server's certificate, for 127.0.0.1 and localhost.
    fn server(&self) -> (PathBuf, PathBuf) {
        let mut params =
            CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
                .expect("server params");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.issue("server", params)
    }

    /// The server's certificate with the RSA-2048 key of `tests/keys`
    /// (rcgen's ring backend cannot generate RSA keys).
    fn rsa_server(&self) -> (PathBuf, PathBuf) {
        let pem = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/keys/rsa-2048-key.pem"
        ))
        .expect("tests/keys/rsa-2048-key.pem");
        let key = KeyPair::from_pem_and_sign_algo(&pem, &rcgen::PKCS_RSA_SHA256).expect("RSA key");
        let mut params =
            CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
                .expect("server params");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.issue_for("server-rsa", params, key)
    }

    /// A client certificate with this subject and these SANs.
    fn client(
        &self,
        name: &str,
        subject: &[(DnType, &str)],
        sans: Vec<SanType>,
    ) -> (PathBuf, PathBuf) {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("client params");
        let mut dn = DistinguishedName::new();
        for (kind, value) in subject {
            dn.push(kind.clone(), *value);
        }
        params.distinguished_name = dn;
        params.subject_alt_names = sans;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.issue(name, params)
    }

    /// A `tls {}` block with the server certificate and `extra` keys.
    fn tls_block(&self, extra: &str) -> String {
        let (cert, key) = self.server();
        tls_block_with(&cert, &key, extra)
    }
}

/// A `tls {}` block with this certificate and key and `extra` keys.
fn tls_block_with(cert: &std::path::Path, key: &std::path::Path, extra: &str) -> String {
    format!(
        "tls {{\n  cert_file: \"{}\"\n  key_file: \"{}\"\n  {extra}\n}}\n",
        cert.display(),
        key.display()
    )
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn trusting(pki: &Pki) -> ConnectOptions {
    ConnectOptions::new()
        .require_tls(true)
        .add_root_certificates(pki.ca())
}

/// A client that speaks TLS 1.2 only (rustls's own suite order, AES-256-GCM
/// first) and trusts `pki`'s CA; with `client_cert` (certificate and key
/// files) it presents that certificate.
fn tls12_only(pki: &Pki, client_cert: Option<(&Path, &Path)>) -> ConnectOptions {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from_pem_file(pki.ca()).expect("ca"))
        .expect("root");
    let builder = rustls::ClientConfig::builder_with_protocol_versions(&[&rustls::version::TLS12])
        .with_root_certificates(roots);
    let config = match client_cert {
        Some((cert, key)) => {
            let chain = vec![rustls::pki_types::CertificateDer::from_pem_file(cert).expect("cert")];
            let key = rustls::pki_types::PrivateKeyDer::from_pem_file(key).expect("key");
            builder
                .with_client_auth_cert(chain, key)
                .expect("client config")
        }
        None => builder.with_no_client_auth(),
    };
    ConnectOptions::new()
        .require_tls(true)
        .tls_client_config(config)
}

async fn connect(broker: &Broker, options: ConnectOptions) -> Result<async_nats::Client, String> {
    tokio::time::timeout(WAIT, options.connect(format!("nats://{}", broker.addr)))
        .await
        .map_err(|_| "no answer in time".to_string())?
        .map_err(|e| e.to_string())
}

/// `from` publishes `count` messages of `size` bytes on `subject`; `sub`
/// must receive them all, in order. A request/reply on a probe
/// subscription made after it first makes sure the subscription is known on
/// the publisher's shard (async-nats' `flush` is no barrier).
async fn delivered_in_order(
    from: &async_nats::Client,
    to: &async_nats::Client,
    subject: &str,
    count: usize,
    size: usize,
) {
    let mut sub = to.subscribe(subject.to_string()).await.expect("subscribe");
    interest_ready(to, from).await;
    for i in 0..count {
        let mut payload = vec![b'x'; size];
        payload[..8].copy_from_slice(&(i as u64).to_be_bytes());
        from.publish(subject.to_string(), payload.into())
            .await
            .expect("publish");
    }
    from.flush().await.expect("flush");
    for i in 0..count {
        let msg = tokio::time::timeout(WAIT, sub.next())
            .await
            .expect("message in time")
            .expect("subscription open");
        assert_eq!(msg.payload.len(), size);
        assert_eq!(
            msg.payload[..8],
            (i as u64).to_be_bytes(),
            "message {i} in order"
        );
    }
}

#[tokio::test]
async fn publish_and_subscribe_over_tls_across_both_shards() {
    let pki = Pki::new("pubsub");
    let broker = Broker::with_config(&pki.tls_block(""));
    let clients = one_client_per_shard(&broker, || trusting(&pki)).await;
    assert!(clients[0].server_info().tls_required);
    // Small messages both ways, then large ones that outgrow one TLS record
    // and the session's 64 KiB write window (the writer task's path).
    delivered_in_order(&clients[0], &clients[1], "tls.a", 200, 128).await;
    delivered_in_order(&clients[1], &clients[0], "tls.b", 200, 128).await;
    delivered_in_order(&clients[0], &clients[1], "tls.c", 64, 40_000).await;
    // Messages larger than the session's write window, each split across
    // several encryptions.
    delivered_in_order(&clients[1], &clients[0], "tls.d", 4, 300_000).await;
}

/// A TLS client on raw sockets (rustls): INFO in plaintext, then the
/// handshake, then protocol bytes through the session. Server PINGs are
/// answered and hidden, as `RawClient`'s.
struct RawTls {
    stream: rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream>,
    pending: Vec<u8>,
    pings: ServerPings,
}

impl RawTls {
    fn connect(broker: &Broker, pki: &Pki) -> RawTls {
        use rustls::pki_types::pem::PemObject;
        use std::io::Read;
        let mut tcp = std::net::TcpStream::connect(broker.addr).expect("connect");
        tcp.set_read_timeout(Some(WAIT)).expect("timeout");
        let mut info = Vec::new();
        while !info.ends_with(b"\r\n") {
            let mut byte = [0u8; 1];
            assert_eq!(tcp.read(&mut byte).expect("INFO"), 1, "INFO before close");
            info.push(byte[0]);
        }
        assert!(info.starts_with(b"INFO {"));
        let mut roots = rustls::RootCertStore::empty();
        let ca = rustls::pki_types::CertificateDer::from_pem_file(pki.ca()).expect("ca pem");
        roots.add(ca).expect("root");
        let config = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = rustls::pki_types::ServerName::try_from("127.0.0.1").expect("name");
        let conn =
            rustls::ClientConnection::new(std::sync::Arc::new(config), name).expect("client");
        RawTls {
            stream: rustls::StreamOwned::new(conn, tcp),
            pending: Vec::new(),
            pings: ServerPings::default(),
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        use std::io::Write;
        self.stream.write_all(bytes).expect("send");
        self.stream.flush().expect("flush");
        self.pings.sent(bytes);
        self.pings.answer(&mut self.stream);
    }

    /// Reads until `pending` holds `n` bytes.
    fn fill(&mut self, n: usize) {
        use std::io::Read;
        let mut buf = [0u8; 65536];
        while self.pending.len() < n {
            let got = self.stream.read(&mut buf).expect("read");
            assert!(got > 0, "closed early");
            self.pings.received(&buf[..got], &mut self.pending);
            self.pings.answer(&mut self.stream);
        }
    }

    fn line(&mut self) -> String {
        loop {
            if let Some(end) = support::find(&self.pending, b"\r\n") {
                let line: Vec<u8> = self.pending.drain(..end + 2).collect();
                return String::from_utf8(line).expect("utf-8");
            }
            let want = self.pending.len() + 1;
            self.fill(want);
        }
    }

    /// The next MSG's payload.
    fn msg(&mut self) -> Vec<u8> {
        let line = self.line();
        let len: usize = line
            .trim_end()
            .rsplit(' ')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("a MSG line, got {line:?}"));
        self.fill(len + 2);
        let payload: Vec<u8> = self.pending.drain(..len + 2).collect();
        payload[..len].to_vec()
    }
}

/// A subscriber that reads nothing while 12 MB arrive for it: its socket
/// fills, so ciphertext waits in its session and the writer task must
/// flush it (and encrypt the backlog the state machine hands over); every
/// message then arrives, in order.
#[tokio::test]
async fn a_subscriber_that_stops_reading_gets_every_message_in_order() {
    let pki = Pki::new("backlog");
    let broker = Broker::with_config(&pki.tls_block(""));
    let mut subscriber = RawTls::connect(&broker, &pki);
    subscriber.send(b"CONNECT {\"verbose\":false}\r\nSUB big 1\r\nPING\r\n");
    assert_eq!(subscriber.line(), "PONG\r\n");
    let publisher = connect(&broker, trusting(&pki)).await.expect("publisher");
    assert_eq!(
        (publisher.server_info().client_id - 1) % SHARDS,
        1,
        "other shard"
    );
    const COUNT: usize = 400;
    const SIZE: usize = 32 * 1024;
    for i in 0..COUNT {
        let mut payload = vec![b'y'; SIZE];
        payload[..8].copy_from_slice(&(i as u64).to_be_bytes());
        publisher
            .publish("big", payload.into())
            .await
            .expect("publish");
    }
    publisher.flush().await.expect("flush");
    let received = tokio::task::spawn_blocking(move || {
        for i in 0..COUNT {
            let payload = subscriber.msg();
            assert_eq!(payload.len(), SIZE);
            assert_eq!(
                payload[..8],
                (i as u64).to_be_bytes(),
                "message {i} in order"
            );
        }
        subscriber.send(b"PING\r\n");
        assert_eq!(subscriber.line(), "PONG\r\n");
    });
    tokio::time::timeout(Duration::from_secs(30), received)
        .await
        .expect("all messages in time")
        .expect("reader");
}

#[tokio::test]
async fn a_client_that_does_not_trust_the_servers_ca_fails() {
    let pki = Pki::new("ca-a");
    let other = Pki::new("ca-b");
    let broker = Broker::with_config(&pki.tls_block(""));
    let error = connect(&broker, trusting(&other))
        .await
        .expect_err("an unknown CA must fail the client");
    assert!(
        error.to_lowercase().contains("unknownissuer")
            || error.to_lowercase().contains("certificate"),
        "{error}"
    );
    broker
        .wait_log("TLS handshake error:", WAIT)
        .expect("the server logs the failed handshake");
    // The server is unharmed: a trusting client still gets in.
    connect(&broker, trusting(&pki))
        .await
        .expect("trusting client");
}

#[tokio::test]
async fn mutual_tls_needs_a_certificate_from_the_configured_ca() {
    let pki = Pki::new("mtls");
    let stranger = Pki::new("mtls-stranger");
    let config = pki.tls_block(&format!(
        "ca_file: \"{}\"\n  verify: true",
        pki.ca().display()
    ));
    let broker = Broker::with_config(&config);
    let (cert, key) = pki.client("alice", &[(DnType::CommonName, "alice")], vec![]);
    let clients = one_client_per_shard(&broker, || {
        trusting(&pki).add_client_certificate(cert.clone(), key.clone())
    })
    .await;
    let info = RawClient::connect(broker.addr).info_json();
    assert_eq!(info["tls_verify"], true, "{info}");
    delivered_in_order(&clients[0], &clients[1], "mtls", 10, 64).await;

    connect(&broker, trusting(&pki))
        .await
        .expect_err("no client certificate must fail");
    let (bad_cert, bad_key) =
        stranger.client("mallory", &[(DnType::CommonName, "mallory")], vec![]);
    connect(
        &broker,
        trusting(&pki).add_client_certificate(bad_cert, bad_key),
    )
    .await
    .expect_err("a certificate from another CA must fail");
}

/// `verify_and_map`: alice is named by her e-mail SAN, bob by his subject
/// DN (written in another RDN order than his certificate has); each gets
/// his own permissions, and a certificate naming nobody is refused.
#[tokio::test]
async fn verify_and_map_logs_two_users_in_with_their_permissions() {
    let pki = Pki::new("map");
    let mut config = pki.tls_block(&format!(
        "ca_file: \"{}\"\n  verify_and_map: true",
        pki.ca().display()
    ));
    config.push_str(
        "authorization {\n  users: [\n    {user: \"alice@example.com\", permissions: {publish: \"alice.>\"}}\n    {user: \"O=Acme,CN=bob\", permissions: {publish: \"bob.>\"}}\n  ]\n}\n",
    );
    let broker = Broker::with_config(&config);
    let (alice_cert, alice_key) = pki.client(
        "alice",
        &[(DnType::CommonName, "Alice")],
        vec![SanType::Rfc822Name(
            "alice@example.com".try_into().expect("email"),
        )],
    );
    let (bob_cert, bob_key) = pki.client(
        "bob",
        &[
            (DnType::OrganizationName, "Acme"),
            (DnType::CommonName, "bob"),
        ],
        vec![],
    );
    let alice = connect(
        &broker,
        trusting(&pki).add_client_certificate(alice_cert.clone(), alice_key.clone()),
    )
    .await
    .expect("alice is mapped");
    let bob = connect(
        &broker,
        trusting(&pki).add_client_certificate(bob_cert, bob_key),
    )
    .await
    .expect("bob is mapped");
    assert_ne!(
        (alice.server_info().client_id - 1) % SHARDS,
        (bob.server_info().client_id - 1) % SHARDS,
        "alice and bob on different shards"
    );
    // Each publishes an allowed, a forbidden and another allowed message;
    // per-publisher order means the forbidden one, had it passed, would have
    // arrived between the two.
    for (publisher, own, other, watcher) in [
        (&alice, "alice", "bob", &bob),
        (&bob, "bob", "alice", &alice),
    ] {
        let mut sub = watcher.subscribe(">").await.expect("subscribe");
        watcher.flush().await.expect("flush");
        let probe = format!("{own}.probe");
        tokio::time::timeout(WAIT, async {
            loop {
                publisher
                    .publish(probe.clone(), "p".into())
                    .await
                    .expect("publish");
                publisher.flush().await.expect("flush");
                if let Ok(Some(msg)) =
                    tokio::time::timeout(Duration::from_millis(200), sub.next()).await
                {
                    if msg.subject.as_str() == probe {
                        break;
                    }
                }
            }
        })
        .await
        .expect("the watcher's subscription reaches the publisher's shard");
        for subject in [format!("{own}.1"), format!("{other}.x"), format!("{own}.2")] {
            publisher
                .publish(subject, "m".into())
                .await
                .expect("publish");
        }
        publisher.flush().await.expect("flush");
        let mut seen = Vec::new();
        while seen.len() < 2 {
            let msg = tokio::time::timeout(WAIT, sub.next())
                .await
                .expect("message in time")
                .expect("open");
            if msg.subject.as_str() != probe {
                seen.push(msg.subject.to_string());
            }
        }
        assert_eq!(seen, [format!("{own}.1"), format!("{own}.2")]);
    }
    let (nobody_cert, nobody_key) = pki.client("nobody", &[(DnType::CommonName, "nobody")], vec![]);
    let refused = connect(
        &broker,
        trusting(&pki).add_client_certificate(nobody_cert, nobody_key),
    )
    .await;
    assert!(refused.is_err(), "a certificate naming no user is refused");
    // A user named in CONNECT is not used, only warned about.
    connect(
        &broker,
        trusting(&pki)
            .add_client_certificate(alice_cert.clone(), alice_key.clone())
            .user_and_password("mallory".into(), String::new()),
    )
    .await
    .expect("the certificate decides");
    broker
        .wait_log(
            "User \"mallory\" found in connect proto, but user required from cert",
            WAIT,
        )
        .expect("nats-server's warning");
    // A password, though, is held against the mapped user's (none here):
    // nats-server 2.9.10 refuses the client and logs the mapped user.
    let refused = connect(
        &broker,
        trusting(&pki)
            .add_client_certificate(alice_cert, alice_key)
            .user_and_password("mallory".into(), "x".into()),
    )
    .await;
    assert!(refused.is_err(), "a password the mapped user lacks");
    broker
        .wait_log("authentication error - User \"alice@example.com\"", WAIT)
        .expect("nats-server's log line");
}

/// nats-server 2.9.10 sends its INFO in plaintext, and when the client
/// answers in plaintext it closes without another byte (no TLS alert, no
/// -ERR); the log says why.
#[test]
fn a_plaintext_client_on_a_tls_port_gets_info_then_a_close() {
    let pki = Pki::new("plain");
    let broker = Broker::with_config(&pki.tls_block(""));
    for _ in 0..SHARDS {
        let mut client = RawClient::connect(broker.addr);
        let info = client.info_json();
        assert_eq!(info["tls_required"], true, "{}", client.info);
        assert!(info.get("tls_available").is_none());
        client.send(b"CONNECT {\"verbose\":false}\r\nPING\r\n");
        client.expect_closed_after(b"");
    }
    broker
        .wait_log(
            "TLS handshake error: tls: first record does not look like a TLS handshake",
            WAIT,
        )
        .expect("logged as nats-server does");
}

/// A client that starts no handshake is closed when the TLS timeout
/// expires, without a flush, and the auth timer did not fire first.
#[test]
fn the_handshake_timeout_closes_a_silent_client() {
    let pki = Pki::new("timeout");
    let mut config = pki.tls_block("timeout: 0.3");
    config.push_str("authorization { token: s3cret, timeout: 0.1 }\n");
    let broker = Broker::with_config(&config);
    let mut client = RawClient::connect(broker.addr);
    client.expect_closed_after(b"");
    broker
        .wait_log("TLS handshake timeout", WAIT)
        .expect("timeout logged");
}

/// With `allow_non_tls`, INFO says `tls_available`, and both a plaintext
/// and a TLS client get in.
#[tokio::test]
async fn allow_non_tls_takes_plaintext_and_tls_clients() {
    let pki = Pki::new("mixed");
    let mut config = pki.tls_block("");
    config.push_str("allow_non_tls: true\n");
    let broker = Broker::with_config(&config);
    let mut plain = RawClient::connect(broker.addr);
    let info = plain.info_json();
    assert_eq!(info["tls_available"], true, "{}", plain.info);
    assert!(info.get("tls_required").is_none());
    plain.send(b"CONNECT {\"verbose\":false}\r\nPING\r\n");
    plain.expect(b"PONG\r\n");
    let tls = connect(&broker, trusting(&pki)).await.expect("TLS client");
    tls.flush().await.expect("round trip over TLS");
}

/// `handshake_first` (nats-server 2.10): the handshake comes before INFO,
/// which travels encrypted.
#[tokio::test]
async fn handshake_first_sends_info_encrypted() {
    let pki = Pki::new("first");
    let broker = Broker::with_config(&pki.tls_block("handshake_first: true"));
    let clients = one_client_per_shard(&broker, || trusting(&pki).tls_first()).await;
    delivered_in_order(&clients[1], &clients[0], "first", 10, 64).await;
}

#[test]
fn a_missing_certificate_file_stops_the_start_with_its_path() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_percore"))
        .args([
            "-a",
            "127.0.0.1",
            "-p",
            "-1",
            "--tls",
            "--tlscert",
            "/nonexistent/cert.pem",
        ])
        .args(["--tlskey", "/nonexistent/key.pem"])
        .output()
        .expect("run percore");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("/nonexistent/cert.pem"), "{stderr}");
    // -t reads the files too, as nats-server's does.
    let pki = Pki::new("check");
    let (_, key) = pki.server();
    let conf = pki.dir.join("check.conf");
    std::fs::write(
        &conf,
        format!(
            "tls {{ cert_file: \"/nonexistent/c.pem\", key_file: \"{}\" }}\n",
            key.display()
        ),
    )
    .expect("config");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_percore"))
        .args(["-t", "-c"])
        .arg(&conf)
        .output()
        .expect("run percore -t");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("/nonexistent/c.pem"), "{stderr}");
}

/// One monitoring GET; the body as JSON.
fn monitor_json(broker: &Broker, path: &str) -> serde_json::Value {
    use std::io::{Read, Write};
    let addr = broker.monitor.expect("monitoring port");
    let mut stream = std::net::TcpStream::connect(addr).expect("connect to monitor");
    stream.set_read_timeout(Some(WAIT)).expect("timeout");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .expect("request");
    let mut raw = String::new();
    stream.read_to_string(&mut raw).expect("response");
    let (_, body) = raw.split_once("\r\n\r\n").expect("header end");
    serde_json::from_str(body).expect("json body")
}

/// With nats-server's default suites, a TLS 1.2 client that prefers
/// AES-256-GCM (rustls's, OpenSSL's) gets what nats-server 2.9.10 picks:
/// Go's order, AES-128-GCM first.
#[tokio::test]
async fn the_server_order_picks_the_tls12_suite_as_go_does() {
    let pki = Pki::new("order");
    let broker = Broker::start_with(&["-m", "-1"], Some(&pki.tls_block("")));
    let client = connect(&broker, tls12_only(&pki, None))
        .await
        .expect("TLS 1.2 client");
    client.flush().await.expect("flush");
    let connz = monitor_json(&broker, "/connz");
    let connection = &connz["connections"][0];
    assert_eq!(connection["tls_version"], "1.2", "{connz}");
    assert_eq!(
        connection["tls_cipher_suite"], "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        "{connz}"
    );
}

/// `/varz` has `tls_required`, `tls_verify` and the configured
/// `tls_timeout`; `/connz` gives each TLS connection's version and suite as
/// nats-server names them, and keeps them for closed connections.
#[tokio::test]
async fn monitoring_shows_tls_settings_and_each_connections_session() {
    let pki = Pki::new("monitor");
    let config = pki.tls_block(&format!(
        "ca_file: \"{}\"\n  verify: true\n  timeout: 1.5\n  cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384]",
        pki.ca().display()
    ));
    let broker = Broker::start_with(&["-m", "-1"], Some(&config));
    let varz = monitor_json(&broker, "/varz");
    assert_eq!(varz["tls_required"], true, "{varz}");
    assert_eq!(varz["tls_verify"], true, "{varz}");
    assert_eq!(varz["tls_timeout"], 1.5, "{varz}");
    assert_eq!(
        varz["auth_timeout"], 2.5,
        "TLS timeout + 1 s, as nats-server"
    );
    let (cert, key) = pki.client("carol", &[(DnType::CommonName, "carol")], vec![]);
    let tls13 = connect(
        &broker,
        trusting(&pki).add_client_certificate(cert.clone(), key.clone()),
    )
    .await
    .expect("TLS 1.3 client");
    tls13.flush().await.expect("flush");
    // A TLS 1.2-only client gets the one configured 1.2 suite.
    let tls12 = connect(&broker, tls12_only(&pki, Some((&cert, &key))))
        .await
        .expect("TLS 1.2 client");
    tls12.flush().await.expect("flush");
    let connz = monitor_json(&broker, "/connz");
    let connections = connz["connections"].as_array().expect("connections");
    let mut seen: Vec<(String, String)> = connections
        .iter()
        .map(|c| {
            (
                c["tls_version"].as_str().unwrap_or("-").to_string(),
                c["tls_cipher_suite"].as_str().unwrap_or("-").to_string(),
            )
        })
        .collect();
    seen.sort();
    assert_eq!(seen.len(), 2, "{connz}");
    assert_eq!(
        seen[0],
        (
            "1.2".to_string(),
            "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384".to_string()
        ),
        "{connz}"
    );
    // TLS 1.3 suites are always on, and the server's order decides, as in
    // Go: AES-128-GCM, though rustls clients list AES-256-GCM first.
    assert_eq!(
        seen[1],
        ("1.3".to_string(), "TLS_AES_128_GCM_SHA256".to_string()),
        "{connz}"
    );
    // With auth=1, each connection's client certificate chain.
    assert!(connections
        .iter()
        .all(|c| c.get("tls_peer_certs").is_none()));
    let with_auth = monitor_json(&broker, "/connz?auth=1");
    use rustls::pki_types::pem::PemObject;
    let der = rustls::pki_types::CertificateDer::from_pem_file(&cert).expect("cert");
    let (_, parsed) = x509_parser::parse_x509_certificate(der.as_ref()).expect("x509");
    let hex = |bytes: &[u8]| -> String { bytes.iter().map(|b| format!("{b:02x}")).collect() };
    use sha2::Digest;
    let expected = serde_json::json!([{
        "subject": "CN=carol",
        "spki_sha256": hex(&sha2::Sha256::digest(parsed.tbs_certificate.subject_pki.raw)),
        "cert_sha256": hex(&sha2::Sha256::digest(der.as_ref())),
    }]);
    for c in with_auth["connections"].as_array().expect("connections") {
        assert_eq!(c["tls_peer_certs"], expected, "{with_auth}");
    }
}

/// SIGHUP reads the certificate and key again: new handshakes use the new
/// ones, established connections stay up; a reload with a missing file
/// keeps the running certificate.
#[tokio::test]
async fn a_reload_swaps_the_certificate_for_new_handshakes_only() {
    let first = Pki::new("reload-1");
    let second = Pki::new("reload-2");
    let broker = Broker::start_with(&["-ms", "-1"], Some(&first.tls_block("")));
    let monitor = broker.monitor.expect("https monitor");
    https_get(monitor, &first.ca(), "/healthz").expect("HTTPS with the first certificate");
    let established = connect(&broker, trusting(&first)).await.expect("first CA");
    let path = broker.config_path().expect("config file").to_path_buf();

    std::fs::write(&path, second.tls_block("")).expect("rewrite config");
    broker.signal(libc::SIGHUP);
    broker
        .wait_log("Reloaded server configuration", WAIT)
        .expect("reload logged");
    connect(&broker, trusting(&second))
        .await
        .expect("new handshakes use the new certificate");
    connect(&broker, trusting(&first))
        .await
        .expect_err("the old certificate is gone");
    // The established connection stays: the server itself answers its
    // request (async-nats' `flush` would only write the socket), and it
    // is still the first connection (a reconnect would need the old
    // certificate).
    let error = tokio::time::timeout(WAIT, established.request("nobody.here", "".into()))
        .await
        .expect("answered in time")
        .expect_err("nobody serves this");
    assert_eq!(error.kind(), RequestErrorKind::NoResponders, "{error}");
    assert_eq!(
        established.statistics().connects.load(Ordering::Relaxed),
        1,
        "the established connection stays"
    );

    let line = broker.reload_refused(
        "tls { cert_file: \"/nonexistent/c.pem\", key_file: \"/nonexistent/k.pem\" }\n",
        WAIT,
    );
    assert!(line.contains("/nonexistent/c.pem"), "{line}");
    connect(&broker, trusting(&second))
        .await
        .expect("the running certificate stays");
}

/// GET `path` over HTTPS, trusting `ca`; the whole response.
fn https_get(
    addr: std::net::SocketAddr,
    ca: &std::path::Path,
    path: &str,
) -> Result<String, String> {
    use rustls::pki_types::pem::PemObject;
    use std::io::{Read, Write};
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from_pem_file(ca).expect("ca"))
        .expect("root");
    let client = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let session = rustls::ClientConnection::new(
        std::sync::Arc::new(client),
        rustls::pki_types::ServerName::try_from("127.0.0.1").expect("name"),
    )
    .expect("session");
    let tcp = std::net::TcpStream::connect(addr).expect("connect");
    tcp.set_read_timeout(Some(WAIT)).expect("timeout");
    let mut stream = rustls::StreamOwned::new(session, tcp);
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut response = Vec::new();
    // The server closes without close_notify: that error ends a complete
    // response; a handshake failure leaves it empty.
    let outcome = stream.read_to_end(&mut response);
    if response.is_empty() {
        return Err(format!("no response: {outcome:?}"));
    }
    String::from_utf8(response).map_err(|e| e.to_string())
}

/// `-ms`: the monitoring endpoints over HTTPS with the client port's
/// certificate (no client certificate asked for, as nats-server), and
/// `/varz` reports the port as `https_port`.
#[test]
fn monitoring_over_https() {
    let pki = Pki::new("https");
    let config = pki.tls_block(&format!(
        "ca_file: \"{}\"\n  verify: true",
        pki.ca().display()
    ));
    let broker = Broker::start_with(&["-ms", "-1"], Some(&config));
    let addr = broker.monitor.expect("https monitor started");
    let text = https_get(addr, &pki.ca(), "/varz").expect("HTTPS answer");
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    let body: serde_json::Value =
        serde_json::from_str(text.split_once("\r\n\r\n").expect("body").1).expect("json");
    assert_eq!(body["https_port"], addr.port(), "{body}");
    assert_eq!(body["http_port"], 0, "{body}");
}

/// A TLS client on a plaintext port: its ClientHello is no NATS operation,
/// and the server answers as nats-server 2.9.10 does (checked against it):
/// the parser's error, then a close.
#[test]
fn a_tls_client_on_a_plain_port_gets_the_parse_error() {
    let broker = Broker::start();
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    let mut session = rustls::ClientConnection::new(
        std::sync::Arc::new(config),
        rustls::pki_types::ServerName::try_from("127.0.0.1").expect("name"),
    )
    .expect("session");
    let mut hello = Vec::new();
    while session.wants_write() {
        session.write_tls(&mut hello).expect("client hello");
    }
    assert_eq!(hello[0], 0x16, "a TLS handshake record");
    let mut client = RawClient::connect(broker.addr);
    assert!(client.info_json().get("tls_required").is_none());
    client.send(&hello);
    client.expect_closed_after(b"-ERR 'Unknown Protocol Operation'\r\n");
}

/// `connection_rate_limit: 1`: one new TLS connection per second; the next
/// ones in that second get nats-server's -ERR (in plaintext, after INFO)
/// and a close, before any handshake.
#[test]
fn the_connection_rate_limit_refuses_connections_beyond_it() {
    let pki = Pki::new("rate");
    let broker = Broker::with_config(&pki.tls_block("connection_rate_limit: 1"));
    let _first = RawClient::connect(broker.addr);
    let mut second = RawClient::connect(broker.addr);
    second.expect_closed_after(
        b"-ERR 'Connection throttling is active. Please try again later.'\r\n",
    );
}

/// `--tls_offload`: the handshake's crypto runs on the shards' blocking
/// threads; clients see the same thing: mutual TLS on both shards, a
/// refused client without a certificate, a plaintext client closed after
/// INFO, and INFO sent first with `handshake_first` arriving encrypted.
#[tokio::test]
async fn handshakes_on_the_blocking_thread_behave_the_same() {
    let pki = Pki::new("offload");
    let config = pki.tls_block(&format!(
        "ca_file: \"{}\"\n  verify: true",
        pki.ca().display()
    ));
    let broker = Broker::start_with(&["--tls_offload"], Some(&config));
    let (cert, key) = pki.client("olga", &[(DnType::CommonName, "olga")], vec![]);
    let clients = one_client_per_shard(&broker, || {
        trusting(&pki).add_client_certificate(cert.clone(), key.clone())
    })
    .await;
    delivered_in_order(&clients[0], &clients[1], "offload", 20, 1000).await;
    connect(&broker, trusting(&pki))
        .await
        .expect_err("no client certificate must fail");
    let mut plain = RawClient::connect(broker.addr);
    plain.send(b"CONNECT {\"verbose\":false}\r\nPING\r\n");
    plain.expect_closed_after(b"");

    let first = Broker::start_with(
        &["--tls_offload"],
        Some(&pki.tls_block("handshake_first: true")),
    );
    let clients = one_client_per_shard(&first, || trusting(&pki).tls_first()).await;
    delivered_in_order(&clients[1], &clients[0], "offload.first", 5, 100).await;
}

/// Without `--tls_offload`, the server key's type decides where handshakes
/// run: an RSA key's (~1 ms signatures) on the shards' blocking threads,
/// an ECDSA key's on the shards. The log says which and why, at start and
/// again at a reload that changes the key; `--tls_offload=false` keeps an
/// RSA key's on the shards. Clients on both shards are served each way.
#[tokio::test]
async fn the_server_keys_type_decides_where_handshakes_run() {
    let pki = Pki::new("by-key");
    let (rsa_cert, rsa_key) = pki.rsa_server();
    let rsa_block = tls_block_with(&rsa_cert, &rsa_key, "");
    let broker = Broker::with_config(&rsa_block);
    let logged = |broker: &Broker, line: &str| broker.startup_log.iter().any(|l| l.contains(line));
    assert!(
        logged(
            &broker,
            "TLS handshakes run on the shards' blocking threads (RSA key)"
        ),
        "{:?}",
        broker.startup_log
    );
    let clients = one_client_per_shard(&broker, || trusting(&pki)).await;
    delivered_in_order(&clients[0], &clients[1], "by-key.rsa", 20, 100).await;

    let path = broker.config_path().expect("config file").to_path_buf();
    std::fs::write(&path, pki.tls_block("")).expect("rewrite config");
    broker.signal(libc::SIGHUP);
    broker
        .wait_log("TLS handshakes run on the shards (ECDSA key)", WAIT)
        .expect("the reload re-decides");
    broker
        .wait_log("Reloaded server configuration", WAIT)
        .expect("reload logged");
    let clients = one_client_per_shard(&broker, || trusting(&pki)).await;
    delivered_in_order(&clients[1], &clients[0], "by-key.ecdsa", 20, 100).await;

    let forced = Broker::start_with(&["--tls_offload=false"], Some(&rsa_block));
    assert!(
        logged(
            &forced,
            "TLS handshakes run on the shards (--tls_offload=false)"
        ),
        "{:?}",
        forced.startup_log
    );
    let clients = one_client_per_shard(&forced, || trusting(&pki)).await;
    delivered_in_order(&clients[0], &clients[1], "by-key.forced", 5, 100).await;
}

/// A broken handshake costs that connection only: garbage behind a TLS
/// record header is a handshake error, the connection is closed and listed
/// in `/connz?state=closed` with nats-server's reason, and the next client
/// is served.
#[tokio::test]
async fn a_broken_handshake_closes_that_connection_only() {
    let pki = Pki::new("broken");
    let broker = Broker::start_with(&["-m", "-1"], Some(&pki.tls_block("")));
    let mut hostile = RawClient::connect(broker.addr);
    let mut garbage = vec![0x16, 0x03, 0x01, 0x00, 0x40];
    garbage.extend_from_slice(&[0xAB; 0x40]);
    hostile.send(&garbage);
    let mut rest = Vec::new();
    let _ = std::io::Read::read_to_end(&mut hostile.stream, &mut rest);
    assert!(
        rest.is_empty() || rest[0] == 0x15,
        "at most a TLS alert, got {rest:?}"
    );
    broker
        .wait_log("TLS handshake error:", WAIT)
        .expect("handshake error logged");
    let client = connect(&broker, trusting(&pki)).await.expect("next client");
    client.flush().await.expect("served");
    // The close is recorded when the connection's tasks end, just after
    // the socket closed: ask until it is there.
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let closed = monitor_json(&broker, "/connz?state=closed");
        let reasons: Vec<String> = closed["connections"]
            .as_array()
            .expect("connections")
            .iter()
            .filter_map(|c| c["reason"].as_str().map(str::to_string))
            .collect();
        if !reasons.is_empty() {
            assert_eq!(reasons, ["TLS Handshake Failure"], "{closed}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no closed connection listed"
        );
    }
}

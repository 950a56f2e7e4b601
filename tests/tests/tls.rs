//! HTTPS with a CA the test makes (openssl): curl and hvac verify the
//! server against it, a renewed certificate is served without a restart,
//! and with `client_ca_file` only clients holding a certificate from that
//! CA get an answer.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use coffer_e2e::python::python;
use coffer_e2e::{Server, TlsClient};

fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A CA (`ca.pem`, `ca.key`) in `dir`.
fn make_ca(dir: &Path) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=coffer test CA",
        ],
    );
}

/// A certificate `{name}.pem` with key `{name}.key`, issued by the CA, for
/// `extension` (a subjectAltName or an extendedKeyUsage).
fn issue(dir: &Path, name: &str, extension: &str) -> (PathBuf, PathBuf) {
    let subject = format!("/CN={name}");
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
            "-subj",
            &subject,
        ],
    );
    std::fs::write(dir.join(format!("{name}.ext")), extension).unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            &format!("{name}.pem"),
            "-extfile",
            &format!("{name}.ext"),
        ],
    );
    (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
    )
}

fn curl(args: &[&str]) -> (bool, String) {
    let output = Command::new("curl")
        .args(["-sS", "--max-time", "5"])
        .args(args)
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr),
    )
}

/// The PEM certificate the server presents, as Python's ssl sees it.
fn served_certificate(port: &str) -> String {
    let script = format!("import ssl; print(ssl.get_server_certificate(('127.0.0.1', {port})))");
    let output = Command::new(python())
        .args(["-c", &script])
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

fn tls_section(cert: &Path, key: &Path, client_ca: Option<&Path>) -> String {
    let mut section = format!(
        "[tls]\ncert_file = {:?}\nkey_file = {:?}\n",
        cert.display().to_string(),
        key.display().to_string()
    );
    if let Some(ca) = client_ca {
        section.push_str(&format!(
            "client_ca_file = {:?}\n",
            ca.display().to_string()
        ));
    }
    section
}

#[tokio::test]
async fn clients_verify_the_server_and_a_renewed_certificate_is_served_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    std::fs::create_dir_all(&pki).unwrap();
    make_ca(&pki);
    let (cert, key) = issue(&pki, "server", "subjectAltName=IP:127.0.0.1,DNS:localhost");
    let ca = std::fs::read(pki.join("ca.pem")).unwrap();
    let server = Server::start_tls(
        &dir.path().join("data"),
        &tls_section(&cert, &key, None),
        TlsClient {
            ca_pem: ca,
            identity_pem: None,
        },
    );
    let ca_file = pki.join("ca.pem");
    let health = format!("{}/v1/sys/health", server.addr);
    let (ok, said) = curl(&["--cacert", ca_file.to_str().unwrap(), &health]);
    assert!(ok && said.contains("\"status\":\"ok\""), "{said}");
    let (ok, _) = curl(&[&health]);
    assert!(
        !ok,
        "a client that does not trust the CA refuses the server"
    );
    let (ok, _) = curl(&[&health.replace("https://", "http://")]);
    assert!(!ok, "plain HTTP is not served");
    server.put("tls/db", "hunter2").await;
    server.assert_reads("tls/db", "hunter2").await;
    let output = Command::new(coffer_e2e::server::coffer_binary())
        .args(["secret", "get", "tls", "db"])
        .env("COFFER_ADDR", &server.addr)
        .env("COFFER_TOKEN", &server.token)
        .env("COFFER_CACERT", &ca_file)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "hunter2",
        "the CLI trusts COFFER_CACERT"
    );

    let hvac = "import hvac, sys; c = hvac.Client(url=sys.argv[1], token=sys.argv[2], verify=sys.argv[3]); \
         print(c.secrets.kv.v2.read_secret_version(path='db', mount_point='tls', raise_on_deleted_version=True)['data']['data']['value'])";
    let output = Command::new(python())
        .args([
            "-c",
            hvac,
            &server.addr,
            &server.token,
            ca_file.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "hunter2",
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    // Renew: new key and certificate written over the old files.
    let port = server.addr.rsplit(':').next().unwrap().to_owned();
    let before = served_certificate(&port);
    let (renewed_cert, renewed_key) = issue(&pki, "renewed", "subjectAltName=IP:127.0.0.1");
    std::fs::copy(&renewed_key, &key).unwrap();
    std::fs::copy(&renewed_cert, &cert).unwrap();
    let renewed = std::fs::read_to_string(&renewed_cert).unwrap();
    let started = Instant::now();
    loop {
        let now = served_certificate(&port);
        if now != before && renewed.contains(now.lines().nth(1).unwrap_or("-")) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the renewed certificate was not served"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    server.assert_reads("tls/db", "hunter2").await;

    // A broken renewal keeps the working certificate.
    std::fs::write(&cert, "not a certificate").unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    server.assert_reads("tls/db", "hunter2").await;
    assert!(server.log().contains("do not load"), "{}", server.log());
}

#[tokio::test]
async fn mutual_tls_answers_only_clients_with_a_certificate_from_the_ca() {
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    std::fs::create_dir_all(&pki).unwrap();
    make_ca(&pki);
    let (cert, key) = issue(&pki, "server", "subjectAltName=IP:127.0.0.1");
    let (client_cert, client_key) = issue(&pki, "client", "extendedKeyUsage=clientAuth");
    let ca_file = pki.join("ca.pem");
    let identity = [
        std::fs::read(&client_cert).unwrap(),
        std::fs::read(&client_key).unwrap(),
    ]
    .concat();
    let server = Server::start_tls(
        &dir.path().join("data"),
        &tls_section(&cert, &key, Some(&ca_file)),
        TlsClient {
            ca_pem: std::fs::read(&ca_file).unwrap(),
            identity_pem: Some(identity),
        },
    );
    let health = format!("{}/v1/sys/health", server.addr);
    let ca = ca_file.to_str().unwrap();
    let (ok, said) = curl(&["--cacert", ca, &health]);
    assert!(!ok, "no client certificate, no answer: {said}");
    let (ok, said) = curl(&[
        "--cacert",
        ca,
        "--cert",
        client_cert.to_str().unwrap(),
        "--key",
        client_key.to_str().unwrap(),
        &health,
    ]);
    assert!(ok && said.contains("\"status\":\"ok\""), "{said}");

    // A certificate from another CA is refused too.
    let other = dir.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    make_ca(&other);
    let (stranger_cert, stranger_key) = issue(&other, "client", "extendedKeyUsage=clientAuth");
    let (ok, _) = curl(&[
        "--cacert",
        ca,
        "--cert",
        stranger_cert.to_str().unwrap(),
        "--key",
        stranger_key.to_str().unwrap(),
        &health,
    ]);
    assert!(!ok);
    server.put("mtls/x", "y").await;
    server.assert_reads("mtls/x", "y").await;

    let cli = |identity: Option<(&Path, &Path)>| {
        let mut command = Command::new(coffer_e2e::server::coffer_binary());
        command
            .args(["secret", "get", "mtls", "x"])
            .env("COFFER_ADDR", &server.addr)
            .env("COFFER_TOKEN", &server.token)
            .env("COFFER_CACERT", &ca_file);
        if let Some((cert, key)) = identity {
            command
                .env("COFFER_CLIENT_CERT", cert)
                .env("COFFER_CLIENT_KEY", key);
        }
        command.output().unwrap()
    };
    let output = cli(Some((&client_cert, &client_key)));
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "y",
        "the CLI presents COFFER_CLIENT_CERT: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!cli(None).status.success(), "no certificate, no answer");
}

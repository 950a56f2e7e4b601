//! The host's SigV4 signer agrees with botocore's (AWS's own Python
//! signer) on the requests coffer's backends send, and on a few it does
//! not send but could: a query string, an encoded path, a session token.

#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::process::{Command, Stdio};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use coffer_crypto::sigv4::{self, Credentials, Scope};
use coffer_e2e::python::{python, support_script};
use serde_json::json;
use zeroize::Zeroizing;

/// botocore's `Authorization` header for the request.
fn botocore(
    method: &str,
    path_and_query: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    service: &str,
    credentials: &Credentials,
    amz_date: &str,
) -> (String, Option<String>) {
    let spec = json!({
        "method": method,
        "url": format!("https://example.amazonaws.com{path_and_query}"),
        "headers": headers.iter().map(|(n, v)| (n.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
        "body_b64": STANDARD.encode(body),
        "region": "eu-west-1",
        "service": service,
        "access_key_id": credentials.access_key_id,
        "secret_access_key": credentials.secret_access_key.as_str(),
        "session_token": credentials.session_token.as_ref().map(|t| t.as_str()),
        "amz_date": amz_date,
    });
    let mut child = Command::new(python())
        .arg(support_script("aws_tool.py"))
        .arg("sign")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(spec.to_string().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).unwrap();
    let mut lines = text.lines();
    let authorization = lines.next().unwrap().to_owned();
    (authorization, lines.next().map(str::to_owned))
}

/// One request to sign.
struct Case<'a> {
    method: &'a str,
    path_and_query: &'a str,
    headers: &'a [(&'a str, &'a str)],
    body: &'a [u8],
    service: &'a str,
}

#[test]
fn the_host_signs_as_botocore_does() {
    let mut credentials = Credentials {
        access_key_id: "AKIDEXAMPLE".to_owned(),
        secret_access_key: Zeroizing::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".to_owned()),
        session_token: None,
    };
    let amz_date = "20261202T081500Z";
    let get_item =
        br#"{"TableName":"coffer","Key":{"ns":{"S":"coffer"},"k":{"S":"secrets/app/db"}}}"#;
    let dynamodb = [
        ("content-type", "application/x-amz-json-1.0"),
        ("x-amz-target", "DynamoDB_20120810.GetItem"),
    ];
    let kms = [
        ("content-type", "application/x-amz-json-1.1"),
        ("x-amz-target", "TrentService.Encrypt"),
    ];
    let cases = [
        Case {
            method: "POST",
            path_and_query: "/",
            headers: &dynamodb,
            body: get_item,
            service: "dynamodb",
        },
        Case {
            method: "POST",
            path_and_query: "/",
            headers: &kms,
            body: br#"{"KeyId":"alias/coffer","Plaintext":"AAAA"}"#,
            service: "kms",
        },
        Case {
            method: "GET",
            path_and_query: "/?Version=2010-05-08&Action=ListUsers",
            headers: &[],
            body: b"",
            service: "iam",
        },
        Case {
            method: "GET",
            path_and_query: "/a%20b/c",
            headers: &[("x-custom", "  spaced   value ")],
            body: b"",
            service: "execute-api",
        },
    ];
    for session_token in [None, Some("FQoGZXIvYXdzEXAMPLETOKEN")] {
        credentials.session_token = session_token.map(|t| Zeroizing::new(t.to_owned()));
        for Case {
            method,
            path_and_query,
            headers,
            body,
            service,
        } in &cases
        {
            let (path, query) = path_and_query
                .split_once('?')
                .unwrap_or((path_and_query, ""));
            let mut signed: Vec<(String, String)> = headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect();
            signed.push(("host".to_owned(), "example.amazonaws.com".to_owned()));
            let request = sigv4::Request {
                method,
                path,
                query,
                headers: &signed,
                body,
            };
            let scope = Scope {
                region: "eu-west-1".to_owned(),
                service: service.to_string(),
            };
            let ours = sigv4::sign(&request, &scope, &credentials, amz_date);
            let authorization = ours
                .headers
                .iter()
                .find(|(n, _)| *n == "authorization")
                .map(|(_, v)| v.to_string())
                .unwrap();
            let (theirs, _) = botocore(
                method,
                path_and_query,
                headers,
                body,
                service,
                &credentials,
                amz_date,
            );
            assert_eq!(
                authorization, theirs,
                "{method} {path_and_query} for {service}, token {session_token:?}"
            );
        }
    }
}

//! Tokens and policies: every request is allowed exactly when the token's
//! policy says so, a refusal reveals nothing, and tokens can be created
//! (never with more rights than their creator), listed, revoked and expire.

#![allow(clippy::unwrap_used)]

use coffer_e2e::Server;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn create_token(server: &Server, as_token: &str, body: Value) -> (StatusCode, Value) {
    server
        .call_as(as_token, Method::POST, "/v1/auth/tokens", Some(body))
        .await
}

async fn mint(server: &Server, body: Value) -> String {
    let (status, answer) = create_token(server, &server.token, body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    answer["token"].as_str().unwrap().to_owned()
}

/// What each test token may do: (namespace capabilities per namespace, sys, tokens).
struct Grant {
    name: &'static str,
    token: String,
    caps: fn(&str) -> &'static [&'static str],
    sys: bool,
    tokens: bool,
    audit: bool,
}

#[tokio::test]
async fn each_request_is_allowed_exactly_when_the_policy_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "");
    let namespaces = ["payments-prod", "payments-eu", "orders", "other"];
    for ns in namespaces {
        server.put(&format!("{ns}/existing"), "seeded").await;
    }

    let grants = vec![
        Grant {
            name: "admin",
            token: server.token.clone(),
            caps: |_| &["read", "write", "list", "delete"],
            sys: true,
            tokens: true,
            audit: true,
        },
        Grant {
            name: "operator",
            token: mint(&server, json!({"name": "ops", "role": "operator"})).await,
            caps: |_| &[],
            sys: true,
            tokens: false,
            audit: true,
        },
        Grant {
            name: "payments reader",
            token: mint(
                &server,
                json!({"name": "payments", "rules": [{"namespaces": "payments-*", "capabilities": ["read", "list"]}]}),
            )
            .await,
            caps: |ns| if ns.starts_with("payments-") { &["read", "list"] } else { &[] },
            sys: false,
            tokens: false,
            audit: false,
        },
        Grant {
            name: "orders writer",
            token: mint(
                &server,
                json!({"name": "orders", "rules": [{"namespaces": "orders", "capabilities": ["write", "delete"]}]}),
            )
            .await,
            caps: |ns| if ns == "orders" { &["write", "delete"] } else { &[] },
            sys: false,
            tokens: false,
            audit: false,
        },
        Grant {
            name: "nothing",
            token: mint(&server, json!({"name": "nothing"})).await,
            caps: |_| &[],
            sys: false,
            tokens: false,
            audit: false,
        },
    ];

    let forbidden = |status: StatusCode, body: &Value, what: &str| {
        assert_eq!(status, StatusCode::FORBIDDEN, "{what}: {body}");
        assert_eq!(body["error"]["code"], "forbidden", "{what}");
    };
    for grant in &grants {
        let token = grant.token.as_str();
        for ns in namespaces {
            let allowed = |cap: &str| (grant.caps)(ns).contains(&cap);
            let what = |endpoint: &str| format!("{} {endpoint} {ns}", grant.name);

            let (status, body) = server
                .call_as(
                    token,
                    Method::GET,
                    &format!("/v1/secrets/{ns}/existing"),
                    None,
                )
                .await;
            let (missing_status, missing_body) = server
                .call_as(
                    token,
                    Method::GET,
                    &format!("/v1/secrets/{ns}/never-written"),
                    None,
                )
                .await;
            if allowed("read") {
                assert_eq!(
                    (status, body["value"].as_str()),
                    (StatusCode::OK, Some("seeded")),
                    "{}",
                    what("read")
                );
                assert_eq!(
                    missing_status,
                    StatusCode::NOT_FOUND,
                    "{}",
                    what("read missing")
                );
            } else {
                forbidden(status, &body, &what("read"));
                assert_eq!(
                    (missing_status, &missing_body),
                    (status, &body),
                    "a refusal must not reveal existence"
                );
            }

            let (status, body) = server
                .call_as(
                    token,
                    Method::PUT,
                    &format!("/v1/secrets/{ns}/written"),
                    Some(json!({"value": "v"})),
                )
                .await;
            if allowed("write") {
                assert_eq!(status, StatusCode::OK, "{}", what("write"));
            } else {
                forbidden(status, &body, &what("write"));
            }

            let (status, body) = server
                .call_as(token, Method::GET, &format!("/v1/secrets/{ns}"), None)
                .await;
            if allowed("list") {
                assert_eq!(status, StatusCode::OK, "{}", what("list"));
            } else {
                forbidden(status, &body, &what("list"));
            }

            let victim = format!("{ns}/victim-{}", grant.name.replace(' ', "-"));
            server.put(&victim, "doomed").await;
            let (status, body) = server
                .call_as(
                    token,
                    Method::DELETE,
                    &format!("/v1/secrets/{victim}"),
                    None,
                )
                .await;
            if allowed("delete") {
                assert_eq!(status, StatusCode::NO_CONTENT, "{}", what("delete"));
            } else {
                forbidden(status, &body, &what("delete"));
                let (_, still) = server.get(&victim).await;
                assert_eq!(still["value"], "doomed", "a refused delete changes nothing");
            }
        }
        let admin_endpoints = [
            ("sys", "/v1/sys/plugins", grant.sys),
            ("audit", "/v1/audit?limit=1", grant.audit),
            ("tokens", "/v1/auth/tokens", grant.tokens),
        ];
        for (what, path, allowed) in admin_endpoints {
            let (status, body) = server.call_as(token, Method::GET, path, None).await;
            let what = format!("{} {what}", grant.name);
            if allowed {
                assert_eq!(status, StatusCode::OK, "{what}");
            } else {
                forbidden(status, &body, &what);
            }
        }
    }
}

#[tokio::test]
async fn tokens_are_created_listed_revoked_and_expire() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "");
    server.put("payments-prod/db", "secret").await;

    // A token manager may hand out only what it holds itself.
    let manager = mint(
        &server,
        json!({"name": "manager", "admin": ["tokens:manage"],
               "rules": [{"namespaces": "payments-*", "capabilities": ["read"]}]}),
    )
    .await;
    let (status, _) = create_token(
        &server,
        &manager,
        json!({"name": "escalate", "role": "admin"}),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = create_token(
        &server,
        &manager,
        json!({"name": "wider", "rules": [{"namespaces": "*", "capabilities": ["read"]}]}),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, narrower) = create_token(
        &server,
        &manager,
        json!({"name": "reader", "rules": [{"namespaces": "payments-prod", "capabilities": ["read"]}]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{narrower}");
    let reader = narrower["token"].as_str().unwrap().to_owned();
    let reader_id = narrower["id"].as_str().unwrap().to_owned();
    assert!(
        reader.starts_with("cft_") && reader.len() >= 47,
        "256 random bits"
    );

    let (_, listed) = server.call(Method::GET, "/v1/auth/tokens", None).await;
    let names: Vec<&str> = listed["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"reader") && names.contains(&"root"),
        "{listed}"
    );
    assert!(
        !listed.to_string().contains(&reader),
        "listings never show tokens"
    );
    assert!(
        listed["tokens"][0].get("hash").is_none(),
        "listings never show hashes"
    );

    let (status, _) = server
        .call_as(&reader, Method::GET, "/v1/secrets/payments-prod/db", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = server
        .call(
            Method::DELETE,
            &format!("/v1/auth/tokens/{reader_id}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = server
        .call_as(&reader, Method::GET, "/v1/secrets/payments-prod/db", None)
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unauthorized"))
    );
    let (status, _) = server
        .call(
            Method::DELETE,
            &format!("/v1/auth/tokens/{reader_id}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let short = mint(
        &server,
        json!({"name": "short", "ttl_seconds": 1, "rules": [{"namespaces": "payments-prod", "capabilities": ["read"]}]}),
    )
    .await;
    let (status, _) = server
        .call_as(&short, Method::GET, "/v1/secrets/payments-prod/db", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    let (status, _) = server
        .call_as(&short, Method::GET, "/v1/secrets/payments-prod/db", None)
        .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "an expired token is refused"
    );

    let (status, body) = create_token(
        &server,
        &server.token,
        json!({"name": "bad", "rules": [{"namespaces": "a/b", "capabilities": ["read"]}]}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        !server.log().contains(&reader),
        "tokens never reach the log"
    );
}

#[tokio::test]
async fn the_token_tree_bounds_expiry_revocation_and_what_a_manager_may_touch() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), "");
    for ns in ["payments-prod", "payments2", "payments"] {
        server.put(&format!("{ns}/db"), "v").await;
    }
    let manager = mint(
        &server,
        json!({"name": "manager", "admin": ["tokens:manage"], "ttl_seconds": 3600,
               "rules": [{"namespaces": "payments*", "capabilities": ["read"]}]}),
    )
    .await;
    // A child asks for ten years and gets no more than its parent's hour.
    let (status, child) = create_token(
        &server,
        &manager,
        json!({"name": "child", "admin": ["tokens:manage"], "ttl_seconds": 315_000_000u64,
               "rules": [{"namespaces": "payments-prod", "capabilities": ["read"]}]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{child}");
    let (_, listed) = server.call(Method::GET, "/v1/auth/tokens", None).await;
    let expiry = |name: &str| {
        listed["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == name)
            .unwrap()["expires_at"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert!(expiry("child") <= expiry("manager"), "{listed}");
    let child_token = child["token"].as_str().unwrap().to_owned();
    let (_, grandchild) = create_token(
        &server,
        &child_token,
        json!({"name": "grandchild", "rules": [{"namespaces": "payments-prod", "capabilities": ["read"]}]}),
    )
    .await;
    let grandchild = grandchild["token"].as_str().unwrap().to_owned();

    // `payments*` covers payments and payments-prod, not payments2.
    for (ns, expected) in [
        ("payments", StatusCode::OK),
        ("payments-prod", StatusCode::OK),
        ("payments2", StatusCode::FORBIDDEN),
    ] {
        let (status, _) = server
            .call_as(&manager, Method::GET, &format!("/v1/secrets/{ns}/db"), None)
            .await;
        assert_eq!(status, expected, "{ns}");
    }

    // A narrow manager sees and revokes only what it covers.
    let broad = mint(
        &server,
        json!({"name": "broad", "rules": [{"namespaces": "*", "capabilities": ["read"]}]}),
    )
    .await;
    let (_, seen) = server
        .call_as(&child_token, Method::GET, "/v1/auth/tokens", None)
        .await;
    let names: Vec<&str> = seen["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"grandchild"), "{seen}");
    for hidden in ["root", "manager", "broad"] {
        assert!(
            !names.contains(&hidden),
            "{hidden} listed to a narrower manager: {seen}"
        );
    }
    let (_, everyone) = server.call(Method::GET, "/v1/auth/tokens", None).await;
    let id_of = |name: &str| {
        everyone["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == name)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    for broader in ["broad", "root", "manager"] {
        let (status, _) = server
            .call_as(
                &child_token,
                Method::DELETE,
                &format!("/v1/auth/tokens/{}", id_of(broader)),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "revoked {broader}");
    }
    let (status, _) = server
        .call_as(&broad, Method::GET, "/v1/secrets/orders/x", None)
        .await;
    assert_ne!(status, StatusCode::UNAUTHORIZED, "broad still works");

    // Revoking the manager revokes everything it made, to the last level.
    let (status, _) = server
        .call(
            Method::DELETE,
            &format!("/v1/auth/tokens/{}", id_of("manager")),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    for token in [&manager, &child_token, &grandchild] {
        let (status, _) = server
            .call_as(token, Method::GET, "/v1/secrets/payments-prod/db", None)
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
}

//! What each route does, as the router declares it: an [`Action`] names
//! the request in the audit trail and in metrics, says whether it changes
//! state, and carries the right it takes ([`Requirement`]). The audit
//! layer and the handlers read it; nothing re-parses a path to find it.

use axum::http::Method;

use crate::auth::{Admin, Capability};
use crate::secrets::{SecretOperation, split_operation};

/// The right a request takes before its handler runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Requirement {
    /// No token: health, liveness, readiness, the API description.
    Open,
    /// Any valid token; the handler decides the rest.
    Authenticated,
    /// A capability on the namespace the path names.
    Namespace(Capability),
    /// An administrative capability.
    Admin(Admin),
}

macro_rules! actions {
    ($($(#[$doc:meta])* $variant:ident => $name:literal, $requirement:expr, $changes:literal;)*) => {
        /// Every request the API serves, named as the audit trail names it.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Action {
            $($(#[$doc])* $variant,)*
        }

        impl Action {
            /// Every action, for tests and documentation.
            #[cfg(test)]
            pub const ALL: &'static [Action] = &[$(Action::$variant,)*];

            /// The name in audit records, metrics and `[audit]` filters.
            pub fn name(self) -> &'static str {
                match self {
                    $(Action::$variant => $name,)*
                }
            }

            /// The right the request takes.
            pub fn requirement(self) -> Requirement {
                match self {
                    $(Action::$variant => $requirement,)*
                }
            }

            /// Whether the request may change stored state: such requests
            /// get an audit record before they run as well as after.
            pub fn changes_state(self) -> bool {
                match self {
                    $(Action::$variant => $changes,)*
                }
            }
        }
    };
}

actions! {
    SecretList => "secret.list", Requirement::Namespace(Capability::List), false;
    SecretRead => "secret.read", Requirement::Namespace(Capability::Read), false;
    SecretWrite => "secret.write", Requirement::Namespace(Capability::Write), true;
    SecretDelete => "secret.delete", Requirement::Namespace(Capability::Delete), true;
    SecretMetadataRead => "secret.metadata.read", Requirement::Namespace(Capability::Read), false;
    SecretMetadataWrite => "secret.metadata.write", Requirement::Namespace(Capability::Write), true;
    SecretPurge => "secret.purge", Requirement::Namespace(Capability::Destroy), true;
    // Who may hide versions may bring them back.
    SecretUndelete => "secret.undelete", Requirement::Namespace(Capability::Delete), true;
    SecretDestroy => "secret.destroy", Requirement::Namespace(Capability::Destroy), true;
    SecretSubkeys => "secret.subkeys", Requirement::Namespace(Capability::Read), false;
    /// A method the secret path does not take (`GET …/destroy`).
    SecretUnknown => "secret.unknown", Requirement::Authenticated, false;
    KvConfig => "kv.config", Requirement::Namespace(Capability::Read), false;
    TokenList => "token.list", Requirement::Admin(Admin::TokensManage), false;
    TokenCreate => "token.create", Requirement::Admin(Admin::TokensManage), true;
    TokenRevoke => "token.revoke", Requirement::Admin(Admin::TokensManage), true;
    TokenLookupSelf => "token.lookup_self", Requirement::Authenticated, false;
    KeysList => "keys.list", Requirement::Admin(Admin::KeysRead), false;
    KeysShow => "keys.show", Requirement::Admin(Admin::KeysRead), false;
    KeysRotate => "keys.rotate", Requirement::Admin(Admin::KeysManage), true;
    KeysReencrypt => "keys.reencrypt", Requirement::Admin(Admin::KeysManage), true;
    KeysImport => "keys.import", Requirement::Admin(Admin::KeysManage), true;
    KeysDeprecate => "keys.deprecate", Requirement::Admin(Admin::KeysManage), true;
    KeysInactivate => "keys.inactivate", Requirement::Admin(Admin::KeysManage), true;
    KeysDestroy => "keys.destroy", Requirement::Admin(Admin::KeysManage), true;
    KeysExport => "keys.export", Requirement::Admin(Admin::KeysManage), true;
    KekStatus => "kek.status", Requirement::Admin(Admin::KeysRead), false;
    KekRotate => "kek.rotate", Requirement::Admin(Admin::KeysManage), true;
    KekRewrap => "kek.rewrap", Requirement::Admin(Admin::KeysManage), true;
    KekReload => "kek.reload", Requirement::Admin(Admin::KeysManage), true;
    /// The key clients seal requests to: public, but handed to token holders.
    TransportKey => "transport.key", Requirement::Authenticated, false;
    TransportRotate => "transport.rotate", Requirement::Admin(Admin::KeysManage), true;
    JanitorRun => "janitor.run", Requirement::Admin(Admin::KeysManage), true;
    SysHealth => "sys.health", Requirement::Open, false;
    SysOpenApi => "sys.openapi", Requirement::Open, false;
    /// Open instead when `[metrics] unauthenticated`.
    SysMetrics => "sys.metrics", Requirement::Admin(Admin::Sys), false;
    SysPlugins => "sys.plugins", Requirement::Admin(Admin::Sys), false;
    SysPluginsReload => "sys.plugins.reload", Requirement::Admin(Admin::Sys), false;
    SysMigrate => "sys.migrate", Requirement::Admin(Admin::Sys), false;
    SysMigrateStatus => "sys.migrate.status", Requirement::Admin(Admin::Sys), false;
    SysMounts => "sys.mounts", Requirement::Admin(Admin::KeysRead), false;
    SysMountsLookup => "sys.mounts.lookup", Requirement::Authenticated, false;
    AuditRead => "audit.read", Requirement::Admin(Admin::AuditRead), false;
    AuditVerify => "audit.verify", Requirement::Admin(Admin::AuditRead), false;
    AuditHash => "audit.hash", Requirement::Admin(Admin::AuditRead), false;
    /// A path no route takes.
    Unknown => "unknown", Requirement::Open, false;
}

/// How a route finds its action: most routes are one action per method;
/// a few paths address different operations by their last segment or
/// their query.
#[derive(Clone, Copy, Debug)]
pub enum Resolve {
    Fixed(Action),
    /// `/v1/secrets/{namespace}/{*name}`: the value, or the operation a
    /// reserved last segment names ([`split_operation`]).
    NativeSecret,
    /// `/v1/{mount}/metadata/{*path}`: `LIST` or `GET ?list=true` list.
    VaultMetadata,
}

impl Resolve {
    /// The action of a request with this method and query, and the
    /// secret's name when the path's last segment is an operation.
    pub fn action(self, method: &Method, query: &str, name: Option<&str>) -> Action {
        match self {
            Resolve::Fixed(action) => action,
            Resolve::NativeSecret => {
                let operation = name.map_or(SecretOperation::Value, |n| split_operation(n).1);
                native_secret(method, operation)
            }
            Resolve::VaultMetadata => {
                let listing = query.split('&').any(|pair| pair == "list=true");
                match method.as_str() {
                    "LIST" => Action::SecretList,
                    "GET" if listing => Action::SecretList,
                    "GET" => Action::SecretMetadataRead,
                    "PUT" | "POST" => Action::SecretMetadataWrite,
                    "DELETE" => Action::SecretPurge,
                    _ => Action::SecretUnknown,
                }
            }
        }
    }
}

fn native_secret(method: &Method, operation: SecretOperation) -> Action {
    match (method, operation) {
        (&Method::GET, SecretOperation::Value) => Action::SecretRead,
        (&Method::PUT | &Method::POST, SecretOperation::Value) => Action::SecretWrite,
        (&Method::DELETE, SecretOperation::Value) => Action::SecretDelete,
        (&Method::GET, SecretOperation::Metadata) => Action::SecretMetadataRead,
        (&Method::PUT | &Method::POST, SecretOperation::Metadata) => Action::SecretMetadataWrite,
        (&Method::DELETE, SecretOperation::Metadata) => Action::SecretPurge,
        (&Method::POST, SecretOperation::Undelete) => Action::SecretUndelete,
        (&Method::POST, SecretOperation::Destroy) => Action::SecretDestroy,
        _ => Action::SecretUnknown,
    }
}

/// What a request is and what it names, taken from the route's
/// parameters: a request extension for handlers, a response extension for
/// the audit layer.
#[derive(Clone, Debug)]
pub struct Target {
    pub action: Action,
    pub namespace: Option<String>,
    /// A secret's name (or any path under a mount): sensitive, recorded
    /// as an HMAC.
    pub secret: Option<String>,
    /// A public part of the path (a token or key id), recorded as it is
    /// when short and plain.
    pub public: Option<String>,
}

impl Target {
    /// The target of a request `resolve` routed, from the route's
    /// (decoded) parameters.
    pub fn of<'a>(
        resolve: Resolve,
        method: &Method,
        query: &str,
        params: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Target {
        let mut target = Target::unknown(None);
        let mut native_name = None;
        for (key, value) in params {
            match key {
                "namespace" | "mount" => target.namespace = Some(value.to_owned()),
                "path" => target.secret = Some(value.to_owned()),
                "name" => {
                    target.secret = Some(split_operation(value).0.to_owned());
                    native_name = Some(value);
                }
                "id" => target.public = Some(value.to_owned()),
                _ => {}
            }
        }
        target.action = resolve.action(method, query, native_name);
        target
    }

    /// A request no route took; its path is recorded as an HMAC.
    pub fn unknown(path: Option<String>) -> Target {
        Target {
            action: Action::Unknown,
            namespace: None,
            secret: path,
            public: None,
        }
    }

    /// The secret's name; empty when the route names none.
    pub fn name(&self) -> &str {
        self.secret.as_deref().unwrap_or_default()
    }

    /// The namespace; empty when the route names none.
    pub fn namespace(&self) -> &str {
        self.namespace.as_deref().unwrap_or_default()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_changes_are_audited_first() {
        let mut names: Vec<&str> = Action::ALL.iter().map(|a| a.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Action::ALL.len());
        for action in Action::ALL {
            let reads = action.name().ends_with(".read")
                || action.name().ends_with(".list")
                || action.name().ends_with(".show")
                || action.name().ends_with(".status");
            if reads {
                assert!(!action.changes_state(), "{action:?}");
            }
        }
    }

    #[test]
    fn a_secret_path_resolves_by_method_and_last_segment() {
        let target = |method: Method, name: &str| {
            Target::of(
                Resolve::NativeSecret,
                &method,
                "",
                [("namespace", "pay"), ("name", name)],
            )
        };
        for (method, name, action) in [
            (Method::GET, "db/pass", Action::SecretRead),
            (Method::PUT, "db/pass", Action::SecretWrite),
            (Method::DELETE, "db/pass", Action::SecretDelete),
            (Method::GET, "db/pass/metadata", Action::SecretMetadataRead),
            (
                Method::POST,
                "db/pass/metadata",
                Action::SecretMetadataWrite,
            ),
            (Method::DELETE, "db/pass/metadata", Action::SecretPurge),
            (Method::POST, "db/pass/undelete", Action::SecretUndelete),
            (Method::POST, "db/pass/destroy", Action::SecretDestroy),
            (Method::GET, "db/pass/destroy", Action::SecretUnknown),
        ] {
            let target = target(method, name);
            assert_eq!(
                (target.action, target.namespace(), target.name()),
                (action, "pay", "db/pass"),
                "{name}"
            );
        }
    }

    #[test]
    fn a_vault_metadata_path_lists_when_asked() {
        let action = |method: &[u8], query: &str| {
            Resolve::VaultMetadata.action(&Method::from_bytes(method).unwrap(), query, None)
        };
        assert_eq!(action(b"LIST", ""), Action::SecretList);
        assert_eq!(action(b"GET", "list=true"), Action::SecretList);
        assert_eq!(action(b"GET", ""), Action::SecretMetadataRead);
        assert_eq!(action(b"DELETE", ""), Action::SecretPurge);
        assert_eq!(action(b"PATCH", ""), Action::SecretUnknown);
    }
}

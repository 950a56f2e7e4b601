//! What a token may do: capabilities on namespace patterns, plus
//! administrative capabilities. Everything not granted is denied.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What a token may do with secrets in a namespace.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Capability {
    Read,
    Write,
    List,
    Delete,
    Destroy,
}

/// Administrative capabilities, independent of namespaces.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
pub enum Admin {
    /// View keys, their status and usage; never secret values.
    #[serde(rename = "keys:read")]
    KeysRead,
    /// Rotate, deprecate, inactivate, destroy, export and import keys.
    #[serde(rename = "keys:manage")]
    KeysManage,
    #[serde(rename = "audit:read")]
    AuditRead,
    #[serde(rename = "tokens:manage")]
    TokensManage,
    /// Plugins, metrics and other server internals.
    #[serde(rename = "sys")]
    Sys,
}

/// A namespace pattern. The grammar:
///
/// | pattern      | matches                                                        |
/// |--------------|----------------------------------------------------------------|
/// | `*`          | every namespace                                                |
/// | `payments`   | exactly `payments`                                             |
/// | `payments-*` | every namespace starting with `payments-` (a `*` after `-`, `.` or `_`) |
/// | `payments*`  | `payments` itself and `payments-…`, `payments.…`, `payments_…`, but not `payments2` |
///
/// A `*` may only end a pattern. A `*` right after a name never runs on
/// into a longer name: `payments*` granted on `payments` must not also
/// grant `payments2`. To grant that too, name it (`payments2*`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Pattern(String);

/// What may follow a name inside a longer namespace of its family.
const SEPARATORS: [char; 3] = ['-', '.', '_'];

/// The namespaces a pattern stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Span<'a> {
    All,
    Exact(&'a str),
    /// Every namespace starting with this (which ends with a separator).
    StartingWith(&'a str),
    /// This namespace and those continuing it after a separator.
    Family(&'a str),
}

impl Pattern {
    fn span(&self) -> Span<'_> {
        match self.0.strip_suffix('*') {
            None => Span::Exact(&self.0),
            Some("") => Span::All,
            Some(prefix) if prefix.ends_with(SEPARATORS) => Span::StartingWith(prefix),
            Some(name) => Span::Family(name),
        }
    }

    pub fn matches(&self, namespace: &str) -> bool {
        match self.span() {
            Span::All => true,
            Span::Exact(name) => namespace == name,
            Span::StartingWith(prefix) => namespace.starts_with(prefix),
            Span::Family(name) => in_family(namespace, name),
        }
    }
}

/// Whether `namespace` is `name` or continues it after a separator.
fn in_family(namespace: &str, name: &str) -> bool {
    namespace
        .strip_prefix(name)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(SEPARATORS))
}

impl TryFrom<String> for Pattern {
    type Error = String;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        let body = text.strip_suffix('*').unwrap_or(&text);
        let valid = body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
        if text.is_empty() || !valid || text.len() > 65 {
            return Err(format!(
                "namespace pattern `{text}` must be a namespace, optionally ending in * (like payments-*)"
            ));
        }
        Ok(Pattern(text))
    }
}

impl From<Pattern> for String {
    fn from(pattern: Pattern) -> String {
        pattern.0
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Capabilities on the namespaces a pattern matches.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// A namespace, or a prefix ending in `*`.
    #[schema(value_type = String)]
    pub namespaces: Pattern,
    pub capabilities: BTreeSet<Capability>,
}

/// Everything a token is granted.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    #[serde(default)]
    pub rules: Vec<Rule>,
    #[serde(default)]
    pub admin: BTreeSet<Admin>,
    /// Values this token writes and reads must cross the wire sealed
    /// (HPKE): plaintext writes and reads are refused, and so is the
    /// Vault-compatible API, for every namespace.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub require_sealed: bool,
}

/// The built-in roles.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Everything.
    Admin,
    /// Keys, audit and sys, but no secret values and no tokens.
    Operator,
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "admin" => Ok(Role::Admin),
            "operator" => Ok(Role::Operator),
            other => Err(format!("unknown role `{other}` (admin or operator)")),
        }
    }
}

const ALL_CAPABILITIES: [Capability; 5] = [
    Capability::Read,
    Capability::Write,
    Capability::List,
    Capability::Delete,
    Capability::Destroy,
];

impl Role {
    pub fn policy(self) -> Policy {
        match self {
            Role::Admin => Policy {
                rules: vec![Rule {
                    namespaces: Pattern("*".to_owned()),
                    capabilities: ALL_CAPABILITIES.into(),
                }],
                admin: [
                    Admin::KeysRead,
                    Admin::KeysManage,
                    Admin::AuditRead,
                    Admin::TokensManage,
                    Admin::Sys,
                ]
                .into(),
                require_sealed: false,
            },
            Role::Operator => Policy {
                rules: Vec::new(),
                admin: [
                    Admin::KeysRead,
                    Admin::KeysManage,
                    Admin::AuditRead,
                    Admin::Sys,
                ]
                .into(),
                require_sealed: false,
            },
        }
    }
}

impl Policy {
    /// Whether `capability` is granted on `namespace`.
    pub fn allows(&self, capability: Capability, namespace: &str) -> bool {
        self.rules.iter().any(|rule| {
            rule.capabilities.contains(&capability) && rule.namespaces.matches(namespace)
        })
    }

    /// Whether the administrative capability is granted.
    pub fn allows_admin(&self, admin: Admin) -> bool {
        self.admin.contains(&admin)
    }
}

impl Pattern {
    /// Whether every namespace `other` matches, this matches too.
    fn covers(&self, other: &Pattern) -> bool {
        match (self.span(), other.span()) {
            (Span::All, _) => true,
            (_, Span::All) => false,
            (_, Span::Exact(name)) => self.matches(name),
            (Span::Exact(_), _) => false,
            // Everything in the family of `q`, or starting with `q`, starts with `q`.
            (Span::StartingWith(p), Span::StartingWith(q) | Span::Family(q)) => q.starts_with(p),
            // `q` ends with a separator, so whatever starts with it continues
            // `p` after a separator when `q` does.
            (Span::Family(p), Span::StartingWith(q)) => q
                .strip_prefix(p)
                .is_some_and(|rest| rest.starts_with(SEPARATORS)),
            (Span::Family(p), Span::Family(q)) => in_family(q, p),
        }
    }
}

impl Policy {
    /// Whether everything `other` grants, this grants too: a token may only
    /// create tokens with at most its own rights.
    pub fn covers(&self, other: &Policy) -> bool {
        let admin = other.admin.is_subset(&self.admin);
        let rules = other.rules.iter().all(|wanted| {
            wanted.capabilities.iter().all(|capability| {
                self.rules.iter().any(|mine| {
                    mine.capabilities.contains(capability)
                        && mine.namespaces.covers(&wanted.namespaces)
                })
            })
        });
        admin && rules
    }
}

/// Parses a CLI rule such as `payments-*:read,list`.
impl FromStr for Rule {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (pattern, capabilities) = text.split_once(':').ok_or_else(|| {
            format!("rule `{text}` must look like NAMESPACE-PATTERN:CAPABILITY[,CAPABILITY…]")
        })?;
        let capabilities = capabilities
            .split(',')
            .map(|c| serde_json::from_value(serde_json::Value::String(c.trim().to_owned())))
            .collect::<Result<BTreeSet<Capability>, _>>()
            .map_err(|_| {
                format!("rule `{text}`: capabilities are read, write, list, delete, destroy")
            })?;
        Ok(Rule {
            namespaces: Pattern::try_from(pattern.to_owned())?,
            capabilities,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn rule(text: &str) -> Rule {
        text.parse().unwrap()
    }

    #[test]
    fn a_star_after_a_name_never_runs_into_a_longer_name() {
        let family = Pattern::try_from("payments*".to_owned()).unwrap();
        for yes in ["payments", "payments-prod", "payments.eu", "payments_x"] {
            assert!(family.matches(yes), "{yes}");
        }
        for no in ["payments2", "paymentsx", "payment", "orders"] {
            assert!(!family.matches(no), "{no}");
        }
        let pattern = |p: &str| Pattern::try_from(p.to_owned()).unwrap();
        assert!(pattern("payments*").covers(&pattern("payments-*")));
        assert!(pattern("payments*").covers(&pattern("payments-eu*")));
        assert!(!pattern("payments*").covers(&pattern("payments2")));
        assert!(!pattern("payments*").covers(&pattern("payments2*")));
        assert!(!pattern("payments-*").covers(&pattern("payments*")));
        assert!(pattern("pay*").covers(&pattern("pay-ments*")));
        assert!(!pattern("pay*").covers(&pattern("payments*")));
        assert!(pattern("p-*").covers(&pattern("p-x*")));
    }

    #[test]
    fn patterns_match_exactly_or_by_prefix() {
        let glob = Pattern::try_from("payments-*".to_owned()).unwrap();
        assert!(glob.matches("payments-prod") && glob.matches("payments-"));
        assert!(!glob.matches("payment") && !glob.matches("orders"));
        let exact = Pattern::try_from("orders".to_owned()).unwrap();
        assert!(exact.matches("orders") && !exact.matches("orders-2"));
        assert!(
            Pattern::try_from("*".to_owned())
                .unwrap()
                .matches("anything")
        );
        for bad in ["", "a*b", "pay/ments", "**"] {
            assert!(Pattern::try_from(bad.to_owned()).is_err(), "{bad}");
        }
    }

    #[test]
    fn everything_not_granted_is_denied() {
        let policy = Policy {
            rules: vec![rule("payments-*:read,list")],
            ..Policy::default()
        };
        assert!(policy.allows(Capability::Read, "payments-prod"));
        assert!(!policy.allows(Capability::Write, "payments-prod"));
        assert!(!policy.allows(Capability::Read, "orders"));
        assert!(!policy.allows_admin(Admin::KeysRead));
        assert!(!Policy::default().allows(Capability::Read, "x"));
    }

    #[test]
    fn the_operator_role_reads_no_secrets() {
        let operator = Role::Operator.policy();
        assert!(operator.allows_admin(Admin::KeysManage));
        assert!(!operator.allows_admin(Admin::TokensManage));
        for capability in ALL_CAPABILITIES {
            assert!(!operator.allows(capability, "payments"));
        }
        assert!(Role::Admin.policy().allows(Capability::Destroy, "anything"));
    }

    #[test]
    fn a_policy_covers_only_narrower_policies() {
        let manager = Policy {
            rules: vec![rule("payments-*:read,write")],
            admin: [Admin::TokensManage].into(),
            ..Policy::default()
        };
        let narrower = Policy {
            rules: vec![rule("payments-prod:read"), rule("payments-eu-*:write")],
            ..Policy::default()
        };
        assert!(manager.covers(&narrower));
        assert!(!manager.covers(&Policy {
            rules: vec![rule("payments-*:delete")],
            ..Policy::default()
        }));
        assert!(!manager.covers(&Policy {
            rules: vec![rule("*:read")],
            ..Policy::default()
        }));
        assert!(!manager.covers(&Policy {
            rules: vec![rule("orders:read")],
            ..Policy::default()
        }));
        assert!(!manager.covers(&Role::Operator.policy()));
        assert!(Role::Admin.policy().covers(&Role::Operator.policy()));
    }

    #[test]
    fn rules_parse_from_the_command_line() {
        assert_eq!(
            rule("orders:write").capabilities,
            [Capability::Write].into()
        );
        assert!("orders".parse::<Rule>().is_err());
        assert!("orders:fly".parse::<Rule>().is_err());
    }

    #[test]
    fn policies_round_trip_through_json() {
        let policy = Role::Admin.policy();
        let json = serde_json::to_string(&policy).unwrap();
        assert!(json.contains("\"keys:read\""), "{json}");
        assert_eq!(serde_json::from_str::<Policy>(&json).unwrap(), policy);
    }
}

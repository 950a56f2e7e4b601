//! A storage plugin that misbehaves on request: the key passed to `get`
//! picks the misbehaviour. The runtime's tests use it to prove that a loop,
//! a memory bomb, a panic or an escape attempt fails only that call.
//!
//! The last `/`-separated segment of a key picks the behaviour: `loop`,
//! `sleep`, `oom`, `panic`, `read-file`, `read-env`, `env:<name>` (that
//! variable's value, as the plugin sees it), `connect:<addr>`, `sql`,
//! `time` (seconds since the epoch, as the plugin sees them), `calls` (calls
//! this instance has served); `sql:<statement>` runs the
//! statement on its granted database. Keys the config lists as
//! `fixture:<key>` return that value (so a server can find its token);
//! other keys with a `/` do not exist, and keys without one echo themselves.

use std::cell::Cell;
use std::io::Read;

use coffer_sdk::Error;
use coffer_sdk::storage::{Entry, Expected, Page, Storage};

struct Hostile;

thread_local! {
    static CALLS: Cell<u64> = const { Cell::new(0) };
}

fn escaped(what: &str) -> Result<Option<Entry>, Error> {
    Ok(Some(Entry {
        value: format!("escaped: {what}").into_bytes(),
        revision: 0,
    }))
}

impl Storage for Hostile {
    fn open() -> Result<Self, Error> {
        Ok(Hostile)
    }

    fn get(&self, key: &str) -> Result<Option<Entry>, Error> {
        let calls = CALLS.with(|c| {
            c.set(c.get() + 1);
            c.get()
        });
        if let Some(statement) = key.strip_prefix("sql:") {
            return match coffer_sdk::sql::execute(statement, &[]) {
                Ok(_) => escaped(&format!("ran {statement}")),
                Err(e) => Err(e),
            };
        }
        if let Some(value) = coffer_sdk::config::get(&format!("fixture:{key}")) {
            return Ok(Some(Entry {
                value: value.into_bytes(),
                revision: 1,
            }));
        }
        let behaviour = key.rsplit('/').next().unwrap_or(key);
        match behaviour {
            "loop" => {
                let mut x: u64 = 0;
                loop {
                    x = std::hint::black_box(x.wrapping_add(1));
                }
            }
            "sleep" => {
                std::thread::sleep(std::time::Duration::from_secs(3600));
                Ok(None)
            }
            "oom" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "panic" => panic!("hostile guest panics on purpose"),
            "read-file" => {
                let mut text = String::new();
                match std::fs::File::open("/etc/passwd")
                    .and_then(|mut f| f.read_to_string(&mut text))
                {
                    Ok(_) => escaped("read /etc/passwd"),
                    Err(e) => Err(Error::Denied(e.to_string())),
                }
            }
            "read-env" => match std::env::vars().next() {
                Some((name, _)) => escaped(&format!("environment variable {name}")),
                None => Err(Error::Denied("no environment".to_owned())),
            },
            b if b.starts_with("env:") => match std::env::var(&b["env:".len()..]) {
                Ok(value) => Ok(Some(Entry {
                    value: value.into_bytes(),
                    revision: 1,
                })),
                Err(e) => Err(Error::Denied(e.to_string())),
            },
            b if b.starts_with("connect:") => {
                match std::net::TcpStream::connect(&b["connect:".len()..]) {
                    Ok(_) => escaped("opened a TCP connection"),
                    Err(e) => Err(Error::Denied(e.to_string())),
                }
            }
            "sql" => match coffer_sdk::sql::execute("SELECT 1", &[]) {
                Ok(_) => escaped("ran SQL without a grant"),
                Err(e) => Err(e),
            },
            "time" => {
                let since_epoch = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default();
                Ok(Some(Entry {
                    value: since_epoch.as_secs().to_string().into_bytes(),
                    revision: 1,
                }))
            }
            "calls" => Ok(Some(Entry {
                value: calls.to_string().into_bytes(),
                revision: 1,
            })),
            _ if key.contains('/') => Ok(None),
            _ => Ok(Some(Entry {
                value: key.as_bytes().to_vec(),
                revision: 1,
            })),
        }
    }

    fn put(&self, _key: &str, _value: Vec<u8>, _expected: Expected) -> Result<u64, Error> {
        Err(Error::Denied("read-only".to_owned()))
    }

    fn delete(&self, _key: &str, _expected: Expected) -> Result<(), Error> {
        Err(Error::Denied("read-only".to_owned()))
    }

    fn list(&self, prefix: &str, _after: Option<&str>, _limit: u32) -> Result<Page, Error> {
        let keys = coffer_sdk::config::entries()
            .into_iter()
            .filter_map(|(k, _)| k.strip_prefix("fixture:").map(str::to_owned))
            .filter(|k| k.starts_with(prefix))
            .collect();
        Ok(Page { keys, next: None })
    }
}

coffer_sdk::export_storage!(Hostile);

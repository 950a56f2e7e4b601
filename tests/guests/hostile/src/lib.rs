//! A storage plugin that misbehaves on request. The runtime's and the
//! server's tests use it to prove that a loop, a memory bomb, a panic, an
//! escape attempt, a log flood or a lying listing fails only what it
//! touches.
//!
//! Given a database (`[storage.sql]`), it is an honest key-value store on
//! table `hostile_kv` — so a real server can run on it — except where asked
//! to misbehave. The last `/`-separated segment of a key read with `get`
//! picks a misbehaviour: `loop`, `sleep`, `oom`, `panic`, `read-file`,
//! `read-env`, `env:<name>` (that variable's value, as the plugin sees
//! it), `connect:<addr>`, `time` (seconds since the epoch, as the plugin
//! sees them), `calls` (calls this instance has served), `log-flood`
//! (20,000 lines of 4 KiB), `forge-log` (an error whose message tries to
//! forge a log line). A key starting `sql:` runs the rest as a statement
//! on the granted database; a key starting `http:` sends the rest as a
//! request through the host — `METHOD path`, then `name: value` header
//! lines — and answers `<status>\n<body>`. Other keys without a `/` echo
//! themselves; without a database, keys with one do not exist.
//!
//! Config `list = "stuck"` makes every listing lie: no keys, and a `next`
//! cursor that never moves. Config `batch` makes `get-many` and `put-many`
//! lie: `short` answers one item fewer than asked, `swap` answers a read
//! with the entries in reverse order (each one another key's record).

use std::cell::Cell;
use std::io::Read;

use coffer_sdk::Error;
use coffer_sdk::http;
use coffer_sdk::sql::{self, Value};
use coffer_sdk::storage::{Entry, Expected, Page, Storage, Write};

struct Hostile {
    /// Whether a database is granted (the honest store lives there).
    database: bool,
    list: Option<String>,
    batch: Option<String>,
}

thread_local! {
    static CALLS: Cell<u64> = const { Cell::new(0) };
}

fn escaped(what: &str) -> Result<Option<Entry>, Error> {
    Ok(Some(Entry {
        value: format!("escaped: {what}").into_bytes(),
        revision: 0,
    }))
}

/// Sends `METHOD path` with the header lines that follow it.
fn send(request: &str) -> Result<Option<Entry>, Error> {
    let mut lines = request.split('\n');
    let (method, path) = lines
        .next()
        .and_then(|line| line.split_once(' '))
        .ok_or_else(|| Error::Invalid("expected `METHOD path`".to_owned()))?;
    let method = match method {
        "GET" => http::Method::Get,
        "POST" => http::Method::Post,
        "PUT" => http::Method::Put,
        "DELETE" => http::Method::Delete,
        other => return Err(Error::Invalid(format!("method {other}"))),
    };
    let mut request = http::Request::new(method, path);
    for line in lines {
        let (name, value) = line.split_once(": ").unwrap_or((line, ""));
        request = request.header(name, value);
    }
    let reply = request.send()?;
    let mut answer = format!("{}\n", reply.status()).into_bytes();
    answer.extend_from_slice(reply.body());
    found(answer)
}

fn found(value: impl Into<Vec<u8>>) -> Result<Option<Entry>, Error> {
    Ok(Some(Entry {
        value: value.into(),
        revision: 1,
    }))
}

impl Storage for Hostile {
    fn open() -> Result<Self, Error> {
        let database = sql::execute(
            "CREATE TABLE IF NOT EXISTS hostile_kv (k TEXT PRIMARY KEY, v BLOB NOT NULL, rev BIGINT NOT NULL)",
            &[],
        )
        .is_ok();
        Ok(Hostile {
            database,
            list: coffer_sdk::config::get("list"),
            batch: coffer_sdk::config::get("batch"),
        })
    }

    fn get(&self, key: &str) -> Result<Option<Entry>, Error> {
        let calls = CALLS.with(|c| {
            c.set(c.get() + 1);
            c.get()
        });
        if let Some(statement) = key.strip_prefix("sql:") {
            return sql::execute(statement, &[]).and_then(|_| escaped(&format!("ran {statement}")));
        }
        if let Some(request) = key.strip_prefix("http:") {
            return send(request);
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
                Ok(value) => found(value),
                Err(e) => Err(Error::Denied(e.to_string())),
            },
            b if b.starts_with("connect:") => {
                match std::net::TcpStream::connect(&b["connect:".len()..]) {
                    Ok(_) => escaped("opened a TCP connection"),
                    Err(e) => Err(Error::Denied(e.to_string())),
                }
            }
            "time" => {
                let since_epoch = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default();
                found(since_epoch.as_secs().to_string())
            }
            "calls" => found(calls.to_string()),
            "forge-log" => Err(Error::Internal(
                "plugin failed\n2026-01-01T00:00:00Z  INFO coffer: FORGED admin token issued \u{1b}[2J"
                    .to_owned(),
            )),
            "log-flood" => {
                let line = "x".repeat(4096);
                for _ in 0..20_000 {
                    coffer_sdk::log::info(&line);
                }
                found("flooded")
            }
            _ if !key.contains('/') => found(key),
            _ if self.database => self.read(key),
            _ => Ok(None),
        }
    }

    fn put(&self, key: &str, value: Vec<u8>, expected: Expected) -> Result<u64, Error> {
        if !self.database {
            return Err(Error::Denied("read-only".to_owned()));
        }
        let current = self.read(key)?.map(|e| e.revision);
        let ok = match expected {
            Expected::Any => true,
            Expected::Absent => current.is_none(),
            Expected::Revision(rev) => current == Some(rev),
        };
        if !ok {
            return Err(Error::Conflict("not at the expected revision".to_owned()));
        }
        let next = current.map_or(1, |r| r + 1);
        let revision = i64::try_from(next).map_err(|_| Error::Internal("revision".to_owned()))?;
        sql::execute(
            "INSERT INTO hostile_kv (k, v, rev) VALUES ($1, $2, $3) \
             ON CONFLICT (k) DO UPDATE SET v = excluded.v, rev = excluded.rev",
            &[
                Value::Text(key.to_owned()),
                Value::Blob(value),
                Value::Integer(revision),
            ],
        )?;
        Ok(next)
    }

    fn delete(&self, key: &str, expected: Expected) -> Result<(), Error> {
        if !self.database {
            return Err(Error::Denied("read-only".to_owned()));
        }
        let current = self.read(key)?.map(|e| e.revision);
        match (expected, current) {
            (_, None) => Err(Error::NotFound),
            (Expected::Revision(rev), Some(found)) if rev != found => {
                Err(Error::Conflict("not at the expected revision".to_owned()))
            }
            _ => sql::execute(
                "DELETE FROM hostile_kv WHERE k = $1",
                &[Value::Text(key.to_owned())],
            )
            .map(drop),
        }
    }

    fn list(&self, prefix: &str, after: Option<&str>, limit: u32) -> Result<Page, Error> {
        if self.list.as_deref() == Some("stuck") {
            return Ok(Page {
                keys: Vec::new(),
                next: Some(prefix.to_owned()),
            });
        }
        if !self.database {
            return Ok(Page {
                keys: Vec::new(),
                next: None,
            });
        }
        let lower = after.filter(|a| *a >= prefix).unwrap_or(prefix);
        let rows = sql::query(
            "SELECT k FROM hostile_kv WHERE k > $1 OR k = $2 ORDER BY k LIMIT $3",
            &[
                Value::Text(lower.to_owned()),
                Value::Text(if after.is_some() {
                    String::new()
                } else {
                    prefix.to_owned()
                }),
                Value::Integer(i64::from(limit) + 1),
            ],
        )?;
        let mut keys: Vec<String> = rows
            .into_iter()
            .filter_map(|row| match row.into_iter().next() {
                Some(Value::Text(key)) => Some(key),
                _ => None,
            })
            .filter(|key| key.starts_with(prefix))
            .collect();
        let more = keys.len() > limit as usize;
        keys.truncate(limit as usize);
        let next = if more { keys.last().cloned() } else { None };
        Ok(Page { keys, next })
    }

    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Entry>>, Error> {
        let mut entries = keys
            .iter()
            .map(|key| self.get(key))
            .collect::<Result<Vec<_>, _>>()?;
        match self.batch.as_deref() {
            Some("short") => {
                entries.pop();
            }
            Some("swap") => entries.reverse(),
            _ => {}
        }
        Ok(entries)
    }

    fn put_many(&self, writes: Vec<Write>) -> Result<Vec<Result<u64, Error>>, Error> {
        let mut answers: Vec<_> = writes
            .into_iter()
            .map(|write| self.put(&write.key, write.value, write.expected))
            .collect();
        if self.batch.as_deref() == Some("short") {
            answers.pop();
        }
        Ok(answers)
    }
}

impl Hostile {
    fn read(&self, key: &str) -> Result<Option<Entry>, Error> {
        let rows = sql::query(
            "SELECT v, rev FROM hostile_kv WHERE k = $1",
            &[Value::Text(key.to_owned())],
        )?;
        match rows.into_iter().next().map(|row| {
            let mut columns = row.into_iter();
            (columns.next(), columns.next())
        }) {
            None => Ok(None),
            Some((Some(Value::Blob(value)), Some(Value::Integer(rev)))) => Ok(Some(Entry {
                value,
                revision: u64::try_from(rev).unwrap_or(0),
            })),
            Some(_) => Err(Error::Internal("unexpected row".to_owned())),
        }
    }
}

coffer_sdk::export_storage!(Hostile);

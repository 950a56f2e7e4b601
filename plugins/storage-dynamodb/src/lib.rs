//! coffer storage on one DynamoDB table, through the host's `http`
//! capability (the host signs with SigV4; no credential is in this
//! plugin's code, config or memory).
//!
//! Config: `table` (required), `namespace` (default `coffer`): the
//! partition key value, so several coffer deployments can share a table),
//! `create_table` (default false; creates the table on demand, for
//! development). Items are `{ns: S, k: S, v: B, rev: N}` under partition
//! key `ns` and sort key `k`, so a prefix listing is one ordered `Query`.
//! Every write is conditional on the revision; a key created anew starts
//! at a random revision, so a key deleted and written again never matches
//! a revision read before. Reads are strongly consistent; a batch of keys
//! is read with `BatchGetItem`, 100 keys per request.

mod api;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use coffer_sdk::Error;
use coffer_sdk::http::{Value, json};
use coffer_sdk::storage::{Entry, Expected, Page, Storage};

use api::Failure;

/// Most queries one listing page makes.
const MAX_QUERIES: usize = 16;

/// Most keys one `BatchGetItem` may ask for.
const BATCH_GET_KEYS: usize = 100;
/// Requests one batch of keys may take while DynamoDB leaves some of them
/// unprocessed (for its rate, or the size of its answer).
const BATCH_GET_ROUNDS: u32 = 8;

/// DynamoDB's largest item, names and values included.
const MAX_ITEM_BYTES: usize = 400 * 1024;
/// What an item spends besides its key and value.
const ITEM_OVERHEAD: usize = 64;

struct DynamoDb {
    table: String,
    namespace: String,
    create_table: bool,
}

fn number(value: &Value) -> Option<u64> {
    value["N"].as_str()?.parse().ok()
}

/// A first revision: random, below 2^52, so adding one never overflows.
fn first_revision() -> u64 {
    coffer_sdk::random::u64() % (1 << 52) + 1
}

impl DynamoDb {
    fn key(&self, key: &str) -> Value {
        json!({ "ns": { "S": self.namespace }, "k": { "S": key } })
    }

    /// Calls `op`, creating the table first when it is missing and the
    /// config allows it.
    fn call(&self, op: &str, body: Value) -> Result<Value, Failure> {
        match api::call(op, &body) {
            Err(Failure::NoTable) if self.create_table => {
                self.create()?;
                api::call(op, &body)
            }
            Err(Failure::NoTable) => Err(Failure::Other(Error::Unavailable(format!(
                "DynamoDB table {} does not exist: create it, or set create_table = true",
                self.table
            )))),
            outcome => outcome,
        }
    }

    /// Creates the table (on demand capacity) and waits until it is active.
    fn create(&self) -> Result<(), Error> {
        let body = json!({
            "TableName": self.table,
            "AttributeDefinitions": [
                { "AttributeName": "ns", "AttributeType": "S" },
                { "AttributeName": "k", "AttributeType": "S" },
            ],
            "KeySchema": [
                { "AttributeName": "ns", "KeyType": "HASH" },
                { "AttributeName": "k", "KeyType": "RANGE" },
            ],
            "BillingMode": "PAY_PER_REQUEST",
        });
        match api::call("CreateTable", &body) {
            Ok(_) => coffer_sdk::log::info(&format!("created DynamoDB table {}", self.table)),
            // Another instance is creating it.
            Err(Failure::Other(Error::Internal(m))) if m.contains("ResourceInUseException") => {}
            Err(failure) => return Err(plain(failure)),
        }
        for _ in 0..50 {
            let described = api::call("DescribeTable", &json!({ "TableName": self.table }));
            if let Ok(answer) = described
                && answer["Table"]["TableStatus"] == "ACTIVE"
            {
                return Ok(());
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        Err(Error::Unavailable(format!(
            "DynamoDB table {} is not active yet",
            self.table
        )))
    }

    /// What a failed condition on `key` means: gone, or at another revision.
    fn refused(old: Option<Value>) -> Error {
        match old.as_ref().and_then(|item| number(&item["rev"])) {
            Some(revision) => Error::Conflict(format!("the key is at revision {revision}")),
            None => Error::NotFound,
        }
    }

    /// Reads up to [`BATCH_GET_KEYS`] distinct keys into `found`, asking
    /// again for what DynamoDB leaves unprocessed.
    fn batch_get(
        &self,
        keys: &[&str],
        found: &mut std::collections::HashMap<String, Entry>,
    ) -> Result<(), Error> {
        let mut pending: Vec<Value> = keys.iter().map(|key| self.key(key)).collect();
        for round in 0..BATCH_GET_ROUNDS {
            let answer = self
                .call(
                    "BatchGetItem",
                    json!({ "RequestItems": { self.table.as_str(): {
                        "Keys": pending,
                        "ConsistentRead": true,
                        "ProjectionExpression": "#k, #v, #rev",
                        "ExpressionAttributeNames": { "#k": "k", "#v": "v", "#rev": "rev" },
                    } } }),
                )
                .map_err(plain)?;
            let items = answer["Responses"][self.table.as_str()]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default();
            for item in items {
                let key = item["k"]["S"]
                    .as_str()
                    .filter(|key| keys.contains(key))
                    .ok_or_else(|| {
                        Error::Internal("BatchGetItem answered a key not asked".to_owned())
                    })?;
                found.insert(key.to_owned(), entry(key, item)?);
            }
            pending = answer["UnprocessedKeys"][self.table.as_str()]["Keys"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            if pending.is_empty() {
                return Ok(());
            }
            // Left for DynamoDB's rate: wait a little before asking again.
            if items.is_empty() {
                std::thread::sleep(std::time::Duration::from_millis(25 << round.min(5)));
            }
        }
        Err(Error::Unavailable(
            "DynamoDB kept keys of a batch unprocessed".to_owned(),
        ))
    }
}

/// The entry an item of key `key` holds.
fn entry(key: &str, item: &Value) -> Result<Entry, Error> {
    let value = item["v"]["B"]
        .as_str()
        .and_then(|v| STANDARD.decode(v).ok());
    match (value, number(&item["rev"])) {
        (Some(value), Some(revision)) => Ok(Entry { value, revision }),
        _ => Err(Error::Internal(format!("{key}: not an item coffer wrote"))),
    }
}

/// A failure as the plugin's error; a failed condition is a conflict.
fn plain(failure: Failure) -> Error {
    match failure {
        Failure::Condition(_) => Error::Conflict("the key changed".to_owned()),
        Failure::NoTable => Error::Unavailable("the DynamoDB table does not exist".to_owned()),
        Failure::Other(error) => error,
    }
}

impl Storage for DynamoDb {
    fn open() -> Result<Self, Error> {
        let namespace = coffer_sdk::config::get("namespace").unwrap_or_else(|| "coffer".to_owned());
        if namespace.is_empty() {
            return Err(Error::Invalid(
                "config key `namespace` must not be empty".to_owned(),
            ));
        }
        Ok(DynamoDb {
            table: coffer_sdk::config::require("table")?,
            namespace,
            create_table: coffer_sdk::config::flag("create_table", false)?,
        })
    }

    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Entry>>, Error> {
        // DynamoDB refuses a request that names one key twice.
        let mut unique: Vec<&str> = keys.iter().map(String::as_str).collect();
        unique.sort_unstable();
        unique.dedup();
        let mut found = std::collections::HashMap::with_capacity(unique.len());
        for chunk in unique.chunks(BATCH_GET_KEYS) {
            match self.batch_get(chunk, &mut found) {
                Ok(()) => {}
                // A batch DynamoDB or the host would not answer whole (an
                // answer over the grant's size, keys left unprocessed):
                // key by key, each read's own error standing.
                Err(_) => {
                    for key in chunk {
                        if let Some(entry) = self.get(key)? {
                            found.insert((*key).to_owned(), entry);
                        }
                    }
                }
            }
        }
        Ok(keys.iter().map(|key| found.get(key).cloned()).collect())
    }

    fn get(&self, key: &str) -> Result<Option<Entry>, Error> {
        let answer = self
            .call(
                "GetItem",
                json!({
                    "TableName": self.table,
                    "Key": self.key(key),
                    "ConsistentRead": true,
                    "ProjectionExpression": "#v, #rev",
                    "ExpressionAttributeNames": { "#v": "v", "#rev": "rev" },
                }),
            )
            .map_err(plain)?;
        let item = &answer["Item"];
        if item.is_null() {
            return Ok(None);
        }
        entry(key, item).map(Some)
    }

    fn put(&self, key: &str, value: Vec<u8>, expected: Expected) -> Result<u64, Error> {
        if value.len() + key.len() + self.namespace.len() + ITEM_OVERHEAD > MAX_ITEM_BYTES {
            return Err(Error::Invalid(format!(
                "a {}-byte value does not fit in a DynamoDB item ({MAX_ITEM_BYTES} bytes at most): \
                 lower max_versions or max_value_bytes",
                value.len()
            )));
        }
        let value = json!({ "B": STANDARD.encode(&value) });
        let start = first_revision();
        let body = match expected {
            Expected::Absent => {
                let mut item = self.key(key);
                item["v"] = value;
                item["rev"] = json!({ "N": start.to_string() });
                let body = json!({
                    "TableName": self.table,
                    "Item": item,
                    "ConditionExpression": "attribute_not_exists(#k)",
                    "ExpressionAttributeNames": { "#k": "k" },
                });
                self.call("PutItem", body).map_err(plain)?;
                return Ok(start);
            }
            Expected::Any => json!({
                "TableName": self.table,
                "Key": self.key(key),
                "UpdateExpression": "SET #v = :v, #rev = if_not_exists(#rev, :start) + :one",
                "ExpressionAttributeNames": { "#v": "v", "#rev": "rev" },
                "ExpressionAttributeValues": {
                    ":v": value, ":start": { "N": start.to_string() }, ":one": { "N": "1" },
                },
                "ReturnValues": "UPDATED_NEW",
            }),
            Expected::Revision(revision) => json!({
                "TableName": self.table,
                "Key": self.key(key),
                "UpdateExpression": "SET #v = :v, #rev = #rev + :one",
                "ConditionExpression": "#rev = :rev",
                "ExpressionAttributeNames": { "#v": "v", "#rev": "rev" },
                "ExpressionAttributeValues": {
                    ":v": value, ":rev": { "N": revision.to_string() }, ":one": { "N": "1" },
                },
                "ReturnValues": "UPDATED_NEW",
            }),
        };
        let answer = self.call("UpdateItem", body).map_err(plain)?;
        number(&answer["Attributes"]["rev"])
            .ok_or_else(|| Error::Internal("the write returned no revision".to_owned()))
    }

    fn delete(&self, key: &str, expected: Expected) -> Result<(), Error> {
        let (condition, values) = match expected {
            Expected::Absent => {
                return match self.get(key)? {
                    None => Ok(()),
                    Some(_) => Err(Error::Conflict("the key exists".to_owned())),
                };
            }
            Expected::Any => ("attribute_exists(#k)", None),
            Expected::Revision(revision) => (
                "#rev = :rev",
                Some(json!({ ":rev": { "N": revision.to_string() } })),
            ),
        };
        let mut body = json!({
            "TableName": self.table,
            "Key": self.key(key),
            "ConditionExpression": condition,
            "ExpressionAttributeNames": if values.is_some() { json!({ "#rev": "rev" }) } else { json!({ "#k": "k" }) },
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        });
        if let Some(values) = values {
            body["ExpressionAttributeValues"] = values;
        }
        match self.call("DeleteItem", body) {
            Ok(_) => Ok(()),
            Err(Failure::Condition(old)) => Err(DynamoDb::refused(old)),
            Err(failure) => Err(plain(failure)),
        }
    }

    fn list(&self, prefix: &str, after: Option<&str>, limit: u32) -> Result<Page, Error> {
        let limit = limit.clamp(1, 1000) as usize;
        // DynamoDB refuses a start key outside the key condition.
        let mut start = match after {
            Some(after) if after.starts_with(prefix) => Some(after.to_owned()),
            Some(after) if after > prefix => {
                return Ok(Page {
                    keys: Vec::new(),
                    next: None,
                });
            }
            _ => None,
        };
        let mut condition = "#ns = :ns".to_owned();
        let mut values = json!({ ":ns": { "S": self.namespace } });
        if !prefix.is_empty() {
            condition.push_str(" AND begins_with(#k, :prefix)");
            values[":prefix"] = json!({ "S": prefix });
        }
        let mut keys = Vec::with_capacity(limit + 1);
        // One key more than asked says whether there is a next page. A
        // query reads at most 1 MB, so filling a page may take several;
        // past MAX_QUERIES the page goes back short, with a cursor.
        for _ in 0..MAX_QUERIES {
            if keys.len() > limit {
                break;
            }
            let mut body = json!({
                "TableName": self.table,
                "KeyConditionExpression": condition,
                "ExpressionAttributeNames": { "#ns": "ns", "#k": "k" },
                "ExpressionAttributeValues": values,
                "ProjectionExpression": "#k",
                "ConsistentRead": true,
                "Limit": limit + 1 - keys.len(),
            });
            if let Some(start) = &start {
                body["ExclusiveStartKey"] = self.key(start);
            }
            let answer = self.call("Query", body).map_err(plain)?;
            let items = answer["Items"].as_array().cloned().unwrap_or_default();
            for item in &items {
                let key = item["k"]["S"]
                    .as_str()
                    .ok_or_else(|| Error::Internal("a listed item has no key".to_owned()))?;
                keys.push(key.to_owned());
            }
            let last = answer["LastEvaluatedKey"]["k"]["S"]
                .as_str()
                .map(str::to_owned);
            if last.is_some() && last <= start {
                return Err(Error::Internal(
                    "DynamoDB's LastEvaluatedKey did not move forward".to_owned(),
                ));
            }
            start = last;
            if start.is_none() {
                break;
            }
        }
        let next = if keys.len() > limit {
            keys.truncate(limit);
            keys.last().cloned()
        } else {
            // Short: the prefix is done (no cursor), or the queries ran
            // out and the listing goes on after the last key read.
            start
        };
        Ok(Page { keys, next })
    }
}

coffer_sdk::export_storage!(DynamoDb);

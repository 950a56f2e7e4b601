//! coffer's root key in AWS KMS, through the host's `http` capability (the
//! host signs with SigV4; no credential is in this plugin's code, config
//! or memory).
//!
//! Config: `key_id` (required): a key id, key ARN, alias name
//! (`alias/coffer`) or alias ARN of a symmetric encryption key. The host's
//! AAD goes into the `EncryptionContext` as its SHA-256 (CloudTrail logs
//! the context: it names no namespace). The key version is one more than
//! the key's rotations (`ListKeyRotations`), so a rotation — on demand or
//! automatic — shows as a new version the host re-wraps onto.

use std::cell::OnceCell;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use coffer_sdk::Error;
use coffer_sdk::aws::{self, Service};
use coffer_sdk::http::{self, Retries, Value, json};
use coffer_sdk::kms::{Description, Kms, Wrapped};
use sha2::{Digest, Sha256};

const KMS: Service = Service {
    name: "KMS",
    target_prefix: "TrentService",
    content_type: "application/x-amz-json-1.1",
};

/// KMS's transient error types beyond throttling.
const TRANSIENT: &[&str] = &["KMSInternalException", "DependencyTimeoutException"];

/// Most pages of rotations read to learn the version (1,000 a page).
const MAX_ROTATION_PAGES: usize = 100;

struct AwsKms {
    key_id: String,
    /// The key's ARN, once described (rotations are listed by id or ARN).
    arn: OnceCell<String>,
}

/// Calls KMS operation `op` once, with KMS's errors mapped to the contract.
fn call_once(op: &str, body: &Value) -> Result<Value, Error> {
    aws::call(&KMS, op, body).map_err(|failure| match failure {
        aws::Failure::Fault(fault)
            if matches!(
                fault.kind.as_str(),
                "InvalidCiphertextException" | "IncorrectKeyException"
            ) =>
        {
            Error::Invalid(fault.detail)
        }
        aws::Failure::Fault(fault)
            if matches!(
                fault.kind.as_str(),
                "DisabledException" | "KMSInvalidStateException"
            ) =>
        {
            Error::Denied(fault.detail)
        }
        aws::Failure::Fault(fault) if fault.kind == "InvalidKeyUsageException" => {
            Error::Invalid(fault.detail)
        }
        failure => failure.error(TRANSIENT),
    })
}

/// Calls KMS operation `op`, retrying transient failures (every operation
/// used here but `RotateKeyOnDemand` may be sent twice).
fn call(op: &str, body: &Value) -> Result<Value, Error> {
    http::with_retries(
        Retries::default(),
        |e| matches!(e, Error::Unavailable(_)),
        || call_once(op, body),
    )
}

/// The encryption context binding the host's AAD.
fn context(aad: &[u8]) -> Value {
    json!({ "coffer-aad": hex::encode(Sha256::digest(aad)) })
}

impl AwsKms {
    fn arn(&self) -> Result<&str, Error> {
        if let Some(arn) = self.arn.get() {
            return Ok(arn);
        }
        let described = call("DescribeKey", &json!({ "KeyId": self.key_id }))?;
        let metadata = &described["KeyMetadata"];
        let arn = metadata["Arn"].as_str().unwrap_or("").to_owned();
        let state = metadata["KeyState"].as_str().unwrap_or("");
        if state != "Enabled" {
            return Err(Error::Denied(format!(
                "KMS key {arn} is {state}, not Enabled"
            )));
        }
        let usage = metadata["KeyUsage"].as_str().unwrap_or("ENCRYPT_DECRYPT");
        if usage != "ENCRYPT_DECRYPT" || metadata["KeySpec"] != "SYMMETRIC_DEFAULT" {
            return Err(Error::Invalid(format!(
                "KMS key {arn} is not a symmetric encryption key"
            )));
        }
        Ok(self.arn.get_or_init(|| arn))
    }

    /// The current key version: one more than the key's rotations.
    fn version(&self) -> Result<u32, Error> {
        let mut rotations = 0usize;
        let mut marker: Option<String> = None;
        for _ in 0..MAX_ROTATION_PAGES {
            let mut body = json!({ "KeyId": self.arn()?, "Limit": 1000 });
            if let Some(marker) = &marker {
                body["Marker"] = json!(marker);
            }
            let page = call("ListKeyRotations", &body)?;
            rotations += page["Rotations"].as_array().map_or(0, Vec::len);
            let next = page["NextMarker"].as_str().map(str::to_owned);
            if page["Truncated"] != json!(true) || next.is_none() {
                return u32::try_from(rotations + 1)
                    .map_err(|_| Error::Internal("too many rotations".to_owned()));
            }
            if next == marker {
                return Err(Error::Internal(
                    "ListKeyRotations gave the same marker twice".to_owned(),
                ));
            }
            marker = next;
        }
        Err(Error::Internal(format!(
            "ListKeyRotations went on for more than {MAX_ROTATION_PAGES} pages"
        )))
    }
}

impl Kms for AwsKms {
    fn open() -> Result<Self, Error> {
        Ok(AwsKms {
            key_id: coffer_sdk::config::require("key_id")?,
            arn: OnceCell::new(),
        })
    }

    fn describe(&self) -> Result<Description, Error> {
        Ok(Description {
            key_name: self.arn()?.to_owned(),
            current_version: self.version()?,
        })
    }

    fn wrap(&self, plaintext: &[u8], aad: &[u8]) -> Result<Wrapped, Error> {
        let body = json!({
            "KeyId": self.arn()?,
            "Plaintext": STANDARD.encode(plaintext),
            "EncryptionContext": context(aad),
        });
        let answer = call("Encrypt", &body)?;
        let blob = answer["CiphertextBlob"]
            .as_str()
            .and_then(|b| STANDARD.decode(b).ok())
            .ok_or_else(|| Error::Internal("KMS gave no CiphertextBlob".to_owned()))?;
        // Read after the encryption: a rotation in between makes the version
        // look newer than the one used, which KMS decrypts all the same.
        Ok(Wrapped {
            blob,
            version: self.version()?,
        })
    }

    fn unwrap(&self, blob: &[u8], aad: &[u8]) -> Result<Vec<u8>, Error> {
        let body = json!({
            "KeyId": self.arn()?,
            "CiphertextBlob": STANDARD.encode(blob),
            "EncryptionContext": context(aad),
        });
        let answer = call("Decrypt", &body)?;
        answer["Plaintext"]
            .as_str()
            .and_then(|p| STANDARD.decode(p).ok())
            .ok_or_else(|| Error::Internal("KMS gave no Plaintext".to_owned()))
    }

    fn rotate(&self) -> Result<Description, Error> {
        let before = self.version()?;
        // Never sent twice: each call starts a rotation, and AWS allows a
        // key only a few on demand.
        call_once("RotateKeyOnDemand", &json!({ "KeyId": self.arn()? }))?;
        // The rotation completes shortly after the call returns.
        for _ in 0..12 {
            let described = self.describe()?;
            if described.current_version > before {
                return Ok(described);
            }
            std::thread::sleep(std::time::Duration::from_millis(250));
        }
        // Not `unavailable`: a retry would start another rotation.
        Err(Error::Internal(
            "KMS accepted the rotation but does not list it yet: do not rotate again; \
             run `coffer kek reload` in a minute to pick up the new version"
                .to_owned(),
        ))
    }
}

coffer_sdk::export_kms!(AwsKms);

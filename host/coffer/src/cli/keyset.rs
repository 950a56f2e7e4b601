//! `coffer keyset create|list|add-key|promote|disable|delete`: edit Google
//! Tink JSON keysets offline, as the tinkey commands of the same names do,
//! so operators need no Java. The primary key can be neither disabled nor
//! deleted. Files are written atomically and readable by their owner only.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use coffer_crypto::Algorithm;
use coffer_crypto::tink::{KeyStatus, TinkKey, TinkKeyset, keyset_to_json, parse_keyset_json};

use crate::keys::fresh_tink_key;
use zeroize::Zeroizing;

#[derive(Subcommand)]
pub enum KeysetCommand {
    /// Write a new keyset of one key.
    Create {
        #[arg(long)]
        out: PathBuf,
        /// AES128_GCM or AES256_GCM.
        #[arg(long = "key-template", default_value = "AES256_GCM")]
        template: String,
    },
    /// Show the keyset's keys (never their material).
    List {
        #[arg(long = "in")]
        input: PathBuf,
    },
    /// Add a new, enabled, non-primary key.
    AddKey {
        #[arg(long = "in")]
        input: PathBuf,
        /// Where to write the result (defaults to the input file).
        #[arg(long)]
        out: Option<PathBuf>,
        #[arg(long = "key-template", default_value = "AES256_GCM")]
        template: String,
    },
    /// Make an enabled key the primary (the one new wraps use).
    Promote(KeyEdit),
    /// Disable a key that is not the primary.
    Disable(KeyEdit),
    /// Remove a key that is not the primary. Whatever it alone wraps
    /// becomes unreadable: re-wrap first.
    Delete(KeyEdit),
}

/// A change to one key of a keyset file.
#[derive(Args)]
pub struct KeyEdit {
    #[arg(long = "in")]
    input: PathBuf,
    /// Where to write the result (defaults to the input file).
    #[arg(long)]
    out: Option<PathBuf>,
    #[arg(long = "key-id")]
    key_id: u32,
}

pub fn run(command: KeysetCommand) -> ExitCode {
    match execute(command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("coffer keyset: {message}");
            ExitCode::from(2)
        }
    }
}

fn execute(command: KeysetCommand) -> Result<(), String> {
    match command {
        KeysetCommand::Create { out, template } => {
            if out.exists() {
                return Err(format!(
                    "{} exists; not overwriting a keyset",
                    out.display()
                ));
            }
            let key = new_key(&template, &[])?;
            let id = key.id;
            write(
                &out,
                &TinkKeyset {
                    primary_key_id: id,
                    keys: vec![key],
                },
            )?;
            eprintln!("created {} with primary key {id}", out.display());
        }
        KeysetCommand::List { input } => {
            let keyset = read(&input)?;
            println!("primary key: {}", keyset.primary_key_id);
            for key in &keyset.keys {
                let primary = if key.id == keyset.primary_key_id {
                    "  (primary)"
                } else {
                    ""
                };
                println!(
                    "key {}  {}  {:?}  output prefix {:?}{primary}",
                    key.id, key.algorithm, key.status, key.output_prefix
                );
            }
        }
        KeysetCommand::AddKey {
            input,
            out,
            template,
        } => {
            let mut keyset = read(&input)?;
            let ids: Vec<u32> = keyset.keys.iter().map(|k| k.id).collect();
            let key = new_key(&template, &ids)?;
            eprintln!("added key {}", key.id);
            keyset.keys.push(key);
            write(out.as_deref().unwrap_or(&input), &keyset)?;
        }
        KeysetCommand::Promote(edit) => edit.apply(|keyset, id| match keyset.get(id) {
            Some(key) if key.status != KeyStatus::Enabled => Err(format!(
                "key {id} is not enabled; only an enabled key can be primary"
            )),
            Some(_) => {
                keyset.primary_key_id = id;
                Ok(())
            }
            None => Err(format!("key {id} is not in the keyset")),
        })?,
        KeysetCommand::Disable(edit) => edit.apply(|keyset, id| {
            refuse_primary(keyset, id, "disable")?;
            let key = keyset
                .keys
                .iter_mut()
                .find(|k| k.id == id)
                .ok_or_else(|| format!("key {id} is not in the keyset"))?;
            key.status = KeyStatus::Disabled;
            Ok(())
        })?,
        KeysetCommand::Delete(edit) => edit.apply(|keyset, id| {
            refuse_primary(keyset, id, "delete")?;
            let before = keyset.keys.len();
            keyset.keys.retain(|k| k.id != id);
            if keyset.keys.len() == before {
                return Err(format!("key {id} is not in the keyset"));
            }
            Ok(())
        })?,
    }
    Ok(())
}

impl KeyEdit {
    /// Reads the keyset, changes key `key_id` with `change`, writes it back.
    fn apply(
        self,
        change: impl FnOnce(&mut TinkKeyset, u32) -> Result<(), String>,
    ) -> Result<(), String> {
        let mut keyset = read(&self.input)?;
        change(&mut keyset, self.key_id)?;
        write(self.out.as_deref().unwrap_or(&self.input), &keyset)
    }
}

fn refuse_primary(keyset: &TinkKeyset, key_id: u32, action: &str) -> Result<(), String> {
    if keyset.primary_key_id == key_id {
        return Err(format!(
            "key {key_id} is the primary key: promote another key before you {action} it"
        ));
    }
    Ok(())
}

fn new_key(template: &str, taken: &[u32]) -> Result<TinkKey, String> {
    let algorithm: Algorithm = template
        .parse()
        .map_err(|_| format!("unknown key template {template} (AES128_GCM or AES256_GCM)"))?;
    Ok(fresh_tink_key(algorithm, taken))
}

fn read(path: &Path) -> Result<TinkKeyset, String> {
    let text = Zeroizing::new(
        std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?,
    );
    parse_keyset_json(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Writes the keyset through a temporary file renamed into place, mode 0600.
fn write(path: &Path, keyset: &TinkKeyset) -> Result<(), String> {
    use std::io::Write;
    let json = Zeroizing::new(keyset_to_json(keyset));
    let tmp = path.with_extension("json.tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let written = options
        .open(&tmp)
        .and_then(|mut file| {
            file.write_all(json.as_bytes())
                .and_then(|()| file.sync_all())
        })
        .and_then(|()| std::fs::rename(&tmp, path));
    written.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("cannot write {}: {e}", path.display())
    })
}

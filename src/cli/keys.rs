//! `docent keys`: create, list and revoke API keys in a data dir. A running server sees the change
//! at once (it reads keys from the same database on every request).

use std::path::Path;

use docent::store::Store;

#[derive(clap::Subcommand)]
pub enum KeysCommand {
    /// Create a key and print its secret (shown once; only its SHA-256 is stored). The first key
    /// turns authentication on: from then on every request needs a key or a signed-in session.
    Create {
        name: String,
        /// Give this key the documents and batches stored before keys existed.
        #[arg(long)]
        claim_unowned: bool,
    },
    /// List keys (never their secrets).
    List,
    /// Revoke a key by id: its requests and sessions stop working at once; its documents stay.
    Revoke { id: String },
}

pub fn run(command: KeysCommand, data_dir: &Path) -> anyhow::Result<()> {
    let store = Store::open(data_dir)?;
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    match command {
        KeysCommand::Create { name, claim_unowned } => {
            let (key, secret) = store.create_key(&name, &now, claim_unowned)?;
            eprintln!("created key {} ({}); its secret follows, shown this once:", key.id, key.name);
            println!("{secret}");
        }
        KeysCommand::List => {
            for k in store.list_keys()? {
                let state = k.revoked_at.map_or_else(|| "active".to_owned(), |t| format!("revoked {t}"));
                println!("{}\t{}\t{}\t{}", k.id, k.name, k.created_at, state);
            }
        }
        KeysCommand::Revoke { id } => {
            if !store.revoke_key(&id, &now)? {
                anyhow::bail!("no key with id {id}");
            }
            eprintln!("revoked key {id}");
        }
    }
    Ok(())
}

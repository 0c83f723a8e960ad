//! `portcullis backup` and `portcullis restore`: one SQLite installation in one file, and a new
//! data folder made from it that serves the same tenant.
//!
//! A backup is a POSIX tar (ustar) archive, so `tar tf` lists it, holding in this order:
//!
//! - `manifest.json`: `format` (`portcullis-backup/1`), `createdDateTime`, `portcullisVersion`,
//!   `publicUrl` (the issuer the tenant's tokens carry: serve the restored folder at the same
//!   address), and `files`, each `{name, bytes, sha256}`;
//! - `portcullis.db`: a consistent copy of the database taken while the server runs
//!   (`portcullis_store::snapshot`), checked with `integrity_check`;
//! - `secret.key`: the key that seals the token signing keys, from `secret_key` or the data
//!   folder's `secret.key`. Without it the copy's signing keys cannot be opened.
//!
//! `bootstrap.json` is left out: the automation application's secret is kept in the database
//! only as a hash, so the copy an operator already holds keeps working against the restored
//! server, and a backup file stolen with it would add a ready-made admin credential to what the
//! thief has to work out.
//!
//! Must never: write a backup or a restored file readable by others (files 0600, folders 0700,
//! created that way), overwrite an existing backup or restore into a folder that holds
//! anything, or leave a restored folder behind that failed a check (the database's
//! `integrity_check`, every file's size and SHA-256 against the manifest, the key's length).

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use portcullis_client::Exit;
use portcullis_store::snapshot::{self, SnapshotError};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::config::{Config, decode_secret_key};

/// The `format` of the manifest this version writes and reads.
pub const FORMAT: &str = "portcullis-backup/1";
const MANIFEST: &str = "manifest.json";
const DATABASE: &str = "portcullis.db";
const SECRET: &str = "secret.key";
/// A manifest is a few hundred bytes; anything near this is not one.
const MAX_MANIFEST: u64 = 64 * 1024;
const BLOCK: usize = 512;

/// Why a backup or a restore did not happen.
#[derive(Debug)]
pub enum BackupError {
    /// The command line, the configuration or a file it names is wrong (exit 2); nothing was
    /// written.
    Usage(String),
    /// The work failed (exit 1): the copy was not sound, a write failed.
    Failed(String),
}

impl std::fmt::Display for BackupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BackupError::Usage(m) | BackupError::Failed(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for BackupError {}

impl BackupError {
    pub fn exit(&self) -> Exit {
        match self {
            BackupError::Usage(_) => Exit::Usage,
            BackupError::Failed(_) => Exit::Refused,
        }
    }
}

/// What PostgreSQL operators do instead, in the words `backup` refuses with.
pub const POSTGRES_ADVICE: &str = "portcullis backup copies the embedded SQLite database; this configuration uses PostgreSQL. \
Back it up with PostgreSQL's tools while the nodes run: `pg_dump --format=custom --file=portcullis.dump DATABASE_URL`, \
and restore with `pg_restore --clean --if-exists --dbname=DATABASE_URL portcullis.dump`. Keep the nodes' secret_key with the dump: \
without it the signing keys in the database cannot be opened.";

/// What `backup` made.
#[derive(Debug)]
pub struct Made {
    pub file: PathBuf,
    pub database_bytes: u64,
    pub public_url: String,
}

/// What `restore` made.
#[derive(Debug)]
pub struct Restored {
    pub data_dir: PathBuf,
    pub database_bytes: u64,
    pub public_url: String,
    pub created: String,
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn sha256_file(path: &Path) -> io::Result<String> {
    let mut hasher = Sha256::new();
    let mut file = File::open(path)?;
    io::copy(&mut file, &mut hasher)?;
    Ok(hex::encode(hasher.finalize()))
}

/// A file only its owner may read, created that way; `create_new` so nothing is overwritten.
fn create_private(path: &Path) -> io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

/// A folder only its owner may enter, created that way.
fn create_private_dir(path: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(path)
}

/// Removes what it names when dropped, unless kept.
struct Cleanup {
    paths: Vec<PathBuf>,
    keep: bool,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        for path in &self.paths {
            if path.is_dir() {
                let _ = std::fs::remove_dir_all(path);
            } else {
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

/// The sealing key in use, as the file `serve` would read: base64 text of 32 bytes.
fn sealing_key(config: &Config) -> Result<String, BackupError> {
    let text = match &config.secret_key {
        Some(text) => text.clone(),
        None => {
            let path = config.data_dir.join(SECRET);
            std::fs::read_to_string(&path).map_err(|e| {
                BackupError::Usage(format!(
                    "cannot read {} ({e}): without the key that seals the signing keys a backup cannot be restored. Is --data-dir the server's data folder?",
                    path.display()
                ))
            })?
        }
    };
    let key = decode_secret_key(&text).map_err(|e| BackupError::Usage(format!("{e:#}")))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(key))
}

/// Copies the running server's database and its sealing key into `file`.
pub fn backup(config: &Config, file: &Path) -> Result<Made, BackupError> {
    if !config.is_sqlite() {
        return Err(BackupError::Usage(POSTGRES_ADVICE.to_string()));
    }
    if file.exists() {
        return Err(BackupError::Usage(format!(
            "{} already exists: a backup never overwrites a file, choose a new name.",
            file.display()
        )));
    }
    let key = sealing_key(config)?;
    let name = file
        .file_name()
        .ok_or_else(|| BackupError::Usage(format!("{} is not a file name", file.display())))?;
    let parent = match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let work = parent.join(format!(
        ".{}.partial-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    create_private_dir(&work)
        .map_err(|e| BackupError::Usage(format!("cannot write in {}: {e}", parent.display())))?;
    let cleanup = Cleanup {
        paths: vec![work.clone()],
        keep: false,
    };
    let copy = work.join(DATABASE);
    let database_bytes =
        snapshot::copy_database(&config.database_url(), &copy).map_err(|e| match e {
            SnapshotError::Missing(path) => BackupError::Usage(format!(
                "there is no database at {}: is --data-dir (or database_url) the server's?",
                path.display()
            )),
            SnapshotError::Unsound(why) => BackupError::Failed(format!(
                "the copy of the database failed its integrity check ({why}); nothing was written"
            )),
            other => BackupError::Failed(format!("cannot copy the database: {other}")),
        })?;
    let failed = |e: io::Error| BackupError::Failed(format!("cannot write the backup: {e}"));
    let manifest = json!({
        "format": FORMAT,
        "createdDateTime": time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        "portcullisVersion": env!("CARGO_PKG_VERSION"),
        "publicUrl": config.public_url(),
        "files": [
            {"name": DATABASE, "bytes": database_bytes, "sha256": sha256_file(&copy).map_err(failed)?},
            {"name": SECRET, "bytes": key.len(), "sha256": sha256_hex(key.as_bytes())},
        ],
    });
    let manifest_bytes = serde_json::to_vec_pretty(&manifest)
        .map_err(io::Error::from)
        .map_err(failed)?;
    let partial = work.join("backup.tar");
    {
        let mut out = BufWriter::new(create_private(&partial).map_err(failed)?);
        tar::append(
            &mut out,
            MANIFEST,
            manifest_bytes.len() as u64,
            &mut &manifest_bytes[..],
        )
        .map_err(failed)?;
        let mut db = File::open(&copy).map_err(failed)?;
        tar::append(&mut out, DATABASE, database_bytes, &mut db).map_err(failed)?;
        tar::append(&mut out, SECRET, key.len() as u64, &mut key.as_bytes()).map_err(failed)?;
        tar::finish(&mut out).map_err(failed)?;
        let file = out.into_inner().map_err(|e| failed(e.into_error()))?;
        file.sync_all().map_err(failed)?;
    }
    // The same folder, so the rename is atomic; hard_link refuses an existing name where a
    // rename would replace it.
    std::fs::hard_link(&partial, file)
        .map_err(|e| BackupError::Usage(format!("cannot write {}: {e}", file.display())))?;
    // The work folder (the copy and the partial archive) goes; the backup stays.
    drop(cleanup);
    Ok(Made {
        file: file.to_path_buf(),
        database_bytes,
        public_url: config.public_url(),
    })
}

/// Whether a folder is missing or empty.
fn empty_or_missing(dir: &Path) -> Result<bool, BackupError> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => Ok(entries.next().is_none()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(BackupError::Usage(format!(
            "cannot read {}: {e}",
            dir.display()
        ))),
    }
}

/// One file the manifest lists.
struct Listed {
    name: String,
    bytes: u64,
    sha256: String,
}

fn listed_files(manifest: &Value) -> Option<Vec<Listed>> {
    manifest["files"]
        .as_array()?
        .iter()
        .map(|f| {
            Some(Listed {
                name: f["name"].as_str()?.to_string(),
                bytes: f["bytes"].as_u64()?,
                sha256: f["sha256"].as_str()?.to_ascii_lowercase(),
            })
        })
        .collect()
}

/// Makes a new data folder from a backup.
pub fn restore(file: &Path, data_dir: &Path) -> Result<Restored, BackupError> {
    if !empty_or_missing(data_dir)? {
        return Err(BackupError::Usage(format!(
            "{} is not empty: restore makes a new data folder, it never writes over one.",
            data_dir.display()
        )));
    }
    let archive = File::open(file)
        .map_err(|e| BackupError::Usage(format!("cannot read {}: {e}", file.display())))?;
    let mut input = BufReader::new(archive);
    let damaged = |why: String| {
        BackupError::Usage(format!(
            "{} is not a complete Portcullis backup ({why}); nothing was restored.",
            file.display()
        ))
    };

    let manifest = match tar::next(&mut input).map_err(|e| damaged(e.to_string()))? {
        Some(entry) if entry.name == MANIFEST && entry.size <= MAX_MANIFEST => {
            let mut bytes = Vec::new();
            tar::read_body(&mut input, entry.size, &mut bytes)
                .map_err(|e| damaged(e.to_string()))?;
            serde_json::from_slice::<Value>(&bytes)
                .map_err(|e| damaged(format!("its manifest is not JSON: {e}")))?
        }
        _ => return Err(damaged(format!("it does not begin with {MANIFEST}"))),
    };
    if manifest["format"] != FORMAT {
        return Err(damaged(format!(
            "its format is {}, this version reads {FORMAT}",
            manifest["format"]
        )));
    }
    let listed = listed_files(&manifest)
        .filter(|l| {
            l.len() == 2
                && l.iter().any(|f| f.name == DATABASE)
                && l.iter().any(|f| f.name == SECRET)
        })
        .ok_or_else(|| damaged("its manifest does not list the database and the key".into()))?;

    let existed = data_dir.exists();
    create_private_dir(data_dir)
        .map_err(|e| BackupError::Usage(format!("cannot create {}: {e}", data_dir.display())))?;
    let mut cleanup = Cleanup {
        paths: if existed {
            Vec::new()
        } else {
            vec![data_dir.to_path_buf()]
        },
        keep: false,
    };
    let mut seen: Vec<PathBuf> = Vec::new();
    while let Some(entry) = tar::next(&mut input).map_err(|e| damaged(e.to_string()))? {
        let Some(expected) = listed.iter().find(|l| l.name == entry.name) else {
            return Err(damaged(format!(
                "it holds '{}', which its manifest does not list",
                entry.name
            )));
        };
        if entry.size != expected.bytes {
            return Err(damaged(format!(
                "{} is {} bytes, the manifest says {}",
                entry.name, entry.size, expected.bytes
            )));
        }
        let partial = data_dir.join(format!(".{}.partial", entry.name));
        if seen.contains(&partial) {
            return Err(damaged(format!("it holds {} twice", entry.name)));
        }
        cleanup.paths.push(partial.clone());
        let out = create_private(&partial)
            .map_err(|e| BackupError::Failed(format!("cannot write {}: {e}", partial.display())))?;
        let mut hashing = HashingWriter {
            inner: BufWriter::new(out),
            hasher: Sha256::new(),
        };
        tar::read_body(&mut input, entry.size, &mut hashing).map_err(|e| damaged(e.to_string()))?;
        hashing
            .inner
            .flush()
            .map_err(|e| BackupError::Failed(format!("cannot write {}: {e}", partial.display())))?;
        if hex::encode(hashing.hasher.finalize()) != expected.sha256 {
            return Err(damaged(format!(
                "{} does not match its checksum",
                entry.name
            )));
        }
        seen.push(partial);
    }
    if seen.len() != listed.len() {
        return Err(damaged(
            "it ends before every file its manifest lists".into(),
        ));
    }

    let database = data_dir.join(format!(".{DATABASE}.partial"));
    snapshot::check_database(&database)
        .map_err(|e| damaged(format!("its database is not sound: {e}")))?;
    let key_text = std::fs::read_to_string(data_dir.join(format!(".{SECRET}.partial")))
        .map_err(|e| damaged(format!("its key cannot be read: {e}")))?;
    decode_secret_key(&key_text).map_err(|e| damaged(format!("its key: {e:#}")))?;
    for name in [DATABASE, SECRET] {
        let from = data_dir.join(format!(".{name}.partial"));
        std::fs::rename(&from, data_dir.join(name)).map_err(|e| {
            BackupError::Failed(format!("cannot write {}: {e}", data_dir.display()))
        })?;
    }
    cleanup.keep = true;
    let database_bytes = listed
        .iter()
        .find(|l| l.name == DATABASE)
        .map(|l| l.bytes)
        .unwrap_or_default();
    Ok(Restored {
        data_dir: data_dir.to_path_buf(),
        database_bytes,
        public_url: manifest["publicUrl"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        created: manifest["createdDateTime"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    })
}

struct HashingWriter<W: Write> {
    inner: W,
    hasher: Sha256,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The few parts of POSIX ustar a backup needs: regular files with short names, owner-only
/// mode, written and read in order.
mod tar {
    use super::BLOCK;
    use std::io::{self, Read, Write};

    /// One entry's header as read.
    pub struct Entry {
        pub name: String,
        pub size: u64,
    }

    fn octal(field: &mut [u8], value: u64) {
        // Digits, then a NUL: the field's width less one digit is the most it holds.
        let digits = field.len() - 1;
        let text = format!("{value:0digits$o}");
        field[..digits].copy_from_slice(text.as_bytes());
        field[digits] = 0;
    }

    fn checksum(header: &[u8; BLOCK]) -> u64 {
        header
            .iter()
            .enumerate()
            .map(|(i, b)| {
                // The checksum field counts as spaces.
                if (148..156).contains(&i) {
                    u64::from(b' ')
                } else {
                    u64::from(*b)
                }
            })
            .sum()
    }

    /// Writes one regular file of `size` bytes read from `body`.
    pub fn append(
        out: &mut impl Write,
        name: &str,
        size: u64,
        body: &mut impl Read,
    ) -> io::Result<()> {
        let mut header = [0u8; BLOCK];
        if name.len() > 99 {
            return Err(io::Error::other("entry name too long"));
        }
        header[..name.len()].copy_from_slice(name.as_bytes());
        octal(&mut header[100..108], 0o600);
        octal(&mut header[108..116], 0);
        octal(&mut header[116..124], 0);
        octal(&mut header[124..136], size);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        octal(&mut header[136..148], now);
        header[156] = b'0';
        header[257..263].copy_from_slice(b"ustar\0");
        header[263..265].copy_from_slice(b"00");
        let sum = checksum(&header);
        let text = format!("{sum:06o}\0 ");
        header[148..156].copy_from_slice(text.as_bytes());
        out.write_all(&header)?;
        let copied = io::copy(&mut body.take(size), out)?;
        if copied != size {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{name} changed while it was written"),
            ));
        }
        let pad = (BLOCK - (size as usize % BLOCK)) % BLOCK;
        out.write_all(&vec![0u8; pad])
    }

    /// The end of the archive: two zero blocks.
    pub fn finish(out: &mut impl Write) -> io::Result<()> {
        out.write_all(&[0u8; BLOCK * 2])?;
        out.flush()
    }

    fn parse_octal(field: &[u8]) -> Option<u64> {
        let text: String = field
            .iter()
            .take_while(|b| **b != 0 && **b != b' ')
            .map(|b| *b as char)
            .collect();
        u64::from_str_radix(text.trim_start(), 8).ok()
    }

    /// The next entry's header, or `None` at the end of the archive.
    pub fn next(input: &mut impl Read) -> io::Result<Option<Entry>> {
        let mut header = [0u8; BLOCK];
        input.read_exact(&mut header).map_err(truncated)?;
        if header.iter().all(|b| *b == 0) {
            return Ok(None);
        }
        let stored = parse_octal(&header[148..156]);
        if stored != Some(checksum(&header)) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "a header's checksum does not match",
            ));
        }
        if &header[257..262] != b"ustar" || header[156] != b'0' {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "an entry is not a plain ustar file",
            ));
        }
        let name_end = header[..100].iter().position(|b| *b == 0).unwrap_or(100);
        let name = String::from_utf8(header[..name_end].to_vec())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "a name is not UTF-8"))?;
        let size = parse_octal(&header[124..136])
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "a size is unreadable"))?;
        Ok(Some(Entry { name, size }))
    }

    /// Copies an entry's `size` bytes to `out` and skips its padding.
    pub fn read_body(input: &mut impl Read, size: u64, out: &mut impl Write) -> io::Result<()> {
        let copied = io::copy(&mut input.take(size), out)?;
        if copied != size {
            return Err(truncated(io::ErrorKind::UnexpectedEof.into()));
        }
        let pad = (BLOCK - (size as usize % BLOCK)) % BLOCK;
        let mut skip = vec![0u8; pad];
        input.read_exact(&mut skip).map_err(truncated)
    }

    fn truncated(e: io::Error) -> io::Error {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            io::Error::new(io::ErrorKind::UnexpectedEof, "the file is truncated")
        } else {
            e
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn entries_read_back_and_damage_is_found() {
            let mut archive = Vec::new();
            append(&mut archive, "a.txt", 5, &mut &b"hello"[..]).unwrap();
            append(&mut archive, "b.bin", 600, &mut &[7u8; 600][..]).unwrap();
            finish(&mut archive).unwrap();
            assert_eq!(archive.len() % BLOCK, 0);

            let mut input = &archive[..];
            let a = next(&mut input).unwrap().unwrap();
            assert_eq!((a.name.as_str(), a.size), ("a.txt", 5));
            let mut body = Vec::new();
            read_body(&mut input, a.size, &mut body).unwrap();
            assert_eq!(body, b"hello");
            let b = next(&mut input).unwrap().unwrap();
            let mut body = Vec::new();
            read_body(&mut input, b.size, &mut body).unwrap();
            assert_eq!(body, vec![7u8; 600]);
            assert!(next(&mut input).unwrap().is_none());

            let mut flipped = archive.clone();
            flipped[3] ^= 1;
            assert!(
                next(&mut &flipped[..]).is_err(),
                "a changed header is found"
            );
            let cut = &archive[..BLOCK + 3];
            let mut input = cut;
            let a = next(&mut input).unwrap().unwrap();
            assert!(read_body(&mut input, a.size, &mut Vec::new()).is_err());
        }
    }
}

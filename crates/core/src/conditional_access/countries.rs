//! The country of an address, for country named locations and the sign-in log: read from a
//! MaxMind-format database (GeoLite2-Country, GeoIP2-Country, or a City database, whose records
//! carry the same `country.iso_code`) that the administrator names in configuration.
//!
//! The composition root reads the file once at start and hands its bytes to
//! [`Countries::from_bytes`], which refuses a file that is not a sound database, so a bad file
//! stops the server rather than quietly turning every country condition off. Without a
//! database every address is of unknown country, which the engine treats as Entra treats an
//! address it cannot map (see `portcullis_policy`'s decisions); the admin pages say so.
//!
//! What it must never do: fetch a database, read a file (the caller does, once), or guess a
//! country for an address the database does not place.

use std::net::IpAddr;
use std::sync::Arc;

use maxminddb::{PathElement, Reader};
use time::OffsetDateTime;

/// The country lookup a server runs with: a database, or none.
#[derive(Clone, Default)]
pub struct Countries(Option<Arc<CountryDatabase>>);

/// A loaded database and what the admin pages show of it.
struct CountryDatabase {
    reader: Reader<Vec<u8>>,
    info: CountryDatabaseInfo,
}

/// What an administrator is told about the database in use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountryDatabaseInfo {
    /// The database's own type, e.g. `GeoLite2-Country`.
    pub database_type: String,
    /// When its publisher built it: country assignments drift, so its age matters.
    pub built: OffsetDateTime,
}

/// Why a file cannot serve as the country database.
#[derive(Debug, thiserror::Error)]
pub enum CountryDatabaseError {
    #[error("not a MaxMind-format database, or a damaged one: {0}")]
    Unreadable(#[from] maxminddb::MaxMindDbError),
    #[error("its build time {0} is not a date")]
    BuildTime(u64),
}

impl Countries {
    /// No database: every address is of unknown country.
    pub fn none() -> Countries {
        Countries(None)
    }

    /// A database from the bytes of its file. The whole file is verified (search tree, data
    /// section, metadata) here, once, so that a lookup during a sign-in never meets a damaged
    /// record.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Countries, CountryDatabaseError> {
        let reader = Reader::from_source(bytes)?;
        reader.verify()?;
        let metadata = reader.metadata();
        let built = i64::try_from(metadata.build_epoch)
            .ok()
            .and_then(|seconds| OffsetDateTime::from_unix_timestamp(seconds).ok())
            .ok_or(CountryDatabaseError::BuildTime(metadata.build_epoch))?;
        let info = CountryDatabaseInfo {
            database_type: metadata.database_type.clone(),
            built,
        };
        Ok(Countries(Some(Arc::new(CountryDatabase { reader, info }))))
    }

    /// The database in use, if any.
    pub fn database(&self) -> Option<&CountryDatabaseInfo> {
        self.0.as_ref().map(|db| &db.info)
    }

    /// The ISO 3166-1 alpha-2 code of the country `ip` is in, in upper case; `None` without a
    /// database, or when the database does not place the address (private ranges, an IPv6
    /// address in an IPv4-only database, a record without a country).
    pub fn country_of(&self, ip: IpAddr) -> Option<String> {
        let db = self.0.as_ref()?;
        let found = db.reader.lookup(ip.to_canonical()).ok()?;
        let code: Option<String> = found
            .decode_path(&[PathElement::Key("country"), PathElement::Key("iso_code")])
            .ok()
            .flatten();
        code.map(|c| c.trim().to_ascii_uppercase())
            .filter(|c| portcullis_policy::location::is_country_code(c))
    }

    /// [`Countries::country_of`] for an address as the request facts carry it.
    pub fn country_of_text(&self, ip: Option<&str>) -> Option<String> {
        self.country_of(ip?.trim().parse().ok()?)
    }
}

impl std::fmt::Debug for Countries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Countries").field(&self.database()).finish()
    }
}

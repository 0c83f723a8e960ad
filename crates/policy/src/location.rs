//! Named locations (`ipNamedLocation`, `countryNamedLocation`) and the helper that says which
//! of them a sign-in's IP address falls in.
//!
//! The Graph shape is a single collection whose members are told apart by `@odata.type`; other
//! location types (for instance a beta compliant-network location) are kept as
//! [`NamedLocation::Other`], and a policy that references one cannot be evaluated (it fails
//! closed rather than reading "not in that location").

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::enums::CountryLookupMethod;
use crate::model::{Extra, is_false, null_as_default};

pub const IP_NAMED_LOCATION: &str = "#microsoft.graph.ipNamedLocation";
pub const COUNTRY_NAMED_LOCATION: &str = "#microsoft.graph.countryNamedLocation";
pub const IPV4_CIDR_RANGE: &str = "#microsoft.graph.iPv4CidrRange";
pub const IPV6_CIDR_RANGE: &str = "#microsoft.graph.iPv6CidrRange";

/// Entra's limit on ranges in one IP named location.
pub const MAX_IP_RANGES: usize = 2000;
/// Entra's limit on IP-based named locations per tenant.
pub const MAX_IP_NAMED_LOCATIONS: usize = 195;
/// A range's mask must be longer than this ("CIDR mask must be > /8").
pub const MIN_PREFIX_EXCLUSIVE: u8 = 8;

/// `namedLocation` and its subtypes.
#[derive(Debug, Clone, PartialEq)]
pub enum NamedLocation {
    Ip(IpNamedLocation),
    Country(CountryNamedLocation),
    /// A location type this engine does not evaluate, kept verbatim.
    Other(Value),
}

/// `ipNamedLocation`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IpNamedLocation {
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub id: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub display_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_date_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified_date_time: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub is_trusted: bool,
    #[serde(default, deserialize_with = "null_as_default")]
    pub ip_ranges: Vec<IpRange>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `iPv4CidrRange` / `iPv6CidrRange`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IpRange {
    #[serde(
        rename = "@odata.type",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub odata_type: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub cidr_address: String,
    #[serde(flatten)]
    pub extra: Extra,
}

impl IpRange {
    pub fn new(cidr: &str) -> Self {
        let odata = if cidr.contains(':') {
            IPV6_CIDR_RANGE
        } else {
            IPV4_CIDR_RANGE
        };
        IpRange {
            odata_type: Some(odata.to_owned()),
            cidr_address: cidr.to_owned(),
            extra: Extra::new(),
        }
    }

    /// The network, checked against Entra's rules.
    pub fn network(&self) -> Result<IpNet, LocationError> {
        let text = self.cidr_address.trim();
        let net: IpNet = text
            .parse()
            .map_err(|_| LocationError::InvalidCidr(self.cidr_address.clone()))?;
        if net.prefix_len() <= MIN_PREFIX_EXCLUSIVE {
            return Err(LocationError::MaskTooShort(self.cidr_address.clone()));
        }
        Ok(net.trunc())
    }
}

/// The ISO 3166-1 alpha-2 codes officially assigned (249), which is what Entra's
/// `countriesAndRegions` takes and what MaxMind-format databases answer with. Written here
/// rather than taken from a crate: the list changes once in years, the engine stays free of
/// dependencies it does not need, and the test below pins its size and order.
pub const COUNTRY_CODES: [&str; 249] = [
    "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX", "AZ",
    "BA", "BB", "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ", "BR", "BS",
    "BT", "BV", "BW", "BY", "BZ", "CA", "CC", "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM", "CN",
    "CO", "CR", "CU", "CV", "CW", "CX", "CY", "CZ", "DE", "DJ", "DK", "DM", "DO", "DZ", "EC", "EE",
    "EG", "EH", "ER", "ES", "ET", "FI", "FJ", "FK", "FM", "FO", "FR", "GA", "GB", "GD", "GE", "GF",
    "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GS", "GT", "GU", "GW", "GY", "HK", "HM",
    "HN", "HR", "HT", "HU", "ID", "IE", "IL", "IM", "IN", "IO", "IQ", "IR", "IS", "IT", "JE", "JM",
    "JO", "JP", "KE", "KG", "KH", "KI", "KM", "KN", "KP", "KR", "KW", "KY", "KZ", "LA", "LB", "LC",
    "LI", "LK", "LR", "LS", "LT", "LU", "LV", "LY", "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK",
    "ML", "MM", "MN", "MO", "MP", "MQ", "MR", "MS", "MT", "MU", "MV", "MW", "MX", "MY", "MZ", "NA",
    "NC", "NE", "NF", "NG", "NI", "NL", "NO", "NP", "NR", "NU", "NZ", "OM", "PA", "PE", "PF", "PG",
    "PH", "PK", "PL", "PM", "PN", "PR", "PS", "PT", "PW", "PY", "QA", "RE", "RO", "RS", "RU", "RW",
    "SA", "SB", "SC", "SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS",
    "ST", "SV", "SX", "SY", "SZ", "TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO",
    "TR", "TT", "TV", "TW", "TZ", "UA", "UG", "UM", "US", "UY", "UZ", "VA", "VC", "VE", "VG", "VI",
    "VN", "VU", "WF", "WS", "YE", "YT", "ZA", "ZM", "ZW",
];

/// Whether `code` is an assigned ISO 3166-1 alpha-2 code, in any letter case (Graph accepts
/// any casing; the engine compares without it).
pub fn is_country_code(code: &str) -> bool {
    code.len() == 2
        && COUNTRY_CODES
            .binary_search(&code.to_ascii_uppercase().as_str())
            .is_ok()
}

/// `countryNamedLocation`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CountryNamedLocation {
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub id: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub display_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_date_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified_date_time: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub countries_and_regions: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country_lookup_method: Option<CountryLookupMethod>,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "is_false"
    )]
    pub include_unknown_countries_and_regions: bool,
    #[serde(flatten)]
    pub extra: Extra,
}

impl CountryNamedLocation {
    /// Country by client IP is evaluable; GPS from the Authenticator app is not available here.
    pub fn is_evaluable(&self) -> bool {
        matches!(
            self.country_lookup_method,
            None | Some(CountryLookupMethod::ClientIpAddress)
        )
    }
}

/// Why a named location is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LocationError {
    #[error("`{0}` is not an IP range in CIDR notation")]
    InvalidCidr(String),
    #[error("`{0}`: the CIDR mask must be longer than /8")]
    MaskTooShort(String),
    #[error("{0} IP ranges exceed the limit of 2000 per named location")]
    TooManyRanges(usize),
    #[error("a named location needs a displayName")]
    MissingDisplayName,
}

impl NamedLocation {
    pub fn id(&self) -> &str {
        match self {
            NamedLocation::Ip(l) => &l.id,
            NamedLocation::Country(l) => &l.id,
            NamedLocation::Other(v) => v.get("id").and_then(Value::as_str).unwrap_or(""),
        }
    }

    pub fn display_name(&self) -> &str {
        match self {
            NamedLocation::Ip(l) => &l.display_name,
            NamedLocation::Country(l) => &l.display_name,
            NamedLocation::Other(v) => v.get("displayName").and_then(Value::as_str).unwrap_or(""),
        }
    }

    /// Only IP locations can be trusted.
    pub fn is_trusted(&self) -> bool {
        matches!(self, NamedLocation::Ip(l) if l.is_trusted)
    }

    /// Whether the engine can decide if a sign-in is in this location.
    pub fn is_evaluable(&self) -> bool {
        match self {
            NamedLocation::Ip(_) => true,
            NamedLocation::Country(c) => c.is_evaluable(),
            NamedLocation::Other(_) => false,
        }
    }

    /// Entra's limits: every range valid CIDR with mask > /8, at most 2000 ranges.
    pub fn validate(&self) -> Result<(), LocationError> {
        match self {
            NamedLocation::Ip(l) => {
                if l.display_name.trim().is_empty() {
                    return Err(LocationError::MissingDisplayName);
                }
                if l.ip_ranges.len() > MAX_IP_RANGES {
                    return Err(LocationError::TooManyRanges(l.ip_ranges.len()));
                }
                l.ip_ranges.iter().try_for_each(|r| r.network().map(drop))
            }
            NamedLocation::Country(l) => {
                if l.display_name.trim().is_empty() {
                    return Err(LocationError::MissingDisplayName);
                }
                Ok(())
            }
            NamedLocation::Other(_) => Ok(()),
        }
    }

    /// Whether a sign-in from `ip` (with its geolocated `country`, if known) is in this
    /// location. Invalid ranges never match; `validate` reports them. A sign-in whose country
    /// is not known is in a country location only if that location includes unknown countries
    /// and regions (see the crate's decisions).
    pub fn contains(&self, ip: IpAddr, country: Option<&str>) -> bool {
        match self {
            NamedLocation::Ip(l) => l
                .ip_ranges
                .iter()
                .filter_map(|r| r.network().ok())
                .any(|net| net.contains(&ip)),
            NamedLocation::Country(l) => {
                if !l.is_evaluable() {
                    return false;
                }
                match country.map(str::trim).filter(|c| !c.is_empty()) {
                    Some(code) => l
                        .countries_and_regions
                        .iter()
                        .any(|c| c.trim().eq_ignore_ascii_case(code)),
                    None => l.include_unknown_countries_and_regions,
                }
            }
            NamedLocation::Other(_) => false,
        }
    }
}

/// The ids of the named locations a sign-in from `ip` falls in, in the order given.
pub fn named_locations_containing(
    ip: IpAddr,
    country: Option<&str>,
    locations: &[NamedLocation],
) -> Vec<String> {
    locations
        .iter()
        .filter(|l| l.contains(ip, country))
        .map(|l| l.id().to_owned())
        .collect()
}

impl Serialize for NamedLocation {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        fn tagged<T: Serialize>(tag: &str, body: &T) -> Result<Value, serde_json::Error> {
            let mut out = serde_json::Map::new();
            out.insert("@odata.type".to_owned(), Value::String(tag.to_owned()));
            if let Value::Object(fields) = serde_json::to_value(body)? {
                for (k, v) in fields {
                    if k != "@odata.type" {
                        out.insert(k, v);
                    }
                }
            }
            Ok(Value::Object(out))
        }
        let value = match self {
            NamedLocation::Ip(l) => tagged(IP_NAMED_LOCATION, l),
            NamedLocation::Country(l) => tagged(COUNTRY_NAMED_LOCATION, l),
            NamedLocation::Other(v) => Ok(v.clone()),
        }
        .map_err(serde::ser::Error::custom)?;
        value.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for NamedLocation {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut value = Value::deserialize(deserializer)?;
        let Value::Object(map) = &mut value else {
            return Err(D::Error::custom("a named location must be a JSON object"));
        };
        let tag = map
            .get("@odata.type")
            .and_then(Value::as_str)
            .map(str::to_owned);
        // Infer the type when the annotation is missing (hand-written files), from the members
        // only one subtype has.
        let kind = match tag.as_deref() {
            Some(t) if t.eq_ignore_ascii_case(IP_NAMED_LOCATION) => Kind::Ip,
            Some(t) if t.eq_ignore_ascii_case(COUNTRY_NAMED_LOCATION) => Kind::Country,
            Some(_) => Kind::Other,
            None if map.contains_key("ipRanges") => Kind::Ip,
            None if map.contains_key("countriesAndRegions") => Kind::Country,
            None => {
                return Err(D::Error::custom(
                    "a named location needs `@odata.type` (ipNamedLocation or countryNamedLocation)",
                ));
            }
        };
        enum Kind {
            Ip,
            Country,
            Other,
        }
        if !matches!(kind, Kind::Other) {
            // Re-added on export from the variant, so it is not kept twice.
            map.remove("@odata.type");
        }
        // Read through a path tracker: the subtype is read from a buffered value, so an error
        // would otherwise lose which member it is about. The message starts with the member's
        // path (`isTrusted: invalid type …`) so that a refusal can name the field.
        fn at_path<E: Error>(error: serde_path_to_error::Error<serde_json::Error>) -> E {
            let path = error.path().to_string();
            if path.is_empty() || path == "." {
                E::custom(error.into_inner())
            } else {
                E::custom(format!("{path}: {}", error.into_inner()))
            }
        }
        match kind {
            Kind::Ip => serde_path_to_error::deserialize::<_, IpNamedLocation>(value)
                .map(NamedLocation::Ip)
                .map_err(at_path),
            Kind::Country => serde_path_to_error::deserialize::<_, CountryNamedLocation>(value)
                .map(NamedLocation::Country)
                .map_err(at_path),
            Kind::Other => Ok(NamedLocation::Other(value)),
        }
    }
}

//! A tiny MaxMind DB (`.mmdb`) writer for tests: a country database made in the test from a
//! list of prefixes and their ISO codes, so no real GeoLite2 file is downloaded or shipped.
//!
//! It writes the format as documented at <https://maxmind.github.io/MaxMind-DB/>: an IPv6
//! search tree (IPv4 prefixes live under `::/96`, where readers look for them) with 32-bit
//! records, the 16-byte separator, a data section holding one `{country: {iso_code}}` map per
//! country, and the metadata map after its marker. It writes only what a country database
//! needs; prefixes must not overlap.
//!
//! What it must never do: serve anything but tests. It is not a general writer: no pointers,
//! no deduplication beyond one record per country, no IPv4 aliases.

use std::collections::BTreeMap;
use std::net::IpAddr;

const METADATA_MARKER: &[u8] = b"\xAB\xCD\xEFMaxMind.com";

/// Where a search-tree record leads.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Record {
    Empty,
    Node(usize),
    /// Offset of a record in the data section.
    Data(usize),
}

/// The bytes of a country database placing each `(prefix, country)`: a CIDR prefix such as
/// `203.0.113.0/24` or `2001:db8:5e::/48` and an ISO 3166-1 alpha-2 code. `build_epoch` is the
/// build time the metadata states (Unix seconds).
pub fn country_database(entries: &[(&str, &str)], build_epoch: u64) -> Vec<u8> {
    // The data section: one map per country, in a stable order.
    let mut data = Vec::new();
    let mut offsets = BTreeMap::new();
    for (_, country) in entries {
        offsets.entry(country.to_string()).or_insert_with(|| {
            let at = data.len();
            map(&mut data, 1);
            string(&mut data, "country");
            map(&mut data, 1);
            string(&mut data, "iso_code");
            string(&mut data, country);
            at
        });
    }
    // The search tree, root first.
    let mut nodes: Vec<[Record; 2]> = vec![[Record::Empty; 2]];
    for (prefix, country) in entries {
        let (bits, length) = prefix_bits(prefix);
        let mut node = 0;
        for depth in 0..length {
            let side = ((bits >> (127 - depth)) & 1) as usize;
            if depth + 1 == length {
                nodes[node][side] = Record::Data(offsets[*country]);
                break;
            }
            node = match nodes[node][side] {
                Record::Node(next) => next,
                Record::Empty => {
                    nodes.push([Record::Empty; 2]);
                    let next = nodes.len() - 1;
                    nodes[node][side] = Record::Node(next);
                    next
                }
                Record::Data(_) => panic!("test database prefixes must not overlap: {prefix}"),
            };
        }
    }
    let node_count = nodes.len();
    let mut out = Vec::new();
    for node in &nodes {
        for record in node {
            let value = match *record {
                Record::Empty => node_count,
                Record::Node(next) => next,
                Record::Data(offset) => node_count + 16 + offset,
            };
            out.extend_from_slice(&u32::try_from(value).expect("a small tree").to_be_bytes());
        }
    }
    out.extend_from_slice(&[0; 16]);
    out.extend_from_slice(&data);
    out.extend_from_slice(METADATA_MARKER);
    map(&mut out, 9);
    string(&mut out, "binary_format_major_version");
    unsigned(&mut out, 5, 2);
    string(&mut out, "binary_format_minor_version");
    unsigned(&mut out, 5, 0);
    string(&mut out, "build_epoch");
    unsigned(&mut out, 9, build_epoch);
    string(&mut out, "database_type");
    string(&mut out, "Portcullis-Test-Country");
    string(&mut out, "description");
    map(&mut out, 1);
    string(&mut out, "en");
    string(&mut out, "Countries for Portcullis tests");
    string(&mut out, "ip_version");
    unsigned(&mut out, 5, 6);
    string(&mut out, "languages");
    control(&mut out, 11, 1);
    string(&mut out, "en");
    string(&mut out, "node_count");
    unsigned(&mut out, 6, node_count as u64);
    string(&mut out, "record_size");
    unsigned(&mut out, 5, 32);
    out
}

/// A prefix as 128 bits (IPv4 under `::/96`) and its length in that space.
fn prefix_bits(prefix: &str) -> (u128, usize) {
    let (address, length) = prefix.split_once('/').expect("a CIDR prefix");
    let length: usize = length.parse().expect("a prefix length");
    match address.parse::<IpAddr>().expect("an address") {
        IpAddr::V4(v4) => (u128::from(u32::from(v4)), 96 + length),
        IpAddr::V6(v6) => (u128::from(v6), length),
    }
}

/// A field's control byte(s): the type in the top three bits (or 0 and an extended-type byte
/// for types past 7), the size in the low five, with the format's size extension.
fn control(out: &mut Vec<u8>, kind: u8, size: usize) {
    let (short, extra): (u8, Vec<u8>) = match size {
        0..=28 => (size as u8, Vec::new()),
        29..=284 => (29, vec![(size - 29) as u8]),
        _ => {
            let rest = u16::try_from(size - 285).expect("a short field");
            (30, rest.to_be_bytes().to_vec())
        }
    };
    if kind <= 7 {
        out.push((kind << 5) | short);
    } else {
        out.push(short);
        out.push(kind - 7);
    }
    out.extend_from_slice(&extra);
}

fn string(out: &mut Vec<u8>, text: &str) {
    control(out, 2, text.len());
    out.extend_from_slice(text.as_bytes());
}

fn map(out: &mut Vec<u8>, pairs: usize) {
    control(out, 7, pairs);
}

/// An unsigned integer of type `kind` (5 uint16, 6 uint32, 9 uint64) in as few bytes as it
/// needs, as the format allows.
fn unsigned(out: &mut Vec<u8>, kind: u8, value: u64) {
    let bytes = value.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count();
    control(out, kind, bytes.len() - skip);
    out.extend_from_slice(&bytes[skip..]);
}

//! The sign-in log as it is stored: compact, and expanded to Graph's `signIn` only when read.
//!
//! A sign-in lists every Conditional Access policy of the tenant (up to 240) with its result,
//! and the names, ids and control labels of those policies are the same in every sign-in
//! decided on the same policy set. So an entry keeps:
//! - a reference to the [`PolicyRevision`] that decided it: each policy's id and display name,
//!   in the set's order, stored once per distinct content (its key is a hash of its bytes);
//! - [`PolicyResults`]: a few bytes per policy — the result, the condition that kept it from
//!   applying and how, and for a policy that applied its grant controls and how they stood —
//!   with the few control labels they name kept once per entry;
//! - the rest of the entry that is not already a column of its row ([`encode_entry`]), as a
//!   small CBOR map with one-letter keys.
//!
//! Reading puts the same `signIn` back together: every `appliedConditionalAccessPolicies`
//! entry is rebuilt, one at a time, by the very code that wrote the sentence of a new entry
//! (`sign_in::reason_text`), so the two cannot drift.
//!
//! What it must never do: guess. A stored entry that does not read back (an unknown code, an
//! index past its table, a revision whose hash does not match its bytes) is an error naming
//! what is wrong, never an entry with invented results. Entries made by hand rather than from
//! a decision (tests, imports) keep their policies whole ([`AppliedPolicies::Listed`]).

use std::sync::{Arc, Mutex};

use portcullis_policy::{
    AnalysisReason, AppliedPolicyResult, ConditionFailure, ConditionalAccessPolicy, FailureDetail,
    GrantOutcome, PolicyTrace,
};
use serde::ser::SerializeSeq;
use serde::{Deserialize, Serialize, Serializer};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::logs::sign_in::{
    AppliedConditionalAccessPolicy, AuthenticationDetail, DeviceDetail, GrantLabels,
    SignInLocation, SignInLogEntry, SignInStatus, reason_text,
};

/// A stored part that does not read back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompactError {
    #[error("the stored sign-in entry is not readable: {0}")]
    Unreadable(String),
    #[error("the stored policy results end early or name a code this build does not know")]
    BadResults,
    #[error("the stored policy results list {results} policies, their revision {revision}")]
    RevisionMismatch { results: usize, revision: usize },
    #[error("the policy revision {0} is not stored")]
    MissingRevision(String),
    #[error("the stored policy revision does not match its key")]
    RevisionKey,
}

impl From<CompactError> for crate::Error {
    fn from(e: CompactError) -> Self {
        crate::Error::Internal(e.to_string())
    }
}

/// The policies of a policy set as the sign-in log names them: id and display name, in the
/// order the engine traces them. Its key is the first 16 bytes of the SHA-256 of its stored
/// bytes, so the same set stored by any node at any time is one row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyRevision {
    key: [u8; 16],
    policies: Vec<(String, String)>,
    bytes: Vec<u8>,
}

impl PolicyRevision {
    pub fn new(policies: Vec<(String, String)>) -> Self {
        let mut bytes = Vec::with_capacity(policies.len() * 64);
        // Writing strings into a Vec cannot fail.
        ciborium::into_writer(&policies, &mut bytes).expect("a revision serializes");
        PolicyRevision {
            key: key_of(&bytes),
            policies,
            bytes,
        }
    }

    /// A revision read back from storage; refused unless its bytes hash to `key`.
    pub fn decode(key: &str, bytes: Vec<u8>) -> Result<Self, CompactError> {
        if hex::encode(key_of(&bytes)) != key {
            return Err(CompactError::RevisionKey);
        }
        let policies: Vec<(String, String)> = ciborium::from_reader(bytes.as_slice())
            .map_err(|e| CompactError::Unreadable(e.to_string()))?;
        Ok(PolicyRevision {
            key: key_of(&bytes),
            policies,
            bytes,
        })
    }

    /// The revision of the policies a decision traced. The set a node decides on changes only
    /// when the policies do, so the last one is kept (for the whole process: it is found again
    /// only by the identity of the very policies it was made from, and its content is its key).
    pub fn of_trace(trace: &[PolicyTrace]) -> Arc<PolicyRevision> {
        type Last = Option<(Vec<Arc<ConditionalAccessPolicy>>, Arc<PolicyRevision>)>;
        static LAST: Mutex<Last> = Mutex::new(None);
        let same = |kept: &[Arc<ConditionalAccessPolicy>]| {
            kept.len() == trace.len()
                && kept
                    .iter()
                    .zip(trace)
                    .all(|(k, t)| Arc::ptr_eq(k, &t.policy))
        };
        if let Some((kept, revision)) = LAST.lock().expect("revision cache").as_ref()
            && same(kept)
        {
            return revision.clone();
        }
        let revision = Arc::new(PolicyRevision::new(
            trace
                .iter()
                .map(|t| (t.policy_id().to_owned(), t.display_name().to_owned()))
                .collect(),
        ));
        *LAST.lock().expect("revision cache") = Some((
            trace.iter().map(|t| t.policy.clone()).collect(),
            revision.clone(),
        ));
        revision
    }

    /// The key as stored in a column: 32 hexadecimal digits.
    pub fn key(&self) -> String {
        hex::encode(self.key)
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn policies(&self) -> &[(String, String)] {
        &self.policies
    }
}

fn key_of(bytes: &[u8]) -> [u8; 16] {
    let digest = Sha256::digest(bytes);
    let mut key = [0u8; 16];
    key.copy_from_slice(&digest[..16]);
    key
}

// The per-policy record. Its first byte holds the result (its index in Graph's list), how the
// failed condition failed, and whether more follows:
const RESULT_BITS: u8 = 0x0f;
const DETAIL_SHIFT: u8 = 4;
const DETAIL_BITS: u8 = 0x07;
const MORE: u8 = 0x80;
// A second byte, when a condition failed: its index in Graph's list of analysis reasons
// (then, for one that could not be evaluated, the member at fault as a label index).
// When more follows: a byte with the grant outcome's code and whether the policy applied,
// the enforced controls (a count, then label indexes), then the outcome's controls.
const APPLIES: u8 = 0x08;
const GRANT_BITS: u8 = 0x07;

const DETAILS: [Option<FailureDetailCode>; 8] = [
    None,
    Some(FailureDetailCode::NotIncluded),
    Some(FailureDetailCode::Excluded),
    Some(FailureDetailCode::NothingTargeted),
    Some(FailureDetailCode::WorkloadIdentityPolicy),
    Some(FailureDetailCode::MissingSignal),
    Some(FailureDetailCode::Disabled),
    Some(FailureDetailCode::Unevaluable),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FailureDetailCode {
    NotIncluded,
    Excluded,
    NothingTargeted,
    WorkloadIdentityPolicy,
    MissingSignal,
    Disabled,
    Unevaluable,
}

fn detail_code(detail: &FailureDetail) -> u8 {
    match detail {
        FailureDetail::NotIncluded => 1,
        FailureDetail::Excluded => 2,
        FailureDetail::NothingTargeted => 3,
        FailureDetail::WorkloadIdentityPolicy => 4,
        FailureDetail::MissingSignal => 5,
        FailureDetail::Disabled => 6,
        FailureDetail::Unevaluable(_) => 7,
    }
}

/// Each policy's result in one sign-in, packed, and the labels (control labels, unevaluable
/// members) the records point at.
///
/// Most policies in a sign-in did not apply, for one of a few reasons (not in the included
/// groups, excluded, another platform, disabled…), and their records are two bytes, the same
/// for many policies. So each distinct such record is kept once (`kinds`, at most 15) and each
/// policy is a four-bit index into them; the index 15 says the policy's record is the next one
/// in `full` (a policy that applied, names a label, or is one kind too many).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PolicyResults {
    /// How many policies.
    #[serde(rename = "n")]
    count: usize,
    /// One four-bit index per policy, two to a byte, the first in the low bits.
    #[serde(rename = "i", with = "bytes")]
    indexes: Vec<u8>,
    #[serde(
        rename = "k",
        with = "bytes",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    kinds: Vec<u8>,
    #[serde(
        rename = "f",
        with = "bytes",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    full: Vec<u8>,
    #[serde(rename = "l", default, skip_serializing_if = "Vec::is_empty")]
    labels: Vec<String>,
}

/// The index that sends a policy to its full record.
const FULL: u8 = 15;

fn push_varint(out: &mut Vec<u8>, mut n: usize) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

impl PolicyResults {
    /// Packs a decision's trace. Never fails: every value the engine traces has a code.
    pub fn pack(trace: &[PolicyTrace]) -> Self {
        let mut out = PolicyResults {
            count: trace.len(),
            indexes: vec![0; trace.len().div_ceil(2)],
            kinds: Vec::new(),
            full: Vec::new(),
            labels: Vec::new(),
        };
        let mut record = Vec::with_capacity(16);
        for (n, t) in trace.iter().enumerate() {
            record.clear();
            let simple = out.record(t, &mut record);
            let index = if simple {
                match out.kinds.chunks(2).position(|k| k == record.as_slice()) {
                    Some(at) => at as u8,
                    None if out.kinds.len() / 2 < usize::from(FULL) => {
                        out.kinds.extend_from_slice(&record);
                        (out.kinds.len() / 2 - 1) as u8
                    }
                    None => FULL,
                }
            } else {
                FULL
            };
            if index == FULL {
                out.full.extend_from_slice(&record);
            }
            out.indexes[n / 2] |= index << (4 * (n % 2));
        }
        out
    }

    /// Writes the record of `t` (see the constants above); whether it is a simple one: two
    /// bytes, a condition that kept the policy from applying, nothing more.
    fn record(&mut self, t: &PolicyTrace, out: &mut Vec<u8>) -> bool {
        let result = AppliedPolicyResult::KNOWN
            .iter()
            .position(|r| *r == t.result)
            .unwrap_or(0) as u8;
        let detail = t
            .failed_condition
            .as_ref()
            .map_or(0, |f| detail_code(&f.detail));
        let more = t.applies || t.grant.is_some() || !t.enforced_grant_controls.is_empty();
        out.push(result | (detail << DETAIL_SHIFT) | if more { MORE } else { 0 });
        let mut simple = !more;
        match &t.failed_condition {
            Some(failure) => {
                let condition = AnalysisReason::KNOWN
                    .iter()
                    .position(|c| *c == failure.condition)
                    .unwrap_or(0) as u8;
                out.push(condition);
                if let FailureDetail::Unevaluable(field) = &failure.detail {
                    let at = self.label(field.clone());
                    push_varint(out, at);
                    simple = false;
                }
            }
            None => simple = false,
        }
        if more {
            let grant = match &t.grant {
                None => 0,
                Some(GrantOutcome::Block) => 1,
                Some(GrantOutcome::Satisfied) => 2,
                Some(GrantOutcome::Pending(_)) => 3,
                Some(GrantOutcome::Failed(_)) => 4,
                Some(GrantOutcome::FailedClosed) => 5,
            };
            out.push(grant | if t.applies { APPLIES } else { 0 });
            self.controls(&t.enforced_grant_controls, out);
            match &t.grant {
                Some(GrantOutcome::Pending(options)) => {
                    push_varint(out, options.len());
                    for option in options {
                        self.controls(option, out);
                    }
                }
                Some(GrantOutcome::Failed(controls)) => self.controls(controls, out),
                _ => {}
            }
        }
        simple
    }

    fn label(&mut self, label: String) -> usize {
        match self.labels.iter().position(|l| *l == label) {
            Some(at) => at,
            None => {
                self.labels.push(label);
                self.labels.len() - 1
            }
        }
    }

    fn controls(&mut self, controls: &[portcullis_policy::Control], out: &mut Vec<u8>) {
        push_varint(out, controls.len());
        for control in controls {
            let at = self.label(control.label());
            push_varint(out, at);
        }
    }

    /// The bytes of the packed records and their labels (for measuring).
    pub fn packed_len(&self) -> usize {
        self.indexes.len()
            + self.kinds.len()
            + self.full.len()
            + self.labels.iter().map(|l| l.len() + 1).sum::<usize>()
    }

    /// Each policy's result code, in order, without building the rest of its entry (the
    /// report-only summary reads only these).
    pub fn results(&self) -> Reader<'_> {
        Reader {
            results: self,
            next: 0,
            full: Cursor {
                bytes: &self.full,
                at: 0,
                labels: &self.labels,
            },
        }
    }
}

/// Walks packed records one policy at a time.
pub struct Reader<'a> {
    results: &'a PolicyResults,
    next: usize,
    full: Cursor<'a>,
}

/// Reads one record's bytes.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
    labels: &'a [String],
}

/// One policy's record, read.
struct Record<'a> {
    result: AppliedPolicyResult,
    failure: Option<ConditionFailure>,
    applies: bool,
    grant: Option<u8>,
    enforced: Vec<&'a str>,
    options: Vec<Vec<&'a str>>,
    failed: Vec<&'a str>,
}

impl<'a> Cursor<'a> {
    fn byte(&mut self) -> Result<u8, CompactError> {
        let byte = *self.bytes.get(self.at).ok_or(CompactError::BadResults)?;
        self.at += 1;
        Ok(byte)
    }

    fn varint(&mut self) -> Result<usize, CompactError> {
        let mut n = 0usize;
        for shift in (0..35).step_by(7) {
            let byte = self.byte()?;
            n |= usize::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(n);
            }
        }
        Err(CompactError::BadResults)
    }

    fn label(&mut self) -> Result<&'a str, CompactError> {
        let at = self.varint()?;
        let labels: &'a [String] = self.labels;
        labels
            .get(at)
            .map(String::as_str)
            .ok_or(CompactError::BadResults)
    }

    fn labels(&mut self) -> Result<Vec<&'a str>, CompactError> {
        let count = self.varint()?;
        // Each label index takes a byte at least: a count past the bytes left is damage.
        if count > self.bytes.len().saturating_sub(self.at) {
            return Err(CompactError::BadResults);
        }
        (0..count).map(|_| self.label()).collect()
    }

    fn record(&mut self) -> Result<Record<'a>, CompactError> {
        let head = self.byte()?;
        let result = *AppliedPolicyResult::KNOWN
            .get(usize::from(head & RESULT_BITS))
            .ok_or(CompactError::BadResults)?;
        let detail = DETAILS[usize::from((head >> DETAIL_SHIFT) & DETAIL_BITS)];
        let failure = match detail {
            None => None,
            Some(code) => {
                let condition = *AnalysisReason::KNOWN
                    .get(usize::from(self.byte()?))
                    .ok_or(CompactError::BadResults)?;
                let detail = match code {
                    FailureDetailCode::NotIncluded => FailureDetail::NotIncluded,
                    FailureDetailCode::Excluded => FailureDetail::Excluded,
                    FailureDetailCode::NothingTargeted => FailureDetail::NothingTargeted,
                    FailureDetailCode::WorkloadIdentityPolicy => {
                        FailureDetail::WorkloadIdentityPolicy
                    }
                    FailureDetailCode::MissingSignal => FailureDetail::MissingSignal,
                    FailureDetailCode::Disabled => FailureDetail::Disabled,
                    FailureDetailCode::Unevaluable => {
                        FailureDetail::Unevaluable(self.label()?.to_owned())
                    }
                };
                Some(ConditionFailure { condition, detail })
            }
        };
        let mut record = Record {
            result,
            failure,
            applies: false,
            grant: None,
            enforced: Vec::new(),
            options: Vec::new(),
            failed: Vec::new(),
        };
        if head & MORE != 0 {
            let byte = self.byte()?;
            record.applies = byte & APPLIES != 0;
            let grant = byte & GRANT_BITS;
            record.grant = (grant != 0).then_some(grant);
            record.enforced = self.labels()?;
            match grant {
                3 => {
                    let count = self.varint()?;
                    if count > self.bytes.len().saturating_sub(self.at) {
                        return Err(CompactError::BadResults);
                    }
                    record.options = (0..count)
                        .map(|_| self.labels())
                        .collect::<Result<_, _>>()?;
                }
                4 => record.failed = self.labels()?,
                0..=5 => {}
                _ => return Err(CompactError::BadResults),
            }
        }
        Ok(record)
    }
}

impl<'a> Reader<'a> {
    fn record(&mut self) -> Result<Record<'a>, CompactError> {
        let n = self.next;
        if n >= self.results.count {
            return Err(CompactError::BadResults);
        }
        self.next += 1;
        let results: &'a PolicyResults = self.results;
        let byte = *results.indexes.get(n / 2).ok_or(CompactError::BadResults)?;
        let index = usize::from((byte >> (4 * (n % 2))) & 0x0f);
        if index == usize::from(FULL) {
            return self.full.record();
        }
        let kind = results
            .kinds
            .get(2 * index..2 * index + 2)
            .ok_or(CompactError::BadResults)?;
        Cursor {
            bytes: kind,
            at: 0,
            labels: &results.labels,
        }
        .record()
    }

    fn done(&self) -> bool {
        self.next >= self.results.count
    }

    /// Whether every byte was read when every policy was: anything left over is damage.
    fn consumed(&self) -> bool {
        self.done()
            && self.full.at == self.full.bytes.len()
            && self.results.indexes.len() == self.results.count.div_ceil(2)
    }
}

impl Iterator for Reader<'_> {
    type Item = Result<AppliedPolicyResult, CompactError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done() {
            return None;
        }
        Some(self.record().map(|r| r.result))
    }
}

impl Record<'_> {
    fn expand(self, id: &str, display_name: &str) -> AppliedConditionalAccessPolicy {
        let grant = match self.grant {
            None => None,
            Some(1) => Some(GrantLabels::Block),
            Some(2) => Some(GrantLabels::Satisfied),
            Some(3) => Some(GrantLabels::Pending(self.options)),
            Some(4) => Some(GrantLabels::Failed(self.failed)),
            _ => Some(GrantLabels::FailedClosed),
        };
        AppliedConditionalAccessPolicy {
            id: id.to_owned(),
            display_name: display_name.to_owned(),
            result: self.result.as_str().to_owned(),
            enforced_grant_controls: self.enforced.iter().map(|s| (*s).to_owned()).collect(),
            enforced_session_controls: Vec::new(),
            conditions_not_satisfied: self
                .failure
                .as_ref()
                .map(|f| f.condition.as_str().to_owned()),
            result_reason: reason_text(self.applies, self.failure.as_ref(), grant.as_ref()),
        }
    }
}

/// `appliedConditionalAccessPolicies` of an entry: packed against a revision when the entry
/// was made from a decision, listed whole otherwise (entries of the previous format, and
/// entries made by hand). Either way it serializes as Graph's list, one policy at a time.
#[derive(Clone)]
pub enum AppliedPolicies {
    Listed(Vec<AppliedConditionalAccessPolicy>),
    Packed {
        revision: Arc<PolicyRevision>,
        results: PolicyResults,
    },
}

impl Default for AppliedPolicies {
    fn default() -> Self {
        AppliedPolicies::Listed(Vec::new())
    }
}

impl From<Vec<AppliedConditionalAccessPolicy>> for AppliedPolicies {
    fn from(list: Vec<AppliedConditionalAccessPolicy>) -> Self {
        AppliedPolicies::Listed(list)
    }
}

impl AppliedPolicies {
    /// The results of a decision's trace, against the revision of its policies.
    pub fn of_trace(trace: &[PolicyTrace]) -> Self {
        AppliedPolicies::Packed {
            revision: PolicyRevision::of_trace(trace),
            results: PolicyResults::pack(trace),
        }
    }

    pub fn is_empty(&self) -> bool {
        match self {
            AppliedPolicies::Listed(list) => list.is_empty(),
            AppliedPolicies::Packed { revision, .. } => revision.policies.is_empty(),
        }
    }

    /// Every policy's entry, built one at a time.
    pub fn iter(
        &self,
    ) -> Box<dyn Iterator<Item = Result<AppliedConditionalAccessPolicy, CompactError>> + '_> {
        match self {
            AppliedPolicies::Listed(list) => Box::new(list.iter().cloned().map(Ok)),
            AppliedPolicies::Packed { revision, results } => {
                let mut reader = results.results();
                Box::new(
                    revision
                        .policies
                        .iter()
                        .map(move |(id, name)| reader.record().map(|r| r.expand(id, name))),
                )
            }
        }
    }

    /// Every policy's entry as a list; an entry that does not read back is an error.
    pub fn to_vec(&self) -> Result<Vec<AppliedConditionalAccessPolicy>, CompactError> {
        self.check()?;
        self.iter().collect()
    }

    /// Each policy's id, display name and result, without building the rest.
    pub fn results(&self) -> Result<Vec<(&str, &str, AppliedPolicyResult)>, CompactError> {
        match self {
            AppliedPolicies::Listed(list) => Ok(list
                .iter()
                .map(|p| {
                    (
                        p.id.as_str(),
                        p.display_name.as_str(),
                        AppliedPolicyResult::parse(&p.result),
                    )
                })
                .collect()),
            AppliedPolicies::Packed { revision, results } => {
                self.check()?;
                revision
                    .policies
                    .iter()
                    .zip(results.results())
                    .map(|((id, name), result)| Ok((id.as_str(), name.as_str(), result?)))
                    .collect()
            }
        }
    }

    /// That packed results hold exactly one record per policy of their revision.
    pub fn check(&self) -> Result<(), CompactError> {
        if let AppliedPolicies::Packed { revision, results } = self {
            if results.count != revision.policies.len() {
                return Err(CompactError::RevisionMismatch {
                    results: results.count,
                    revision: revision.policies.len(),
                });
            }
            let mut reader = results.results();
            while !reader.done() {
                reader.record()?;
            }
            if !reader.consumed() {
                return Err(CompactError::BadResults);
            }
        }
        Ok(())
    }
}

impl std::fmt::Debug for AppliedPolicies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// Equal when they expand to the same list, however each is kept.
impl PartialEq for AppliedPolicies {
    fn eq(&self, other: &Self) -> bool {
        match (self.to_vec(), other.to_vec()) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        }
    }
}

impl Serialize for AppliedPolicies {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.check().map_err(serde::ser::Error::custom)?;
        let mut seq = serializer.serialize_seq(None)?;
        for policy in self.iter() {
            seq.serialize_element(&policy.map_err(serde::ser::Error::custom)?)?;
        }
        seq.end()
    }
}

impl<'de> Deserialize<'de> for AppliedPolicies {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Vec::<AppliedConditionalAccessPolicy>::deserialize(d).map(AppliedPolicies::Listed)
    }
}

/// Byte strings as CBOR byte strings (serde's default writes a list of numbers).
mod bytes {
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(value)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a byte string")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
                Ok(v)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Vec<u8>, A::Error> {
                let mut out = Vec::new();
                while let Some(b) = seq.next_element::<u8>()? {
                    out.push(b);
                }
                Ok(out)
            }
        }
        d.deserialize_byte_buf(Visitor)
    }
}

/// One authentication step, stored: its time as milliseconds after the entry's creation
/// (and the nanoseconds below a millisecond, when there are any).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct StoredStep {
    #[serde(rename = "m")]
    method: String,
    #[serde(rename = "s")]
    succeeded: bool,
    #[serde(rename = "r")]
    result_detail: String,
    #[serde(rename = "q")]
    requirement: String,
    #[serde(rename = "t")]
    after_ms: i64,
    #[serde(rename = "n", default, skip_serializing_if = "is_zero")]
    nanos: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn is_true(b: &bool) -> bool {
    *b
}

fn yes() -> bool {
    true
}

/// The policies of a stored entry: packed (the revision is in its own column) or whole.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum StoredPolicies {
    #[serde(rename = "p")]
    Packed(PolicyResults),
    #[serde(rename = "l")]
    Listed(Vec<AppliedConditionalAccessPolicy>),
}

/// What a stored entry keeps beyond the columns of its row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct StoredEntry {
    #[serde(rename = "n", default, skip_serializing_if = "Option::is_none")]
    user_display_name: Option<String>,
    #[serde(rename = "i", default = "yes", skip_serializing_if = "is_true")]
    is_interactive: bool,
    #[serde(rename = "a")]
    user_agent: String,
    #[serde(rename = "o")]
    operating_system: String,
    #[serde(rename = "b")]
    browser: String,
    #[serde(rename = "f", default, skip_serializing_if = "Option::is_none")]
    failure_reason: Option<String>,
    #[serde(rename = "x", default, skip_serializing_if = "Option::is_none")]
    additional_details: Option<String>,
    #[serde(rename = "d", default, skip_serializing_if = "Vec::is_empty")]
    steps: Vec<StoredStep>,
    #[serde(rename = "r")]
    authentication_requirement: String,
    #[serde(rename = "s", default, skip_serializing_if = "Option::is_none")]
    authentication_strength: Option<String>,
    #[serde(rename = "c", default, skip_serializing_if = "Option::is_none")]
    country: Option<String>,
    #[serde(rename = "p", default, skip_serializing_if = "Option::is_none")]
    policies: Option<StoredPolicies>,
    /// The creation time's nanoseconds below a millisecond (its column keeps milliseconds).
    #[serde(rename = "z", default, skip_serializing_if = "is_zero")]
    created_nanos: u32,
}

/// An entry as its row keeps it: what goes in the `entry` column, and the revision its
/// policies were packed against (for the `policy_revision` column, and to store once).
pub struct EncodedEntry {
    pub bytes: Vec<u8>,
    pub revision: Option<Arc<PolicyRevision>>,
}

fn millis(t: OffsetDateTime) -> i64 {
    t.unix_timestamp_nanos().div_euclid(1_000_000) as i64
}

fn sub_millis(t: OffsetDateTime) -> u32 {
    (t.unix_timestamp_nanos().rem_euclid(1_000_000)) as u32
}

/// The bytes of the `entry` column of `entry` (the columns of its row hold the rest).
pub fn encode_entry(entry: &SignInLogEntry) -> EncodedEntry {
    let created = millis(entry.created_date_time);
    let (policies, revision) = match &entry.applied_conditional_access_policies {
        AppliedPolicies::Listed(list) if list.is_empty() => (None, None),
        AppliedPolicies::Listed(list) => (Some(StoredPolicies::Listed(list.clone())), None),
        AppliedPolicies::Packed { revision, results } => (
            Some(StoredPolicies::Packed(results.clone())),
            Some(revision.clone()),
        ),
    };
    let stored = StoredEntry {
        user_display_name: entry.user_display_name.clone(),
        is_interactive: entry.is_interactive,
        user_agent: entry.user_agent.clone(),
        operating_system: entry.device_detail.operating_system.clone(),
        browser: entry.device_detail.browser.clone(),
        failure_reason: entry.status.failure_reason.clone(),
        additional_details: entry.status.additional_details.clone(),
        steps: entry
            .authentication_details
            .iter()
            .map(|d| StoredStep {
                method: d.authentication_method.clone(),
                succeeded: d.succeeded,
                result_detail: d.authentication_step_result_detail.clone(),
                requirement: d.authentication_step_requirement.clone(),
                after_ms: millis(d.authentication_step_date_time) - created,
                nanos: sub_millis(d.authentication_step_date_time),
            })
            .collect(),
        authentication_requirement: entry.authentication_requirement.clone(),
        authentication_strength: entry.authentication_strength.clone(),
        country: entry.location.country_or_region.clone(),
        policies,
        created_nanos: sub_millis(entry.created_date_time),
    };
    let mut bytes = Vec::with_capacity(256);
    // Plain data into a Vec: cannot fail.
    ciborium::into_writer(&stored, &mut bytes).expect("a sign-in entry serializes");
    EncodedEntry { bytes, revision }
}

/// The columns of a sign-in row, as read.
#[derive(Debug, Clone)]
pub struct EntryColumns {
    pub id: Uuid,
    pub created: OffsetDateTime,
    pub user_principal_name: String,
    pub user_id: Option<Uuid>,
    pub app_id: String,
    pub app_display_name: String,
    pub ip_address: Option<String>,
    pub error_code: u32,
    pub conditional_access_status: String,
    pub correlation_id: Uuid,
    pub client_app_used: String,
}

fn at(created_ms: i64, after_ms: i64, nanos: u32) -> Result<OffsetDateTime, CompactError> {
    let total = i128::from(created_ms.saturating_add(after_ms)) * 1_000_000 + i128::from(nanos);
    OffsetDateTime::from_unix_timestamp_nanos(total)
        .map_err(|e| CompactError::Unreadable(e.to_string()))
}

/// The entry a row holds: its columns and its `entry` bytes, its policies against `revision`
/// (the one its `policy_revision` column names, when it names one).
pub fn decode_entry(
    columns: EntryColumns,
    bytes: &[u8],
    revision: Option<Arc<PolicyRevision>>,
) -> Result<SignInLogEntry, CompactError> {
    let stored: StoredEntry =
        ciborium::from_reader(bytes).map_err(|e| CompactError::Unreadable(e.to_string()))?;
    let created_ms = millis(columns.created);
    let created = at(created_ms, 0, stored.created_nanos)?;
    let applied = match (stored.policies, revision) {
        (None, _) => AppliedPolicies::default(),
        (Some(StoredPolicies::Listed(list)), _) => AppliedPolicies::Listed(list),
        (Some(StoredPolicies::Packed(results)), Some(revision)) => {
            let applied = AppliedPolicies::Packed { revision, results };
            applied.check()?;
            applied
        }
        (Some(StoredPolicies::Packed(_)), None) => {
            return Err(CompactError::MissingRevision("(none named)".into()));
        }
    };
    Ok(SignInLogEntry {
        id: columns.id,
        created_date_time: created,
        user_principal_name: columns.user_principal_name,
        user_id: columns.user_id,
        user_display_name: stored.user_display_name,
        app_display_name: columns.app_display_name,
        app_id: columns.app_id,
        ip_address: columns.ip_address,
        client_app_used: columns.client_app_used,
        correlation_id: columns.correlation_id,
        is_interactive: stored.is_interactive,
        user_agent: stored.user_agent,
        device_detail: DeviceDetail {
            operating_system: stored.operating_system,
            browser: stored.browser,
        },
        status: SignInStatus {
            error_code: columns.error_code,
            failure_reason: stored.failure_reason,
            additional_details: stored.additional_details,
        },
        conditional_access_status: columns.conditional_access_status,
        applied_conditional_access_policies: applied,
        authentication_details: stored
            .steps
            .into_iter()
            .map(|s| {
                Ok(AuthenticationDetail {
                    authentication_method: s.method,
                    succeeded: s.succeeded,
                    authentication_step_result_detail: s.result_detail,
                    authentication_step_requirement: s.requirement,
                    authentication_step_date_time: at(created_ms, s.after_ms, s.nanos)?,
                })
            })
            .collect::<Result<_, CompactError>>()?,
        authentication_requirement: stored.authentication_requirement,
        authentication_strength: stored.authentication_strength,
        replay_context: None,
        location: SignInLocation {
            country_or_region: stored.country,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::sign_in::applied_policies;
    use portcullis_policy::{
        DevicePlatform, PolicySet, SatisfiedMethod, SignInContext, Target, UserAction,
    };
    use serde_json::json;

    const GROUP_A: &str = "6a000000-0000-4000-8000-00000000000a";
    const GROUP_B: &str = "6a000000-0000-4000-8000-00000000000b";
    const APP: &str = "a0000000-0000-4000-8000-000000000001";

    /// Every kind of result the engine traces: block, MFA (pending, and met), a strength,
    /// a compliant device (cannot be prompted for: failed), AND and OR grants, terms of use,
    /// report-only and disabled policies, exclusions, platforms, a condition the engine cannot
    /// evaluate (fails closed), register-security-info targeting and session-only policies.
    fn tenant() -> PolicySet {
        let users = |i: usize| match i % 4 {
            0 => json!({"includeUsers": ["All"], "excludeGroups": [GROUP_B]}),
            1 => json!({"includeGroups": [GROUP_A]}),
            2 => json!({"includeGroups": [GROUP_B], "excludeGroups": [GROUP_A]}),
            _ => json!({"includeUsers": ["GuestsOrExternalUsers"]}),
        };
        let grants = [
            json!({"operator": "OR", "builtInControls": ["block"]}),
            json!({"operator": "OR", "builtInControls": ["mfa"]}),
            json!({"operator": "OR", "builtInControls": [],
                   "authenticationStrength": {"id": "00000000-0000-0000-0000-000000000004"}}),
            json!({"operator": "AND", "builtInControls": ["mfa", "compliantDevice"]}),
            json!({"operator": "OR", "builtInControls": ["compliantDevice", "domainJoinedDevice"]}),
            json!({"operator": "AND", "builtInControls": ["passwordChange", "mfa"], "termsOfUse": ["tou-1"]}),
            json!({"operator": "OR", "builtInControls": ["mfa", "compliantDevice"]}),
            json!(null),
        ];
        let mut policies = Vec::new();
        for i in 0..48 {
            let state = match i % 7 {
                0 => "disabled",
                1 => "enabledForReportingButNotEnforced",
                _ => "enabled",
            };
            let applications = match i % 5 {
                0 => json!({"includeUserActions": ["urn:user:registersecurityinfo"]}),
                1 => json!({"includeApplications": [APP]}),
                _ => json!({"includeApplications": ["All"]}),
            };
            let mut conditions = json!({"users": users(i), "applications": applications,
                                        "clientAppTypes": ["all"]});
            if i % 3 == 0 {
                conditions["platforms"] =
                    json!({"includePlatforms": ["all"], "excludePlatforms": ["windows"]});
            }
            if i % 11 == 4 {
                conditions["times"] = json!({"allDays": true});
            }
            let mut policy = json!({"id": format!("policy-{i}"), "displayName": format!("Policy {i}"),
                                    "state": state, "conditions": conditions});
            let grant = &grants[i % grants.len()];
            if grant.is_null() {
                policy["sessionControls"] =
                    json!({"signInFrequency": {"isEnabled": true, "value": 4, "type": "hours"}});
            } else {
                policy["grantControls"] = grant.clone();
            }
            policies.push(policy);
        }
        let bytes = serde_json::to_vec(&policies).unwrap();
        PolicySet::new(
            portcullis_policy::graph::import_policies(&bytes).unwrap(),
            Vec::new(),
            Vec::new(),
        )
    }

    fn contexts() -> Vec<SignInContext> {
        let mut out = Vec::new();
        for groups in [vec![], vec![GROUP_A], vec![GROUP_B], vec![GROUP_A, GROUP_B]] {
            for platform in [DevicePlatform::Windows, DevicePlatform::Android] {
                for methods in [vec![], vec![SatisfiedMethod::passkey(GROUP_A)]] {
                    for target in [
                        Target::Application(APP.into()),
                        Target::UserAction(UserAction::RegisterSecurityInformation),
                    ] {
                        let mut ctx =
                            SignInContext::new("11111111-0000-4000-8000-000000000001", target);
                        ctx.group_ids = groups.iter().map(|g| (*g).to_owned()).collect();
                        ctx.platform = Some(platform.clone());
                        ctx.methods = methods.clone();
                        out.push(ctx);
                    }
                }
            }
        }
        out
    }

    #[test]
    fn packed_results_read_back_as_the_entries_the_previous_format_stored() {
        let set = tenant();
        let mut seen = std::collections::HashSet::new();
        for ctx in contexts() {
            let decision = portcullis_policy::evaluate(&ctx, &set);
            let packed = AppliedPolicies::of_trace(&decision.trace);
            let expected = applied_policies(&decision);
            for p in &expected {
                seen.insert((
                    p.result.clone(),
                    p.result_reason.split(':').next().map(str::to_owned),
                ));
            }
            assert_eq!(packed.to_vec().unwrap(), expected);
            // Through its stored bytes too, and as JSON.
            let bytes = {
                let AppliedPolicies::Packed { results, .. } = &packed else {
                    panic!()
                };
                let mut out = Vec::new();
                ciborium::into_writer(results, &mut out).unwrap();
                out
            };
            let results: PolicyResults = ciborium::from_reader(bytes.as_slice()).unwrap();
            let revision = PolicyRevision::of_trace(&decision.trace);
            let back = AppliedPolicies::Packed { revision, results };
            assert_eq!(
                serde_json::to_string(&back).unwrap(),
                serde_json::to_string(&expected).unwrap()
            );
        }
        // The sample is only worth something if it covers the results and reasons there are.
        for result in [
            "success",
            "failure",
            "notApplied",
            "notEnabled",
            "reportOnlySuccess",
            "reportOnlyFailure",
            "reportOnlyNotApplied",
            "reportOnlyInterrupted",
        ] {
            assert!(
                seen.iter().any(|(r, _)| r == result),
                "no {result} in the sample"
            );
        }
        assert!(
            seen.iter()
                .any(|(_, why)| why.as_deref() == Some("Applied, failing closed"))
        );
        assert!(seen.iter().any(|(_, why)| {
            why.as_deref()
                .is_some_and(|w| w.contains("cannot be satisfied"))
        }));
        assert!(
            seen.iter()
                .any(|(_, why)| why.as_deref().is_some_and(|w| w.contains("still required")))
        );
    }

    #[test]
    fn a_revision_is_shared_and_keyed_by_its_content() {
        let set = tenant();
        let contexts = contexts();
        let a = portcullis_policy::evaluate(&contexts[0], &set);
        let b = portcullis_policy::evaluate(&contexts[5], &set);
        let (ra, rb) = (
            PolicyRevision::of_trace(&a.trace),
            PolicyRevision::of_trace(&b.trace),
        );
        assert!(
            Arc::ptr_eq(&ra, &rb),
            "the same set gives the same revision"
        );
        // Another compilation of the same policies: another set, the same key.
        let again = PolicySet::new(
            set.policies().iter().map(|p| (**p).clone()).collect(),
            Vec::new(),
            Vec::new(),
        );
        let c = portcullis_policy::evaluate(&contexts[0], &again);
        assert_eq!(PolicyRevision::of_trace(&c.trace).key(), ra.key());
        // Renaming one policy is another revision.
        let mut renamed: Vec<_> = set.policies().iter().map(|p| (**p).clone()).collect();
        renamed[3].display_name.push_str(" (renamed)");
        let renamed = PolicySet::new(renamed, Vec::new(), Vec::new());
        let d = portcullis_policy::evaluate(&contexts[0], &renamed);
        assert_ne!(PolicyRevision::of_trace(&d.trace).key(), ra.key());
        // Stored bytes read back only under their own key.
        assert_eq!(
            PolicyRevision::decode(&ra.key(), ra.bytes().to_vec()).unwrap(),
            *ra
        );
        assert_eq!(
            PolicyRevision::decode(
                &PolicyRevision::of_trace(&d.trace).key(),
                ra.bytes().to_vec()
            ),
            Err(CompactError::RevisionKey)
        );
    }

    #[test]
    fn damaged_results_are_refused_not_guessed() {
        let set = tenant();
        let decision = portcullis_policy::evaluate(&contexts()[3], &set);
        let AppliedPolicies::Packed { revision, results } =
            AppliedPolicies::of_trace(&decision.trace)
        else {
            panic!()
        };
        let mut short = results.clone();
        short.full.truncate(short.full.len() - 1);
        let mut unknown = results.clone();
        unknown.kinds[0] = 0x0f;
        let mut extra = results.clone();
        extra.full.push(0x02);
        let mut fewer = results.clone();
        fewer.count -= 1;
        let mut past = results.clone();
        past.indexes[0] = 0xee;
        for bad in [short, unknown, extra, fewer, past] {
            let applied = AppliedPolicies::Packed {
                revision: revision.clone(),
                results: bad,
            };
            assert!(applied.to_vec().is_err());
            assert!(serde_json::to_string(&applied).is_err());
        }
    }

    #[test]
    fn the_stored_bytes_are_a_few_per_policy() {
        let set = tenant();
        let decision = portcullis_policy::evaluate(&contexts()[9], &set);
        let AppliedPolicies::Packed { results, .. } = AppliedPolicies::of_trace(&decision.trace)
        else {
            panic!()
        };
        let json = serde_json::to_string(&applied_policies(&decision)).unwrap();
        // This tenant is dense in policies that apply (each names its controls); a tenant's
        // usual not-applied policy takes two bytes.
        assert!(
            results.packed_len() * 20 < json.len(),
            "{} bytes packed for {} policies ({} as JSON)",
            results.packed_len(),
            set.policies().len(),
            json.len()
        );
    }
}

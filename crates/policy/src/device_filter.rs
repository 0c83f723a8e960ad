//! The "filter for devices" rule language: `device.<attribute> -<operator> <value>` joined by
//! `-and` / `-or`, with parentheses and `-not`.
//!
//! Semantics follow Entra's documentation:
//! - string comparisons ignore case, like dynamic-membership rules;
//! - on an unregistered device every attribute is null, and so is an attribute a registered
//!   device does not have: positive operators (`-eq`, `-startsWith`, `-endsWith`, `-contains`,
//!   `-in`) are then false and negative ones (`-ne`, `-notStartsWith`, …, `-notIn`) true;
//! - `-contains` is a substring test on a string attribute and a whole-element test on the
//!   collection attributes (`physicalIds`, `systemLabels`);
//! - each attribute accepts only the operators Entra lists for it; anything else is a parse
//!   error, and a policy with an unparsable rule fails closed.
//!
//! Rules are at most 3072 characters. Parsing never panics and never recurses deeper than
//! [`MAX_DEPTH`], so any input, however hostile, gives a value or an error.

use std::fmt;

/// Entra's limit on the length of a rule.
pub const MAX_RULE_LENGTH: usize = 3072;
/// Nesting limit for parentheses and `-not`, far beyond any real rule.
pub const MAX_DEPTH: usize = 64;

/// Facts about the device signing in. `None` in the sign-in context means the device is not
/// registered: every attribute is null.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceFacts {
    pub device_id: Option<String>,
    pub display_name: Option<String>,
    /// `Personal` or `Company`.
    pub device_ownership: Option<String>,
    pub enrollment_profile_name: Option<String>,
    pub is_compliant: Option<bool>,
    pub manufacturer: Option<String>,
    pub mdm_app_id: Option<String>,
    pub model: Option<String>,
    pub operating_system: Option<String>,
    pub operating_system_version: Option<String>,
    pub physical_ids: Vec<String>,
    /// `RegisteredDevice`, `SecureVM`, `Printer`, `Shared`, `IoT`.
    pub profile_type: Option<String>,
    pub system_labels: Vec<String>,
    /// `AzureAD` (joined), `ServerAD` (hybrid joined), `Workplace` (registered).
    pub trust_type: Option<String>,
    /// `extensionAttribute1` … `extensionAttribute15`, index 0 for 1.
    pub extension_attributes: [Option<String>; 15],
}

impl DeviceFacts {
    /// Hybrid joined in Entra's terms: trust type `ServerAD`.
    pub fn is_hybrid_joined(&self) -> bool {
        self.trust_type
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case("ServerAD"))
    }

    /// Sets an attribute by its rule name (`isCompliant` takes `True`/`False`); used by the
    /// What-If `deviceInfo` and the CLI. Returns false for an unknown attribute name.
    pub fn set(&mut self, attribute: &str, value: &str) -> bool {
        let Some(attribute) = Attribute::parse(attribute) else {
            return false;
        };
        let text = Some(value.to_owned());
        match attribute {
            Attribute::DeviceId => self.device_id = text,
            Attribute::DisplayName => self.display_name = text,
            Attribute::DeviceOwnership => self.device_ownership = text,
            Attribute::EnrollmentProfileName => self.enrollment_profile_name = text,
            Attribute::IsCompliant => match parse_bool(value) {
                Some(b) => self.is_compliant = Some(b),
                None => return false,
            },
            Attribute::Manufacturer => self.manufacturer = text,
            Attribute::MdmAppId => self.mdm_app_id = text,
            Attribute::Model => self.model = text,
            Attribute::OperatingSystem => self.operating_system = text,
            Attribute::OperatingSystemVersion => self.operating_system_version = text,
            Attribute::PhysicalIds => self.physical_ids.push(value.to_owned()),
            Attribute::ProfileType => self.profile_type = text,
            Attribute::SystemLabels => self.system_labels.push(value.to_owned()),
            Attribute::TrustType => self.trust_type = text,
            Attribute::ExtensionAttribute(n) => self.extension_attributes[usize::from(n)] = text,
        }
        true
    }
}

fn parse_bool(text: &str) -> Option<bool> {
    if text.eq_ignore_ascii_case("true") {
        Some(true)
    } else if text.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// A device attribute a rule may test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attribute {
    DeviceId,
    DisplayName,
    DeviceOwnership,
    EnrollmentProfileName,
    IsCompliant,
    Manufacturer,
    MdmAppId,
    Model,
    OperatingSystem,
    OperatingSystemVersion,
    PhysicalIds,
    ProfileType,
    SystemLabels,
    TrustType,
    /// 0-based: `extensionAttribute1` is 0.
    ExtensionAttribute(u8),
}

/// What kind of operators an attribute takes (Entra's attribute table).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Family {
    /// Equals, NotEquals, In, NotIn (GUIDs).
    Identifier,
    /// Every string operator.
    Text,
    /// Equals, NotEquals only.
    Choice,
    /// Equals, NotEquals with True/False.
    Boolean,
    /// Contains, NotContains on whole elements.
    Collection,
}

impl Attribute {
    pub fn parse(name: &str) -> Option<Self> {
        const NAMES: &[(&str, Attribute)] = &[
            ("deviceId", Attribute::DeviceId),
            ("displayName", Attribute::DisplayName),
            ("deviceOwnership", Attribute::DeviceOwnership),
            ("enrollmentProfileName", Attribute::EnrollmentProfileName),
            ("isCompliant", Attribute::IsCompliant),
            ("manufacturer", Attribute::Manufacturer),
            ("mdmAppId", Attribute::MdmAppId),
            ("model", Attribute::Model),
            ("operatingSystem", Attribute::OperatingSystem),
            ("operatingSystemVersion", Attribute::OperatingSystemVersion),
            ("physicalIds", Attribute::PhysicalIds),
            ("profileType", Attribute::ProfileType),
            ("systemLabels", Attribute::SystemLabels),
            ("trustType", Attribute::TrustType),
        ];
        if let Some((_, attribute)) = NAMES.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)) {
            return Some(*attribute);
        }
        let prefix = "extensionAttribute";
        // Compare bytes: the name may hold multi-byte characters anywhere (found by fuzzing).
        let has_prefix = name
            .as_bytes()
            .get(..prefix.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(prefix.as_bytes()));
        if name.len() > prefix.len() && has_prefix {
            let digits = &name[prefix.len()..];
            if digits.bytes().all(|b| b.is_ascii_digit())
                && !digits.starts_with('0')
                && let Ok(n @ 1..=15) = digits.parse::<u8>()
            {
                return Some(Attribute::ExtensionAttribute(n - 1));
            }
        }
        None
    }

    fn family(self) -> Family {
        match self {
            Attribute::DeviceId | Attribute::MdmAppId => Family::Identifier,
            Attribute::DeviceOwnership | Attribute::ProfileType | Attribute::TrustType => {
                Family::Choice
            }
            Attribute::IsCompliant => Family::Boolean,
            Attribute::PhysicalIds | Attribute::SystemLabels => Family::Collection,
            _ => Family::Text,
        }
    }

    fn allows(self, op: Operator) -> bool {
        use Operator::*;
        match self.family() {
            Family::Identifier => matches!(op, Eq | Ne | In | NotIn),
            Family::Text => true,
            Family::Choice | Family::Boolean => matches!(op, Eq | Ne),
            Family::Collection => matches!(op, Contains | NotContains),
        }
    }
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    Eq,
    Ne,
    StartsWith,
    NotStartsWith,
    EndsWith,
    NotEndsWith,
    Contains,
    NotContains,
    In,
    NotIn,
}

impl Operator {
    fn parse(token: &str) -> Option<Self> {
        const OPS: &[(&str, Operator)] = &[
            ("-eq", Operator::Eq),
            ("-ne", Operator::Ne),
            ("-startsWith", Operator::StartsWith),
            ("-notStartsWith", Operator::NotStartsWith),
            ("-endsWith", Operator::EndsWith),
            ("-notEndsWith", Operator::NotEndsWith),
            ("-contains", Operator::Contains),
            ("-notContains", Operator::NotContains),
            ("-in", Operator::In),
            ("-notIn", Operator::NotIn),
        ];
        OPS.iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(token))
            .map(|(_, op)| *op)
    }

    /// Negative operators are true on a null attribute.
    fn is_negative(self) -> bool {
        matches!(
            self,
            Operator::Ne
                | Operator::NotStartsWith
                | Operator::NotEndsWith
                | Operator::NotContains
                | Operator::NotIn
        )
    }

    fn positive(self) -> Self {
        match self {
            Operator::Ne => Operator::Eq,
            Operator::NotStartsWith => Operator::StartsWith,
            Operator::NotEndsWith => Operator::EndsWith,
            Operator::NotContains => Operator::Contains,
            Operator::NotIn => Operator::In,
            other => other,
        }
    }
}

/// The right-hand side of a comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operand {
    Text(String),
    List(Vec<String>),
    Bool(bool),
    /// `null`: `-eq null` tests that the attribute is null.
    Null,
}

/// A parsed rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    Compare {
        attribute: Attribute,
        operator: Operator,
        operand: Operand,
    },
    Not(Box<Rule>),
    And(Vec<Rule>),
    Or(Vec<Rule>),
}

/// Why a rule does not parse; `position` is a byte offset into the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("device filter rule, at {position}: {message}")]
pub struct RuleError {
    pub position: usize,
    pub message: String,
}

impl RuleError {
    fn at(position: usize, message: impl fmt::Display) -> Self {
        RuleError {
            position,
            message: message.to_string(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Open,
    Close,
    OpenBracket,
    CloseBracket,
    Comma,
    /// `-and`, `-eq`, … (kept with its dash).
    Keyword(String),
    /// `device.trustType`, `True`, `null`, a bare word.
    Word(String),
    Text(String),
}

fn tokenize(rule: &str) -> Result<Vec<(usize, Token)>, RuleError> {
    let mut tokens = Vec::new();
    let bytes = rule.as_bytes();
    let mut index = 0;
    while index < bytes.len() {
        let start = index;
        let byte = bytes[index];
        match byte {
            b' ' | b'\t' | b'\r' | b'\n' => index += 1,
            b'(' => {
                tokens.push((start, Token::Open));
                index += 1;
            }
            b')' => {
                tokens.push((start, Token::Close));
                index += 1;
            }
            b'[' => {
                tokens.push((start, Token::OpenBracket));
                index += 1;
            }
            b']' => {
                tokens.push((start, Token::CloseBracket));
                index += 1;
            }
            b',' => {
                tokens.push((start, Token::Comma));
                index += 1;
            }
            b'"' => {
                // Dynamic-membership rules escape a quote inside a value with a backtick; a
                // backslash escape is accepted too because hand-written JSON often carries one.
                let mut text = String::new();
                index += 1;
                let mut closed = false;
                let mut chars = rule[index..].char_indices();
                while let Some((offset, ch)) = chars.next() {
                    match ch {
                        '"' => {
                            index += offset + 1;
                            closed = true;
                            break;
                        }
                        '`' | '\\' => match chars.next() {
                            Some((_, escaped)) => text.push(escaped),
                            None => break,
                        },
                        other => text.push(other),
                    }
                }
                if !closed {
                    return Err(RuleError::at(start, "unterminated string"));
                }
                tokens.push((start, Token::Text(text)));
            }
            _ => {
                let end = rule[index..]
                    .find(|c: char| {
                        c.is_whitespace() || matches!(c, '(' | ')' | '[' | ']' | ',' | '"')
                    })
                    .map_or(rule.len(), |offset| index + offset);
                let word = &rule[index..end];
                if word.is_empty() {
                    return Err(RuleError::at(start, "unexpected character"));
                }
                if word.starts_with('-') {
                    tokens.push((start, Token::Keyword(word.to_owned())));
                } else {
                    tokens.push((start, Token::Word(word.to_owned())));
                }
                index = end;
            }
        }
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<(usize, Token)>,
    next: usize,
    end: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.next).map(|(_, t)| t)
    }

    fn position(&self) -> usize {
        self.tokens.get(self.next).map_or(self.end, |(p, _)| *p)
    }

    fn bump(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.next).map(|(_, t)| t.clone());
        self.next += 1;
        token
    }

    fn keyword_is(&self, name: &str) -> bool {
        matches!(self.peek(), Some(Token::Keyword(k)) if k.eq_ignore_ascii_case(name))
    }

    fn or(&mut self, depth: usize) -> Result<Rule, RuleError> {
        let mut terms = vec![self.and(depth)?];
        while self.keyword_is("-or") {
            self.next += 1;
            terms.push(self.and(depth)?);
        }
        Ok(if terms.len() == 1 {
            terms.remove(0)
        } else {
            Rule::Or(terms)
        })
    }

    fn and(&mut self, depth: usize) -> Result<Rule, RuleError> {
        let mut terms = vec![self.unary(depth)?];
        while self.keyword_is("-and") {
            self.next += 1;
            terms.push(self.unary(depth)?);
        }
        Ok(if terms.len() == 1 {
            terms.remove(0)
        } else {
            Rule::And(terms)
        })
    }

    fn unary(&mut self, depth: usize) -> Result<Rule, RuleError> {
        if depth >= MAX_DEPTH {
            return Err(RuleError::at(self.position(), "rule nested too deeply"));
        }
        if self.keyword_is("-not") {
            self.next += 1;
            return Ok(Rule::Not(Box::new(self.unary(depth + 1)?)));
        }
        if self.peek() == Some(&Token::Open) {
            self.next += 1;
            let inner = self.or(depth + 1)?;
            if self.bump() != Some(Token::Close) {
                return Err(RuleError::at(self.position().min(self.end), "expected `)`"));
            }
            return Ok(inner);
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Rule, RuleError> {
        let at = self.position();
        let Some(Token::Word(property)) = self.bump() else {
            return Err(RuleError::at(at, "expected `device.<attribute>`"));
        };
        let name = property
            .strip_prefix("device.")
            .or_else(|| property.strip_prefix("Device."))
            .ok_or_else(|| RuleError::at(at, format!("`{property}` is not a device attribute")))?;
        let attribute = Attribute::parse(name)
            .ok_or_else(|| RuleError::at(at, format!("unknown device attribute `{name}`")))?;
        let op_at = self.position();
        let Some(Token::Keyword(op_text)) = self.bump() else {
            return Err(RuleError::at(op_at, "expected an operator such as -eq"));
        };
        let operator = Operator::parse(&op_text)
            .ok_or_else(|| RuleError::at(op_at, format!("unsupported operator `{op_text}`")))?;
        if !attribute.allows(operator) {
            return Err(RuleError::at(
                op_at,
                format!("operator `{op_text}` is not allowed on `{name}`"),
            ));
        }
        let value_at = self.position();
        let operand = match (operator, self.bump()) {
            (Operator::In | Operator::NotIn, Some(Token::OpenBracket)) => {
                let mut items = Vec::new();
                loop {
                    match self.bump() {
                        Some(Token::Text(text)) => items.push(text),
                        Some(Token::CloseBracket) if items.is_empty() => break,
                        _ => {
                            return Err(RuleError::at(
                                value_at,
                                "expected a list of quoted strings",
                            ));
                        }
                    }
                    match self.bump() {
                        Some(Token::Comma) => continue,
                        Some(Token::CloseBracket) => break,
                        _ => return Err(RuleError::at(value_at, "expected `,` or `]` in list")),
                    }
                }
                Operand::List(items)
            }
            (Operator::In | Operator::NotIn, _) => {
                return Err(RuleError::at(
                    value_at,
                    "-in and -notIn take a list like [\"a\",\"b\"]",
                ));
            }
            (_, Some(Token::Text(text))) if attribute == Attribute::IsCompliant => {
                parse_bool(&text)
                    .map(Operand::Bool)
                    .ok_or_else(|| RuleError::at(value_at, "isCompliant takes True or False"))?
            }
            (_, Some(Token::Text(text))) => Operand::Text(text),
            (_, Some(Token::Word(word))) if word.eq_ignore_ascii_case("null") => Operand::Null,
            (_, Some(Token::Word(word))) if attribute == Attribute::IsCompliant => {
                parse_bool(&word)
                    .map(Operand::Bool)
                    .ok_or_else(|| RuleError::at(value_at, "isCompliant takes True or False"))?
            }
            _ => return Err(RuleError::at(value_at, "expected a quoted value")),
        };
        if matches!(operand, Operand::Null) && !matches!(operator, Operator::Eq | Operator::Ne) {
            return Err(RuleError::at(
                value_at,
                "null can only be compared with -eq or -ne",
            ));
        }
        Ok(Rule::Compare {
            attribute,
            operator,
            operand,
        })
    }
}

impl Rule {
    /// Parses a rule, enforcing Entra's length limit.
    pub fn parse(rule: &str) -> Result<Rule, RuleError> {
        if rule.len() > MAX_RULE_LENGTH {
            return Err(RuleError::at(
                MAX_RULE_LENGTH,
                format!(
                    "rule is {} characters, the limit is {MAX_RULE_LENGTH}",
                    rule.len()
                ),
            ));
        }
        let tokens = tokenize(rule)?;
        if tokens.is_empty() {
            return Err(RuleError::at(0, "empty rule"));
        }
        let mut parser = Parser {
            tokens,
            next: 0,
            end: rule.len(),
        };
        let parsed = parser.or(0)?;
        if parser.next < parser.tokens.len() {
            return Err(RuleError::at(
                parser.position(),
                "unexpected text after the rule",
            ));
        }
        Ok(parsed)
    }

    /// Evaluates the rule; `None` is an unregistered device (all attributes null).
    pub fn matches(&self, device: Option<&DeviceFacts>) -> bool {
        match self {
            Rule::Not(inner) => !inner.matches(device),
            Rule::And(terms) => terms.iter().all(|t| t.matches(device)),
            Rule::Or(terms) => terms.iter().any(|t| t.matches(device)),
            Rule::Compare {
                attribute,
                operator,
                operand,
            } => compare(device, *attribute, *operator, operand),
        }
    }
}

enum Value<'a> {
    Null,
    Text(&'a str),
    Bool(bool),
    Collection(&'a [String]),
}

fn attribute_value(device: Option<&DeviceFacts>, attribute: Attribute) -> Value<'_> {
    let Some(d) = device else {
        return Value::Null;
    };
    let field = match attribute {
        Attribute::DeviceId => &d.device_id,
        Attribute::DisplayName => &d.display_name,
        Attribute::DeviceOwnership => &d.device_ownership,
        Attribute::EnrollmentProfileName => &d.enrollment_profile_name,
        Attribute::Manufacturer => &d.manufacturer,
        Attribute::MdmAppId => &d.mdm_app_id,
        Attribute::Model => &d.model,
        Attribute::OperatingSystem => &d.operating_system,
        Attribute::OperatingSystemVersion => &d.operating_system_version,
        Attribute::ProfileType => &d.profile_type,
        Attribute::TrustType => &d.trust_type,
        Attribute::ExtensionAttribute(n) => &d.extension_attributes[usize::from(n).min(14)],
        Attribute::IsCompliant => return d.is_compliant.map_or(Value::Null, Value::Bool),
        Attribute::PhysicalIds => return Value::Collection(&d.physical_ids),
        Attribute::SystemLabels => return Value::Collection(&d.system_labels),
    };
    field.as_deref().map_or(Value::Null, Value::Text)
}

fn starts_with_ignore_case(haystack: &str, needle: &str) -> bool {
    haystack.len() >= needle.len()
        && haystack.is_char_boundary(needle.len())
        && haystack[..needle.len()].eq_ignore_ascii_case(needle)
}

fn ends_with_ignore_case(haystack: &str, needle: &str) -> bool {
    let split = haystack.len().wrapping_sub(needle.len());
    haystack.len() >= needle.len()
        && haystack.is_char_boundary(split)
        && haystack[split..].eq_ignore_ascii_case(needle)
}

fn contains_ignore_case(haystack: &str, needle: &str) -> bool {
    needle.is_empty()
        || haystack
            .as_bytes()
            .windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

fn compare(
    device: Option<&DeviceFacts>,
    attribute: Attribute,
    operator: Operator,
    operand: &Operand,
) -> bool {
    let value = attribute_value(device, attribute);
    if let Operand::Null = operand {
        let is_null = matches!(value, Value::Null);
        return if operator == Operator::Eq {
            is_null
        } else {
            !is_null
        };
    }
    let positive = match value {
        // Null semantics: positive operators are false, negative operators true.
        Value::Null => return operator.is_negative(),
        Value::Bool(actual) => match operand {
            Operand::Bool(expected) => actual == *expected,
            _ => false,
        },
        Value::Collection(items) => match operand {
            Operand::Text(needle) => items.iter().any(|item| item.eq_ignore_ascii_case(needle)),
            _ => false,
        },
        Value::Text(actual) => match (operator.positive(), operand) {
            (Operator::Eq, Operand::Text(expected)) => actual.eq_ignore_ascii_case(expected),
            (Operator::StartsWith, Operand::Text(expected)) => {
                starts_with_ignore_case(actual, expected)
            }
            (Operator::EndsWith, Operand::Text(expected)) => {
                ends_with_ignore_case(actual, expected)
            }
            (Operator::Contains, Operand::Text(expected)) => contains_ignore_case(actual, expected),
            (Operator::In, Operand::List(items)) => {
                items.iter().any(|i| i.eq_ignore_ascii_case(actual))
            }
            _ => false,
        },
    };
    if operator.is_negative() {
        !positive
    } else {
        positive
    }
}

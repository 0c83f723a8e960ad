//! The words the pages use for the API's values, in one place: form fields by the labels people
//! see beside them (so an error never says `userPrincipalName`), sign-in methods and method
//! combinations ("Password + SMS"), what kind of client an application is, and moments in time
//! (the `moment` template filter: a `<time>` the browser shows in its own zone).
//!
//! What it must never do: change what a value means. These are display words only; the API
//! and the stored data keep Graph's names.

/// The label a person sees for a form field named by the API's property name.
pub fn field_label(name: &str) -> Option<&'static str> {
    Some(match name {
        "userPrincipalName" => "User principal name",
        "displayName" => "Display name",
        "mail" => "Email",
        "description" => "Description",
        "accountEnabled" => "Account enabled",
        "passwordCredential" => "Client secret",
        "web.redirectUris" => "Web redirect URIs",
        "spa.redirectUris" => "Single-page application redirect URIs",
        "publicClient.redirectUris" => "Mobile and desktop redirect URIs",
        "isFallbackPublicClient" => "Allow public client flows",
        "ipRanges" => "IP ranges",
        "countriesAndRegions" => "Countries and regions",
        "allowedCombinations" => "Allowed method combinations",
        "isSelfServiceRegistrationAllowed" => "Allow self-service set up",
        "isAttestationEnforced" => "Enforce attestation",
        "keyRestrictions" => "Key restrictions",
        "aaGuids" => "AAGUIDs",
        "defaultLifetimeInMinutes" => "Default lifetime",
        "minimumLifetimeInMinutes" => "Minimum lifetime",
        "maximumLifetimeInMinutes" => "Maximum lifetime",
        "defaultLength" => "Length",
        "isUsableOnce" => "One-time use",
        "lifetimeInMinutes" => "Lifetime",
        "startDateTime" => "Start",
        _ => return None,
    })
}

/// A refusal's message in the form's words: every API property name it mentions becomes the
/// label of its field ("userPrincipalName must look like name@domain." → "User principal name
/// must look like name@domain."). Longer names go first, so `web.redirectUris` is not read as
/// `redirectUris`.
pub fn in_form_words(message: &str) -> String {
    const NAMES: &[&str] = &[
        "publicClient.redirectUris",
        "spa.redirectUris",
        "web.redirectUris",
        "isSelfServiceRegistrationAllowed",
        "defaultLifetimeInMinutes",
        "minimumLifetimeInMinutes",
        "maximumLifetimeInMinutes",
        "countriesAndRegions",
        "allowedCombinations",
        "isFallbackPublicClient",
        "isAttestationEnforced",
        "userPrincipalName",
        "passwordCredential",
        "lifetimeInMinutes",
        "keyRestrictions",
        "accountEnabled",
        "startDateTime",
        "defaultLength",
        "isUsableOnce",
        "displayName",
        "description",
        "ipRanges",
        "aaGuids",
    ];
    let mut out = message.to_string();
    for name in NAMES {
        if let Some(label) = field_label(name) {
            out = replace_word(&out, name, label);
        }
    }
    out
}

/// `text` with each whole-word `name` replaced by `label` (a name inside a longer identifier
/// stays as it is).
fn replace_word(text: &str, name: &str, label: &str) -> String {
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '.' || c == '_';
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(name) {
        let before = rest[..at].chars().next_back();
        let after = rest[at + name.len()..].chars().next();
        out.push_str(&rest[..at]);
        // A name inside a longer identifier, or a path into a value (`countriesAndRegions[1]`,
        // `web.redirectUris`), stays as the API wrote it.
        if before.is_some_and(is_word)
            || after.is_some_and(|c| c.is_ascii_alphanumeric() || c == '[' || c == '.')
        {
            out.push_str(name);
        } else {
            out.push_str(label);
        }
        rest = &rest[at + name.len()..];
    }
    out.push_str(rest);
    out
}

/// A sign-in method by Graph's name, as a person reads it.
pub fn method_name(method: &str) -> String {
    let known = match method {
        "password" => "Password",
        "fido2" => "Passkey (FIDO2)",
        "passkey" => "Passkey",
        "windowsHelloForBusiness" => "Windows Hello for Business",
        "x509CertificateSingleFactor" => "Certificate-based authentication (single-factor)",
        "x509CertificateMultiFactor" => "Certificate-based authentication (multifactor)",
        "temporaryAccessPassOneTime" => "Temporary Access Pass (one-time use)",
        "temporaryAccessPassMultiUse" => "Temporary Access Pass (multi-use)",
        "temporaryAccessPass" => "Temporary Access Pass",
        "microsoftAuthenticatorPush" => "Microsoft Authenticator (push)",
        "deviceBasedPush" => "Microsoft Authenticator (phone sign-in)",
        "softwareOath" => "Software OATH token",
        "hardwareOath" => "Hardware OATH token",
        "sms" => "SMS",
        "voice" => "Voice call",
        "email" => "Email one-time passcode",
        "federatedSingleFactor" => "Federated single-factor",
        "federatedMultiFactor" => "Federated multifactor",
        "qrCodePin" => "QR code",
        _ => return method.to_string(),
    };
    known.to_string()
}

/// A method combination of an authentication strength (`password,sms`), as a person reads it
/// ("Password + SMS").
pub fn combination_name(combination: &str) -> String {
    combination
        .split(',')
        .map(|m| method_name(m.trim()))
        .collect::<Vec<_>>()
        .join(" + ")
}

/// What kind of client an application registration is, from its platforms: a public client
/// (mobile and desktop), a single-page application (its redirect URIs are the SPA platform's),
/// or a confidential web application.
pub fn client_kind(is_fallback_public_client: bool, has_spa_redirects: bool) -> &'static str {
    if has_spa_redirects {
        "Single-page application"
    } else if is_fallback_public_client {
        "Public client (mobile and desktop)"
    } else {
        "Confidential (web)"
    }
}

/// A moment as the pages show it, from the text [`when`](super::admin::when) gives
/// (`2026-03-01 09:30 UTC`): a `<time datetime="2026-03-01T09:30Z">` holding that text, which
/// `portcullis.js` rewrites in the browser's own time zone with `Intl` (the UTC text stays when
/// script does not run). Text in any other form is shown as it is, escaped.
pub fn moment(text: String) -> minijinja::Value {
    let iso = text.strip_suffix(" UTC").and_then(|t| {
        let (date, clock) = t.split_once(' ')?;
        let well_formed = date.len() == 10
            && (clock.len() == 5 || clock.len() == 8)
            && date
                .chars()
                .chain(clock.chars())
                .all(|c| c.is_ascii_digit() || c == '-' || c == ':');
        well_formed.then(|| format!("{date}T{clock}Z"))
    });
    match iso {
        Some(iso) => minijinja::Value::from_safe_string(format!(
            "<time datetime=\"{iso}\" title=\"{text}\">{text}</time>"
        )),
        None => minijinja::Value::from(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_use_the_forms_labels() {
        assert_eq!(
            in_form_words("userPrincipalName must look like name@domain."),
            "User principal name must look like name@domain."
        );
        assert_eq!(
            in_form_words("web.redirectUris: the redirect URI 'x' is not absolute."),
            "Web redirect URIs: the redirect URI 'x' is not absolute."
        );
        assert_eq!(
            in_form_words("'a b' is not a valid userPrincipalName: use name@domain"),
            "'a b' is not a valid User principal name: use name@domain"
        );
        // Part of a longer identifier, or prose without names: unchanged.
        assert_eq!(
            in_form_words("displayNames are fine"),
            "displayNames are fine"
        );
        assert_eq!(in_form_words("Nothing to do."), "Nothing to do.");
        assert_eq!(
            in_form_words("'UK' is not a value of countriesAndRegions[1]."),
            "'UK' is not a value of countriesAndRegions[1]."
        );
    }

    #[test]
    fn methods_and_combinations_read_as_words() {
        assert_eq!(
            method_name("windowsHelloForBusiness"),
            "Windows Hello for Business"
        );
        assert_eq!(combination_name("password,sms"), "Password + SMS");
        assert_eq!(
            combination_name("password,microsoftAuthenticatorPush"),
            "Password + Microsoft Authenticator (push)"
        );
        assert_eq!(method_name("somethingNew"), "somethingNew");
    }

    #[test]
    fn moments_become_time_elements_and_anything_else_stays_text() {
        assert_eq!(
            moment("2026-03-01 09:30 UTC".into()).to_string(),
            "<time datetime=\"2026-03-01T09:30Z\" title=\"2026-03-01 09:30 UTC\">2026-03-01 09:30 UTC</time>"
        );
        let other = moment("<b>soon</b>".into());
        assert!(!other.is_safe(), "escaped when rendered");
    }

    #[test]
    fn a_single_page_application_is_not_confidential() {
        assert_eq!(client_kind(false, true), "Single-page application");
        assert_eq!(
            client_kind(true, false),
            "Public client (mobile and desktop)"
        );
        assert_eq!(client_kind(false, false), "Confidential (web)");
    }
}

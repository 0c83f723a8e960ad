//! From a user-agent string to the facts Conditional Access and the sign-in log need: the
//! device platform (`portcullis_policy::DevicePlatform`), the client app type, and display names
//! for the browser and operating system.
//!
//! Like Entra, this trusts the user agent, which the client controls: the platform condition is
//! a convenience for steering users, not a security boundary (reference §1.5). Parsing uses the
//! maintained `woothee` parser; this crate only maps its answer onto Graph's enums and settles
//! the cases it cannot:
//!
//! - **Unknown platforms** (ChromeOS, BSD, consoles, empty or garbage strings) give `None`, which
//!   the engine matches only against `all`, so "include all, exclude the supported ones, block"
//!   catches them as Microsoft recommends.
//! - **iPadOS in desktop mode** sends exactly the UA of Safari on a Mac (`Macintosh; Intel Mac OS
//!   X`). Nothing in the string tells them apart, so it is reported as macOS, which is also what
//!   Entra reports. Claiming iOS for every Mac would be wrong for every real Mac, and guessing
//!   gains nothing since the UA is unverified anyway. Where the client does say more, we listen:
//!   an `iPad` token, the `Mobile/` token that iPad apps' web views keep even in desktop mode, or
//!   a `Sec-CH-UA-Platform` hint of `iOS`/`iPadOS` make it iOS.
//! - **Windows on ARM** is Windows: the ARM/ARM64 token does not change the platform.
//! - **Windows Phone** is `windowsPhone`, checked before Android because its UA also says
//!   "Android" and "iPhone" for compatibility.

use portcullis_policy::{ClientAppType, DevicePlatform};

/// What a user agent says about the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserAgentInfo {
    /// `None` when the platform is not one Conditional Access knows: matches only `all`.
    pub platform: Option<DevicePlatform>,
    pub client_app_type: ClientAppType,
    /// For `deviceDetail.browser`, e.g. `Edge 120.0.2210.91`, or `Unknown`.
    pub browser: String,
    /// For `deviceDetail.operatingSystem`, in the spelling Entra's logs use (`Windows10`,
    /// `Ios`, `MacOs`, `Android`, `Linux`, …), or `Unknown`.
    pub operating_system: String,
}

const UNKNOWN: &str = "Unknown";

fn contains_ignore_case(haystack: &str, needle: &str) -> bool {
    haystack
        .as_bytes()
        .windows(needle.len())
        .any(|window| window.eq_ignore_ascii_case(needle.as_bytes()))
}

/// Parses a user agent alone.
pub fn parse(user_agent: &str) -> UserAgentInfo {
    parse_with_hint(user_agent, None)
}

/// Parses a user agent together with the `Sec-CH-UA-Platform` client hint, when the browser
/// sent one (quotes around the value are allowed, as the header carries them).
pub fn parse_with_hint(user_agent: &str, platform_hint: Option<&str>) -> UserAgentInfo {
    let user_agent = user_agent.trim();
    let parsed = woothee::parser::Parser::new().parse(user_agent);
    let (os_name, browser_name, version, browser_type) = match &parsed {
        Some(result) => (result.os, result.name, result.version, result.browser_type),
        None => (UNKNOWN, UNKNOWN, UNKNOWN, UNKNOWN),
    };

    let mut platform = platform_from_os(os_name, user_agent);
    if let Some(hinted) = platform_hint.and_then(platform_from_hint) {
        platform = hinted;
    }

    let browser = if browser_type == "browser" && browser_name != UNKNOWN {
        if version.is_empty() || version == UNKNOWN {
            browser_name.to_owned()
        } else {
            format!("{browser_name} {version}")
        }
    } else {
        UNKNOWN.to_owned()
    };

    UserAgentInfo {
        operating_system: operating_system_name(platform.as_ref(), os_name),
        platform,
        client_app_type: client_app_type_of(user_agent, browser_type, os_name),
        browser,
    }
}

/// Just the platform.
pub fn platform(user_agent: &str) -> Option<DevicePlatform> {
    parse(user_agent).platform
}

/// Just the client app type.
pub fn client_app_type(user_agent: &str) -> ClientAppType {
    parse(user_agent).client_app_type
}

fn platform_from_os(os: &str, user_agent: &str) -> Option<DevicePlatform> {
    // Windows Phone UAs mention Android and iPhone too; the explicit token is decisive.
    if contains_ignore_case(user_agent, "Windows Phone") || os == "Windows Phone OS" {
        return Some(DevicePlatform::WindowsPhone);
    }
    match os {
        "iPhone" | "iPad" | "iPod" | "iOS" => Some(DevicePlatform::IOS),
        "Android" => Some(DevicePlatform::Android),
        "Mac OSX" => {
            if contains_ignore_case(user_agent, "iPad") || user_agent.contains("Mobile/") {
                Some(DevicePlatform::IOS)
            } else {
                Some(DevicePlatform::MacOS)
            }
        }
        "Linux" => Some(DevicePlatform::Linux),
        "Windows CE" | "Windows UNKNOWN Ver" => {
            // Embedded Windows or an unparsable version: only a desktop NT token is Windows.
            contains_ignore_case(user_agent, "Windows NT").then_some(DevicePlatform::Windows)
        }
        os if os.starts_with("Windows") => Some(DevicePlatform::Windows),
        // ChromeOS, BSD, consoles, feature phones, crawlers, unknown.
        _ => None,
    }
}

fn platform_from_hint(hint: &str) -> Option<Option<DevicePlatform>> {
    let hint = hint.trim().trim_matches('"').trim();
    let platform = match hint.to_ascii_lowercase().as_str() {
        "windows" => Some(DevicePlatform::Windows),
        "macos" => Some(DevicePlatform::MacOS),
        "ios" | "ipados" => Some(DevicePlatform::IOS),
        "android" => Some(DevicePlatform::Android),
        "linux" => Some(DevicePlatform::Linux),
        "chrome os" | "chromium os" | "chromeos" => None,
        // "Unknown", empty or anything else: the hint adds nothing, keep the UA's answer.
        _ => return None,
    };
    Some(platform)
}

fn operating_system_name(platform: Option<&DevicePlatform>, os: &str) -> String {
    let name = match platform {
        Some(DevicePlatform::Windows) if os == "Windows 10" => "Windows10",
        Some(DevicePlatform::Windows) => "Windows",
        Some(DevicePlatform::WindowsPhone) => "WindowsPhone",
        Some(DevicePlatform::IOS) => "Ios",
        Some(DevicePlatform::MacOS) => "MacOs",
        Some(DevicePlatform::Android) => "Android",
        Some(DevicePlatform::Linux) => "Linux",
        _ if os == "ChromeOS" => "ChromeOS",
        _ => UNKNOWN,
    };
    name.to_owned()
}

fn client_app_type_of(user_agent: &str, browser_type: &str, os: &str) -> ClientAppType {
    if user_agent.is_empty() {
        return ClientAppType::OtherClients;
    }
    if contains_ignore_case(user_agent, "ActiveSync") {
        return ClientAppType::ExchangeActiveSync;
    }
    if browser_type == "browser" {
        return ClientAppType::Browser;
    }
    if os == UNKNOWN {
        // Nothing recognisable: do not guess a modern client.
        return ClientAppType::OtherClients;
    }
    // Portcullis speaks only OpenID Connect, so a recognisable non-browser client is a
    // modern-auth app.
    ClientAppType::MobileAppsAndDesktopClients
}

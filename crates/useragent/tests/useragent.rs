//! User-agent mapping, one case per rule in the crate documentation.

use portcullis_policy::{ClientAppType, DevicePlatform};
use portcullis_useragent::{parse, parse_with_hint, platform};

const WINDOWS_EDGE: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.2210.91";
const WINDOWS_ARM64: &str = "Mozilla/5.0 (Windows NT 10.0; ARM64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36";
const WINDOWS_RT: &str =
    "Mozilla/5.0 (compatible; MSIE 10.0; Windows NT 6.2; ARM; Trident/6.0; Touch)";
const MAC_SAFARI: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15";
const IPAD_WEBVIEW_DESKTOP: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148";
const IPAD_SAFARI_MOBILE: &str = "Mozilla/5.0 (iPad; CPU OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1";
const IPHONE_SAFARI: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1";
const ANDROID_CHROME: &str = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.144 Mobile Safari/537.36";
const CHROMEOS: &str = "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";
const LINUX_FIREFOX: &str =
    "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0";
const WINDOWS_PHONE: &str = "Mozilla/5.0 (Mobile; Windows Phone 8.1; Android 4.0; ARM; Trident/7.0; Touch; rv:11.0; IEMobile/11.0; NOKIA; Lumia 635) like iPhone OS 7_0_3 Mac OS X AppleWebKit/537 (KHTML, like Gecko) Mobile Safari/537";

#[test]
fn windows_desktop_is_windows_browser() {
    let info = parse(WINDOWS_EDGE);
    assert_eq!(info.platform, Some(DevicePlatform::Windows));
    assert_eq!(info.client_app_type, ClientAppType::Browser);
    assert_eq!(info.operating_system, "Windows10");
    assert!(info.browser.starts_with("Edge"), "{}", info.browser);
}

#[test]
fn windows_on_arm_is_windows() {
    assert_eq!(platform(WINDOWS_ARM64), Some(DevicePlatform::Windows));
    assert_eq!(platform(WINDOWS_RT), Some(DevicePlatform::Windows));
}

#[test]
fn mac_safari_is_macos() {
    let info = parse(MAC_SAFARI);
    assert_eq!(info.platform, Some(DevicePlatform::MacOS));
    assert_eq!(info.operating_system, "MacOs");
    assert!(info.browser.starts_with("Safari"), "{}", info.browser);
}

/// iPadOS Safari in desktop mode sends the Mac UA byte for byte: it is reported as macOS, as
/// Entra does, because nothing distinguishes it (see the crate documentation).
#[test]
fn ipad_desktop_mode_without_hints_is_macos() {
    assert_eq!(platform(MAC_SAFARI), Some(DevicePlatform::MacOS));
}

#[test]
fn mac_ua_with_ipad_hints_is_ios() {
    assert_eq!(platform(IPAD_WEBVIEW_DESKTOP), Some(DevicePlatform::IOS));
    let hinted = parse_with_hint(MAC_SAFARI, Some("\"iPadOS\""));
    assert_eq!(hinted.platform, Some(DevicePlatform::IOS));
    assert_eq!(hinted.operating_system, "Ios");
    assert_eq!(
        parse_with_hint(
            "Mozilla/5.0 (Macintosh; iPad; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15",
            None
        )
        .platform,
        Some(DevicePlatform::IOS)
    );
}

#[test]
fn iphone_and_ipad_are_ios() {
    assert_eq!(platform(IPHONE_SAFARI), Some(DevicePlatform::IOS));
    assert_eq!(platform(IPAD_SAFARI_MOBILE), Some(DevicePlatform::IOS));
}

#[test]
fn android_is_android_not_linux() {
    let info = parse(ANDROID_CHROME);
    assert_eq!(info.platform, Some(DevicePlatform::Android));
    assert_eq!(info.client_app_type, ClientAppType::Browser);
}

#[test]
fn chromeos_is_unknown() {
    let info = parse(CHROMEOS);
    assert_eq!(info.platform, None);
    assert_eq!(info.operating_system, "ChromeOS");
    assert_eq!(
        parse_with_hint(CHROMEOS, Some("\"Chrome OS\"")).platform,
        None
    );
}

#[test]
fn linux_is_linux() {
    assert_eq!(platform(LINUX_FIREFOX), Some(DevicePlatform::Linux));
}

#[test]
fn windows_phone_is_windows_phone() {
    assert_eq!(platform(WINDOWS_PHONE), Some(DevicePlatform::WindowsPhone));
}

#[test]
fn empty_and_garbage_are_unknown() {
    for ua in [
        "",
        "   ",
        "-",
        "garbage",
        "\u{0}\u{1}zz",
        "Mozilla/5.0",
        "curl/8.5.0",
    ] {
        let info = parse(ua);
        assert_eq!(info.platform, None, "{ua:?}");
        assert_eq!(info.operating_system, "Unknown", "{ua:?}");
    }
    assert_eq!(parse("").client_app_type, ClientAppType::OtherClients);
    assert_eq!(
        parse("garbage").client_app_type,
        ClientAppType::OtherClients
    );
}

#[test]
fn unknown_hint_keeps_the_user_agent_answer() {
    assert_eq!(
        parse_with_hint(WINDOWS_EDGE, Some("\"Unknown\"")).platform,
        Some(DevicePlatform::Windows)
    );
    assert_eq!(
        parse_with_hint(WINDOWS_EDGE, Some("")).platform,
        Some(DevicePlatform::Windows)
    );
}

#[test]
fn activesync_and_apps() {
    assert_eq!(
        parse("Apple-iPhone9C1/1402.100 ExchangeActiveSync/16.1").client_app_type,
        ClientAppType::ExchangeActiveSync
    );
    let msal = "MSAL.Desktop/4.58 (Windows NT 10.0; Win64; x64)";
    let info = parse(msal);
    assert_eq!(
        info.client_app_type,
        ClientAppType::MobileAppsAndDesktopClients,
        "{info:?}"
    );
}

//! What an operator deploying Portcullis runs: `check-config` warnings on a production-looking
//! configuration that misses a setting, the example configuration in deploy/, and the
//! `healthcheck` a container runs.

use std::path::PathBuf;
use std::process::Command;

use super::{BINARY, data_folder, serve};

/// `portcullis check-config ARGS…` with no configuration from this environment.
fn check_config(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(BINARY)
        .arg("check-config")
        .args(args)
        .env_remove("PORTCULLIS_CONFIG")
        .env_remove("PORTCULLIS_DATABASE_URL")
        .env_remove("PORTCULLIS_PUBLIC_URL")
        .env_remove("PORTCULLIS_TRUSTED_PROXIES")
        .env_remove("PORTCULLIS_SECRET_KEY")
        .env_remove("PORTCULLIS_LISTEN")
        .output()
        .expect("the binary runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn deploy_file(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy")
        .join(name)
}

#[test]
fn check_config_warns_when_a_production_configuration_misses_a_setting() {
    let (_dir, data) = data_folder();
    let data = data.to_str().unwrap();

    // The defaults are a laptop's: nothing to warn about.
    let (code, _, err) = check_config(&["--data-dir", data, "--strict"]);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("warning"), "{err}");

    let (code, out, err) = check_config(&[
        "--data-dir",
        data,
        "--public-url",
        "http://login.example.com",
    ]);
    assert_eq!(code, 0, "a warning alone does not fail: {err}");
    assert!(
        out.contains("public_url = \"http://login.example.com\""),
        "{out}"
    );
    assert!(
        err.contains("warning: public_url http://login.example.com is plain http"),
        "{err}"
    );
    let (code, _, err) = check_config(&[
        "--data-dir",
        data,
        "--public-url",
        "http://login.example.com",
        "--strict",
    ]);
    assert_eq!(code, 1, "--strict fails on a warning: {err}");

    // https means a proxy terminates TLS in front: it must be trusted to pass the client on.
    let (code, _, err) = check_config(&[
        "--data-dir",
        data,
        "--public-url",
        "https://login.example.com",
    ]);
    assert_eq!(code, 0);
    assert!(err.contains("trusted_proxies is empty"), "{err}");

    let (_, _, err) = check_config(&[
        "--data-dir",
        data,
        "--database-url",
        "postgres://portcullis@db.internal/portcullis",
    ]);
    assert!(err.contains("secret_key is not set"), "{err}");

    let (_, _, err) = check_config(&["--data-dir", data, "--listen", "0.0.0.0:8080"]);
    assert!(err.contains("names this one"), "{err}");
}

#[test]
fn the_example_configuration_in_deploy_passes_check_config_strictly() {
    let (_dir, data) = data_folder();
    let config = deploy_file("portcullis.toml");
    let (code, out, err) = check_config(&[
        "--config",
        config.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
        "--strict",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("public_url = \"https://login.example.com\""),
        "{out}"
    );
    assert!(!err.contains("warning"), "{err}");
    for file in [
        "Dockerfile",
        "portcullis.service",
        "Caddyfile",
        "nginx.conf",
        "compose.yaml",
    ] {
        assert!(deploy_file(file).is_file(), "deploy/{file} exists");
    }
    let dockerfile = std::fs::read_to_string(deploy_file("Dockerfile")).unwrap();
    assert!(
        dockerfile.contains("\"healthcheck\""),
        "the image checks itself"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn healthcheck_says_whether_the_server_is_ready() {
    let (_dir, data) = data_folder();
    let server = serve(&data);
    let address = server
        .url
        .trim_start_matches("http://")
        .replace("localhost", "127.0.0.1");
    let port = address.rsplit(':').next().unwrap().to_string();
    let healthcheck = |args: Vec<String>| {
        let output = Command::new(BINARY)
            .arg("healthcheck")
            .args(args)
            .env_remove("PORTCULLIS_CONFIG")
            .env_remove("PORTCULLIS_LISTEN")
            .output()
            .unwrap();
        (
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let (code, out, err) = healthcheck(vec!["--address".into(), address.clone()]);
    assert_eq!((code, out.trim()), (0, "ready"), "{err}");
    // By default it asks the listen address, an unspecified one read as loopback.
    let (code, _, err) = healthcheck(vec!["--listen".into(), format!("0.0.0.0:{port}")]);
    assert_eq!(code, 0, "{err}");
    drop(server);
    let (code, _, err) = healthcheck(vec![
        "--address".into(),
        address,
        "--timeout".into(),
        "2".into(),
    ]);
    assert_eq!(code, 1, "a stopped server is not healthy: {err}");
    assert!(err.contains("not reachable"), "{err}");
}

//! `portcullis backup` of a real server while people sign in, `portcullis restore` into a new
//! folder, and the real binary serving the same tenant from it.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use super::{data_folder, first_start_output, published_kids, run, serve_with, sign_in_with_pass};

/// `portcullis ARGS…` on a blocking thread, so the test's own tasks keep running.
async fn run_async(args: Vec<String>) -> (i32, String, String) {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run(&args)
    })
    .await
    .unwrap()
}

fn text(path: &Path) -> String {
    path.to_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backup_taken_during_sign_ins_restores_to_a_server_with_the_same_tenant() {
    let (dir, data) = data_folder();
    let server = serve_with(&data, |command| {
        command.env("PORTCULLIS_RATE_LIMIT_PER_ACCOUNT_PER_MINUTE", "1000000000");
        command.env("PORTCULLIS_RATE_LIMIT_PER_ADDRESS_PER_MINUTE", "1000000000");
    });
    let printed = first_start_output(&server.printed).expect("a first start");
    let (status, admin_session) =
        sign_in_with_pass(&server.url, &printed.administrator, &printed.pass).await;
    assert_eq!(status, 200);
    let admin_session = admin_session.expect("a session");
    let connection = ["--data-dir", data.to_str().unwrap(), "--url", &server.url];
    let with = |args: &[&str]| -> Vec<String> {
        args.iter()
            .chain(connection.iter())
            .map(|s| s.to_string())
            .collect()
    };
    let (code, out, err) = run_async(with(&[
        "users",
        "create",
        "--upn",
        "joni@contoso.com",
        "--name",
        "Joni Sherman",
    ]))
    .await;
    assert_eq!(code, 0, "{out}{err}");
    // A pass that works many times, for the sign-ins that run through the backup.
    let (code, out, err) =
        run_async(with(&["passes", "issue", "joni@contoso.com", "--json"])).await;
    assert_eq!(code, 0, "{out}{err}");
    let issued: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(issued["isUsableOnce"], false, "{issued}");
    let pass = issued["temporaryAccessPass"].as_str().unwrap().to_string();

    let stop = Arc::new(AtomicBool::new(false));
    let signed_in = Arc::new(AtomicU64::new(0));
    let mut load = Vec::new();
    for _ in 0..2 {
        let (stop, signed_in, url, pass) = (
            stop.clone(),
            signed_in.clone(),
            server.url.clone(),
            pass.clone(),
        );
        load.push(tokio::spawn(async move {
            let mut failures = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let (status, session) = sign_in_with_pass(&url, "joni@contoso.com", &pass).await;
                if status == 200 && session.is_some() {
                    signed_in.fetch_add(1, Ordering::Relaxed);
                } else {
                    failures.push(status);
                }
            }
            failures
        }));
    }
    let wait_for = |n: u64| {
        let signed_in = signed_in.clone();
        async move {
            for _ in 0..600 {
                if signed_in.load(Ordering::Relaxed) >= n {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            panic!("the sign-ins did not go on");
        }
    };
    wait_for(5).await;
    let file = dir.path().join("portcullis.backup");
    // The backup reads the configuration the server runs with, as an operator's would.
    let (code, out, err) = run_async(vec![
        "backup".into(),
        text(&file),
        "--data-dir".into(),
        text(&data),
        "--public-url".into(),
        server.url.clone(),
    ])
    .await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("integrity checked"), "{out}");
    let during = signed_in.load(Ordering::Relaxed);
    wait_for(during + 5).await;
    stop.store(true, Ordering::Relaxed);
    for task in load {
        let failures = task.await.unwrap();
        assert!(
            failures.is_empty(),
            "sign-ins failed while the backup ran: {failures:?}"
        );
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "only its owner reads a backup");
    }
    let listing = std::process::Command::new("tar")
        .arg("tf")
        .arg(&file)
        .output();
    if let Ok(listing) = listing {
        assert_eq!(
            String::from_utf8_lossy(&listing.stdout),
            "manifest.json\nportcullis.db\nsecret.key\n",
            "a backup is a tar file"
        );
    }
    // A backup never overwrites.
    let (code, _, err) = run_async(vec![
        "backup".into(),
        text(&file),
        "--data-dir".into(),
        text(&data),
    ])
    .await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("already exists"), "{err}");

    let kids = published_kids(&server.url).await;
    let original_url = server.url.clone();
    drop(server);

    let restored = dir.path().join("restored");
    let (code, out, err) = run_async(vec![
        "restore".into(),
        text(&file),
        "--data-dir".into(),
        text(&restored),
    ])
    .await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(&format!("--public-url {original_url}")),
        "{out}"
    );
    assert!(!restored.join("bootstrap.json").exists());
    let again = serve_with(&restored, |_| {});
    assert!(
        first_start_output(&again.printed).is_none(),
        "the restored folder holds the tenant: no first start ({:?})",
        again.printed
    );
    assert_eq!(
        published_kids(&again.url).await,
        kids,
        "the same signing keys"
    );
    // The administrator's automation credentials (kept outside the backup) work on it.
    let (code, out, err) = run_async(vec![
        "users".into(),
        "list".into(),
        "--json".into(),
        "--data-dir".into(),
        text(&data),
        "--url".into(),
        again.url.clone(),
    ])
    .await;
    assert_eq!(code, 0, "{out}{err}");
    let users: serde_json::Value = serde_json::from_str(&out).unwrap();
    let upns: Vec<&str> = users["value"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|u| u["userPrincipalName"].as_str())
        .collect();
    assert!(upns.contains(&"joni@contoso.com"), "{upns:?}");
    // A session from before the backup, and the pass, still work.
    let session_works = super::http()
        .get(format!("{}/my/passkeys", again.url))
        .header("cookie", format!("portcullis_session={admin_session}"))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(
        session_works, 200,
        "the administrator's session survives the restore"
    );
    let (status, session) = sign_in_with_pass(&again.url, "joni@contoso.com", &pass).await;
    assert_eq!((status, session.is_some()), (200, true));
    drop(again);

    // Restore makes a new folder; it never writes over one.
    let (code, _, err) = run_async(vec![
        "restore".into(),
        text(&file),
        "--data-dir".into(),
        text(&restored),
    ])
    .await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("is not empty"), "{err}");

    // A truncated or damaged file is refused with a clear message, and leaves nothing.
    let bytes = std::fs::read(&file).unwrap();
    let truncated = dir.path().join("truncated.backup");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let damaged = dir.path().join("damaged.backup");
    let mut flipped = bytes.clone();
    let middle = 1024 + (bytes.len() - 1024) / 2;
    flipped[middle] ^= 0x5a;
    std::fs::write(&damaged, &flipped).unwrap();
    for (bad, why) in [
        (&truncated, "truncated"),
        (&damaged, "does not match its checksum"),
    ] {
        let target = dir.path().join(format!("from-{why}"));
        let (code, out, err) = run_async(vec![
            "restore".into(),
            text(bad),
            "--data-dir".into(),
            text(&target),
        ])
        .await;
        assert_eq!(code, 2, "{out}{err}");
        assert!(err.contains("is not a complete Portcullis backup"), "{err}");
        assert!(err.contains(why), "{err}");
        assert!(!target.exists(), "a failed restore leaves no folder behind");
    }
}

#[test]
fn backup_of_postgresql_refuses_with_the_pg_dump_advice() {
    let (dir, data) = data_folder();
    let (code, out, err) = run(&[
        "backup",
        dir.path().join("x.backup").to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
        "--database-url",
        "postgres://portcullis@127.0.0.1:1/portcullis",
    ]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains("pg_dump") && err.contains("secret_key"),
        "{err}"
    );
    assert!(!dir.path().join("x.backup").exists());
    // Nothing to back up: a folder with no database is a usage error too.
    let (code, _, err) = run(&[
        "backup",
        dir.path().join("y.backup").to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{err}");
}

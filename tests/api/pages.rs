//! Sigil's own pages: the product name they show is a setting.

use crate::flow::{authorize_url, pkce, web_client};
use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_show_the_configured_product_name_escaped() {
    let app = spawn_app_with(
        Backend::Sqlite,
        AppOptions {
            env: vec![(
                "SIGIL_UI_PRODUCT_NAME".to_owned(),
                "Acme <ID> & Co".to_owned(),
            )],
            ..AppOptions::default()
        },
    )
    .await;
    let c = web_client(&app, &[]);
    let url = authorize_url(&app, &c.id, &pkce().challenge, "");
    let html = app
        .client
        .get(&url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("Sign in to Acme &#60;ID&#62; &#38; Co")
            || html.contains("Sign in to Acme &lt;ID&gt; &amp; Co"),
        "{html}"
    );
    assert!(!html.contains("Sigil"), "the default name is gone: {html}");
    assert!(!html.contains("<ID>"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_product_name_is_sigil() {
    let app = spawn_app(Backend::Sqlite).await;
    let c = web_client(&app, &[]);
    let url = authorize_url(&app, &c.id, &pkce().challenge, "");
    let html = app
        .client
        .get(&url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("<h1>Sign in to Sigil</h1>"), "{html}");
}

#[test]
fn an_empty_product_name_is_refused_by_config_check() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sigil"))
        .args(["config", "check"])
        .env_clear()
        .env("SIGIL_DATA_DIR", dir.path())
        .env("SIGIL_UI_PRODUCT_NAME", " ")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("ui.product_name"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

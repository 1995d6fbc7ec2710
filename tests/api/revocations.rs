//! Ending something ends the access tokens it produced, at `/introspect` and `/userinfo`, on
//! every replica and after a restart: a revoked access token, a refresh-token family that was
//! revoked or reused (`fid`), and a login session that was signed out of (`sid`).

use crate::backend_test;
use crate::flow::{browser, code_tokens, create_user, refresh, web_client};
use crate::helpers::*;
use serde_json::{Value, json};

fn refresh_client(app: &TestApp) -> TestClient {
    web_client(app, &["--grant", "refresh_token"])
}

async fn userinfo_status(app: &TestApp, token: &str) -> u16 {
    app.client
        .get(format!("{}/userinfo", app.address))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn revoke(app: &TestApp, who: &TestClient, token: &str) {
    let resp = app
        .client
        .post(format!("{}/revoke", app.address))
        .basic_auth(&who.id, who.secret.as_deref())
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

fn at(body: &Value) -> String {
    body["access_token"].as_str().unwrap().to_owned()
}

backend_test!(
    reusing_a_refresh_token_ends_every_access_token_of_its_family,
    |app| {
        create_user(&app, "ines");
        let c = refresh_client(&app);
        let tokens = code_tokens(&app, &c, "ines", "openid", &browser()).await;
        let rt0 = tokens["refresh_token"].as_str().unwrap().to_owned();
        let (s, b1) = refresh(&app, &c, &rt0, None).await;
        assert_eq!(s, 200, "{b1}");
        let rt1 = b1["refresh_token"].as_str().unwrap().to_owned();
        let (s, b2) = refresh(&app, &c, &rt1, None).await;
        assert_eq!(s, 200, "{b2}");
        let ats = [at(&tokens), at(&b1), at(&b2)];
        for t in &ats {
            assert_eq!(introspect_ok(&app, &c, t).await["active"], true);
        }
        // rt0 again after its successor was used: reuse, the family is revoked...
        let (s, _) = refresh(&app, &c, &rt0, None).await;
        assert_eq!(s, 400);
        // ...and with it every access token it produced, the newest included.
        for t in &ats {
            assert_eq!(introspect_ok(&app, &c, t).await, json!({"active": false}));
            assert_eq!(userinfo_status(&app, t).await, 401);
        }
    }
);

backend_test!(
    revoking_a_refresh_token_ends_the_access_tokens_of_its_family,
    |app| {
        create_user(&app, "jon");
        let c = refresh_client(&app);
        let tokens = code_tokens(&app, &c, "jon", "openid", &browser()).await;
        let first = at(&tokens);
        let (s, b1) = refresh(&app, &c, tokens["refresh_token"].as_str().unwrap(), None).await;
        assert_eq!(s, 200, "{b1}");
        let rt1 = b1["refresh_token"].as_str().unwrap();
        revoke(&app, &c, rt1).await;
        for t in [first, at(&b1)] {
            assert_eq!(introspect_ok(&app, &c, &t).await, json!({"active": false}));
            assert_eq!(userinfo_status(&app, &t).await, 401);
        }
        // Another sign-in's tokens are another family, untouched.
        let other = code_tokens(&app, &c, "jon", "openid", &browser()).await;
        assert_eq!(introspect_ok(&app, &c, &at(&other)).await["active"], true);
    }
);

backend_test!(signing_out_ends_the_access_tokens_of_the_session, |app| {
    create_user(&app, "kai");
    let c = web_client(&app, &[]);
    let b = browser();
    let tokens = code_tokens(&app, &c, "kai", "openid", &b).await;
    let token = at(&tokens);
    let elsewhere = at(&code_tokens(&app, &c, "kai", "openid", &browser()).await);
    assert_eq!(userinfo_status(&app, &token).await, 200);
    let hint = tokens["id_token"].as_str().unwrap();
    let resp = b
        .get(format!("{}/logout?id_token_hint={hint}", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "signed out");
    assert_eq!(
        introspect_ok(&app, &c, &token).await,
        json!({"active": false})
    );
    assert_eq!(userinfo_status(&app, &token).await, 401);
    assert_eq!(
        userinfo_status(&app, &elsewhere).await,
        200,
        "a session in another browser is another session"
    );
});

backend_test!(
    a_revoked_access_token_stays_revoked_on_every_replica_and_after_a_restart,
    |app| {
        create_user(&app, "lea");
        let c = web_client(&app, &[]);
        let token = at(&code_tokens(&app, &c, "lea", "openid", &browser()).await);
        let replica = spawn_replica(&app).await;
        assert_eq!(introspect_ok(&replica, &c, &token).await["active"], true);
        revoke(&app, &c, &token).await;
        // At once on the other server: nothing to wait for, the database holds it.
        assert_eq!(
            introspect_ok(&replica, &c, &token).await,
            json!({"active": false})
        );
        assert_eq!(userinfo_status(&replica, &token).await, 401);
        // A server started afterwards (a restart) knows it too.
        drop(replica);
        let restarted = spawn_replica(&app).await;
        assert_eq!(
            introspect_ok(&restarted, &c, &token).await,
            json!({"active": false})
        );
    }
);

//! The console in a real Chromium (Debian's `chromium` and `chromium-driver`, driven through
//! WebDriver by fantoccini), against a real backend, executor and kube-sim: signing in and
//! out, an incident arriving live, approve and reject, CSRF refusals, a tampered audit row shown
//! as a break in the chain, the remediation mode switch, policies with inline errors and a
//! what-if, users and roles, the keyboard alone, and what each role may not do. Screenshots of the main pages go to `target/console-screenshots/`, or to
//! `CONSOLE_SCREENSHOTS_DIR` (`docs/console` refreshes the README's).
//!
//! chromedriver must be installed (scripts/prepare-test-env.sh installs it); without it these
//! tests fail, they never skip.

use std::{
    path::PathBuf,
    process::Stdio,
    time::{Duration, Instant},
};

use fantoccini::{Client, ClientBuilder, Locator};
use reqwest::Method;
use serde_json::{Value, json};

use crate::{
    auth_support::{ADMIN_EMAIL, ADMIN_PASSWORD},
    remediation_loop::{Loop, signal, start},
};

const WAIT: Duration = Duration::from_secs(15);

/// chromedriver on a free port, stopped with the test.
struct Driver {
    child: tokio::process::Child,
    url: String,
}

impl Driver {
    async fn start() -> Self {
        let binary = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".to_owned());
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = tokio::process::Command::new(&binary)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("{binary} cannot start ({e}): apt-get install chromium chromium-driver, or set CHROMEDRIVER")
            });
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + WAIT;
        while reqwest::get(format!("{url}/status")).await.is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not answer");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Self { child, url }
    }

    async fn browser(&self) -> Client {
        let mut caps = serde_json::Map::new();
        let chrome = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned());
        caps.insert(
            "goog:chromeOptions".to_owned(),
            json!({"binary": chrome, "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,900", "--no-first-run", "--disable-extensions"
            ]}),
        );
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&self.url)
            .await
            .expect("a Chromium session")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

fn screenshots_dir() -> PathBuf {
    std::env::var_os("CONSOLE_SCREENSHOTS_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/console-screenshots"),
        PathBuf::from,
    )
}

async fn screenshot(c: &Client, name: &str) {
    let dir = screenshots_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let png = c.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
}

async fn click(c: &Client, locator: Locator<'_>) {
    c.find(locator).await.unwrap().click().await.unwrap();
}

async fn type_into(c: &Client, locator: Locator<'_>, text: &str) {
    c.find(locator)
        .await
        .unwrap()
        .send_keys(text)
        .await
        .unwrap();
}

async fn sign_in(c: &Client, base: &str, email: &str, password: &str) {
    c.goto(&format!("{base}/console/login")).await.unwrap();
    type_into(c, Locator::Id("email"), email).await;
    type_into(c, Locator::Id("password"), password).await;
    click(c, Locator::Css("main button[type=submit]")).await;
}

async fn sign_out(c: &Client) {
    click(c, Locator::Css("form.who button")).await;
    c.wait()
        .at_most(WAIT)
        .for_element(Locator::Id("password"))
        .await
        .unwrap();
}

/// The text of the first element matching `css`, once there is one. A click that submits a
/// form does not wait for the next page, so an element found on the page being left can go
/// stale: it is looked up again until it answers.
async fn text_of(c: &Client, css: &str) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok(element) = c.find(Locator::Css(css)).await
            && let Ok(text) = element.text().await
        {
            return text;
        }
        assert!(Instant::now() < deadline, "no {css} within {WAIT:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the text of `css` satisfies `ok`; the last text seen otherwise.
async fn wait_text(c: &Client, css: &str, ok: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let text = text_of(c, css).await;
        if ok(&text) || Instant::now() > deadline {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A user with `role`, made by the admin through the API.
async fn user_with_role(l: &Loop, email: &str, role: &str) {
    let res = l
        .app
        .send(
            Method::POST,
            "/api/v1/users",
            Some(&l.admin.access),
            Some(json!({"email": email, "password": "Console-Password-1"})),
        )
        .await;
    assert_eq!(res.status(), 201);
    let user: Value = res.json().await.unwrap();
    let res = l
        .app
        .send(
            Method::PUT,
            &format!("/api/v1/users/{}/roles", user["id"].as_str().unwrap()),
            Some(&l.admin.access),
            Some(json!({"roles": [role]})),
        )
        .await;
    assert_eq!(res.status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_console_in_chromium_signs_in_shows_incidents_live_and_decides() {
    let l = start("approval", &[("EXECUTOR_AUDIT_TOKEN", "loop-audit-token")]).await;
    for deployment in ["web", "api", "cart"] {
        l.allow(
            &format!("scale {deployment}"),
            "scale_up",
            deployment,
            Some("approval"),
        )
        .await;
    }
    let base = l.app.address.clone();
    let driver = Driver::start().await;
    let c = driver.browser().await;

    // A page needs a session: the login, which brings the browser back to the page.
    c.goto(&format!(
        "{base}/console/incidents?status=awaiting_approval"
    ))
    .await
    .unwrap();
    c.wait()
        .at_most(WAIT)
        .for_element(Locator::Id("password"))
        .await
        .unwrap();
    screenshot(&c, "login").await;
    sign_in(&c, &base, ADMIN_EMAIL, "wrong-password").await;
    assert!(text_of(&c, "#login-error").await.contains("wrong"));
    sign_in(&c, &base, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    c.wait()
        .at_most(WAIT)
        .for_element(Locator::Css("#incident-rows"))
        .await
        .unwrap();
    let url = c.current_url().await.unwrap();
    assert_eq!(url.path(), "/console/incidents");

    // The session cookies are HttpOnly: the page's script cannot read them.
    let visible: Value = c.execute("return document.cookie", vec![]).await.unwrap();
    assert_eq!(visible, json!(""));

    // An incident arrives while the page is open: its row appears without a reload.
    c.goto(&format!("{base}/console/incidents")).await.unwrap();
    let accepted = l.signal(&signal("shop", "web", None, "scale_up")).await;
    let first = accepted["incidentId"].as_str().unwrap().to_owned();
    let row = format!("tr[data-incident='{first}']");
    c.wait()
        .at_most(WAIT)
        .for_element(Locator::Css(&row))
        .await
        .unwrap();
    l.wait_for(&first, &["awaiting_approval"]).await;
    // The filters are honoured by the live rows too.
    c.goto(&format!("{base}/console/incidents?severity=low"))
        .await
        .unwrap();
    assert!(
        text_of(&c, "#incident-rows")
            .await
            .contains("No incidents match")
    );
    c.goto(&format!(
        "{base}/console/incidents?status=awaiting_approval&namespace=shop"
    ))
    .await
    .unwrap();
    c.wait()
        .at_most(WAIT)
        .for_element(Locator::Css(&row))
        .await
        .unwrap();
    screenshot(&c, "incidents").await;

    // Approve: the action runs, the timeline shows it, the executor's row its chain position.
    click(&c, Locator::Css(&format!("{row} a"))).await;
    assert_eq!(text_of(&c, "#incident-status").await, "awaiting_approval");
    type_into(&c, Locator::Id("approve-reason"), "checked the dashboards").await;
    click(&c, Locator::Id("approve")).await;
    let notice = wait_text(&c, "#notice", |t| t.starts_with("Approved")).await;
    assert!(notice.starts_with("Approved"), "{notice}");
    let done = l.wait_for(&first, &["resolved", "failed"]).await;
    assert_eq!(done["status"], "resolved", "{done:#}");
    c.refresh().await.unwrap();
    assert_eq!(text_of(&c, "#incident-status").await, "resolved");
    let page = c.source().await.unwrap();
    assert!(
        page.contains("checked the dashboards"),
        "the approval's reason is in the timeline"
    );
    assert!(
        page.contains("Chain position"),
        "the executor's audit row is shown"
    );
    assert!(page.contains("The audit chain verifies"));
    let trace = text_of(&c, "#policy-trace").await;
    assert!(trace.contains("scale web: matched (allow)"), "{trace}");
    assert!(trace.contains("scale api: not applicable"), "{trace}");
    screenshot(&c, "incident").await;

    // Reject another with a reason.
    let accepted = l.signal(&signal("shop", "api", None, "scale_up")).await;
    let second = accepted["incidentId"].as_str().unwrap().to_owned();
    l.wait_for(&second, &["awaiting_approval"]).await;
    c.goto(&format!("{base}/console/incidents/{second}"))
        .await
        .unwrap();
    type_into(&c, Locator::Id("reject-reason"), "maintenance window").await;
    click(&c, Locator::Id("reject")).await;
    let notice = wait_text(&c, "#notice", |t| t.starts_with("Rejected")).await;
    assert!(notice.starts_with("Rejected"), "{notice}");
    assert_eq!(text_of(&c, "#incident-status").await, "rejected");

    // CSRF: a form whose token was changed is refused, and nothing happens.
    let third = l.signal(&signal("shop", "cart", None, "scale_up")).await["incidentId"]
        .as_str()
        .unwrap()
        .to_owned();
    l.wait_for(&third, &["awaiting_approval"]).await;
    c.goto(&format!("{base}/console/incidents/{third}"))
        .await
        .unwrap();
    c.execute(
        "document.querySelectorAll('input[name=aegis_csrf]').forEach(i => i.value = 'forged')",
        vec![],
    )
    .await
    .unwrap();
    click(&c, Locator::Id("reject")).await;
    let refused = wait_text(&c, "main .error", |t| t.contains("security token")).await;
    assert!(refused.contains("security token"), "{refused}");
    assert_eq!(l.incident(&third).await["status"], "awaiting_approval");

    // The audit page: the chain verifies; after a row is rewritten in the database, the page
    // says where the chain breaks and marks that row.
    c.goto(&format!("{base}/console/audit")).await.unwrap();
    let chain = text_of(&c, "#chain").await;
    assert!(chain.contains("The hash chain verifies"), "{chain}");
    for statement in [
        "ALTER TABLE action_audit_logs DISABLE TRIGGER action_audit_logs_guard",
        "UPDATE action_audit_logs SET namespace = 'tampered' WHERE chain_seq = 1",
        "ALTER TABLE action_audit_logs ENABLE TRIGGER action_audit_logs_guard",
    ] {
        sqlx::query(statement)
            .execute(&l.executor_db)
            .await
            .unwrap();
    }
    c.refresh().await.unwrap();
    let chain = text_of(&c, "#chain").await;
    assert!(chain.contains("broken at #1"), "{chain}");
    c.find(Locator::Css("tr.broken[data-seq='1']"))
        .await
        .unwrap();
    screenshot(&c, "audit").await;

    // The remediation mode: off with a reason, shown, then back.
    c.goto(&format!("{base}/console/mode")).await.unwrap();
    assert_eq!(text_of(&c, "#global-mode").await, "approval");
    click(&c, Locator::Css("#mode option[value=off]")).await;
    type_into(&c, Locator::Id("mode-reason"), "change freeze").await;
    click(&c, Locator::Id("set-mode")).await;
    let notice = wait_text(&c, "#notice", |t| t.contains("The mode is set")).await;
    assert!(notice.contains("The mode is set"), "{notice}");
    assert_eq!(text_of(&c, "#global-mode").await, "off");
    assert!(c.source().await.unwrap().contains("change freeze"));
    screenshot(&c, "mode").await;
    click(&c, Locator::Css("#mode option[value=approval]")).await;
    click(&c, Locator::Id("set-mode")).await;
    let mode = wait_text(&c, "#global-mode", |t| t == "approval").await;
    assert_eq!(mode, "approval");

    // Policies: a draft with a mistake is refused with the reason next to it; a what-if
    // evaluates a request with the draft in place and against the saved set; then it saves.
    c.goto(&format!("{base}/console/policies")).await.unwrap();
    c.find(Locator::Css("tr[data-policy='scale cart']"))
        .await
        .unwrap();
    click(&c, Locator::Id("new-policy")).await;
    let draft = c.find(Locator::Id("draft")).await.unwrap();
    draft.clear().await.unwrap();
    draft
        .send_keys(r#"{"name": "freeze cart", "type": "self_healing", "effect": "maybe", "priority": 900, "conditions": {}, "actions": ["*"], "resources": ["service:cart"]}"#)
        .await
        .unwrap();
    click(&c, Locator::Id("save")).await;
    let errors = text_of(&c, "#draft-errors").await;
    assert!(errors.contains("effect"), "{errors}");
    let kept = c
        .find(Locator::Id("draft"))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap();
    assert!(
        kept.unwrap_or_default().contains("\"maybe\""),
        "the draft is kept as written"
    );
    let draft = c.find(Locator::Id("draft")).await.unwrap();
    draft.clear().await.unwrap();
    draft
        .send_keys(r#"{"name": "freeze cart", "type": "self_healing", "effect": "deny", "priority": 900, "conditions": {}, "actions": ["*"], "resources": ["service:cart"]}"#)
        .await
        .unwrap();
    type_into(&c, Locator::Id("wi-action"), "scale_up").await;
    type_into(&c, Locator::Id("wi-resource"), "service:cart").await;
    click(&c, Locator::Id("whatif-draft")).await;
    let verdict = wait_text(&c, "#whatif-verdict", |t| t.starts_with("Denied")).await;
    assert!(verdict.starts_with("Denied"), "{verdict}");
    let page = c.source().await.unwrap();
    assert!(
        page.contains("freeze cart: matched (deny)"),
        "the draft's trace is shown"
    );
    c.execute(
        "document.getElementById('whatif').scrollIntoView({block: 'center'})",
        vec![],
    )
    .await
    .unwrap();
    screenshot(&c, "policy").await;
    click(&c, Locator::Id("whatif-saved")).await;
    let verdict = wait_text(&c, "#whatif-verdict", |t| t.starts_with("Allowed")).await;
    assert!(
        verdict.starts_with("Allowed"),
        "the saved set allows it: {verdict}"
    );
    click(&c, Locator::Id("save")).await;
    let notice = wait_text(&c, "#notice", |t| t.starts_with("Saved")).await;
    assert!(notice.starts_with("Saved"), "{notice}");
    c.goto(&format!("{base}/console/policies")).await.unwrap();
    c.find(Locator::Css("tr[data-policy='freeze cart']"))
        .await
        .unwrap();

    // Users: the admin grants a role with the checkboxes; the API records it.
    user_with_role(&l, "op@example.com", "user").await;
    c.goto(&format!("{base}/console/users")).await.unwrap();
    let row = "tr[data-user='op@example.com']";
    click(&c, Locator::Css(&format!("{row} input[value=user]"))).await;
    click(&c, Locator::Css(&format!("{row} input[value=operator]"))).await;
    click(&c, Locator::Css(&format!("{row} button"))).await;
    let notice = wait_text(&c, "#notice", |t| t.contains("The roles are set")).await;
    assert!(notice.contains("The roles are set"), "{notice}");
    let users: Value = l
        .app
        .send(Method::GET, "/api/v1/users", Some(&l.admin.access), None)
        .await
        .json()
        .await
        .unwrap();
    let op = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["email"] == "op@example.com")
        .unwrap()
        .clone();
    let roles: Vec<&str> = op["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["operator"], "{op:#}");
    screenshot(&c, "users").await;

    // Alerts: the approval notified nobody here, but the page answers for every role.
    c.goto(&format!("{base}/console/alerts")).await.unwrap();
    assert_eq!(text_of(&c, "main h1").await, "Alerts");

    // Sign out: the session is over, pages lead to the login again.
    c.goto(&format!("{base}/console/incidents")).await.unwrap();
    sign_out(&c).await;
    c.goto(&format!("{base}/console/incidents")).await.unwrap();
    c.wait()
        .at_most(WAIT)
        .for_element(Locator::Id("password"))
        .await
        .unwrap();

    // An auditor reads incidents but gets no decision buttons, and the server refuses a
    // decision posted anyway.
    user_with_role(&l, "auditor@example.com", "auditor").await;
    sign_in(&c, &base, "auditor@example.com", "Console-Password-1").await;
    c.goto(&format!("{base}/console/incidents/{third}"))
        .await
        .unwrap();
    assert_eq!(text_of(&c, "#incident-status").await, "awaiting_approval");
    assert!(
        c.find(Locator::Id("approve")).await.is_err(),
        "no approve button for an auditor"
    );
    let csrf: Value = c
        .execute(
            "const f = document.createElement('form'); f.method = 'post'; \
             f.action = '/console/incidents/' + arguments[0] + '/approve'; \
             const i = document.createElement('input'); i.type = 'hidden'; i.name = 'aegis_csrf'; \
             i.value = document.querySelector('form.who input[name=aegis_csrf]').value; \
             f.appendChild(i); document.body.appendChild(f); f.submit(); return true",
            vec![json!(third)],
        )
        .await
        .unwrap();
    assert_eq!(csrf, json!(true));
    assert!(
        text_of(&c, "#notice")
            .await
            .contains("Insufficient permissions")
    );
    assert_eq!(l.incident(&third).await["status"], "awaiting_approval");
    // It reads the audit and the mode, but gets no switch.
    c.goto(&format!("{base}/console/audit")).await.unwrap();
    assert!(text_of(&c, "#chain").await.contains("broken at #1"));
    c.goto(&format!("{base}/console/mode")).await.unwrap();
    assert_eq!(text_of(&c, "#global-mode").await, "approval");
    assert!(
        c.find(Locator::Id("set-mode")).await.is_err(),
        "no switch for an auditor"
    );
    c.goto(&format!("{base}/console/users")).await.unwrap();
    let h1 = wait_text(&c, "main h1", |t| t.starts_with("403")).await;
    assert!(h1.starts_with("403"), "only admins manage users: {h1}");
    sign_out(&c).await;

    // An operator decides and switches the mode, but reads no audit, policies or users.
    sign_in(&c, &base, "op@example.com", "Console-Password-1").await;
    c.wait()
        .at_most(WAIT)
        .for_element(Locator::Css("#incident-rows"))
        .await
        .unwrap();
    c.goto(&format!("{base}/console/mode")).await.unwrap();
    c.find(Locator::Id("set-mode")).await.unwrap();
    for page in ["audit", "policies", "users"] {
        assert!(
            c.find(Locator::Css(&format!("nav a[href='/console/{page}']")))
                .await
                .is_err(),
            "no {page} link for an operator"
        );
        c.goto(&format!("{base}/console/{page}")).await.unwrap();
        let h1 = wait_text(&c, "main h1", |t| t.starts_with("403")).await;
        assert!(h1.starts_with("403"), "an operator reads no {page}: {h1}");
    }
    sign_out(&c).await;

    // A plain user sees no incidents at all.
    user_with_role(&l, "viewer@example.com", "user").await;
    sign_in(&c, &base, "viewer@example.com", "Console-Password-1").await;
    let home = wait_text(&c, "main", |t| t.contains("reads no incidents")).await;
    assert!(home.contains("reads no incidents"), "{home}");
    assert!(
        c.find(Locator::Css("nav a[href='/console/incidents']"))
            .await
            .is_err()
    );
    c.goto(&format!("{base}/console/incidents")).await.unwrap();
    let h1 = wait_text(&c, "main h1", |t| t.starts_with("403")).await;
    assert!(h1.starts_with("403"), "{h1}");
    c.goto(&format!("{base}/console/audit")).await.unwrap();
    let h1 = wait_text(&c, "main h1", |t| t.starts_with("403")).await;
    assert!(h1.starts_with("403"), "a user reads no audit: {h1}");
    c.find(Locator::Css("nav a[href='/console/alerts']"))
        .await
        .unwrap();
    c.goto(&format!("{base}/console/alerts")).await.unwrap();
    assert_eq!(text_of(&c, "main h1").await, "Alerts");

    c.close().await.unwrap();
}

#[tokio::test]
async fn state_changing_console_requests_need_the_csrf_token_and_the_same_site() {
    let l = start("approval", &[]).await;
    l.allow("scale web", "scale_up", "web", Some("approval"))
        .await;
    let base = l.app.address.clone();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    // Sign in as a browser would: the login page's CSRF cookie, then the form.
    let page = http
        .get(format!("{base}/console/login"))
        .send()
        .await
        .unwrap();
    let cookie = page.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(!cookie.contains("Secure"), "plain HTTP in test");
    let csrf = cookie
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("aegis_csrf=")
        .to_owned();
    let login = |token: &str| {
        http.post(format!("{base}/console/login"))
            .header("cookie", format!("aegis_csrf={csrf}"))
            .form(&[
                ("email", ADMIN_EMAIL),
                ("password", ADMIN_PASSWORD),
                ("aegis_csrf", token),
                ("next", "/console/incidents"),
            ])
            .send()
    };
    assert_eq!(login("forged").await.unwrap().status(), 403, "login CSRF");
    let res = login(&csrf).await.unwrap();
    assert_eq!(res.status(), 303);
    let cookies: Vec<String> = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned())
        .collect();
    assert_eq!(cookies.len(), 3, "{cookies:?}");
    let jar = cookies.join("; ");
    let new_csrf = cookies
        .iter()
        .find_map(|c| c.strip_prefix("aegis_csrf="))
        .unwrap()
        .to_owned();
    assert_ne!(new_csrf, csrf, "a new token with the session");

    let accepted = l.signal(&signal("shop", "web", None, "scale_up")).await;
    let id = accepted["incidentId"].as_str().unwrap().to_owned();
    let reject = |token: &str, origin: Option<&str>| {
        let mut req = http
            .post(format!("{base}/console/incidents/{id}/reject"))
            .header("cookie", &jar)
            .form(&[("aegis_csrf", token), ("reason", "x")]);
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        req.send()
    };
    assert_eq!(reject("", None).await.unwrap().status(), 403);
    assert_eq!(reject("forged", None).await.unwrap().status(), 403);
    assert_eq!(
        reject(&new_csrf, Some("https://evil.example"))
            .await
            .unwrap()
            .status(),
        403
    );
    let status = l.incident(&id).await["status"].clone();
    assert_ne!(status, "rejected", "nothing happened: {status}");
    let ok = reject(&new_csrf, Some(&base)).await.unwrap();
    assert_eq!(ok.status(), 303);
    assert_eq!(l.incident(&id).await["status"], "rejected");

    // An expired access token (here: none) is rotated by a page, never by the live refresh:
    // a fragment answers 401 and leaves the refresh token alone.
    let refresh_only: String = cookies
        .iter()
        .filter(|c| !c.starts_with("aegis_at="))
        .cloned()
        .collect::<Vec<_>>()
        .join("; ");
    let rows = http
        .get(format!("{base}/console/incidents/rows"))
        .header("cookie", &refresh_only)
        .send()
        .await
        .unwrap();
    assert_eq!(rows.status(), 401);
    assert!(rows.headers().get("set-cookie").is_none());
    // Pages rotate it. Two tabs whose access token expired load a page at the same moment,
    // with the same refresh token: they share one rotation, and a third, a moment behind, gets
    // the same pair. None of them is taken for reuse, so the session goes on.
    let set_cookies = |res: &reqwest::Response| -> Vec<String> {
        let mut set: Vec<String> = res
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned())
            .collect();
        set.sort();
        set
    };
    let tab = || {
        http.get(format!("{base}/console/incidents"))
            .header("cookie", &refresh_only)
            .send()
    };
    let (a, b) = tokio::join!(tab(), tab());
    let (a, b) = (a.unwrap(), b.unwrap());
    let c = tab().await.unwrap();
    let rotated = set_cookies(&a);
    assert!(
        rotated.len() == 2
            && rotated[0].starts_with("aegis_at=")
            && rotated[1].starts_with("aegis_rt="),
        "{rotated:?}"
    );
    for res in [&a, &b, &c] {
        assert_eq!(res.status(), 200);
        assert_eq!(set_cookies(res), rotated, "every tab gets the one new pair");
    }
    let csrf_cookie = format!("aegis_csrf={new_csrf}");
    let res = http
        .get(format!("{base}/console/incidents"))
        .header("cookie", format!("{}; {csrf_cookie}", rotated.join("; ")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "the session goes on with the new pair");
    // The API keeps its reuse detection: the old refresh token presented there ends the
    // session, the new refresh token with it.
    let old_refresh = cookies
        .iter()
        .find_map(|c| c.strip_prefix("aegis_rt="))
        .unwrap();
    let res = http
        .post(format!("{base}/api/v1/auth/refresh"))
        .json(&json!({"refreshToken": old_refresh}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let res = http
        .get(format!("{base}/console/incidents"))
        .header("cookie", format!("{}; {csrf_cookie}", rotated[1]))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303, "reuse revoked the new refresh token too");

    // Without a session, a form is a 401 and a page goes to the login.
    let res = http
        .post(format!("{base}/console/incidents/{id}/approve"))
        .form(&[("aegis_csrf", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let res = http
        .get(format!("{base}/console/incidents"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(
        res.headers()["location"],
        "/console/login?next=%2Fconsole%2Fincidents"
    );
    // The console's pages carry their own CSP: nothing from another host.
    let page = http
        .get(format!("{base}/console/login"))
        .send()
        .await
        .unwrap();
    let csp = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(
        csp.starts_with("default-src 'self'") && !csp.contains("http"),
        "{csp}"
    );
}

/// Presses Tab until the focused element matches `css`: the page can be walked with the
/// keyboard, in an order that reaches it.
async fn tab_to(c: &Client, css: &str) {
    for _ in 0..40 {
        let focused: Value = c
            .execute(
                "return document.activeElement && document.activeElement.matches(arguments[0])",
                vec![json!(css)],
            )
            .await
            .unwrap();
        if focused == json!(true) {
            return;
        }
        let key = fantoccini::key::Key::Tab.to_string();
        c.active_element()
            .await
            .unwrap()
            .send_keys(&key)
            .await
            .unwrap();
    }
    panic!("Tab never reached {css}");
}

async fn press(c: &Client, text: &str) {
    c.active_element()
        .await
        .unwrap()
        .send_keys(text)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_console_works_with_the_keyboard_alone() {
    let l = start("approval", &[]).await;
    l.allow("scale web", "scale_up", "web", Some("approval"))
        .await;
    let base = l.app.address.clone();
    let driver = Driver::start().await;
    let c = driver.browser().await;
    let enter = fantoccini::key::Key::Enter.to_string();

    // Sign in: Tab to the fields, type, Enter.
    c.goto(&format!("{base}/console/login")).await.unwrap();
    tab_to(&c, "#email").await;
    press(&c, ADMIN_EMAIL).await;
    tab_to(&c, "#password").await;
    press(&c, ADMIN_PASSWORD).await;
    press(&c, &enter).await;
    c.wait()
        .at_most(WAIT)
        .for_element(Locator::Css("#incident-rows"))
        .await
        .unwrap();

    // The skip link to the content is in the tab order too.
    tab_to(&c, "a.skip").await;

    // An incident: reach its row's link, open it, approve with a reason.
    let id = l.signal(&signal("shop", "web", None, "scale_up")).await["incidentId"]
        .as_str()
        .unwrap()
        .to_owned();
    l.wait_for(&id, &["awaiting_approval"]).await;
    let link = format!("tr[data-incident='{id}'] a");
    c.wait()
        .at_most(WAIT)
        .for_element(Locator::Css(&link))
        .await
        .unwrap();
    tab_to(&c, &link).await;
    press(&c, &enter).await;
    assert_eq!(text_of(&c, "#incident-status").await, "awaiting_approval");
    tab_to(&c, "#approve-reason").await;
    press(&c, "approved from the keyboard").await;
    tab_to(&c, "#approve").await;
    press(&c, &enter).await;
    let notice = wait_text(&c, "#notice", |t| t.starts_with("Approved")).await;
    assert!(notice.starts_with("Approved"), "{notice}");
    c.close().await.unwrap();
}

/// The console's first-load weight and render time per page, for `bench/console.sh`. It is a
/// measurement, not a check of the suite: timings belong to benchmarks. Each page is loaded in
/// a fresh browser session (an empty cache), and the figures come from the page's own
/// Navigation and Resource Timing: the bytes of the document and everything it loaded, and the
/// time from the request to the load event.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "a measurement: run by bench/console.sh"]
async fn console_first_load_weight_and_render_time() {
    let l = start("approval", &[("EXECUTOR_AUDIT_TOKEN", "loop-audit-token")]).await;
    l.allow("scale web", "scale_up", "web", Some("approval"))
        .await;
    let id = l.signal(&signal("shop", "web", None, "scale_up")).await["incidentId"]
        .as_str()
        .unwrap()
        .to_owned();
    l.wait_for(&id, &["awaiting_approval"]).await;
    let base = l.app.address.clone();
    let driver = Driver::start().await;
    let pages = [
        "/console/login".to_owned(),
        "/console/incidents".to_owned(),
        format!("/console/incidents/{id}"),
        "/console/audit".to_owned(),
        "/console/mode".to_owned(),
        "/console/policies".to_owned(),
        "/console/policies/new".to_owned(),
        "/console/alerts".to_owned(),
        "/console/users".to_owned(),
    ];
    const RUNS: usize = 5;
    println!("page\tbytes\tload ms (median of {RUNS})\tload ms (max)");
    for path in &pages {
        let mut times = Vec::new();
        let mut bytes = 0.0;
        for _ in 0..RUNS {
            // A fresh session: nothing cached, as on a first visit.
            let c = driver.browser().await;
            if path != "/console/login" {
                sign_in(&c, &base, ADMIN_EMAIL, ADMIN_PASSWORD).await;
                c.wait()
                    .at_most(WAIT)
                    .for_element(Locator::Css("form.who"))
                    .await
                    .unwrap();
            }
            c.goto(&format!("{base}{path}")).await.unwrap();
            let figures: Value = c
                .execute(
                    "const n = performance.getEntriesByType('navigation')[0]; \
                     const r = performance.getEntriesByType('resource'); \
                     const body = e => e.encodedBodySize || e.decodedBodySize || 0; \
                     return {bytes: body(n) + r.reduce((s, e) => s + body(e), 0), \
                             load: n.loadEventEnd - n.startTime};",
                    vec![],
                )
                .await
                .unwrap();
            bytes = figures["bytes"].as_f64().unwrap();
            times.push(figures["load"].as_f64().unwrap());
            c.close().await.unwrap();
        }
        times.sort_by(f64::total_cmp);
        println!(
            "{path}\t{bytes:.0}\t{:.1}\t{:.1}",
            times[RUNS / 2],
            times[RUNS - 1]
        );
    }
}

//! The fake Twilio over real HTTP: the Messages API with reqwest (Twilio's resource and
//! error shapes, Basic auth, faults), status callbacks and inbound SMS delivered to a small
//! app in the test that checks `X-Twilio-Signature` with `pincer_fakes::twilio::signature`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use pincer_fakes::twilio::{
    DEFAULT_NUMBER, FakeTwilio, Fault, InboundSms, Outcome, Signing, signature,
};
use serde_json::Value;

const SID: &str = "AC0123456789abcdef0123456789abcdef";
const TOKEN: &str = "twilio-auth-token";
const ALICE: &str = "+14155550100";

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().build().expect("reqwest client")
}

async fn create(
    c: &reqwest::Client,
    tw: &FakeTwilio,
    auth: (&str, &str),
    form: &[(&str, &str)],
) -> (u16, Value) {
    let r = c
        .post(tw.messages_url())
        .basic_auth(auth.0, Some(auth.1))
        .form(form)
        .send()
        .await
        .expect("an HTTP answer");
    let status = r.status().as_u16();
    (status, r.json().await.expect("a JSON body"))
}

async fn error_code(c: &reqwest::Client, tw: &FakeTwilio, form: &[(&str, &str)]) -> (u16, u64) {
    let (status, v) = create(c, tw, (SID, TOKEN), form).await;
    assert_eq!(v["status"].as_u64(), Some(u64::from(status)), "{v}");
    assert!(
        v["message"].is_string() && v["more_info"].is_string(),
        "{v}"
    );
    (status, v["code"].as_u64().unwrap())
}

#[tokio::test]
async fn creating_a_message_answers_twilios_resource() {
    let tw = FakeTwilio::start(SID, TOKEN).await;
    let c = client();
    let (status, m) = create(
        &c,
        &tw,
        (SID, TOKEN),
        &[
            ("To", ALICE),
            ("From", DEFAULT_NUMBER),
            ("Body", "Hello there"),
        ],
    )
    .await;
    assert_eq!(status, 201, "{m}");
    let sid = m["sid"].as_str().unwrap();
    assert!(sid.starts_with("SM") && sid.len() == 34, "{sid}");
    assert_eq!(m["status"], "queued");
    assert_eq!(
        (m["to"].as_str(), m["from"].as_str()),
        (Some(ALICE), Some(DEFAULT_NUMBER))
    );
    assert_eq!(m["body"], "Hello there");
    assert_eq!(m["account_sid"], SID);
    assert_eq!(m["direction"], "outbound-api");
    assert_eq!(m["num_segments"], "1");
    assert_eq!(m["api_version"], "2010-04-01");
    assert!(m["date_created"].as_str().unwrap().ends_with("+0000"));
    assert_eq!(
        m["uri"],
        format!("/2010-04-01/Accounts/{SID}/Messages/{sid}.json")
    );

    let fetched: Value = c
        .get(format!("{}{}", tw.api_url(), m["uri"].as_str().unwrap()))
        .basic_auth(SID, Some(TOKEN))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(fetched["sid"], m["sid"]);
    let sent = tw.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].sid, sid);
    assert_eq!(sent[0].body, "Hello there");
    assert!(
        tw.status_callbacks().is_empty(),
        "no StatusCallback, no callbacks"
    );
}

#[tokio::test]
async fn twilios_checks_and_error_codes() {
    let tw = FakeTwilio::start(SID, TOKEN).await;
    let c = client();
    let from = DEFAULT_NUMBER;
    type Form<'a> = &'a [(&'a str, &'a str)];
    let cases: &[(Form, (u16, u64))] = &[
        (&[("From", from), ("Body", "x")], (400, 21_604)),
        (
            &[("To", "0155501"), ("From", from), ("Body", "x")],
            (400, 21_211),
        ),
        (
            &[("To", "+15005550001"), ("From", from), ("Body", "x")],
            (400, 21_211),
        ),
        (&[("To", ALICE), ("Body", "x")], (400, 21_603)),
        (
            &[("To", ALICE), ("From", "+15551234567"), ("Body", "x")],
            (400, 21_606),
        ),
        (
            &[("To", from), ("From", from), ("Body", "x")],
            (400, 21_266),
        ),
        (
            &[("To", ALICE), ("From", from), ("Body", "  ")],
            (400, 21_602),
        ),
    ];
    for (form, want) in cases {
        assert_eq!(error_code(&c, &tw, form).await, *want, "{form:?}");
    }
    let long = "a".repeat(1_601);
    assert_eq!(
        error_code(&c, &tw, &[("To", ALICE), ("From", from), ("Body", &long)]).await,
        (400, 21_617)
    );
    let (status, _) = create(
        &c,
        &tw,
        (SID, TOKEN),
        &[("To", ALICE), ("From", from), ("Body", &long[1..])],
    )
    .await;
    assert_eq!(status, 201, "1,600 characters go through");
    tw.add_number("+15551234567");
    let (status, _) = create(
        &c,
        &tw,
        (SID, TOKEN),
        &[("To", ALICE), ("From", "+15551234567"), ("Body", "x")],
    )
    .await;
    assert_eq!(status, 201, "an added number may send");

    // auth: a wrong token, then a right one for another account's path
    let r = c
        .post(tw.messages_url())
        .basic_auth(SID, Some("nope"))
        .form(&[("To", ALICE), ("From", from), ("Body", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().contains_key("www-authenticate"));
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        (v["code"].as_u64(), v["message"].as_str()),
        (Some(20_003), Some("Authenticate"))
    );
    let other = format!("{}/2010-04-01/Accounts/ACother/Messages.json", tw.api_url());
    let r = c
        .post(other)
        .basic_auth(SID, Some(TOKEN))
        .form(&[("To", ALICE)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], 20_404);
    assert_eq!(tw.sent().len(), 2);
    let calls = tw.requests();
    assert!(calls.iter().rev().nth(1).is_some_and(|c| !c.auth_ok));
}

#[tokio::test]
async fn faults_in_twilios_shapes() {
    let tw = FakeTwilio::start(SID, TOKEN).await;
    let c = client();
    let form = [("To", ALICE), ("From", DEFAULT_NUMBER), ("Body", "x")];
    let send = || {
        c.post(tw.messages_url())
            .basic_auth(SID, Some(TOKEN))
            .form(&form)
            .send()
    };

    tw.fail_next(
        "messages.create",
        Fault::RateLimited {
            retry_after_secs: 3,
        },
    );
    let r = send().await.unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "3");
    assert_eq!(r.json::<Value>().await.unwrap()["code"], 20_429);

    tw.fail_next("*", Fault::ServerError(503));
    let r = send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(r.json::<Value>().await.unwrap()["status"], 503);

    tw.fail_next("messages.create", Fault::Malformed);
    let r = send().await.unwrap();
    assert_eq!(r.status(), 201);
    assert!(r.json::<Value>().await.is_err());

    tw.fail_next("messages.create", Fault::Drop);
    assert!(send().await.is_err());

    tw.fail_next("messages.create", Fault::InvalidToken);
    assert_eq!(send().await.unwrap().status(), 401);

    assert!(tw.sent().is_empty(), "a faulted create sends nothing");
    assert_eq!(send().await.unwrap().status(), 201);
    let calls = tw
        .wait_calls("messages.create", 6, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(
        calls[0].fault,
        Some(Fault::RateLimited {
            retry_after_secs: 3
        })
    );
    assert_eq!(calls[5].fault, None);
}

type Seen = Arc<Mutex<Vec<(String, HeaderMap, Vec<(String, String)>)>>>;

/// A webhook that checks `X-Twilio-Signature` over the URL it was reached at, answers 403
/// to a bad one, and TwiML with one reply message to a good one.
async fn hook(
    State((seen, base)): State<(Seen, String)>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    let params: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap();
    let url = format!("{base}{uri}");
    seen.lock()
        .unwrap()
        .push((url.clone(), headers.clone(), params.clone()));
    let given = headers
        .get("x-twilio-signature")
        .and_then(|v| v.to_str().ok());
    if given != Some(signature(TOKEN, &url, &params).as_str()) {
        return (StatusCode::FORBIDDEN, "bad signature").into_response();
    }
    (
        [("content-type", "text/xml")],
        r#"<?xml version="1.0" encoding="UTF-8"?><Response><Message>Got it &amp; thanks</Message></Response>"#,
    )
        .into_response()
}

async fn hook_app() -> (String, Seen) {
    let seen: Seen = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let router = axum::Router::new()
        .route("/sms/{*rest}", axum::routing::post(hook))
        .with_state((seen.clone(), base.clone()));
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (base, seen)
}

fn param<'a>(p: &'a [(String, String)], k: &str) -> Option<&'a str> {
    p.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
}

#[tokio::test]
async fn status_callbacks_follow_the_outcome_signed() {
    let tw = FakeTwilio::start(SID, TOKEN).await;
    let (base, seen) = hook_app().await;
    let c = client();
    let cb = format!("{base}/sms/status?account=main");
    let form = [
        ("To", ALICE),
        ("From", DEFAULT_NUMBER),
        ("Body", "x"),
        ("StatusCallback", cb.as_str()),
    ];
    let (_, m) = create(&c, &tw, (SID, TOKEN), &form).await;
    let calls = tw
        .wait_status_callbacks(3, Duration::from_secs(5))
        .await
        .unwrap();
    let statuses: Vec<&str> = calls.iter().map(|c| c.status.as_str()).collect();
    assert_eq!(statuses, ["queued", "sent", "delivered"]);
    for cb in &calls {
        assert_eq!(
            cb.reply.as_ref().unwrap().status,
            200,
            "signature checked by the app"
        );
        assert_eq!(cb.message_sid, m["sid"].as_str().unwrap());
    }
    {
        let seen = seen.lock().unwrap();
        let (url, _, params) = &seen[2];
        assert_eq!(url, &cb, "signed over the full URL, query included");
        assert_eq!(param(params, "MessageStatus"), Some("delivered"));
        assert_eq!(param(params, "SmsStatus"), Some("delivered"));
        assert_eq!(param(params, "AccountSid"), Some(SID));
        assert_eq!(param(params, "To"), Some(ALICE));
        assert_eq!(param(params, "ErrorCode"), None);
    }
    assert_eq!(tw.sent()[0].status, "delivered");

    tw.set_outcome(Outcome::Failed { error_code: 30_008 });
    create(&c, &tw, (SID, TOKEN), &form).await;
    let calls = tw
        .wait_status_callbacks(5, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(calls[4].status, "failed");
    assert_eq!(param(&calls[4].params, "ErrorCode"), Some("30008"));
    let fetched: Value = c
        .get(format!(
            "{}/2010-04-01/Accounts/{SID}/Messages/{}.json",
            tw.api_url(),
            calls[4].message_sid
        ))
        .basic_auth(SID, Some(TOKEN))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(fetched["status"], "failed");
    assert_eq!(fetched["error_code"], 30_008);
}

#[tokio::test]
async fn inbound_sms_is_signed_and_twiml_replies_are_read() {
    let tw = FakeTwilio::start(SID, TOKEN).await;
    let (base, seen) = hook_app().await;
    tw.set_sms_url(&format!("{base}/sms/inbound"));
    let d = tw.send_sms(ALICE, "hi & bye").await.unwrap();
    assert_eq!(d.reply.as_ref().unwrap().status, 200);
    assert_eq!(d.twiml_messages, ["Got it & thanks"]);
    assert!(d.message_sid.starts_with("SM"));
    let (_, headers, params) = seen.lock().unwrap()[0].clone();
    assert_eq!(headers["content-type"], "application/x-www-form-urlencoded");
    assert_eq!(param(&params, "From"), Some(ALICE));
    assert_eq!(param(&params, "To"), Some(DEFAULT_NUMBER));
    assert_eq!(param(&params, "Body"), Some("hi & bye"));
    assert_eq!(param(&params, "AccountSid"), Some(SID));
    assert_eq!(param(&params, "NumMedia"), Some("0"));
    assert_eq!(param(&params, "MessageSid"), Some(d.message_sid.as_str()));

    for signing in [
        Signing::Unsigned,
        Signing::WrongToken,
        Signing::ForUrl(format!("{base}/sms/elsewhere")),
    ] {
        let d = tw
            .send_inbound(InboundSms::new(ALICE, "forged"), signing.clone())
            .await
            .unwrap();
        assert_eq!(d.reply.as_ref().unwrap().status, 403, "{signing:?}");
        assert!(d.twiml_messages.is_empty());
    }
    assert!(
        seen.lock().unwrap()[1]
            .1
            .get("x-twilio-signature")
            .is_none()
    );
    assert_eq!(tw.inbound_deliveries().len(), 4);
}

#[tokio::test]
async fn inbound_mms_media_is_served_by_the_fake() {
    let tw = FakeTwilio::start(SID, TOKEN).await;
    let (base, _seen) = hook_app().await;
    tw.set_sms_url(&format!("{base}/sms/inbound"));
    let sms = InboundSms::new(ALICE, "look").with_media("image/png", b"\x89PNG fake".to_vec());
    let d = tw.send_inbound(sms, Signing::Valid).await.unwrap();
    assert_eq!(d.reply.as_ref().unwrap().status, 200);
    assert!(d.message_sid.starts_with("MM"));
    assert_eq!(param(&d.params, "NumMedia"), Some("1"));
    assert_eq!(param(&d.params, "MediaContentType0"), Some("image/png"));
    let url = param(&d.params, "MediaUrl0").unwrap();
    assert!(url.starts_with(&tw.api_url()));
    let r = client().get(url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/png");
    assert_eq!(r.bytes().await.unwrap().as_ref(), b"\x89PNG fake");
}

//! The fake Telegram over real HTTP with plain reqwest: response shapes, long polling in
//! paused tokio time, offsets, Telegram's validation errors, faults, and webhook delivery.

use std::time::Duration;

use pincer_fakes::telegram::{FakeChat, FakeTelegram, Fault, SentKind};
use serde_json::{Value, json};
use tokio::time::{Instant, timeout};

const TOKEN: &str = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw";

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().build().expect("reqwest client")
}

async fn fake() -> FakeTelegram {
    FakeTelegram::start(TOKEN).await
}

fn url(tg: &FakeTelegram, method: &str) -> String {
    format!("{}/bot{}/{method}", tg.api_url(), tg.token())
}

/// POSTs JSON parameters; answers the status and the JSON body.
async fn call(c: &reqwest::Client, tg: &FakeTelegram, method: &str, params: Value) -> (u16, Value) {
    let resp = c
        .post(url(tg, method))
        .json(&params)
        .send()
        .await
        .expect("an HTTP answer");
    let status = resp.status().as_u16();
    let body = resp.json().await.expect("a JSON body");
    (status, body)
}

async fn bad_request(
    c: &reqwest::Client,
    tg: &FakeTelegram,
    method: &str,
    params: Value,
) -> String {
    let (status, body) = call(c, tg, method, params).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["ok"], false);
    assert_eq!(body["error_code"], 400);
    body["description"].as_str().unwrap().to_owned()
}

fn ids(body: &Value) -> Vec<i64> {
    body["result"]
        .as_array()
        .expect("a result list")
        .iter()
        .map(|u| u["update_id"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn get_me_has_every_field_teloxide_needs_in_any_method_case() {
    let tg = fake().await;
    let c = client();
    assert!(!tg.api_url().ends_with('/'));
    let (status, body) = call(&c, &tg, "getMe", json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(body["ok"], true);
    let me = &body["result"];
    assert_eq!(me["id"], 123_456_789, "the bot id is the token's prefix");
    assert_eq!(me["is_bot"], true);
    assert_eq!(me["username"], "pincer_test_bot");
    assert!(me["first_name"].is_string());
    for field in [
        "can_join_groups",
        "can_read_all_group_messages",
        "supports_inline_queries",
        "has_main_web_app",
        "can_connect_to_business",
    ] {
        assert!(me[field].is_boolean(), "{field} in {me}");
    }
    // teloxide's spelling, and a GET without a body
    let (status, again) = call(&c, &tg, "GetMe", json!({})).await;
    assert_eq!((status, &again), (200, &body));
    let got: Value = c
        .get(url(&tg, "GETME"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got, body);
    let names: Vec<_> = tg.requests().iter().map(|r| r.method.clone()).collect();
    assert_eq!(names, ["getMe", "getMe", "getMe"]);
    assert_eq!(tg.requests()[2].http_method, "GET");
}

#[tokio::test]
async fn a_wrong_token_is_unauthorized_and_an_unknown_method_not_found() {
    let tg = fake().await;
    let c = client();
    let resp = c
        .post(format!("{}/bot123456789:WRONG-token/getMe", tg.api_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!({"ok": false, "error_code": 401, "description": "Unauthorized"})
    );
    let resp = c
        .post(format!("{}/botnot-a-token/getMe", tg.api_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let (status, body) = call(&c, &tg, "sendPigeon", json!({})).await;
    assert_eq!(status, 404);
    assert_eq!(body["description"], "Not Found");
    let calls = tg.requests();
    assert_eq!(calls.len(), 3);
    assert!(!calls[0].token_ok && !calls[1].token_ok && calls[2].token_ok);
}

#[tokio::test(start_paused = true)]
async fn a_long_poll_returns_as_soon_as_an_update_arrives() {
    let tg = fake().await;
    let c = client();
    let poll = tokio::spawn({
        let c = c.clone();
        let u = url(&tg, "getUpdates");
        async move {
            let start = Instant::now();
            let body: Value = c
                .post(u)
                .json(&json!({"offset": 0, "timeout": 30, "allowed_updates": ["message"]}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            (body, start.elapsed())
        }
    });
    tg.wait_calls("getUpdates", 1, Duration::from_secs(5))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert!(!poll.is_finished(), "nothing to deliver yet");
    let id = tg.user_message(42, 42, "/start hello");
    let (body, waited) = poll.await.unwrap();
    assert!(
        waited >= Duration::from_secs(10) && waited < Duration::from_secs(11),
        "{waited:?}"
    );
    assert_eq!(ids(&body), [id]);
    let m = &body["result"][0]["message"];
    assert_eq!(m["message_id"], 1);
    assert_eq!(m["text"], "/start hello");
    assert_eq!(
        m["chat"],
        json!({"id": 42, "type": "private", "first_name": "User 42", "username": "user42"})
    );
    assert_eq!(m["from"]["id"], 42);
    assert_eq!(m["from"]["is_bot"], false);
    assert!(m["date"].as_i64().unwrap() > 1_600_000_000);
    assert_eq!(
        m["entities"],
        json!([{"type": "bot_command", "offset": 0, "length": 6}])
    );
}

#[tokio::test(start_paused = true)]
async fn a_long_poll_with_nothing_to_deliver_answers_an_empty_list_at_its_timeout() {
    let tg = fake().await;
    let c = client();
    let mut poll = tokio::spawn({
        let u = url(&tg, "getUpdates");
        let c = c.clone();
        async move {
            let start = Instant::now();
            let resp = c.get(format!("{u}?timeout=30")).send().await.unwrap();
            (resp.json::<Value>().await.unwrap(), start.elapsed())
        }
    });
    tg.wait_calls("getUpdates", 1, Duration::from_secs(5))
        .await
        .unwrap();
    assert!(
        timeout(Duration::from_millis(29_900), &mut poll)
            .await
            .is_err(),
        "still waiting just before the timeout"
    );
    let (body, waited) = poll.await.unwrap();
    assert_eq!(body, json!({"ok": true, "result": []}));
    assert!(
        waited >= Duration::from_secs(30) && waited < Duration::from_secs(31),
        "{waited:?}"
    );

    // timeout 0 (the default) answers at once
    let start = Instant::now();
    let (_, body) = call(&c, &tg, "getUpdates", json!({})).await;
    assert_eq!(body["result"], json!([]));
    assert_eq!(start.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn a_second_poll_terminates_the_waiting_one_with_409() {
    let tg = fake().await;
    let c = client();
    let first = tokio::spawn(call_owned(
        c.clone(),
        url(&tg, "getUpdates"),
        json!({"timeout": 50}),
    ));
    tg.wait_calls("getUpdates", 1, Duration::from_secs(5))
        .await
        .unwrap();
    let second = tokio::spawn(call_owned(
        c.clone(),
        url(&tg, "getUpdates"),
        json!({"timeout": 50}),
    ));
    let (status, body) = first.await.unwrap();
    assert_eq!(status, 409);
    assert_eq!(
        body["description"],
        "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"
    );
    tg.user_message(1, 1, "hi");
    let (status, body) = second.await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(body["result"].as_array().unwrap().len(), 1);
}

async fn call_owned(c: reqwest::Client, url: String, params: Value) -> (u16, Value) {
    let resp = c.post(url).json(&params).send().await.unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

#[tokio::test]
async fn offsets_confirm_updates_for_good() {
    let tg = fake().await;
    let c = client();
    let a = tg.user_message(7, 7, "one");
    let b = tg.group_message(-100_555, 7, "two", None);
    let cb = tg.callback(7, 7, 1, "press");
    assert_eq!((b, cb), (a + 1, a + 2));

    let (_, body) = call(&c, &tg, "getUpdates", json!({"offset": 0})).await;
    assert_eq!(ids(&body), [a, b, cb], "unconfirmed updates come again");
    let (_, body) = call(&c, &tg, "getUpdates", json!({"limit": 1})).await;
    assert_eq!(ids(&body), [a]);
    let (_, body) = call(&c, &tg, "getUpdates", json!({"offset": b})).await;
    assert_eq!(ids(&body), [b, cb]);
    assert_eq!(tg.pending_updates(), [b, cb]);
    let (_, body) = call(&c, &tg, "getUpdates", json!({"offset": a})).await;
    assert_eq!(ids(&body), [b, cb], "a confirmed update never comes back");
    // a form body, as some clients send
    let resp = c
        .post(url(&tg, "getUpdates"))
        .form(&[("offset", (cb + 1).to_string())])
        .send()
        .await
        .unwrap();
    assert_eq!(ids(&resp.json().await.unwrap()), Vec::<i64>::new());
    assert!(tg.pending_updates().is_empty());

    let group = &tg.new_group_message(-42, 8, "in a basic group", None)["message"]["chat"];
    assert_eq!(group["type"], "group");
    assert_eq!(group["title"], "Group -42");
}

#[tokio::test]
async fn send_message_is_validated_like_telegram() {
    let tg = fake().await;
    let c = client();
    tg.user_message(42, 42, "hi");
    assert_eq!(
        bad_request(&c, &tg, "sendMessage", json!({"chat_id": 42, "text": ""})).await,
        "Bad Request: message text is empty"
    );
    assert_eq!(
        bad_request(
            &c,
            &tg,
            "sendMessage",
            json!({"chat_id": 42, "text": " \n "})
        )
        .await,
        "Bad Request: message text is empty"
    );
    assert_eq!(
        bad_request(
            &c,
            &tg,
            "sendMessage",
            json!({"chat_id": 42, "text": "x".repeat(4097)})
        )
        .await,
        "Bad Request: message is too long"
    );
    // 4096 UTF-16 units is the limit: 2048 emoji fit, one more does not
    let (status, _) = call(
        &c,
        &tg,
        "sendMessage",
        json!({"chat_id": 42, "text": "😀".repeat(2048)}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        bad_request(
            &c,
            &tg,
            "sendMessage",
            json!({"chat_id": 42, "text": "😀".repeat(2049)})
        )
        .await,
        "Bad Request: message is too long"
    );
    let html = |text: &str| json!({"chat_id": 42, "text": text, "parse_mode": "HTML"});
    assert_eq!(
        bad_request(&c, &tg, "sendMessage", html("<b>bold")).await,
        "Bad Request: can't parse entities: Can't find end tag corresponding to start tag \"b\""
    );
    assert_eq!(
        bad_request(&c, &tg, "sendMessage", html("<b><i>x</b></i>")).await,
        "Bad Request: can't parse entities: Unmatched end tag at byte offset 7, expected \"</i>\", found \"</b>\""
    );
    assert_eq!(
        bad_request(&c, &tg, "sendMessage", html("line<br>break")).await,
        "Bad Request: can't parse entities: Unsupported start tag \"br\" at byte offset 4"
    );
    assert_eq!(
        bad_request(&c, &tg, "sendMessage", html("if a < b")).await,
        "Bad Request: can't parse entities: Unsupported start tag \"\" at byte offset 5"
    );
    assert_eq!(
        bad_request(&c, &tg, "sendMessage", html("Q&A")).await,
        "Bad Request: can't parse entities: Unescaped \"&\" at byte offset 1"
    );
    assert_eq!(
        bad_request(
            &c,
            &tg,
            "sendMessage",
            json!({"chat_id": 42, "text": "v1.2", "parse_mode": "MarkdownV2"})
        )
        .await,
        "Bad Request: can't parse entities: Character '.' is reserved and must be escaped with the preceding '\\'"
    );
    assert_eq!(
        bad_request(&c, &tg, "sendMessage", json!({"chat_id": 999, "text": "x"})).await,
        "Bad Request: chat not found"
    );
    assert_eq!(tg.sent().len(), 1, "only the accepted message is recorded");

    // a good one, as form data: what users see and what was sent are both kept
    let resp = c
        .post(url(&tg, "sendMessage"))
        .form(&[
            ("chat_id", "42"),
            (
                "text",
                "<b>Done</b> &amp; <a href=\"https://x.test\">dusted</a>",
            ),
            ("parse_mode", "HTML"),
            ("disable_web_page_preview", "true"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let m = resp.json::<Value>().await.unwrap()["result"].clone();
    assert_eq!(
        m["message_id"], 3,
        "after the user's message and the emoji one"
    );
    assert_eq!(m["from"]["is_bot"], true);
    assert_eq!(m["text"], "Done & dusted");
    assert_eq!(
        m["entities"],
        json!([
            {"type": "bold", "offset": 0, "length": 4},
            {"type": "text_link", "offset": 7, "length": 6, "url": "https://x.test"}
        ])
    );
    let sent = tg.sent();
    let last = sent.last().unwrap();
    assert_eq!(last.kind, SentKind::Message);
    assert_eq!(last.chat_id, 42);
    assert_eq!(last.parse_mode.as_deref(), Some("HTML"));
    assert!(last.text.starts_with("<b>Done</b>"));
    assert_eq!(last.shown_text, "Done & dusted");
    assert!(last.link_preview_disabled);
}

#[tokio::test]
async fn topics_replies_and_keyboards_round_trip() {
    let tg = fake().await;
    let c = client();
    let forum = -1_001_234_567_890;
    let update = tg.new_group_message(forum, 5, "@pincer_test_bot help", Some(77));
    let m = &update["message"];
    assert_eq!(m["chat"]["type"], "supergroup");
    assert_eq!(m["chat"]["is_forum"], true);
    assert_eq!(m["message_thread_id"], 77);
    assert_eq!(m["is_topic_message"], true);
    assert_eq!(m["entities"][0]["type"], "mention");
    let (status, body) = call(
        &c,
        &tg,
        "SendMessage",
        json!({
            "chat_id": forum,
            "text": "Pick one",
            "message_thread_id": 77,
            "reply_parameters": {"message_id": m["message_id"]},
            "reply_markup": {"inline_keyboard": [[
                {"text": "Yes", "callback_data": "approve:1"},
                {"text": "No", "callback_data": "deny:1"}
            ]]},
        }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let sent = &body["result"];
    assert_eq!(sent["message_thread_id"], 77);
    assert_eq!(sent["reply_to_message"]["message_id"], m["message_id"]);
    assert_eq!(
        sent["reply_markup"]["inline_keyboard"][0][1]["callback_data"],
        "deny:1"
    );
    let rec = &tg.sent()[0];
    assert_eq!(
        (rec.thread_id, rec.reply_to_message_id),
        (Some(77), Some(1))
    );

    // pressing the button, then answering the query once
    let message_id = sent["message_id"].as_i64().unwrap();
    let press = tg.new_callback(forum, 5, message_id, "approve:1");
    let q = &press["callback_query"];
    assert_eq!(q["message"]["reply_markup"], sent["reply_markup"]);
    assert!(q["chat_instance"].is_string());
    let qid = q["id"].as_str().unwrap();
    let (status, body) = call(
        &c,
        &tg,
        "answerCallbackQuery",
        json!({"callback_query_id": qid, "text": "ok"}),
    )
    .await;
    assert_eq!((status, &body["result"]), (200, &json!(true)));
    assert_eq!(
        bad_request(
            &c,
            &tg,
            "answerCallbackQuery",
            json!({"callback_query_id": qid})
        )
        .await,
        "Bad Request: query is too old and response timeout expired or query id is invalid"
    );
    let (status, _) = call(
        &c,
        &tg,
        "sendChatAction",
        json!({"chat_id": forum, "action": "typing", "message_thread_id": 77}),
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn edits_with_nothing_new_are_not_modified() {
    let tg = fake().await;
    let c = client();
    tg.add_chat(FakeChat::group(-5, "Team"));
    let (_, body) = call(
        &c,
        &tg,
        "sendMessage",
        json!({"chat_id": -5, "text": "<i>thinking</i>", "parse_mode": "HTML"}),
    )
    .await;
    let id = body["result"]["message_id"].clone();
    assert_eq!(
        bad_request(
            &c,
            &tg,
            "editMessageText",
            json!({"chat_id": -5, "message_id": id, "text": "<i>thinking</i>", "parse_mode": "HTML"})
        )
        .await,
        "Bad Request: message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message"
    );
    // the same words without the italics are a change
    let (status, body) = call(
        &c,
        &tg,
        "EditMessageText",
        json!({"chat_id": -5, "message_id": id, "text": "thinking"}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["result"]["text"], "thinking");
    assert!(body["result"].get("entities").is_none());
    assert!(body["result"]["edit_date"].is_i64());
    assert_eq!(tg.message(-5, 1).unwrap()["text"], "thinking");
    assert_eq!(
        bad_request(
            &c,
            &tg,
            "editMessageText",
            json!({"chat_id": -5, "message_id": 9, "text": "x"})
        )
        .await,
        "Bad Request: message to edit not found"
    );
    let kinds: Vec<_> = tg.sent().iter().map(|s| s.kind).collect();
    assert_eq!(kinds, [SentKind::Message, SentKind::Edit]);
}

#[tokio::test]
async fn too_many_requests_carries_retry_after_then_passes() {
    let tg = fake().await;
    let c = client();
    tg.user_message(3, 3, "hi");
    tg.fail_times(
        "sendmessage",
        Fault::TooManyRequests {
            retry_after_secs: 7,
        },
        2,
    );
    for _ in 0..2 {
        let (status, body) = call(&c, &tg, "sendMessage", json!({"chat_id": 3, "text": "x"})).await;
        assert_eq!(status, 429);
        assert_eq!(
            body,
            json!({"ok": false, "error_code": 429, "description": "Too Many Requests: retry after 7",
                   "parameters": {"retry_after": 7}})
        );
    }
    let (status, _) = call(&c, &tg, "sendMessage", json!({"chat_id": 3, "text": "x"})).await;
    assert_eq!(status, 200);
    let faults: Vec<_> = tg
        .calls("sendMessage")
        .iter()
        .map(|r| r.fault.is_some())
        .collect();
    assert_eq!(faults, [true, true, false]);
    assert_eq!(tg.sent().len(), 1, "rate-limited messages were not sent");
}

#[tokio::test]
async fn drop_closes_the_connection_without_an_answer() {
    let tg = fake().await;
    let c = client();
    tg.fail_next("getMe", Fault::Drop);
    let err = c
        .post(url(&tg, "getMe"))
        .send()
        .await
        .expect_err("no answer");
    assert!(err.status().is_none(), "{err}");
    let (status, _) = call(&c, &tg, "getMe", json!({})).await;
    assert_eq!(status, 200, "only that connection died");
}

#[tokio::test]
async fn server_errors_malformed_bodies_and_revoked_tokens() {
    let tg = fake().await;
    let c = client();
    tg.fail_next("*", Fault::ServerError(502));
    tg.fail_next("getMe", Fault::ServerError(500));
    tg.fail_next("getMe", Fault::Malformed);
    tg.fail_next("getMe", Fault::Unauthorized);
    // method faults come first, then the wildcard
    let r = c.post(url(&tg, "getMe")).send().await.unwrap();
    assert_eq!(r.status(), 500);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"ok": false, "error_code": 500, "description": "Internal Server Error"})
    );
    let r = c.post(url(&tg, "getMe")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(serde_json::from_str::<Value>(&r.text().await.unwrap()).is_err());
    let r = c.post(url(&tg, "getMe")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = c.post(url(&tg, "getUpdates")).send().await.unwrap();
    assert_eq!(r.status(), 502);
    assert_eq!(r.headers()["content-type"], "text/html");
    assert!(r.text().await.unwrap().contains("502 Bad Gateway"));
    let (status, _) = call(&c, &tg, "getMe", json!({})).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn duplicated_and_malformed_updates() {
    let tg = fake().await;
    let c = client();
    let a = tg.user_message(9, 9, "a");
    let bad = tg.malformed_update();
    tg.duplicate_next_update();
    let (_, body) = call(&c, &tg, "getUpdates", json!({})).await;
    assert_eq!(ids(&body), [a, bad]);
    let broken = &body["result"][1]["message"];
    assert!(broken.get("chat").is_none() && broken.get("from").is_none());
    // confirming both still brings `a` back once
    let (_, body) = call(&c, &tg, "getUpdates", json!({"offset": bad + 1})).await;
    assert_eq!(ids(&body), [a]);
    let (_, body) = call(&c, &tg, "getUpdates", json!({"offset": bad + 1})).await;
    assert_eq!(ids(&body), Vec::<i64>::new());
}

#[tokio::test]
async fn files_are_served_by_path() {
    let tg = fake().await;
    let c = client();
    let id = tg.add_file("documents/file_1.txt", b"hello file".to_vec());
    let (_, body) = call(&c, &tg, "getFile", json!({"file_id": id})).await;
    let f = &body["result"];
    assert_eq!(f["file_path"], "documents/file_1.txt");
    assert_eq!(f["file_size"], 10);
    let bytes = c
        .get(format!(
            "{}/file/bot{}/{}",
            tg.api_url(),
            tg.token(),
            f["file_path"].as_str().unwrap()
        ))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(&bytes[..], b"hello file");
    assert_eq!(
        bad_request(&c, &tg, "getFile", json!({"file_id": "nope"})).await,
        "Bad Request: invalid file_id"
    );
}

#[tokio::test]
async fn webhooks_deliver_with_the_secret_and_run_the_answered_method() {
    use axum::http::HeaderMap;
    let tg = fake().await;
    let c = client();
    // a stand-in gateway that checks the secret and answers with a method call
    let app = axum::Router::new().route(
        "/tg/hook",
        axum::routing::post(
            |headers: HeaderMap, axum::Json(update): axum::Json<Value>| async move {
                let secret = headers
                    .get("x-telegram-bot-api-secret-token")
                    .and_then(|v| v.to_str().ok());
                if secret != Some("s3cret") {
                    return axum::Json(json!({})).into_response_with(403);
                }
                let chat = update["message"]["chat"]["id"].clone();
                axum::Json(json!({"method": "sendMessage", "chat_id": chat, "text": "got it"}))
                    .into_response_with(200)
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/tg/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let (_, body) = call(
        &c,
        &tg,
        "setWebhook",
        json!({"url": hook, "secret_token": "s3cret"}),
    )
    .await;
    assert_eq!(
        body,
        json!({"ok": true, "result": true, "description": "Webhook was set"})
    );
    assert_eq!(
        tg.webhook().unwrap().secret_token.as_deref(),
        Some("s3cret")
    );
    let (status, body) = call(&c, &tg, "getUpdates", json!({})).await;
    assert_eq!(status, 409, "{body}");
    let (_, info) = call(&c, &tg, "getWebhookInfo", json!({})).await;
    assert_eq!(info["result"]["url"], hook);

    let update = tg.new_user_message(11, 11, "via webhook");
    let reply = tg
        .deliver_webhook(&hook, Some("s3cret"), update.clone())
        .await
        .unwrap();
    assert_eq!(reply.status, 200);
    let (method, outcome) = reply.method.expect("a method answer");
    assert_eq!(method, "sendMessage");
    assert_eq!(outcome.unwrap()["text"], "got it");
    assert_eq!(tg.sent()[0].chat_id, 11);
    let wrong = tg
        .deliver_webhook(&hook, Some("guess"), update)
        .await
        .unwrap();
    assert_eq!(wrong.status, 403);
    // anything but 127.0.0.1 is refused before any connection is tried
    let refused = tg
        .deliver_webhook("http://example.invalid/hook", None, json!({}))
        .await
        .unwrap_err();
    assert_eq!(refused.kind(), std::io::ErrorKind::InvalidInput);
}

trait WithStatus {
    fn into_response_with(self, status: u16) -> axum::response::Response;
}

impl WithStatus for axum::Json<Value> {
    fn into_response_with(self, status: u16) -> axum::response::Response {
        use axum::response::IntoResponse;
        (axum::http::StatusCode::from_u16(status).unwrap(), self).into_response()
    }
}

#[tokio::test(start_paused = true)]
async fn wait_sent_gives_up_at_its_timeout() {
    let tg = fake().await;
    let start = Instant::now();
    let err = tg.wait_sent(1, Duration::from_secs(5)).await.unwrap_err();
    assert_eq!((err.wanted, err.got), (1, 0));
    assert_eq!(start.elapsed(), Duration::from_secs(5));
    assert_eq!(
        err.to_string(),
        "fake telegram: 0 of 1 messages sent after 5s"
    );
}

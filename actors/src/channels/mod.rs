//! Channels: the user's chat apps. Pure functions do the protocol-independent work
//! (formatting for each platform, chunking under its limits, routing to an agent).

pub mod actor;
pub mod approvals;
pub mod chunk;
pub mod config;
pub mod discord;
pub mod format;
pub mod methods;
pub mod policy;
pub mod routing;
pub mod send;
pub mod slack;
pub mod sms;
pub mod stream;
pub mod telegram;
pub mod types;

pub use types::{ChannelOrigin, DeliverSink, DeliveryStatus, InboundMessage, MediaRef, OutboxRow};

use std::sync::Arc;
use std::time::Duration;

use pincer_supervision::fault::Injectable;
use pincer_supervision::{Backoff, ChildSpec, Strategy, SupervisorSpec};
use ractor::Actor;

use actor::{Adapter, ChannelActor, ChannelArgs, ChannelCtx, idle_status};
use config::AccountConfig;

/// The adapter for an account's channel, or why there is none.
pub fn build_adapter(cfg: &AccountConfig, ctx: &ChannelCtx) -> Result<Arc<dyn Adapter>, String> {
    match cfg.channel.as_str() {
        "telegram" => Ok(Arc::new(telegram::Telegram::new(cfg, ctx.store.clone())?)),
        "slack" => slack::build(cfg, ctx),
        "sms" => sms::build(cfg, ctx),
        "discord" => discord::build(cfg, ctx),
        other => Err(format!(
            "channels.{other}: this Pincer has no {other} adapter (known: telegram, slack, sms, discord)"
        )),
    }
}

/// The `channels` supervisor: a ChannelActor per enabled account with an adapter. A
/// disabled account or one that cannot be built is listed in `channels.status` with the
/// reason instead; it never stops the gateway. Returns the spec and how many run.
pub fn supervisor(accounts: &[AccountConfig], ctx: Arc<ChannelCtx>) -> (SupervisorSpec, usize) {
    let mut spec =
        SupervisorSpec::new("channels", Strategy::OneForOne).intensity(20, Duration::from_secs(60));
    let mut running = 0;
    for cfg in accounts {
        let key = cfg.key();
        if !cfg.enabled {
            ctx.directory
                .update(&key, |s| *s = idle_status(cfg, "disabled", None));
            continue;
        }
        let adapter = match build_adapter(cfg, &ctx) {
            Ok(a) => a,
            Err(e) => {
                tracing::error!(channel = %key, error = %e, "channel not started");
                ctx.directory
                    .update(&key, |s| *s = idle_status(cfg, "error", Some(e.clone())));
                continue;
            }
        };
        running += 1;
        let (cfg, ctx) = (cfg.clone(), ctx.clone());
        let name = format!("channel-{}-{}", cfg.channel, cfg.account);
        spec = spec.child(
            ChildSpec::new(name.clone(), "channel", move |c| {
                let args = ChannelArgs {
                    cfg: cfg.clone(),
                    ctx: ctx.clone(),
                    adapter: adapter.clone(),
                };
                let name = name.clone();
                async move {
                    let actor = Injectable {
                        inner: ChannelActor,
                        name,
                        faults: c.faults.clone(),
                    };
                    let (r, _) = Actor::spawn_linked(None, actor, args, c.supervisor).await?;
                    Ok(r.get_cell())
                }
            })
            // A permanent error (bad token) stops the actor normally: not restarted.
            .restart(pincer_supervision::Restart::Transient)
            .backoff(Backoff {
                initial: Duration::from_millis(500),
                ..Backoff::default()
            }),
        );
    }
    (spec, running)
}

/// Largest webhook body taken in; larger ones get 413 before any adapter sees them.
pub const WEBHOOK_MAX_BYTES: usize = 1024 * 1024;

/// `POST /channels/<channel>` (the `default` account) and `/channels/<channel>/<account>`
/// on the gateway port: platform webhooks (Slack events, Twilio SMS, Telegram webhook
/// mode). Each adapter checks its platform's signature itself.
pub fn webhook_routes(dir: actor::ChannelDirectory) -> axum::Router {
    use axum::extract::{DefaultBodyLimit, Path, State};
    use axum::http::{HeaderMap, StatusCode, Uri, header};
    use axum::response::{IntoResponse, Response};
    use axum::routing::post;

    async fn handle(
        dir: actor::ChannelDirectory,
        key: String,
        uri: Uri,
        headers: HeaderMap,
        body: bytes::Bytes,
    ) -> Response {
        let req = actor::WebhookRequest {
            uri: uri.to_string(),
            headers,
            body,
        };
        let r = dir.webhook(&key, req).await;
        let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, [(header::CONTENT_TYPE, r.content_type)], r.body).into_response()
    }
    axum::Router::new()
        .route(
            "/channels/{channel}",
            post(
                |State(d): State<actor::ChannelDirectory>,
                 Path(channel): Path<String>,
                 uri: Uri,
                 headers: HeaderMap,
                 body: bytes::Bytes| async move {
                    handle(
                        d,
                        types::account_key(&channel, "default"),
                        uri,
                        headers,
                        body,
                    )
                    .await
                },
            ),
        )
        .route(
            "/channels/{channel}/{account}",
            post(
                |State(d): State<actor::ChannelDirectory>,
                 Path((channel, account)): Path<(String, String)>,
                 uri: Uri,
                 headers: HeaderMap,
                 body: bytes::Bytes| async move {
                    handle(
                        d,
                        types::account_key(&channel, &account),
                        uri,
                        headers,
                        body,
                    )
                    .await
                },
            ),
        )
        .layer(DefaultBodyLimit::max(WEBHOOK_MAX_BYTES))
        .with_state(dir)
}

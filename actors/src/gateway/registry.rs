//! The method registry: which RPC methods and events the gateway offers, the scope each
//! method needs, and the handler that answers it.
//!
//! Later capabilities (chat, agents, cron, ...) register their methods here when the
//! supervision tree is composed; the connection code never changes for a new method.
//! `hello-ok` lists exactly what is registered.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use ractor::ActorRef;
use serde_json::Value;

use super::GatewayMsg;
use crate::protocol::{ClientInfo, ErrorShape};

/// What a handler returns: a payload or an error shape for the client.
pub type MethodResult = Result<Value, ErrorShape>;
/// A handler's boxed future. Handlers that answer at once are polled inline without a task.
pub type MethodFuture = Pin<Box<dyn Future<Output = MethodResult> + Send + 'static>>;

/// Everything a handler may know about the call it serves.
#[derive(Clone)]
pub struct CallContext {
    /// The connection's id, as sent in `hello-ok.server.connId`.
    pub conn_id: Arc<str>,
    pub remote: SocketAddr,
    pub client: Arc<ClientInfo>,
    pub scopes: Arc<[String]>,
    /// The gateway actor, for handlers that read gateway-wide state (presence, ...).
    pub gateway: ActorRef<GatewayMsg>,
    /// Where an early answer goes (set per request on WebSocket calls).
    pub interim: Option<Interim>,
}

/// A first answer on a request's id before its final one (`agent` answers
/// `{status: "accepted"}` at once, then the result).
#[derive(Clone)]
pub struct Interim {
    pub(crate) conn: ActorRef<super::connection::ConnMsg>,
    pub(crate) id: String,
}

impl CallContext {
    /// Sends `payload` as an `ok` response on this request's id now; the handler's result
    /// follows on the same id. False when the call has no connection to answer on.
    pub fn answer_early(&self, payload: Value) -> bool {
        match &self.interim {
            Some(i) => i
                .conn
                .cast(super::connection::ConnMsg::Reply(
                    crate::protocol::ResponseFrame::ok(i.id.clone(), payload),
                ))
                .is_ok(),
            None => false,
        }
    }
}

/// A method handler. Implemented for every `Fn(CallContext, Value) -> Future`.
pub trait MethodHandler: Send + Sync + 'static {
    fn call(&self, ctx: CallContext, params: Value) -> MethodFuture;
}

impl<F, Fut> MethodHandler for F
where
    F: Fn(CallContext, Value) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = MethodResult> + Send + 'static,
{
    fn call(&self, ctx: CallContext, params: Value) -> MethodFuture {
        Box::pin(self(ctx, params))
    }
}

/// A registered method.
pub struct MethodEntry {
    /// The operator scope a caller must hold (see [`crate::protocol::scopes`]).
    pub scope: &'static str,
    /// Whether repeated calls with the same `idempotencyKey` must return the first result.
    pub side_effecting: bool,
    pub handler: Arc<dyn MethodHandler>,
}

/// Methods and events, fixed once the gateway starts.
#[derive(Default)]
pub struct MethodRegistry {
    methods: HashMap<String, MethodEntry>,
    method_names: Vec<String>,
    events: Vec<String>,
}

impl MethodRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a read-only method.
    pub fn method(
        &mut self,
        name: &str,
        scope: &'static str,
        handler: impl MethodHandler,
    ) -> &mut Self {
        self.insert(name, scope, false, handler)
    }

    /// Registers a method whose calls change state; its `idempotencyKey`s are deduplicated.
    pub fn side_effecting(
        &mut self,
        name: &str,
        scope: &'static str,
        handler: impl MethodHandler,
    ) -> &mut Self {
        self.insert(name, scope, true, handler)
    }

    fn insert(
        &mut self,
        name: &str,
        scope: &'static str,
        side_effecting: bool,
        handler: impl MethodHandler,
    ) -> &mut Self {
        let entry = MethodEntry {
            scope,
            side_effecting,
            handler: Arc::new(handler),
        };
        assert!(
            self.methods.insert(name.to_owned(), entry).is_none(),
            "method {name} registered twice: each capability owns its own method names"
        );
        self.method_names.push(name.to_owned());
        self
    }

    /// Declares an event the gateway may emit.
    pub fn event(&mut self, name: &str) -> &mut Self {
        if !self.events.iter().any(|e| e == name) {
            self.events.push(name.to_owned());
        }
        self
    }

    pub fn get(&self, name: &str) -> Option<&MethodEntry> {
        self.methods.get(name)
    }

    /// Method names in registration order, as `hello-ok.features.methods` lists them.
    pub fn method_names(&self) -> &[String] {
        &self.method_names
    }

    pub fn event_names(&self) -> &[String] {
        &self.events
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::scopes;

    #[test]
    fn lists_exactly_what_is_registered_in_order() {
        let mut r = MethodRegistry::new();
        r.method("health", scopes::READ, |_c: CallContext, _p: Value| async {
            Ok(Value::Null)
        });
        r.side_effecting(
            "config.patch",
            scopes::ADMIN,
            |_c: CallContext, _p: Value| async { Ok(Value::Null) },
        );
        r.event("tick").event("tick").event("shutdown");
        assert_eq!(r.method_names(), ["health", "config.patch"]);
        assert_eq!(r.event_names(), ["tick", "shutdown"]);
        assert!(r.get("config.patch").unwrap().side_effecting);
        assert_eq!(r.get("health").unwrap().scope, scopes::READ);
        assert!(r.get("nope").is_none());
    }

    #[test]
    #[should_panic(expected = "registered twice")]
    fn duplicate_method_names_are_a_programming_error() {
        let mut r = MethodRegistry::new();
        r.method("health", scopes::READ, |_c: CallContext, _p: Value| async {
            Ok(Value::Null)
        });
        r.method("health", scopes::READ, |_c: CallContext, _p: Value| async {
            Ok(Value::Null)
        });
    }
}

//! What the tools use: a [`SandboxHandle`] per sandboxed session (the tools'
//! `SandboxRunner`), made by a [`SandboxBinding`] from the agent's sandbox config.

use super::*;

/// A sandboxed session's way into its container (the tools' `SandboxRunner`).
pub struct SandboxHandle {
    pub sandboxes: ActorRef<SandboxesMsg>,
    pub spec: SandboxSpec,
}

impl SandboxHandle {
    /// The SandboxActor for the spec and its exec server. A SandboxActor that just
    /// crashed is restarted by the manager within moments: asks again for a few seconds
    /// before giving up.
    async fn lease(
        sandboxes: &ActorRef<SandboxesMsg>,
        spec: &SandboxSpec,
    ) -> Result<(ActorRef<SandboxMsg>, ExecServer), String> {
        let mut attempt = 0;
        loop {
            let actor = match sandboxes
                .call(
                    |reply| SandboxesMsg::Acquire {
                        spec: Box::new(spec.clone()),
                        reply,
                    },
                    Some(Duration::from_secs(120)),
                )
                .await
            {
                Ok(ractor::rpc::CallResult::Success(r)) => r?,
                _ => return Err("the sandbox manager is not running".into()),
            };
            match actor
                .call(
                    |reply| SandboxMsg::Lease { reply },
                    Some(Duration::from_secs(10)),
                )
                .await
            {
                Ok(ractor::rpc::CallResult::Success(r)) => return Ok((actor, r?)),
                _ if attempt < 30 => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                _ => {
                    return Err(format!(
                        "sandbox {} did not answer (it keeps restarting); see the gateway log",
                        spec.scope
                    ));
                }
            }
        }
    }

    /// The sandbox failing counts toward its breaker; a command that fails or times out
    /// is the command's business.
    fn report<T>(actor: &ActorRef<SandboxMsg>, result: &Result<T, SandboxError>) {
        let outcome = match result {
            Ok(_) => Ok(()),
            Err(e) => Err(e.to_string()),
        };
        let _ = actor.cast(SandboxMsg::Report { outcome });
    }

    async fn run(
        sandboxes: ActorRef<SandboxesMsg>,
        spec: SandboxSpec,
        req: ExecRequest,
    ) -> Result<ExecResult, String> {
        let (actor, server) = Self::lease(&sandboxes, &spec).await?;
        let result = server.exec(&req, &mut |_, _| {}).await;
        Self::report(&actor, &result);
        result.map_err(|e| e.to_string())
    }

    async fn start(
        sandboxes: ActorRef<SandboxesMsg>,
        spec: SandboxSpec,
        req: ExecRequest,
    ) -> Result<BackgroundProcess, String> {
        let (actor, server) = Self::lease(&sandboxes, &spec).await?;
        let result = server.spawn(&req).await;
        Self::report(&actor, &result);
        result.map_err(|e| e.to_string())
    }
}

impl SandboxRunner for SandboxHandle {
    fn exec(&self, req: ExecRequest) -> BoxFuture<'static, Result<ExecResult, String>> {
        Box::pin(Self::run(self.sandboxes.clone(), self.spec.clone(), req))
    }

    fn spawn(&self, req: ExecRequest) -> BoxFuture<'static, Result<BackgroundProcess, String>> {
        Box::pin(Self::start(self.sandboxes.clone(), self.spec.clone(), req))
    }

    fn describe(&self) -> String {
        format!(
            "{} ({})",
            container_name(&self.spec.instance, &self.spec.scope),
            self.spec.config.docker.image
        )
    }
}

/// The sandbox configuration of each agent, for the runtime: `agents.defaults.sandbox`
/// with the agent's `sandbox` merged over it.
pub fn agent_config(
    defaults: &serde_json::Value,
    agent: Option<&serde_json::Value>,
) -> Result<SandboxConfig, String> {
    let base: SandboxConfig = if defaults.is_null() {
        SandboxConfig::default()
    } else {
        serde_json::from_value(defaults.clone())
            .map_err(|e| format!("agents.defaults.sandbox: {e}"))?
    };
    match agent {
        Some(v) if !v.is_null() => SandboxConfig::merge(&base, v),
        _ => Ok(base),
    }
}

/// Finds the Sandboxes actor (a restarted one has a new address).
pub type SandboxesLookup = std::sync::Arc<dyn Fn() -> Option<ActorRef<SandboxesMsg>> + Send + Sync>;

/// What a sandboxed turn needs (set on the agent runtime).
#[derive(Clone)]
pub struct SandboxBinding {
    pub config: SandboxConfig,
    pub sandboxes: SandboxesLookup,
    pub state_dir: PathBuf,
    pub main_key: String,
}

impl std::fmt::Debug for SandboxBinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxBinding")
            .field("mode", &self.config.mode)
            .field("scope", &self.config.scope)
            .finish()
    }
}

impl SandboxBinding {
    /// The sandbox handle for a session, or None when it runs on the host.
    pub fn for_session(
        &self,
        agent_id: &str,
        agent_workspace: &Path,
        session_key: &str,
    ) -> Option<Result<SandboxHandle, String>> {
        if !sandboxed(&self.config, agent_id, &self.main_key, session_key) {
            return None;
        }
        let Some(sandboxes) = (self.sandboxes)() else {
            return Some(Err(
                "sandboxing is configured but the sandbox manager is not running".into(),
            ));
        };
        let spec = plan(
            &self.config,
            &self.state_dir,
            agent_id,
            agent_workspace,
            session_key,
        );
        Some(Ok(SandboxHandle { sandboxes, spec }))
    }
}

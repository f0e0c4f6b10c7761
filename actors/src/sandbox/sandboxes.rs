//! The Sandboxes actor: one per gateway, under the gateway's supervisor. It connects to
//! the Engine (with backoff while it is unreachable), cleans up stale containers at
//! start-up, starts a SandboxActor per scope on first use (linked: it restarts a crashed
//! one, which adopts its container, and removes the container of one that keeps
//! crashing), and lists, recreates and prunes them.

use super::*;

/// How to reach the Docker Engine.
#[derive(Debug, Clone, Default)]
pub enum Engine {
    /// DOCKER_HOST or the default socket.
    #[default]
    Default,
    Socket(String),
}

pub struct SandboxesArgs {
    pub store: Store,
    /// This gateway's instance id (`instance_of(state dir)`): only its containers are
    /// listed, pruned, adopted or removed.
    pub instance: String,
    pub engine: Engine,
    pub faults: FaultHandle,
    /// The sandbox policy hashes configured now: at start-up, containers without a
    /// record, or whose agent's policy is no longer configured, are removed (None: no
    /// clean-up at start).
    pub keep: Option<Vec<String>>,
    /// Restarts are counted as `pincer_actor_restarts_total{kind="sandbox"}`.
    pub metrics: crate::gateway::Metrics,
}

pub enum SandboxesMsg {
    /// The SandboxActor for a spec (started, adopting or creating its container, if needed).
    Acquire {
        spec: Box<SandboxSpec>,
        reply: RpcReplyPort<Result<ActorRef<SandboxMsg>, String>>,
    },
    List {
        reply: RpcReplyPort<Result<Vec<SandboxInfo>, String>>,
    },
    /// Removes the containers whose scope, agent or session matches `filter` (all with
    /// None); the next use creates them afresh. Replies with the names removed.
    Recreate {
        filter: Option<String>,
        reply: RpcReplyPort<Result<Vec<String>, String>>,
    },
    /// Removes containers idle longer than their `prune.idleHours` or older than
    /// `prune.maxAgeDays`; replies with the names removed.
    Prune {
        reply: RpcReplyPort<Result<Vec<String>, String>>,
    },
    /// The periodic prune.
    Tick,
    /// A SandboxActor started in the background has started (or failed to).
    Started {
        spec: Box<SandboxSpec>,
        result: Result<ActorRef<SandboxMsg>, String>,
    },
}

type AcquireReply = RpcReplyPort<Result<ActorRef<SandboxMsg>, String>>;

pub struct SandboxesActor;

struct Live {
    actor: ActorRef<SandboxMsg>,
    spec: SandboxSpec,
}

pub struct SandboxesState {
    store: Store,
    instance: String,
    engine: Engine,
    faults: FaultHandle,
    docker: Option<Docker>,
    /// After a failed connection: not before this instant, and why.
    retry_at: Option<(Instant, String)>,
    backoff: Duration,
    live: HashMap<String, Live>,
    restarts: HashMap<String, (Instant, u32)>,
    /// The scope's prune policy, from its last spec.
    prune: HashMap<String, pincer_sandbox::config::PruneConfig>,
    keep: Option<Vec<String>>,
    metrics: crate::gateway::Metrics,
    /// Scopes whose SandboxActor is starting (making a container takes a few hundred ms):
    /// the callers waiting for it. Other scopes are served meanwhile.
    starting: HashMap<String, Vec<AcquireReply>>,
}

impl SandboxesState {
    /// The Engine, connecting when needed; while it is unreachable, fails fast until the
    /// next attempt is due (1 s, doubling to 60 s).
    async fn docker(&mut self) -> Result<Docker, String> {
        if let Some(d) = &self.docker {
            return Ok(d.clone());
        }
        if let Some((at, why)) = &self.retry_at
            && Instant::now() < *at
        {
            return Err(format!(
                "{why} (next attempt in {}s)",
                (*at - Instant::now()).as_secs().max(1)
            ));
        }
        let connected = match &self.engine {
            Engine::Default => Docker::connect().await,
            Engine::Socket(s) => Docker::connect_with_socket(s).await,
        };
        match connected {
            Ok(d) => {
                self.retry_at = None;
                self.backoff = Duration::from_secs(1);
                self.docker = Some(d.clone());
                if let Some(keep) = self.keep.take() {
                    self.clean_up(&d, &keep).await;
                }
                Ok(d)
            }
            Err(e) => {
                let why = e.to_string();
                warn!(error = %why, retry_in = ?self.backoff, "docker unreachable; sandboxed tools fail until it answers");
                self.retry_at = Some((Instant::now() + self.backoff, why.clone()));
                self.backoff = (self.backoff * 2).min(Duration::from_secs(60));
                Err(why)
            }
        }
    }

    /// At start-up: containers of ours with no record, or whose configuration is no
    /// longer used, are removed; records without a container are forgotten. The rest
    /// are adopted by their SandboxActor on first use.
    async fn clean_up(&mut self, docker: &Docker, keep: &[String]) {
        let records: HashMap<String, SandboxRecord> = match self.store.sandboxes() {
            Ok(r) => r.into_iter().collect(),
            Err(e) => {
                warn!(error = %e, "cannot read the sandbox records; not cleaning up");
                return;
            }
        };
        let containers = match docker
            .list(&[
                (LABEL_SANDBOX, "1"),
                (LABEL_INSTANCE, self.instance.as_str()),
            ])
            .await
        {
            Ok(c) => c,
            Err(e) => {
                warn!(error = %e, "cannot list sandbox containers; not cleaning up");
                return;
            }
        };
        for c in &containers {
            let scope = c.labels.get(LABEL_SCOPE_KEY).cloned().unwrap_or_default();
            let record = records.get(&scope).filter(|r| r.container_id == c.id);
            let recorded = record.is_some();
            if !record.is_some_and(|r| keep.contains(&r.policy_hash)) {
                info!(container = %c.name, recorded, "removing a stale sandbox at start-up");
                if let Err(e) = docker.remove(&c.id).await {
                    warn!(container = %c.name, error = %e, "could not remove a stale sandbox");
                }
                let _ = self.store.set_sandbox::<SandboxRecord>(&scope, None, true);
            }
        }
        for (scope, r) in records {
            if !containers.iter().any(|c| c.id == r.container_id) {
                let _ = self.store.set_sandbox::<SandboxRecord>(&scope, None, true);
            }
        }
    }

    /// A SandboxActor (fault-injectable as `sandbox`) and its arguments for `spec`.
    fn sandbox_actor(
        &self,
        docker: Docker,
        spec: &SandboxSpec,
    ) -> (Injectable<SandboxActor>, SandboxArgs) {
        let actor = Injectable {
            inner: SandboxActor,
            name: "sandbox".into(),
            faults: self.faults.clone(),
        };
        let args = SandboxArgs {
            docker,
            spec: spec.clone(),
            store: self.store.clone(),
        };
        (actor, args)
    }

    /// Starts a SandboxActor and waits for its container (restarts after a crash).
    async fn start(
        &mut self,
        myself: &ActorRef<SandboxesMsg>,
        spec: SandboxSpec,
    ) -> Result<ActorRef<SandboxMsg>, String> {
        let docker = self.docker().await?;
        let (actor, args) = self.sandbox_actor(docker, &spec);
        match Actor::spawn_linked(None, actor, args, myself.get_cell()).await {
            Ok((r, _)) => {
                self.prune
                    .insert(spec.scope.clone(), spec.config.prune.clone());
                self.live.insert(
                    spec.scope.clone(),
                    Live {
                        actor: r.clone(),
                        spec,
                    },
                );
                Ok(r)
            }
            Err(e) => {
                let msg = e.to_string();
                // The Engine went away: connect again next time.
                if msg.contains("not reachable") {
                    self.docker = None;
                }
                Err(msg)
            }
        }
    }

    /// Starts a SandboxActor without waiting for its container: the reply goes out when
    /// it has started (`Started`), so twenty new sessions make their containers at once.
    async fn start_in_background(
        &mut self,
        myself: &ActorRef<SandboxesMsg>,
        spec: SandboxSpec,
        reply: AcquireReply,
    ) {
        if let Some(waiting) = self.starting.get_mut(&spec.scope) {
            waiting.push(reply);
            return;
        }
        let docker = match self.docker().await {
            Ok(d) => d,
            Err(e) => {
                let _ = reply.send(Err(e));
                return;
            }
        };
        self.starting.insert(spec.scope.clone(), vec![reply]);
        let (actor, args) = self.sandbox_actor(docker, &spec);
        let me = myself.clone();
        tokio::spawn(async move {
            let result = Actor::spawn_linked(None, actor, args, me.get_cell())
                .await
                .map(|(r, _)| r)
                .map_err(|e| e.to_string());
            let _ = me.cast(SandboxesMsg::Started {
                spec: Box::new(spec),
                result,
            });
        });
    }

    async fn remove_scope(&mut self, scope: &str) -> Option<String> {
        if let Some(l) = self.live.remove(scope) {
            let _ = l
                .actor
                .stop_and_wait(Some("removed".into()), Some(Duration::from_secs(5)))
                .await;
        }
        let docker = self.docker.clone()?;
        let found = docker
            .list(&[
                (LABEL_SANDBOX, "1"),
                (LABEL_INSTANCE, self.instance.as_str()),
                (LABEL_SCOPE_KEY, scope),
            ])
            .await
            .unwrap_or_default();
        let mut name = None;
        for c in found {
            if docker.remove(&c.id).await.is_ok() {
                name = Some(c.name);
            }
        }
        let _ = self.store.set_sandbox::<SandboxRecord>(scope, None, true);
        name
    }

    async fn list(&mut self) -> Result<Vec<SandboxInfo>, String> {
        let docker = self.docker().await?;
        let containers = docker
            .list(&[
                (LABEL_SANDBOX, "1"),
                (LABEL_INSTANCE, self.instance.as_str()),
            ])
            .await
            .map_err(|e| e.to_string())?;
        let records: HashMap<String, SandboxRecord> = self
            .store
            .sandboxes()
            .map_err(|e| e.to_string())?
            .into_iter()
            .collect();
        let mut out = Vec::new();
        for c in containers {
            let scope = c.labels.get(LABEL_SCOPE_KEY).cloned().unwrap_or_default();
            let live = self.live.get(&scope);
            let mut info = match live {
                Some(l) => match l
                    .actor
                    .call(
                        |reply| SandboxMsg::Info { reply },
                        Some(Duration::from_secs(2)),
                    )
                    .await
                {
                    Ok(ractor::rpc::CallResult::Success(i)) => i,
                    _ => info_from_labels(&scope, &c, records.get(&scope)),
                },
                None => info_from_labels(&scope, &c, records.get(&scope)),
            };
            info.running = c.running;
            out.push(info);
        }
        out.sort_by(|a, b| a.scope.cmp(&b.scope));
        Ok(out)
    }
}

fn info_from_labels(scope: &str, c: &ContainerInfo, r: Option<&SandboxRecord>) -> SandboxInfo {
    let label = |k: &str| c.labels.get(k).cloned().unwrap_or_default();
    // The record is the truth (it holds the same instant as the label, unless changed).
    let created = r
        .map(|r| r.created_at)
        .filter(|at| *at > 0)
        .unwrap_or_else(|| {
            label(LABEL_CREATED_AT)
                .parse()
                .unwrap_or(c.created as u64 * 1000)
        });
    SandboxInfo {
        scope: scope.to_owned(),
        name: c.name.clone(),
        container_id: c.id.clone(),
        agent_id: label(LABEL_AGENT),
        session_key: label(LABEL_SESSION),
        image: r.map(|r| r.image.clone()).unwrap_or_default(),
        running: c.running,
        live: false,
        created_at: created,
        last_used: r.map_or(created, |r| r.last_used),
        config_hash: label(LABEL_CONFIG_HASH),
        suspended: None,
    }
}

/// Whether a sandbox is due for pruning at `now_ms` (pure).
pub fn prune_due(
    prune: &pincer_sandbox::config::PruneConfig,
    created_at: u64,
    last_used: u64,
    now_ms: u64,
) -> Option<String> {
    let idle = now_ms.saturating_sub(last_used);
    let age = now_ms.saturating_sub(created_at);
    if prune.idle_hours > 0 && idle >= prune.idle_hours * 3_600_000 {
        return Some(format!("idle for more than {}h", prune.idle_hours));
    }
    if prune.max_age_days > 0 && age >= prune.max_age_days * 86_400_000 {
        return Some(format!("older than {} days", prune.max_age_days));
    }
    None
}

impl Actor for SandboxesActor {
    type Msg = SandboxesMsg;
    type State = SandboxesState;
    type Arguments = SandboxesArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<SandboxesMsg>,
        args: SandboxesArgs,
    ) -> Result<SandboxesState, ActorProcessingErr> {
        myself.send_interval(PRUNE_EVERY, || SandboxesMsg::Tick);
        Ok(SandboxesState {
            store: args.store,
            instance: args.instance,
            engine: args.engine,
            faults: args.faults,
            docker: None,
            retry_at: None,
            backoff: Duration::from_secs(1),
            live: HashMap::new(),
            restarts: HashMap::new(),
            prune: HashMap::new(),
            keep: args.keep,
            metrics: args.metrics,
            starting: HashMap::new(),
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<SandboxesMsg>,
        msg: SandboxesMsg,
        state: &mut SandboxesState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            SandboxesMsg::Acquire { spec, reply } => match state.live.get(&spec.scope) {
                // Sessions sharing a scope share its container; only a changed
                // configuration (or mounts) makes a new one.
                Some(l) if l.spec.hash() == spec.hash() => {
                    let _ = reply.send(Ok(l.actor.clone()));
                }
                Some(_) => {
                    state.remove_scope(&spec.scope).await;
                    state.start_in_background(&myself, *spec, reply).await;
                }
                None => state.start_in_background(&myself, *spec, reply).await,
            },
            SandboxesMsg::Started { spec, result } => {
                let waiting = state.starting.remove(&spec.scope).unwrap_or_default();
                match &result {
                    Ok(r) => {
                        state
                            .prune
                            .insert(spec.scope.clone(), spec.config.prune.clone());
                        state.live.insert(
                            spec.scope.clone(),
                            Live {
                                actor: r.clone(),
                                spec: *spec,
                            },
                        );
                    }
                    Err(msg) if msg.contains("not reachable") => state.docker = None,
                    Err(_) => {}
                }
                for w in waiting {
                    let _ = w.send(result.clone());
                }
            }
            SandboxesMsg::List { reply } => {
                let _ = reply.send(state.list().await);
            }
            SandboxesMsg::Recreate { filter, reply } => {
                let result = match state.list().await {
                    Ok(all) => {
                        let mut removed = Vec::new();
                        for i in all {
                            let hit = filter.as_deref().is_none_or(|f| {
                                i.scope == f || i.agent_id == f || i.session_key == f || i.name == f
                            });
                            if hit && let Some(name) = state.remove_scope(&i.scope).await {
                                removed.push(name);
                            }
                        }
                        Ok(removed)
                    }
                    Err(e) => Err(e),
                };
                let _ = reply.send(result);
            }
            SandboxesMsg::Prune { reply } => {
                let _ = reply.send(prune(state).await);
            }
            SandboxesMsg::Tick => {
                if state.docker.is_some()
                    && let Ok(removed) = prune(state).await
                    && !removed.is_empty()
                {
                    info!(?removed, "pruned sandboxes");
                }
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<SandboxesMsg>,
        evt: SupervisionEvent,
        state: &mut SandboxesState,
    ) -> Result<(), ActorProcessingErr> {
        let (cell, reason) = match &evt {
            SupervisionEvent::ActorFailed(cell, e) => (cell.clone(), Some(e.to_string())),
            SupervisionEvent::ActorTerminated(cell, _, _) => (cell.clone(), None),
            _ => return Ok(()),
        };
        let Some(scope) = state
            .live
            .iter()
            .find(|(_, l)| l.actor.get_id() == cell.get_id())
            .map(|(k, _)| k.clone())
        else {
            return Ok(());
        };
        let Some(reason) = reason else {
            state.live.remove(&scope);
            return Ok(());
        };
        let live = state.live.remove(&scope).expect("found above");
        let now = Instant::now();
        let entry = state.restarts.entry(scope.clone()).or_insert((now, 0));
        if now.duration_since(entry.0) > Duration::from_secs(60) {
            *entry = (now, 0);
        }
        entry.1 += 1;
        if entry.1 > MAX_RESTARTS {
            // Never an orphan: a sandbox that keeps crashing loses its container.
            warn!(%scope, %reason, "sandbox keeps crashing; removing its container");
            state.remove_scope(&scope).await;
            return Ok(());
        }
        warn!(%scope, %reason, "sandbox crashed; restarting it (it adopts its container)");
        state.metrics.actor_restart("sandbox");
        if let Err(e) = state.start(&myself, live.spec).await {
            warn!(%scope, error = %e, "could not restart the sandbox; removing its container");
            state.remove_scope(&scope).await;
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<SandboxesMsg>,
        state: &mut SandboxesState,
    ) -> Result<(), ActorProcessingErr> {
        // Containers stay for the next start (adopted then, or pruned); the records too.
        for (_, l) in state.live.drain() {
            l.actor.stop(None);
        }
        Ok(())
    }
}

async fn prune(state: &mut SandboxesState) -> Result<Vec<String>, String> {
    let now = now_ms();
    let all = state.list().await?;
    let mut removed = Vec::new();
    for i in all {
        let policy = state.prune.get(&i.scope).cloned().unwrap_or_default();
        if let Some(why) = prune_due(&policy, i.created_at, i.last_used, now) {
            info!(container = %i.name, %why, "pruning a sandbox");
            if let Some(name) = state.remove_scope(&i.scope).await {
                removed.push(name);
            }
        }
    }
    Ok(removed)
}

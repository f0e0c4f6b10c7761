//! Docker sandboxes for agent tools: the sandbox configuration and its checks
//! (`config`), hardened containers over the local Docker socket (`docker`), commands run
//! in them with a timeout that kills the whole process tree (`exec`), the exec server
//! inside each container that runs them in about a millisecond (`execd`) and the locally
//! built sandbox images (`image`).

pub mod config;
pub mod docker;
pub mod exec;
pub mod execd;
pub mod image;

/// What can go wrong with a sandbox, split by what the supervisor should do about it.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// Transient: restart with backoff, fail tool calls fast meanwhile.
    #[error(
        "the Docker daemon is not reachable at {socket} ({detail}); start it (`sudo systemctl start docker`, or `sudo dockerd &`) or set DOCKER_HOST"
    )]
    Unreachable { socket: String, detail: String },
    /// Permanent until the user builds the image.
    #[error("the sandbox image {image} is missing; build it with `pincer sandbox setup`")]
    ImageMissing { image: String },
    /// A configuration or request refused for safety (escaping binds, host network...).
    #[error("refused: {0}")]
    Refused(String),
    /// Anything else the Engine answered.
    #[error("docker: {0}")]
    Docker(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl SandboxError {
    /// Whether retrying later can help (the daemon may come back).
    pub fn is_transient(&self) -> bool {
        matches!(self, SandboxError::Unreachable { .. })
    }
}

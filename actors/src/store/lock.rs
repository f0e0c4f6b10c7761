//! One gateway per state directory: an exclusive `flock` on `gateway.pid`, which holds the
//! owner's pid so a second gateway can say who is in the way.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use super::StoreError;

/// Held for the life of the gateway; released (and the pid cleared) on drop.
#[derive(Debug)]
pub struct GatewayLock {
    file: File,
    path: PathBuf,
}

impl GatewayLock {
    /// Takes the lock at `pid_file` (in state directory `dir`) or says which pid holds it.
    pub fn acquire(pid_file: &Path, dir: &Path) -> Result<Self, StoreError> {
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(pid_file)
            .map_err(|e| StoreError::Io(format!("cannot open {}: {e}", pid_file.display())))?;
        // SAFETY: flock on a file descriptor we own; no memory is involved.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            let pid = pid.trim();
            return Err(StoreError::AnotherGateway {
                pid: if pid.is_empty() {
                    "unknown".into()
                } else {
                    pid.to_owned()
                },
                dir: dir.to_owned(),
            });
        }
        let io =
            |e: std::io::Error| StoreError::Io(format!("cannot write {}: {e}", pid_file.display()));
        file.set_len(0).map_err(io)?;
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        writeln!(file, "{}", std::process::id()).map_err(io)?;
        file.sync_all().map_err(io)?;
        Ok(Self {
            file,
            path: pid_file.to_owned(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for GatewayLock {
    fn drop(&mut self) {
        let _ = self.file.set_len(0);
        // SAFETY: as above.
        unsafe {
            libc::flock(self.file.as_raw_fd(), libc::LOCK_UN);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_second_holder_is_refused_with_the_first_pid_and_can_retry_after_release() {
        let t = tempfile::tempdir().unwrap();
        let pid_file = t.path().join("gateway.pid");
        let first = GatewayLock::acquire(&pid_file, t.path()).unwrap();
        assert_eq!(
            std::fs::read_to_string(&pid_file).unwrap().trim(),
            std::process::id().to_string()
        );
        // flock is per open file description: a second open in this process conflicts too.
        let err = GatewayLock::acquire(&pid_file, t.path())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        assert!(err.contains("--profile"), "{err}");
        drop(first);
        assert!(GatewayLock::acquire(&pid_file, t.path()).is_ok());
    }
}

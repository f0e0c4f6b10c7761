//! Where a path the model names is allowed to point: inside the workspace, after every
//! symlink is followed. Every file tool (and `apply_patch`, and `exec`'s `workdir`) goes
//! through [`resolve`]; nothing else in `tools` joins a model-supplied string to a path.
//!
//! The rules, in order:
//! 1. empty and NUL-containing paths are refused;
//! 2. an absolute path is accepted only when it names a place inside the workspace (models
//!    are shown the workspace's absolute path); any other absolute path is refused;
//! 3. `.` and `..` are applied lexically, and a `..` that would climb above the workspace
//!    root is refused;
//! 4. each existing component is then followed on disk, and a symlink whose target lies
//!    outside the (canonical) workspace is refused, as is a dangling symlink (writing
//!    through it would create its target wherever it points).
//!
//! The returned path is canonical for its existing part, so the caller opens a path with no
//! symlinks left in it. A symlink swapped in between this check and the open is not
//! defended against (no `openat2`/`RESOLVE_BENEATH` here).

use std::io;
use std::path::{Component, Path, PathBuf};

/// What the caller means to do with the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intent {
    Read,
    Write,
}

/// Why a path was refused. Each message names the path and says what to do instead.
#[derive(Debug, thiserror::Error)]
pub enum PathError {
    #[error("the path is empty: give a path relative to the workspace")]
    Empty,
    #[error("the path {0:?} contains a NUL byte")]
    NulByte(String),
    #[error(
        "the absolute path {0:?} is outside the workspace: give a path relative to the workspace"
    )]
    Absolute(String),
    #[error("the path {0:?} climbs out of the workspace with `..`")]
    DotDotEscape(String),
    #[error(
        "the path {requested:?} goes through the symlink {link:?}, which points outside the workspace"
    )]
    SymlinkEscape { requested: String, link: String },
    #[error(
        "the path {requested:?} goes through the symlink {link:?}, whose target does not exist"
    )]
    DanglingSymlink { requested: String, link: String },
    #[error("workspace access is {access}: {what} is not allowed")]
    AccessDenied {
        access: &'static str,
        what: &'static str,
    },
    #[error("the workspace {path:?} is not usable: {source}")]
    Workspace { path: PathBuf, source: io::Error },
    #[error("could not inspect {path:?}: {source}")]
    Io { path: String, source: io::Error },
}

/// Resolve `requested` inside `workspace` for `intent`; see the module doc for the rules.
/// A path that does not exist yet resolves fine (the caller reports "not found" for reads
/// and creates it for writes); its existing ancestors are still checked.
pub fn resolve(workspace: &Path, requested: &str, intent: Intent) -> Result<PathBuf, PathError> {
    if requested.is_empty() {
        return Err(PathError::Empty);
    }
    if requested.contains('\0') {
        return Err(PathError::NulByte(requested.to_owned()));
    }
    let root = workspace
        .canonicalize()
        .map_err(|source| PathError::Workspace {
            path: workspace.to_owned(),
            source,
        })?;

    let rel = relative_part(workspace, &root, requested)?;
    let names = normalize(&rel).ok_or_else(|| PathError::DotDotEscape(requested.to_owned()))?;
    if names.is_empty() && intent == Intent::Write {
        // Writing to the workspace directory itself is never what was meant.
        return Err(PathError::Empty);
    }

    let mut current = root.clone();
    let mut rest = names.iter();
    for name in rest.by_ref() {
        let next = current.join(name);
        match std::fs::symlink_metadata(&next) {
            Ok(meta) if meta.file_type().is_symlink() => match next.canonicalize() {
                Ok(target) if target.starts_with(&root) => current = target,
                Ok(_) => {
                    return Err(PathError::SymlinkEscape {
                        requested: requested.to_owned(),
                        link: display_rel(&root, &next),
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    return Err(PathError::DanglingSymlink {
                        requested: requested.to_owned(),
                        link: display_rel(&root, &next),
                    });
                }
                Err(source) => {
                    return Err(PathError::Io {
                        path: requested.to_owned(),
                        source,
                    });
                }
            },
            Ok(_) => current = next,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                current = next;
                break;
            }
            Err(source) => {
                return Err(PathError::Io {
                    path: requested.to_owned(),
                    source,
                });
            }
        }
    }
    // Everything after the first missing component does not exist either.
    for name in rest {
        current.push(name);
    }
    Ok(current)
}

/// The workspace-relative part of `requested`, accepting an absolute path only when it is
/// under the workspace as given or as canonicalized.
fn relative_part(workspace: &Path, root: &Path, requested: &str) -> Result<PathBuf, PathError> {
    let path = Path::new(requested);
    if !path.is_absolute() {
        return Ok(path.to_owned());
    }
    // Lexically normalize the absolute path first so `/ws/../etc` is not "under /ws".
    let mut absolute = PathBuf::from("/");
    for name in normalize(path).unwrap_or_default() {
        absolute.push(name);
    }
    for base in [workspace, root] {
        if let Ok(rel) = absolute.strip_prefix(base) {
            return Ok(rel.to_owned());
        }
    }
    Err(PathError::Absolute(requested.to_owned()))
}

/// The plain names of `path` after applying `.` and `..`; `None` if `..` climbs above the
/// start. Root and prefix components are skipped (the caller decided what they mean).
fn normalize(path: &Path) -> Option<Vec<std::ffi::OsString>> {
    let mut names = Vec::new();
    for component in path.components() {
        match component {
            Component::Normal(name) => names.push(name.to_owned()),
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
            Component::ParentDir => {
                names.pop()?;
            }
        }
    }
    Some(names)
}

/// `path` shown relative to the workspace root, for error messages.
fn display_rel(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .to_string_lossy()
        .into_owned()
}

/// `path` shown relative to the canonical form of `workspace`, for tool output.
pub fn relative_display(workspace: &Path, path: &Path) -> String {
    let root = workspace
        .canonicalize()
        .unwrap_or_else(|_| workspace.to_owned());
    display_rel(&root, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn ws() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/file.txt"), "x").unwrap();
        dir
    }

    #[test]
    fn plain_relative_paths_resolve_inside() {
        let dir = ws();
        let root = dir.path().canonicalize().unwrap();
        let p = resolve(dir.path(), "sub/file.txt", Intent::Read).unwrap();
        assert_eq!(p, root.join("sub/file.txt"));
        let p = resolve(dir.path(), "./sub/../sub/./file.txt", Intent::Read).unwrap();
        assert_eq!(p, root.join("sub/file.txt"));
        let p = resolve(dir.path(), "new/deeper/file.txt", Intent::Write).unwrap();
        assert_eq!(p, root.join("new/deeper/file.txt"));
    }

    #[test]
    fn escapes_are_refused() {
        let dir = ws();
        for bad in ["../x", "a/../../x", "sub/../../x", ".."] {
            let err = resolve(dir.path(), bad, Intent::Read).unwrap_err();
            assert!(matches!(err, PathError::DotDotEscape(_)), "{bad}: {err}");
            assert!(err.to_string().contains("climbs out"), "{err}");
        }
        let err = resolve(dir.path(), "/etc/passwd", Intent::Read).unwrap_err();
        assert!(matches!(err, PathError::Absolute(_)), "{err}");
        assert!(err.to_string().contains("relative to the workspace"));
        let err = resolve(dir.path(), "a\0b", Intent::Read).unwrap_err();
        assert!(matches!(err, PathError::NulByte(_)));
        assert!(matches!(
            resolve(dir.path(), "", Intent::Read).unwrap_err(),
            PathError::Empty
        ));
        assert!(matches!(
            resolve(dir.path(), ".", Intent::Write).unwrap_err(),
            PathError::Empty
        ));
    }

    #[test]
    fn absolute_paths_inside_the_workspace_are_accepted() {
        let dir = ws();
        let root = dir.path().canonicalize().unwrap();
        let abs = format!("{}/sub/file.txt", root.display());
        assert_eq!(
            resolve(dir.path(), &abs, Intent::Read).unwrap(),
            root.join("sub/file.txt")
        );
        let sneaky = format!("{}/../etc/passwd", root.display());
        assert!(matches!(
            resolve(dir.path(), &sneaky, Intent::Read).unwrap_err(),
            PathError::Absolute(_)
        ));
    }

    #[test]
    fn symlinks_are_followed_and_checked() {
        let dir = ws();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "s").unwrap();
        symlink(outside.path(), dir.path().join("out")).unwrap();
        symlink(outside.path().join("secret"), dir.path().join("secret")).unwrap();
        symlink(dir.path().join("sub"), dir.path().join("inner")).unwrap();
        symlink(dir.path().join("missing"), dir.path().join("dangling")).unwrap();

        for bad in ["out/secret", "secret", "out/newfile"] {
            for intent in [Intent::Read, Intent::Write] {
                let err = resolve(dir.path(), bad, intent).unwrap_err();
                assert!(
                    matches!(err, PathError::SymlinkEscape { .. }),
                    "{bad}: {err}"
                );
                assert!(err.to_string().contains("outside the workspace"));
            }
        }
        let err = resolve(dir.path(), "dangling", Intent::Write).unwrap_err();
        assert!(matches!(err, PathError::DanglingSymlink { .. }), "{err}");

        let root = dir.path().canonicalize().unwrap();
        assert_eq!(
            resolve(dir.path(), "inner/file.txt", Intent::Read).unwrap(),
            root.join("sub/file.txt")
        );
    }
}

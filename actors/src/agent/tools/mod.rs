//! Workspace tools (in progress).

//! A local LLM server for tests and fault injection (work in progress).

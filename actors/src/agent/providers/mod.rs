//! Provider wire clients (in progress).

//! Shared helpers for the workspace-level tests (sample discovery, .npy loading, comparison).

//! ferry-agent: applies image releases to a GitOps config repository.

//! Helpers shared by the integration tests, in one place: running the
//! built binary (`binary`), PostgreSQL servers of their own (`pg`), and on
//! Linux throwaway namespaces (`netns`) and a client namespace (`client`).

pub mod binary;
#[cfg(target_os = "linux")]
pub mod client;
#[cfg(target_os = "linux")]
pub mod netns;
pub mod pg;

//! PostgreSQL store for address pools shared by a fleet of hosts (issue 11).
//! Work in progress: configuration and typed errors.

pub mod config;
pub mod error;

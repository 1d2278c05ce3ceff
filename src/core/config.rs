//! jnet.toml and profile schema and validation.

//! Validated names: jails, pools, interfaces.
//!
//! A name that passes these constructors is safe to put in a pf anchor path,
//! an nft chain name, a netns name, a file path component and a command-line
//! argument: only ASCII letters, digits, `_` and `-` (interfaces also `.`).
//! This module does not check that the named thing exists.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Why a name was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} name {value:?}: {reason}")]
pub struct NameError {
    pub kind: &'static str,
    pub value: String,
    pub reason: &'static str,
}

fn check(kind: &'static str, value: &str, max: usize, extra: &[u8]) -> Result<(), NameError> {
    let err = |reason| NameError {
        kind,
        value: value.to_string(),
        reason,
    };
    if value.is_empty() {
        return Err(err("must not be empty"));
    }
    if value.len() > max {
        return Err(err(match kind {
            "interface" => "longer than 15 bytes (IFNAMSIZ)",
            "pool" => "longer than 32 bytes",
            _ => "longer than 63 bytes",
        }));
    }
    let b = value.as_bytes();
    if !(b[0].is_ascii_alphanumeric() || b[0] == b'_') {
        return Err(err("must start with a letter, digit or '_'"));
    }
    if !b
        .iter()
        .all(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'-' || extra.contains(c))
    {
        return Err(err(if extra.is_empty() {
            "only letters, digits, '_' and '-' are allowed"
        } else {
            "only letters, digits, '_', '-' and '.' are allowed"
        }));
    }
    Ok(())
}

macro_rules! name_type {
    ($(#[$doc:meta])* $ty:ident) => {
        $(#[$doc])*
        // why Arc<str>: a name is cloned into every claim, view and report
        // row; at 10,000 jails the String copies were a seventh of `check`.
        // Comparison, order and hash are the text's.
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $ty(std::sync::Arc<str>);

        impl Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl $ty {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
        impl FromStr for $ty {
            type Err = NameError;
            fn from_str(s: &str) -> Result<Self, NameError> {
                $ty::new(s)
            }
        }
        impl TryFrom<String> for $ty {
            type Error = NameError;
            fn try_from(s: String) -> Result<Self, NameError> {
                $ty::new(&s)
            }
        }
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                $ty::new(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

name_type!(
    /// A jail name. Follows jail(8) (not all digits, which would be a jid; no
    /// `.`, which names hierarchical jails jnet does not manage) and is
    /// restricted further so it is safe in anchors, chains and paths. It must
    /// not start with `_`: the name becomes the pf anchor `<root>/<jail>`, and
    /// pfctl refuses to load or flush an anchor with a component starting
    /// with `_` (sbin/pfctl/pfctl.c main(): `anchorname[0] == '_' ||
    /// strstr(anchorname, "/_")` -> errx, FreeBSD main e7646b05 l.2988-2990,
    /// 3081-3083). Refused on every platform so one inventory works on both.
    JailName
);
name_type!(
    /// A pool name from `[pools.<name>]`.
    PoolName
);
name_type!(
    /// A network interface name (at most 15 bytes, IFNAMSIZ - 1).
    IfName
);

impl JailName {
    pub fn new(s: &str) -> Result<Self, NameError> {
        check("jail", s, 63, &[])?;
        if s.bytes().all(|c| c.is_ascii_digit()) {
            return Err(NameError {
                kind: "jail",
                value: s.to_string(),
                reason: "must not be all digits (jail(8) reads that as a jid)",
            });
        }
        if s.starts_with('_') {
            return Err(NameError {
                kind: "jail",
                value: s.to_string(),
                reason: "must not start with '_' (pfctl refuses anchors whose name starts with '_')",
            });
        }
        Ok(JailName(s.into()))
    }
}

impl PoolName {
    pub fn new(s: &str) -> Result<Self, NameError> {
        check("pool", s, 32, &[])?;
        Ok(PoolName(s.into()))
    }
}

impl IfName {
    pub fn new(s: &str) -> Result<Self, NameError> {
        check("interface", s, 15, b".")?;
        if !s.as_bytes()[0].is_ascii_alphabetic() {
            return Err(NameError {
                kind: "interface",
                value: s.to_string(),
                reason: "must start with a letter",
            });
        }
        Ok(IfName(s.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jail_names() {
        for ok in ["www", "db-1", "web_2", "a", "1web", &"x".repeat(63)] {
            assert!(JailName::new(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "123",
            "a.b",
            "a b",
            "a;rm",
            "$x",
            "-a",
            "a/b",
            "ä",
            "a\n",
            &"x".repeat(64),
            "a\"b",
            "a'b",
            "a`b",
            "a|b",
            "a*",
            "_web",
            "_",
        ] {
            assert!(JailName::new(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn interface_names() {
        for ok in ["vtnet0", "lo1", "em0.100", "bridge-lan", "br_lan"] {
            assert!(IfName::new(ok).is_ok(), "{ok}");
        }
        for bad in ["", "0eth", "eth 0", "eth/0", "verylonginterface0", "eth0;", ".", ".."] {
            assert!(IfName::new(bad).is_err(), "{bad:?}");
        }
    }

    /// F5: `_web` would become the anchor `jnet/_web`, which pfctl refuses.
    #[test]
    fn leading_underscore_is_refused_with_the_reason() {
        let e = JailName::new("_web").unwrap_err();
        assert!(e.to_string().contains("must not start with '_'"), "{e}");
        assert!(JailName::new("web_").is_ok());
    }

    #[test]
    fn error_names_the_value() {
        let e = JailName::new("a;b").unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid jail name \"a;b\": only letters, digits, '_' and '-' are allowed"
        );
    }
}

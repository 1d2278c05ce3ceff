//! Names (parameters, variables) interned to small integers while a
//! jail.conf is read, and the hash used for them.
//!
//! why: a file of 10,000 jails names the same dozen parameters 30,000 times;
//! interning lets the evaluator compare and index names as integers instead
//! of hashing and comparing strings for every parameter of every jail.
//!
//! What it does not do: no "no"-prefix equivalence (eval.rs decides that on
//! the interned names) and no validation of names.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// An interned name: index into [`Interner`].
pub(crate) type Sym = usize;

/// A multiply-rotate hash (the one rustc uses for its own tables) for short
/// keys. Not resistant to chosen collisions; a jail.conf is the host
/// administrator's own file, and a collision only costs time.
#[derive(Default, Clone, Copy)]
pub(crate) struct FxHasher(u64);

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    #[inline]
    fn add(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut b = [0u8; 8];
            b.copy_from_slice(c);
            self.add(u64::from_le_bytes(b));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut b = [0u8; 8];
            b[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(b));
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

pub(crate) type FxBuild = BuildHasherDefault<FxHasher>;
pub(crate) type FxMap<K, V> = HashMap<K, V, FxBuild>;

/// Distinct names in first-seen order.
#[derive(Debug, Default)]
pub(crate) struct Interner {
    map: FxMap<Box<str>, Sym>,
    names: Vec<Box<str>>,
}

impl Interner {
    pub fn intern(&mut self, s: &str) -> Sym {
        if let Some(&k) = self.map.get(s) {
            return k;
        }
        let k = self.names.len();
        self.names.push(s.into());
        self.map.insert(s.into(), k);
        k
    }

    pub fn get(&self, s: &str) -> Option<Sym> {
        self.map.get(s).copied()
    }

    pub fn name(&self, k: Sym) -> &str {
        self.names.get(k).map_or("", |s| s)
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// The names, indexed by their [`Sym`].
    pub fn into_names(self) -> Vec<Box<str>> {
        self.names
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interning_is_stable_and_distinct() {
        let mut i = Interner::default();
        let a = i.intern("persist");
        let b = i.intern("nopersist");
        assert_ne!(a, b);
        assert_eq!(i.intern("persist"), a);
        assert_eq!(i.get("nopersist"), Some(b));
        assert_eq!(i.get("allow.mount"), None);
        assert_eq!((i.name(a), i.name(b), i.name(99)), ("persist", "nopersist", ""));
        assert_eq!(i.len(), 2);
    }
}

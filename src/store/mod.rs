//! The inventory on disk: one schema-versioned file under an exclusive lock,
//! replaced atomically.

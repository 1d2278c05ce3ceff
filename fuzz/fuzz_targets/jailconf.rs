//! jail.conf(5) reader: lexer, parser, includes and variable evaluation
//! (`core::jailconf::parse`). The input is the root file; it is also
//! reachable as every file under /etc/jail.conf.d/, so `.include` of a glob
//! or of itself exercises include depth and cycles. Checks only that
//! nothing panics, overflows the stack or allocates without bound.
#![no_main]
use jnet::core::jailconf::{parse, MemLoader};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut loader = MemLoader::new();
    loader.add("/etc/jail.conf.d/a.conf", text);
    loader.add("/etc/jail.conf.d/b.conf", "x { ip4.addr = 192.0.2.1; }\n");
    loader.add("/etc/jail.conf", text);
    if let Ok(conf) = parse("/etc/jail.conf", text, &loader) {
        // The evaluated model is walked too: Debug formats every value.
        let _ = format!("{conf:?}");
    }
});

//! jnet.toml and profile readers (`core::config::parse_config`,
//! `parse_profile`) and the merge of a jail's settings with a profile
//! (`effective`). Checks only that nothing panics.
#![no_main]
use jnet::core::config::{effective, parse_config, parse_profile};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let profile = parse_profile("fz", "/usr/local/etc/jnet/profiles/fz.toml", text).ok();
    if let Ok(cfg) = parse_config("/usr/local/etc/jnet.toml", text) {
        for j in cfg.jails.values() {
            let _ = format!("{:?}", effective(j, profile.as_ref()));
        }
        for p in cfg.pools.values() {
            let _ = (p.host_range(), p.contains(std::net::Ipv4Addr::new(192, 0, 2, 1)));
        }
    }
});

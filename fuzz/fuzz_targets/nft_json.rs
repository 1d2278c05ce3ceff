//! The nft JSON reader (`os::linux::nft`): `nft -j list ruleset` as read
//! for foreign port redirections (`parse_foreign_redirects`), and a
//! `list table` listing as turned into a jail's flush script
//! (`flush_script`). Checks only that nothing panics.
#![no_main]
use jnet::os::linux::nft::{flush_script, parse_foreign_redirects};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(r) = parse_foreign_redirects(text, "jnet") {
        let _ = format!("{r:?}");
    }
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(text) {
        if let Some(list) = v.get("nftables").and_then(|l| l.as_array()) {
            let _ = flush_script("inet", "jnet", "web", list);
            let _ = flush_script("inet", "jnet", "web_2", list);
        }
    }
});

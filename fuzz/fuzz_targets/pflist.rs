//! `pfctl -sn`/`-sr` listing reader (`core::rules::pflist::parse_listing`)
//! and what jnet derives from a listing: foreign redirections, anchor hook
//! checks and per-rule redirect/nat extraction. The first byte picks the
//! anchor the listing is said to come from. Checks only that nothing panics.
#![no_main]
use jnet::core::rules::pflist::{
    check_anchor_hooks, foreign_redirects, is_redirection, nat_from_rule, parse_listing, parse_rule,
    redirect_from_rule,
};
use libfuzzer_sys::fuzz_target;

const ANCHORS: [&str; 4] = ["", "jnet", "jnet/web", "rdr/*"];

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else { return };
    let Ok(text) = std::str::from_utf8(rest) else { return };
    let anchor = ANCHORS[usize::from(sel) % ANCHORS.len()];
    if let Ok(l) = parse_listing(text, anchor) {
        let _ = foreign_redirects(&l, "jnet");
        let _ = format!("{:?}", check_anchor_hooks(&[&l], "jnet"));
        for r in &l.rules {
            let _ = format!("{r:?}");
        }
    }
    for line in text.lines().take(64) {
        if let Ok(r) = parse_rule(line) {
            if is_redirection(&r) {
                let _ = redirect_from_rule(&r);
            }
            let _ = nat_from_rule(&r);
        }
    }
});

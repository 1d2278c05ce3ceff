//! Listener parsers on real captures from ../shared/corpus/cmdout (read at
//! test time: they come from GitHub issues without a licence, so they are
//! not copied here) and on samples written for this test from the layouts in
//! corpus/cmdout/FORMATS.md (sockstat.c 2022 printf layout, FreeBSD 15
//! libxo layout).

use std::net::IpAddr;
use std::path::PathBuf;

use jnet::core::check::{analyze, CheckInput, Claim, ClaimAddr, Platform, Severity};
use jnet::core::listeners::{
    parse_sockstat, parse_sockstat_json, Listener, ListenerParseError, SockstatContext, SockstatLayout, Stack,
};
use jnet::core::ports::Proto;

fn corpus() -> Option<PathBuf> {
    let dir = std::env::var_os("JNET_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/corpus")));
    if dir.join("cmdout").is_dir() {
        return Some(dir);
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("corpus not found at {} (set JNET_CORPUS)", dir.display());
    }
    eprintln!(
        "SKIP: corpus not found at {} (set JNET_CORPUS); corpus tests did not run",
        dir.display()
    );
    None
}

fn read(dir: &std::path::Path, name: &str) -> String {
    let p = dir.join("cmdout").join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// (proto, address, port, dual_stack, pid, command)
type Row = (Proto, String, u16, bool, Option<u32>, Option<String>);

fn summary(ls: &[Listener]) -> Vec<Row> {
    ls.iter()
        .map(|l| {
            (
                l.proto,
                l.address.to_string(),
                l.port,
                l.dual_stack,
                l.owner.pid,
                l.owner.command.clone(),
            )
        })
        .collect()
}

#[test]
fn freebsd14_sockstat_46s_capture() {
    let Some(dir) = corpus() else { return };
    // Whitespace was collapsed by the author of the capture; a whitespace
    // split does not care. The -s state column is present.
    let text = read(&dir, "sockstat-46s__freebsd14.4__mql-pr10413.txt");
    let ls = parse_sockstat(&text, SockstatLayout::Printf, &SockstatContext::host()).unwrap();
    assert_eq!(
        summary(&ls),
        vec![
            (Proto::Tcp, "::".into(), 22, false, Some(1718), Some("sshd".into())),
            (Proto::Tcp, "0.0.0.0".into(), 22, false, Some(1718), Some("sshd".into())),
        ]
    );
    assert!(ls.iter().all(|l| l.stack == Stack::Host && l.owner.jail.is_none()));
}

#[test]
fn in_jail_unbound_captures() {
    let Some(dir) = corpus() else { return };
    for (file, addr, pid) in [
        (
            "sockstat-4__in-jail-unbound0__bastille-readme-2018.txt",
            "10.0.0.10",
            9639,
        ),
        (
            "sockstat-4__in-jail-unbound1__bastille-readme-2018.txt",
            "10.0.0.20",
            31590,
        ),
        (
            "sockstat-4__in-jail-unbound2__bastille-readme-2018.txt",
            "10.0.0.30",
            66761,
        ),
    ] {
        let text = read(&dir, file);
        let ctx = SockstatContext {
            stack: Stack::Host,
            jail: Some("unbound".into()),
        };
        let ls = parse_sockstat(&text, SockstatLayout::Printf, &ctx).unwrap();
        let cmd = Some("unbound".to_string());
        assert_eq!(
            summary(&ls),
            vec![
                (Proto::Udp, addr.into(), 53, false, Some(pid), cmd.clone()),
                (Proto::Tcp, addr.into(), 53, false, Some(pid), cmd.clone()),
            ],
            "{file}"
        );
        assert!(ls.iter().all(|l| l.owner.jail.as_deref() == Some("unbound")));
    }
}

#[test]
fn numeric_user_and_mangled_tcp46_capture() {
    let Some(dir) = corpus() else { return };
    let text = read(&dir, "sockstat-l-4-6-line__mail-toaster6-issue153.txt");
    let ls = parse_sockstat(&text, SockstatLayout::Printf, &SockstatContext::host()).unwrap();
    assert_eq!(
        summary(&ls),
        vec![(Proto::Tcp, "::".into(), 3306, true, Some(92539), Some("mysqld".into()))]
    );
}

/// Built from the 2022 printf format: USER padded to column 9, COMMAND cut
/// to 10, PID `%5lu`, the address columns at 37 and 59; a long user name and
/// a long address push later columns right; `?` rows have no process.
const PRINTF_SAMPLE: &str = "\
USER     COMMAND    PID   FD PROTO  LOCAL ADDRESS         FOREIGN ADDRESS      
root     sshd        1042 4  tcp6   *:22                  *:*
root     sshd        1042 5  tcp4   *:22                  *:*
www      nginx        812 6  tcp46  *:80                  *:*
postgres postgres     950 7  tcp4   127.0.0.1:5432        *:*
postgres postgres     950 8  tcp6   ::1:5432              *:*
prometheus prometheus  1300 9  tcp6   2001:db8:100:200:300:400:500:600:9090 *:*
unbound  unbound    104857 3  udp4   10.0.0.10:53          *:*
?        ?          ?     ?  udp6   fe80::1%vtnet0:546    *:*
root     syslogd      500 6  udp4   *:514                 *:*
root     ntpd         610 20 udp6   fe80::1%lo0:123       *:*
root     ntpd         610 21 udp4   192.0.2.1:123         *:*
";

#[test]
fn printf_layout_sample() {
    let ls = parse_sockstat(PRINTF_SAMPLE, SockstatLayout::Printf, &SockstatContext::host()).unwrap();
    assert_eq!(ls.len(), 11);
    let s = summary(&ls);
    assert_eq!(
        s[2],
        (Proto::Tcp, "::".into(), 80, true, Some(812), Some("nginx".into()))
    );
    assert_eq!(s[4].1, "::1");
    assert_eq!(
        s[5],
        (
            Proto::Tcp,
            "2001:db8:100:200:300:400:500:600".into(),
            9090,
            false,
            Some(1300),
            Some("prometheus".into())
        )
    );
    assert_eq!(s[6].4, Some(104857), "pid wider than 5 pushes the row right");
    assert_eq!((s[7].4, s[7].5.clone(), s[7].2), (None, None, 546));
}

/// Built from the FreeBSD 15 libxo format: per-run widths (USER grown to the
/// longest name, PID/FD right-aligned), `??` rows, and without -w the
/// address columns cut to 21 characters.
const LIBXO_NARROW: &str = "\
USER       COMMAND      PID FD PROTO LOCAL ADDRESS         FOREIGN ADDRESS      
root       sshd        1042  4 tcp6  *:22                  *:*                  
root       sshd        1042  5 tcp4  *:22                  *:*                  
prometheus prometheus  1300  9 tcp6  2001:db8:100:200:300: *:*                  
??         ??            ?? ?? udp4  *:5353                *:*                  
";

const LIBXO_WIDE: &str = "\
USER       COMMAND      PID FD PROTO LOCAL ADDRESS                           FOREIGN ADDRESS
root       sshd        1042  4 tcp6  *:22                                    *:*
root       sshd        1042  5 tcp4  *:22                                    *:*
prometheus prometheus  1300  9 tcp6  2001:db8:100:200:300:400:500:600:9090   *:*
??         ??            ?? ?? udp4  *:5353                                  *:*
";

#[test]
fn libxo_layout_samples() {
    let host = SockstatContext::host();
    let err = parse_sockstat(LIBXO_NARROW, SockstatLayout::Libxo { wide: false }, &host).unwrap_err();
    match &err {
        ListenerParseError::Truncated { line, text, width, .. } => {
            assert_eq!((*line, text.as_str(), *width), (4, "2001:db8:100:200:300:", 21));
        }
        other => panic!("expected truncation, got {other}"),
    }
    let ls = parse_sockstat(LIBXO_WIDE, SockstatLayout::for_release(15, true), &host).unwrap();
    let s = summary(&ls);
    assert_eq!(s.len(), 4);
    assert_eq!(s[2].1, "2001:db8:100:200:300:400:500:600");
    assert_eq!(s[3], (Proto::Udp, "0.0.0.0".into(), 5353, false, None, None));
}

#[test]
fn sockstat_json_sample() {
    let text = r#"{"__version": "1", "sockstat": {"socket": [
      {"user": "www", "command": "nginx", "pid": 812, "fd": 6, "proto": "tcp46",
       "local": {"address": "*", "port": 80}, "foreign": {"address": "*", "port": 0}},
      {"user": "root", "command": "sshd", "pid": 1042, "fd": 5, "proto": "tcp4",
       "local": {"address": "*", "port": 22}, "foreign": {"address": "*", "port": 0}}
    ]}}"#;
    let ls = parse_sockstat_json(text, &SockstatContext::host()).unwrap();
    assert_eq!(
        summary(&ls)[0],
        (Proto::Tcp, "::".into(), 80, true, Some(812), Some("nginx".into()))
    );
}

/// From listing to verdict: a dedicated FreeBSD jail on 10.0.0.5 under the
/// dual-stack nginx of the printf sample gets a warning; an inherit jail on
/// 22 gets an error naming sshd.
#[test]
fn parsed_listing_feeds_the_analysis() {
    let listeners = parse_sockstat(PRINTF_SAMPLE, SockstatLayout::Printf, &SockstatContext::host()).unwrap();
    let input = CheckInput {
        platform: Platform::FreeBsd,
        checked: vec!["www".parse().unwrap(), "jump".parse().unwrap()],
        claims: vec![
            Claim {
                jail: "www".parse().unwrap(),
                stack: Stack::Host,
                proto: Proto::Tcp,
                ports: "80".parse().unwrap(),
                addresses: ClaimAddr::Specific(vec![ip("10.0.0.5")]),
            },
            Claim {
                jail: "jump".parse().unwrap(),
                stack: Stack::Host,
                proto: Proto::Tcp,
                ports: "22".parse().unwrap(),
                addresses: ClaimAddr::Wildcard,
            },
        ],
        listeners,
        exposures: vec![],
        redirects: vec![],
        interface_addrs: Default::default(),
    };
    let r = analyze(&input);
    let got: Vec<_> = r
        .conflicts
        .iter()
        .map(|c| (c.jail.to_string(), c.severity, c.port))
        .collect();
    assert_eq!(
        got,
        vec![
            ("jump".into(), Severity::Error, 22),
            ("jump".into(), Severity::Error, 22),
            ("www".into(), Severity::Warning, 80),
        ]
    );
    assert!(
        r.conflicts[0].message.contains("sshd (pid 1042)"),
        "{}",
        r.conflicts[0].message
    );
}

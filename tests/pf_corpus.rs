//! Round trip of pfctl's canonical translation rules through jnet's IR:
//! every `nat`/`rdr`/`binat` line of the FreeBSD pfctl regression outputs
//! (`pf/**/*.ok`) must parse; every line the IR can express must render back
//! byte for byte. Runs on the copies in tests/fixtures/pf (always) and on
//! the shared corpus (skipped loudly when absent, failing under CI=true),
//! which also holds real `pfctl -s nat` captures from other projects.

use std::path::{Path, PathBuf};

use jnet::core::rules::pf::{render_nat, render_redirect, service_port, PortNames};
use jnet::core::rules::pflist::{nat_from_rule, parse_listing, parse_rule, redirect_from_rule};

fn corpus_dir() -> Option<PathBuf> {
    let p = std::env::var_os("JNET_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/corpus")));
    if p.join("pf").is_dir() {
        return Some(p);
    }
    eprintln!("SKIP: corpus not found at {} (set JNET_CORPUS)", p.display());
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "corpus missing under CI=true: {}",
        p.display()
    );
    None
}

fn ok_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            ok_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "ok") {
            out.push(p);
        }
    }
}

fn is_translation(line: &str) -> bool {
    let w = line.strip_prefix("no ").unwrap_or(line);
    ["nat ", "rdr ", "binat "].iter().any(|k| w.starts_with(k))
}

/// pfctl prints /etc/services names unless run with -N; pick the mode the
/// capture was made with.
fn names_used(line: &str) -> PortNames {
    let named = line
        .split(" port = ")
        .skip(1)
        .filter_map(|rest| rest.split(' ').next())
        .any(|w| !w.bytes().all(|c| c.is_ascii_digit()) && service_port(w).is_some());
    if named {
        PortNames::Services
    } else {
        PortNames::Numeric
    }
}

#[derive(Default, Debug)]
struct Tally {
    lines: usize,
    expressible: usize,
    round_trip: usize,
    failures: Vec<String>,
    not_expressible: Vec<String>,
}

impl Tally {
    fn line(&mut self, origin: &str, line: &str) {
        self.lines += 1;
        let rule = match parse_rule(line) {
            Ok(r) => r,
            Err(e) => {
                self.failures.push(format!("{origin}: parse failed ({e}): {line}"));
                return;
            }
        };
        let rendered = match rule.action.as_str() {
            "rdr" => redirect_from_rule(&rule).map(|r| render_redirect(&r, names_used(line))),
            "nat" => nat_from_rule(&rule).map(|n| render_nat(&n)),
            other => Err(format!("{other} is not in the IR")),
        };
        match rendered {
            Err(why) => self.not_expressible.push(format!("{why}: {line}")),
            Ok(text) => {
                self.expressible += 1;
                if text == line {
                    self.round_trip += 1;
                } else {
                    self.failures
                        .push(format!("{origin}:\n  corpus: {line}\n  jnet:   {text}"));
                }
            }
        }
    }
}

fn tally_ok_files(root: &Path) -> Tally {
    let mut files = Vec::new();
    ok_files(root, &mut files);
    let mut t = Tally::default();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for (i, line) in text.lines().enumerate() {
            if is_translation(line) {
                t.line(&format!("{}:{}", f.display(), i + 1), line);
            }
        }
    }
    t
}

fn report(what: &str, t: &Tally) {
    println!(
        "{what}: {} translation lines, {} expressible in the IR, {} round-trip",
        t.lines, t.expressible, t.round_trip
    );
    for n in &t.not_expressible {
        println!("  not expressible: {n}");
    }
}

#[test]
fn fixtures_round_trip() {
    let t = tally_ok_files(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/pf")));
    report("fixtures", &t);
    assert!(t.failures.is_empty(), "{}", t.failures.join("\n"));
    assert_eq!(t.expressible, t.round_trip);
    // Pinned so a parser change that silently stops expressing lines fails.
    // The ninth is inet6 (pf1061.ok `nat on vtnet0 inet6 proto tcp from
    // 2001:db8::1 to 2001:db8::2 -> 2001:db8::cb00:7105`), which renders
    // back byte for byte since the IR is family-neutral (issue 9).
    assert_eq!((t.lines, t.expressible), (38, 9), "{t:?}");
    assert!(
        t.not_expressible.iter().all(|n| !n.contains("-> 2001:db8::cb00:7105")),
        "{t:?}"
    );
}

#[test]
fn corpus_round_trip() {
    let Some(dir) = corpus_dir() else { return };
    let t = tally_ok_files(&dir.join("pf"));
    report("corpus pf/**/*.ok", &t);
    assert!(t.failures.is_empty(), "{}", t.failures.join("\n"));
    assert_eq!(t.expressible, t.round_trip);
    assert!(t.expressible >= 9, "{t:?}");
}

#[test]
fn corpus_captures_parse_and_round_trip() {
    let Some(dir) = corpus_dir() else { return };
    let mut t = Tally::default();
    let mut files = 0;
    for e in std::fs::read_dir(dir.join("cmdout")).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        if !name.starts_with("pfctl-") {
            continue;
        }
        files += 1;
        let text = std::fs::read_to_string(&p).unwrap();
        // Whole listing must parse (filter rules, anchors, labels included).
        let listing = parse_listing(&text, "").unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            listing.rules.len(),
            text.lines().filter(|l| !l.trim().is_empty()).count(),
            "{name}"
        );
        for (i, line) in text.lines().enumerate() {
            if is_translation(line) {
                t.line(&format!("{name}:{}", i + 1), line);
            }
        }
    }
    println!(
        "corpus cmdout pfctl captures: {files} files, {} translation lines, {} expressible, {} round-trip",
        t.lines, t.expressible, t.round_trip
    );
    assert!(t.failures.is_empty(), "{}", t.failures.join("\n"));
    assert_eq!(t.expressible, t.round_trip);
    assert!(t.expressible >= 11, "{t:?}");
}

#[test]
fn corpus_captures_foreign_redirects_and_hooks() {
    use jnet::core::ports::{PortRange, Proto};
    use jnet::core::rules::pflist::{check_anchor_hooks, foreign_redirects};
    let Some(dir) = corpus_dir() else { return };
    let read = |n: &str| std::fs::read_to_string(dir.join("cmdout").join(n)).unwrap();

    // Bastille's per-jail anchor listing (`pfctl -a rdr/<jail> -sn`).
    let l = parse_listing(
        &read("pfctl-a-rdr-JAIL-sn__bastille-rdr-list__bastille-issue707.txt"),
        "rdr/www",
    )
    .unwrap();
    let f = foreign_redirects(&l, "jnet");
    let got: Vec<(Proto, PortRange, &str, bool)> = f
        .iter()
        .map(|r| (r.proto, r.ports, r.owner.as_str(), r.address.is_none()))
        .collect();
    assert_eq!(
        got,
        vec![
            (Proto::Tcp, PortRange::single(80).unwrap(), "rdr/www", true),
            (Proto::Tcp, PortRange::single(443).unwrap(), "rdr/www", true),
        ]
    );
    // The same listing under jnet's own root is not foreign.
    let own = parse_listing(
        &read("pfctl-a-rdr-JAIL-sn__bastille-rdr-list__bastille-issue707.txt"),
        "jnet/www",
    )
    .unwrap();
    assert!(foreign_redirects(&own, "jnet").is_empty());

    // A bound external address is kept.
    let l = parse_listing(&read("pfctl-a-rdr-JAIL-sn__bastille-docs-rdr-list-2024.txt"), "rdr/j").unwrap();
    let f = foreign_redirects(&l, "jnet");
    assert_eq!(f.len(), 4);
    assert_eq!(f[2].address, Some("192.168.0.84".parse().unwrap()));
    assert_eq!((f[0].proto, f[0].ports), (Proto::Udp, PortRange::single(2001).unwrap()));

    // pfSense's main ruleset has its own anchors, not jnet's.
    let nat = parse_listing(&read("pfctl-sn__pfsense-nat-anchors__miniupnp-issue451.txt"), "").unwrap();
    let rules = parse_listing(
        &read("pfctl-s-rules__pfsense-anchors-labels__miniupnp-issue453.txt"),
        "",
    )
    .unwrap();
    let h = check_anchor_hooks(&[&nat, &rules], "jnet");
    assert_eq!(h.missing, vec!["nat-anchor \"jnet/*\"", "rdr-anchor \"jnet/*\""]);
    assert!(
        check_anchor_hooks(&[&nat, &rules], "natrules").missing.len() == 2,
        "natrules/ is not natrules/*"
    );
}

/// F12: FreeBSD 15 filter rules with `rdr-to` (pfctl regression outputs
/// freebsd-src 5ecc60fb pf0019.ok and a6c9cdc4 pf1079.ok) are seen by the
/// foreign-redirect scan when read from a `pfctl -s rules` listing.
#[test]
fn filter_rule_rdr_to_is_a_foreign_redirect() {
    use jnet::core::ports::{PortRange, Proto};
    use jnet::core::rules::pflist::foreign_redirects;
    let Some(dir) = corpus_dir() else { return };
    let read = |f: &str| std::fs::read_to_string(dir.join("pf/fbsd-main").join(f)).unwrap();
    let l = parse_listing(&read("pf0019.ok"), "").unwrap();
    assert!(l.unparsed.is_empty(), "{:?}", l.unparsed);
    let f = foreign_redirects(&l, "jnet");
    let expected_rules = read("pf0019.ok").lines().filter(|l| l.contains(" rdr-to ")).count();
    assert_eq!(f.len(), expected_rules, "{f:#?}");
    assert_eq!(
        (f[0].proto, f[0].ports, f[0].address),
        (
            Proto::Tcp,
            PortRange::single(2222).unwrap(),
            Some("1.2.3.4".parse().unwrap())
        )
    );
    assert_eq!(f[1].ports, PortRange::single(21).unwrap(), "port = ftp");
    let l = parse_listing(&read("pf1079.ok"), "").unwrap();
    let f = foreign_redirects(&l, "jnet");
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(f[0].ports, PortRange::single(2222).unwrap());
    assert_eq!(f[0].owner, "pf.conf");
}

//! The man pages against the CLI: every subcommand clap knows has an
//! `.It Cm <command>` entry in man/jnet.8, every option of a subcommand is
//! named as `.Fl` in that entry, every global option somewhere in the page,
//! and every value of an enumerated argument as `.Cm`; options the page
//! names that the CLI lacks are reported too. The CLI side is read from
//! clap (`jnet::cli::Cli` through `CommandFactory`), so a command added
//! without documentation fails here. man/jnet.toml.5 must have an
//! `.It Ic <key>` entry, naming its default, for every key the config and
//! profile parsers accept (the parser's own list of expected keys, from
//! its unknown-key error). Both pages must also pass
//! `mandoc -T lint` (when mandoc is missing: a loud skip, a failure under
//! CI=true).

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use clap::CommandFactory;
use jnet::cli::Cli;

const JNET_8: &str = include_str!("../man/jnet.8");

/// What the CLI offers, as the man page should show it.
struct CliSurface {
    /// Subcommand paths: `["pf", "reload"]`.
    commands: Vec<Vec<String>>,
    /// Per subcommand path: its own (non-global) options, as `-x` / `--long`.
    options: Vec<(Vec<String>, Vec<String>)>,
    /// Global options, as `-x` / `--long`.
    globals: Vec<String>,
    /// Per subcommand path: the possible values of its enumerated arguments.
    values: Vec<(Vec<String>, Vec<String>)>,
}

fn flags_of(a: &clap::Arg) -> Vec<String> {
    let mut v = vec![];
    if let Some(s) = a.get_short() {
        v.push(format!("-{s}"));
    }
    if let Some(l) = a.get_long() {
        v.push(format!("--{l}"));
    }
    v
}

fn surface() -> CliSurface {
    let mut root = Cli::command();
    root.build();
    let mut out = CliSurface {
        commands: vec![],
        options: vec![],
        globals: vec![],
        values: vec![],
    };
    for a in root.get_arguments() {
        out.globals.extend(flags_of(a));
    }
    fn walk(cmd: &clap::Command, path: Vec<String>, out: &mut CliSurface) {
        for sub in cmd.get_subcommands() {
            let mut p = path.clone();
            p.push(sub.get_name().to_string());
            // clap's own `help` below the top level (`pf help`) is generated
            // help, not a jnet command; `jnet help` itself is documented.
            if sub.get_name() == "help" && !path.is_empty() {
                continue;
            }
            let mut own = vec![];
            let mut values = vec![];
            for a in sub.get_arguments() {
                if a.is_global_set() {
                    continue;
                }
                let id = a.get_id().as_str();
                if id == "help" || id == "version" {
                    continue;
                }
                own.extend(flags_of(a));
                if !a.is_hide_possible_values_set() {
                    values.extend(a.get_possible_values().iter().map(|v| v.get_name().to_string()));
                }
            }
            out.commands.push(p.clone());
            out.options.push((p.clone(), own));
            out.values.push((p.clone(), values));
            // why: `jnet help <command>` mirrors the command tree; its
            // children are not commands of their own.
            if sub.get_name() != "help" {
                walk(sub, p, out);
            }
        }
    }
    walk(&root, vec![], &mut out);
    out
}

/// The words given to `Cm` and `Fl` on one mdoc line (`.Op Fl -format Cm
/// table | json` gives Cm: table, json; Fl: --format).
fn macro_args(line: &str) -> (Vec<String>, Vec<String>) {
    let (mut cm, mut fl) = (vec![], vec![]);
    if !line.starts_with('.') {
        return (cm, fl);
    }
    let is_macro = |t: &str| {
        let b = t.as_bytes();
        (2..=3).contains(&b.len()) && b[0].is_ascii_uppercase() && b[1..].iter().all(u8::is_ascii_lowercase)
    };
    let mut mode = None;
    for t in line[1..].split_whitespace() {
        if is_macro(t) {
            mode = Some(t);
            continue;
        }
        if t == "|" || t == "," || t == "Ns" {
            continue;
        }
        let t = t.trim_end_matches(['.', ',', ';', ')']);
        if t.is_empty() {
            continue;
        }
        match mode {
            Some("Cm") => cm.push(t.to_string()),
            // why: `.Fl -state-dir` renders as --state-dir, `.Fl c` as -c.
            Some("Fl") => fl.push(format!("-{t}")),
            _ => {}
        }
    }
    (cm, fl)
}

/// The lines of the `.It Cm <path>` entries for a subcommand (`assign` has
/// one per form): each from its line to the next `.It Cm`, `.Sh` or `.Ss`.
fn entry<'a>(page: &'a str, path: &[String]) -> Option<Vec<&'a str>> {
    let head = format!(".It Cm {}", path.join(" "));
    let lines: Vec<&str> = page.lines().collect();
    let mut out = vec![];
    for (start, l) in lines.iter().enumerate() {
        let starts_entry = l
            .strip_prefix(head.as_str())
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(' '));
        if !starts_entry {
            continue;
        }
        let end = lines[start + 1..]
            .iter()
            .position(|l| l.starts_with(".It Cm ") || l.starts_with(".Sh") || l.starts_with(".Ss"))
            .map_or(lines.len(), |i| start + 1 + i);
        out.extend(&lines[start..end]);
    }
    (!out.is_empty()).then_some(out)
}

/// Everything the page fails to document, one line each.
fn missing(page: &str, cli: &CliSurface) -> Vec<String> {
    let mut out = vec![];
    let all_fl: BTreeSet<String> = page.lines().flat_map(|l| macro_args(l).1).collect();
    for g in &cli.globals {
        if !all_fl.contains(g) {
            out.push(format!("global option {g}: no `.Fl` in jnet.8"));
        }
    }
    for path in &cli.commands {
        let name = path.join(" ");
        let Some(lines) = entry(page, path) else {
            out.push(format!("command {name}: no `.It Cm {name}` entry in jnet.8"));
            continue;
        };
        let (mut cm, mut fl) = (BTreeSet::new(), BTreeSet::new());
        for l in &lines {
            let (c, f) = macro_args(l);
            cm.extend(c);
            fl.extend(f);
        }
        for (p, opts) in &cli.options {
            if p == path {
                for o in opts.iter().filter(|o| !fl.contains(*o)) {
                    out.push(format!("command {name}: option {o} missing from its entry"));
                }
            }
        }
        for (p, vals) in &cli.values {
            if p == path {
                for v in vals.iter().filter(|v| !cm.contains(*v)) {
                    out.push(format!(
                        "command {name}: value {v} missing from its entry (as `.Cm {v}`)"
                    ));
                }
            }
        }
    }
    // The other way round: an option the page names must exist.
    let known: BTreeSet<String> = cli
        .globals
        .iter()
        .chain(cli.options.iter().flat_map(|(_, o)| o))
        .cloned()
        .chain(["-h", "--help", "-V", "--version", "--"].map(String::from))
        .collect();
    for f in all_fl.difference(&known) {
        out.push(format!("jnet.8 documents {f}, which the CLI does not have"));
    }
    out
}

#[test]
fn every_subcommand_and_option_is_in_jnet_8() {
    let cli = surface();
    // Guard against a surface that silently came out empty.
    assert!(cli.commands.len() >= 20, "{:?}", cli.commands);
    assert!(cli.commands.iter().any(|c| c == &["pf", "reload"]));
    assert!(cli.globals.contains(&"--state-dir".to_string()));
    let gaps = missing(JNET_8, &cli);
    assert!(gaps.is_empty(), "man/jnet.8 is out of date:\n  {}", gaps.join("\n  "));
}

#[test]
fn the_check_notices_what_is_missing() {
    let cli = surface();
    let drop = |needle: &str| -> String {
        JNET_8
            .lines()
            .filter(|l| !l.starts_with(needle))
            .map(|l| format!("{l}\n"))
            .collect()
    };
    let gaps = missing(&drop(".It Cm import"), &cli);
    assert!(gaps.iter().any(|g| g.contains("command import")), "{gaps:?}");
    let gaps = missing(&drop(".It Cm pf reload"), &cli);
    assert!(gaps.iter().any(|g| g.contains("command pf reload")), "{gaps:?}");
    // `--strict` only appears in check's entry and synopsis.
    let no_strict: String = JNET_8.replace("Fl -strict", "Fl -strikt");
    let gaps = missing(&no_strict, &cli);
    assert!(gaps.iter().any(|g| g.contains("check: option --strict")), "{gaps:?}");
    assert!(
        gaps.iter().any(|g| g.contains("--strikt, which the CLI does not have")),
        "{gaps:?}"
    );
    let no_zsh = JNET_8.replace("Cm bash | zsh | fish", "Cm bash | fish");
    assert!(missing(&no_zsh, &cli).iter().any(|g| g.contains("value zsh")));
}

#[test]
fn macro_arguments_are_split_like_mdoc() {
    let (cm, fl) = macro_args(".Op Fl -format Cm table | json");
    assert_eq!(cm, ["table", "json"]);
    assert_eq!(fl, ["--format"]);
    let (cm, fl) = macro_args(".It Fl c Ar file , Fl -config Ar file");
    assert!(cm.is_empty());
    assert_eq!(fl, ["-c", "--config"]);
    assert_eq!(macro_args("Cm not a macro line").0.len(), 0);
}

/// mandoc's findings worth failing on. "referenced manual not found" and a
/// stale mandoc.db depend on which pages this machine has installed (Linux
/// has no jail(8)), not on the page.
fn lint(page: &Path) -> Option<Vec<String>> {
    let out = match Command::new("mandoc")
        .args(["-T", "lint", "-W", "style"])
        .arg(page)
        .output()
    {
        Ok(o) => o,
        Err(e) => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "mandoc is required under CI=true (apt-get install mandoc): {e}"
            );
            eprintln!("SKIP: mandoc not runnable ({e}); install mandoc to lint the man pages");
            return None;
        }
    };
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Some(
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .filter(|l| !l.contains("referenced manual not found") && !l.contains("outdated mandoc.db"))
            .map(String::from)
            .collect(),
    )
}

#[test]
fn man_pages_lint_clean() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("man");
    for page in ["jnet.8", "jnet.toml.5"] {
        if let Some(findings) = lint(&dir.join(page)) {
            assert!(findings.is_empty(), "mandoc -T lint {page}:\n{}", findings.join("\n"));
        }
    }
}

#[test]
fn lint_reports_a_broken_page() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.8");
    std::fs::write(&bad, JNET_8.replace(".Sh EXIT STATUS", ".Sh EXIT STATUS\n.Bl -tag\n")).unwrap();
    if let Some(findings) = lint(&bad) {
        assert!(!findings.is_empty(), "mandoc found nothing wrong with an unclosed list");
    }
}

const JNET_TOML_5: &str = include_str!("../man/jnet.toml.5");

/// The keys a table accepts, as the parser itself lists them when it meets
/// an unknown one (serde's "unknown field `x`, expected one of `a`, `b`").
fn accepted_keys(err: &str) -> Vec<String> {
    let list = err
        .split_once("expected one of ")
        .unwrap_or_else(|| panic!("no key list in {err:?}"))
        .1;
    list.split(", ")
        .map(|k| k.trim().trim_matches('`').to_string())
        .collect()
}

/// The lines of the `.It Ic <key>` entry inside section/subsection `within`
/// (a heading line prefix), up to the next `.It`, `.Ss`, `.Sh` or `.El`.
fn key_entry<'a>(page: &'a str, within: &str, key: &str) -> Option<Vec<&'a str>> {
    let lines: Vec<&str> = page.lines().collect();
    let start = lines.iter().position(|l| l.starts_with(within))?;
    let end_sec = lines[start + 1..]
        .iter()
        .position(|l| l.starts_with(".Ss") || l.starts_with(".Sh"))
        .map_or(lines.len(), |i| start + 1 + i);
    let head = format!(".It Ic {key} ");
    let at = (start..end_sec).find(|&i| lines[i].starts_with(&head))?;
    let end = lines[at + 1..end_sec]
        .iter()
        .position(|l| l.starts_with(".It") || l.starts_with(".El"))
        .map_or(end_sec, |i| at + 1 + i);
    Some(lines[at..end].to_vec())
}

#[test]
fn every_key_of_jnet_toml_and_profiles_is_in_jnet_toml_5_with_its_default() {
    use jnet::core::config::{parse_config, parse_profile};
    let host = "[host]\nexternal_interface = \"em0\"\n";
    let err = |r: Result<jnet::core::config::Config, jnet::core::config::ConfigError>| r.unwrap_err().to_string();
    let tables = [
        (
            "[host]",
            ".Ss The [host] table",
            err(parse_config("j", &format!("{host}bogus = 1\n"))),
        ),
        (
            "[pools.]",
            ".Ss The [pools.",
            err(parse_config("j", &format!("{host}[pools.p]\nbogus = 1\n"))),
        ),
        (
            "[jails.]",
            ".Ss The [jails.",
            err(parse_config("j", &format!("{host}[jails.w]\nbogus = 1\n"))),
        ),
        (
            "[store]",
            ".Ss The [store] table",
            err(parse_config("j", &format!("{host}[store]\nbogus = 1\n"))),
        ),
        (
            "profile",
            ".Sh PROFILES",
            parse_profile("p", "p.toml", "bogus = 1\n").unwrap_err().to_string(),
        ),
    ];
    let mut gaps = vec![];
    for (table, section, e) in &tables {
        let keys = accepted_keys(e);
        assert!(keys.len() >= 4, "{table}: {keys:?}");
        for k in keys {
            match key_entry(JNET_TOML_5, section, &k) {
                None => gaps.push(format!("{table} {k}: no `.It Ic {k}` in section {section:?}")),
                Some(lines) => {
                    let text = lines.join(" ");
                    if !(text.contains("Default") || text.contains("Required")) {
                        gaps.push(format!("{table} {k}: its entry names no default (nor `Required`)"));
                    }
                }
            }
        }
    }
    // The top-level tables themselves.
    for k in accepted_keys(&err(parse_config("j", &format!("bogus = 1\n{host}")))) {
        if !JNET_TOML_5.contains(&format!(".Ic [{k}")) {
            gaps.push(format!("top-level table [{k}] not in jnet.toml.5"));
        }
    }
    assert!(
        gaps.is_empty(),
        "man/jnet.toml.5 is out of date:\n  {}",
        gaps.join("\n  ")
    );
    // The check itself finds a removed entry.
    let without = JNET_TOML_5.replace(".It Ic gateway No", ".It Ic gw No");
    assert!(key_entry(&without, ".Ss The [pools.", "gateway").is_none());
}

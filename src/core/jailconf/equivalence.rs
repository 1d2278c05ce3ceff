//! The reader against the one it replaced ([`super::reference`]): on the
//! fixtures, the shared corpus and generated files, both must give the same
//! jails, values and parameter locations, or the same error message.
//!
//! What it does not check: speed (benches/core.rs), or that either reader
//! is right about jail(8) (tests.rs and tests/jailconf_corpus.rs do that).

use std::path::{Path, PathBuf};

use proptest::prelude::*;

use super::{parse, reference, JailConf, JailConfError, Loader, MemLoader};

/// Both readers on the same input; panics with the difference.
fn same(file: &str, text: &str, loader: &dyn Loader) {
    let new = parse(file, text, loader);
    let old = reference::parse(file, text, loader);
    match (&new, &old) {
        (Ok(n), Ok(o)) => compare(n, o, text),
        (Err(n), Err(o)) => {
            assert_eq!(n.to_string(), o.to_string(), "different errors for {text:?}");
            assert_eq!(n.kind(), o.kind(), "{text:?}");
            assert_eq!(
                std::mem::discriminant::<JailConfError>(n),
                std::mem::discriminant(o),
                "{text:?}"
            );
        }
        _ => panic!("readers disagree on {text:?}:\nnew: {new:?}\nold: {old:?}"),
    }
}

fn compare(n: &JailConf, o: &[reference::JailDef], text: &str) {
    assert_eq!(n.jails().len(), o.len(), "{text:?}");
    for (a, b) in n.jails().iter().zip(o) {
        assert_eq!(a.name, b.name, "{text:?}");
        assert_eq!(a.params(), &b.params, "jail {}: {text:?}", a.name);
        assert_eq!(a.location, b.location, "jail {}: {text:?}", a.name);
        for (k, loc) in &b.sources {
            assert_eq!(a.param_location(k), Some(loc), "jail {} param {k}: {text:?}", a.name);
        }
        assert_eq!(a.param_location("no-such-parameter"), None);
    }
}

/// A loader with a few files to include, as the fuzz target has.
fn loader() -> MemLoader {
    let mut l = MemLoader::new();
    l.add("/etc/i.conf", "x = 1; k { y = $x; }");
    l.add("/etc/self.conf", ".include \"self.conf\";");
    l.add(
        "/etc/jail.conf.d/a.conf",
        "$v = \"va\"; a.b { persist; p = \"$v/$name\"; }\n",
    );
    l.add(
        "/etc/jail.conf.d/b.conf",
        "x { ip4.addr = 192.0.2.1; }\n*.x { nopersist; }\n",
    );
    l
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else { return out };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_in(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

#[test]
fn fixtures_and_corpus_read_the_same() {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = files_in(&here.join("tests/fixtures/jailconf"));
    files.extend(files_in(&here.join("../shared/corpus/jailconf")));
    assert!(!files.is_empty(), "no fixtures under tests/fixtures/jailconf");
    let l = loader();
    for f in &files {
        let Ok(text) = std::fs::read_to_string(f) else { continue };
        same("/etc/jail.conf", &text, &l);
    }
}

#[test]
fn hand_picked_cases_read_the_same() {
    let cases = [
        "exec.start = \"/bin/sh /etc/rc\";\nmount.devfs;\n$base = \"/j\";\npath = \"$base/$name\";\n\
         exec.prestart += \"hook $name\";\nj1 { host.hostname = \"j1.example.org\"; ip4.addr = \"lo1|10.0.0.2/32\"; persist; }\n",
        "a { persist; nopersist; persist = 0; allow.nomount; allow.mount = 1; }",
        "a { nofoo; nonofoo; foo; nonofoo = 1; }",
        "a { x.nob.c; x.b.c = 2; nox.b.c; }",
        "$l = a, b; j { ip4.addr = $l; v = \"${l}\"; }",
        "$l = a, b; j { v = \"x$l\"; }",
        "j { name = \"j\"; } k { name = \"other\"; }",
        "1 { jid = 1; } 2 { }",
        "* { p = \"$name\"; } a { } a.* { q = 1; } a.b { } b { }",
        "j { $v = \"$w\"; $w = \"$v\"; x = $v; }",
        "j { $persist = 1; }",
        "j { x = $nope; }",
        "j { $e; x = $e; }",
        "a { } a { }",
        "j { a = ''$x; $x = 1; } ",
        "j { a = \"\\q\\377\"; }",
        "j { a = \"\\303\\251\", 'it\\'s', \\x41, \\\n; }",
        "j { a += 1; a += 2; b = 3; b += ; }",
        ".include \"jail.conf.d/*.conf\";\nz { .include \"i.conf\"; }",
        ".include \"self.conf\";",
        "j { \"a b\" = \"${name}x\"; }",
    ];
    let l = loader();
    for c in cases {
        same("/etc/jail.conf", c, &l);
    }
    // Many parameters in one block: the indexed lookup (more than 32).
    let mut big = String::from("j {\n");
    for i in 0..80 {
        big.push_str(&format!(
            "p{i} = {i};\n$v{i} = \"x${{p{i}}}\";\nno{}p{i};\n",
            if i % 2 == 0 { "no" } else { "" }
        ));
    }
    big.push_str("}\n");
    same("/etc/jail.conf", &big, &l);
}

/// Statement pieces: names with and without "no", variables, wildcards,
/// quoting and escapes, in well-formed and broken arrangements.
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("persist".to_string()),
        Just("nopersist".to_string()),
        Just("allow.mount".to_string()),
        Just("allow.nomount".to_string()),
        Just("noallow.mount".to_string()),
        Just("nonopersist".to_string()),
        Just("name".to_string()),
        Just("noname".to_string()),
        Just("jid".to_string()),
        Just("path".to_string()),
        Just("ip4.addr".to_string()),
        Just("exec.start".to_string()),
        "[a-c]{1,2}(\\.no[a-c])?",
    ]
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("\"$name\"".to_string()),
        Just("\"${v}/x\"".to_string()),
        Just("$v".to_string()),
        Just("$w".to_string()),
        Just("$persist".to_string()),
        Just("''".to_string()),
        Just("\"a\\tb\"".to_string()),
        Just("'q$v'".to_string()),
        Just("\"\\101\"x'y'".to_string()),
        Just("lo1|10.0.0.1/24".to_string()),
        Just("1".to_string()),
        Just("j".to_string()),
        "[a-z0-9./]{0,6}",
    ]
}

fn stmt() -> impl Strategy<Value = String> {
    prop_oneof![
        name().prop_map(|n| format!("{n};")),
        (name(), value()).prop_map(|(n, v)| format!("{n} = {v};")),
        (name(), value(), value()).prop_map(|(n, v, w)| format!("{n} += {v}, {w};")),
        (name(), value()).prop_map(|(n, v)| format!("{n} {v};")),
        value().prop_map(|v| format!("$v = {v};")),
        value().prop_map(|v| format!("$w += {v};")),
        Just("$v = a, b;".to_string()),
        Just(".include \"i.conf\";".to_string()),
    ]
}

fn block() -> impl Strategy<Value = String> {
    let jname = prop_oneof![
        Just("j".to_string()),
        Just("k".to_string()),
        Just("a.b".to_string()),
        Just("*".to_string()),
        Just("a.*".to_string()),
        Just("7".to_string()),
        Just("\"q n\"".to_string()),
    ];
    prop_oneof![
        (jname, proptest::collection::vec(stmt(), 0..6)).prop_map(|(n, s)| format!("{n} {{\n{}\n}}\n", s.join("\n"))),
        stmt(),
    ]
}

fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("j".to_string()),
        Just("*".to_string()),
        Just(" ".to_string()),
        Just("\n".to_string()),
        Just("{".to_string()),
        Just("}".to_string()),
        Just(";".to_string()),
        Just(",".to_string()),
        Just("=".to_string()),
        Just("+=".to_string()),
        Just("$v".to_string()),
        Just("${name}".to_string()),
        Just("${".to_string()),
        Just("\"".to_string()),
        Just("'".to_string()),
        Just("\\".to_string()),
        Just("\\x4".to_string()),
        Just("\\777".to_string()),
        Just("\\\n".to_string()),
        Just("#c\n".to_string()),
        Just("//c\n".to_string()),
        Just("/*".to_string()),
        Just("*/".to_string()),
        Just("é".to_string()),
        Just("nopersist".to_string()),
        Just(".include \"*.conf\";".to_string()),
        "[a-z$.]{1,4}",
        any::<char>().prop_map(|c| c.to_string()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn generated_files_read_the_same(blocks in proptest::collection::vec(block(), 0..8)) {
        same("/etc/jail.conf", &blocks.concat(), &loader());
    }

    #[test]
    fn fragments_read_the_same(parts in proptest::collection::vec(fragment(), 0..40)) {
        same("/etc/jail.conf", &parts.concat(), &loader());
    }

    #[test]
    fn arbitrary_text_reads_the_same(text in "\\PC{0,120}") {
        same("/etc/jail.conf", &text, &loader());
    }
}

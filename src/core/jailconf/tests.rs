//! End-to-end tests of parse + evaluate: precedence, variables, booleans,
//! typed accessors and error positions.

use std::net::Ipv4Addr;

use super::eval::{equal_opts, is_wild_name, positive_name, wild_match};
use super::*;

fn conf(text: &str) -> JailConf {
    match parse("/etc/jail.conf", text, &MemLoader::new()) {
        Ok(c) => c,
        Err(e) => panic!("{text:?}: {e}"),
    }
}

fn err(text: &str) -> JailConfError {
    match parse("/etc/jail.conf", text, &MemLoader::new()) {
        Ok(c) => panic!("{text:?}: expected an error, got {c:?}"),
        Err(e) => e,
    }
}

fn val(c: &JailConf, jail: &str, p: &str) -> Option<Value> {
    c.jail(jail).unwrap_or_else(|| panic!("no jail {jail}")).get(p).cloned()
}

fn s(x: &str) -> Option<Value> {
    Some(Value::Str(x.to_string()))
}

fn l(x: &[&str]) -> Option<Value> {
    Some(Value::List(x.iter().map(|v| v.to_string()).collect()))
}

#[test]
fn effective_values_table() {
    // (config, jail, parameter, expected effective value)
    let cases: Vec<(&str, &str, &str, Option<Value>)> = vec![
        // globals apply, jail overrides
        ("p = g; j { }", "j", "p", s("g")),
        ("p = g; j { p = own; }", "j", "p", s("own")),
        // a global placed after the jail wins (jail(8) file order)
        ("j { p = own; } p = late;", "j", "p", s("late")),
        ("j { p = own; } * { p = late; }", "j", "p", s("late")),
        ("* { p = w; } j { p = own; }", "j", "p", s("own")),
        // += appends across globals, wildcard and jail
        ("a = 1; * { a += 2; } j { a += 3; }", "j", "a", l(&["1", "2", "3"])),
        ("a = 1, 2; j { a += 3; }", "j", "a", l(&["1", "2", "3"])),
        ("a = 1; j { a = 9; a += 10; }", "j", "a", l(&["9", "10"])),
        ("j { a += x; }", "j", "a", s("x")),
        // name-value form without '='
        (
            "j { exec.start \"/bin/sh /etc/rc\"; }",
            "j",
            "exec.start",
            s("/bin/sh /etc/rc"),
        ),
        // implicit name / jid
        ("j { }", "j", "name", s("j")),
        ("5 { }", "5", "jid", s("5")),
        ("j { name = j; }", "j", "name", s("j")),
        // variables
        ("path = \"/var/jail/$name\"; j { }", "j", "path", s("/var/jail/j")),
        (
            "path = /var/jail/${name}/root; j { }",
            "j",
            "path",
            s("/var/jail/j/root"),
        ),
        ("$p = \"/z\"; path = \"$p/$name\"; j { }", "j", "path", s("/z/j")),
        (
            "path = \"/j/${host.hostname}\"; j { host.hostname = h.example; }",
            "j",
            "path",
            s("/j/h.example"),
        ),
        (
            "ip4.addr = 10.240.0.${ip}; j { $ip = 100; }",
            "j",
            "ip4.addr",
            s("10.240.0.100"),
        ),
        // variables take their final value for the jail, wherever defined
        ("$v = a; x = $v; j { $v = b; }", "j", "x", s("b")),
        ("x = $v; $v = a; j { }", "j", "x", s("a")),
        // a list variable as a whole value expands into the list
        ("$l = a, b; x = $l; j { }", "j", "x", l(&["a", "b"])),
        ("$l = a, b; x = 0, $l, z; j { }", "j", "x", l(&["0", "a", "b", "z"])),
        ("j { x = '$name'; }", "j", "x", s("$name")),
        ("j { x = \"\\$name\"; }", "j", "x", s("$name")),
        ("j { x = \"a$\"; }", "j", "x", s("a$")),
        // booleans and their no forms
        ("persist; j { }", "j", "persist", Some(Value::Bool(true))),
        ("persist; j { nopersist; }", "j", "persist", Some(Value::Bool(false))),
        ("nopersist; j { persist; }", "j", "persist", Some(Value::Bool(true))),
        ("j { allow.nomount; }", "j", "allow.mount", Some(Value::Bool(false))),
        (
            "allow.mount; j { allow.nomount; }",
            "j",
            "allow.mount",
            Some(Value::Bool(false)),
        ),
        (
            "allow.mount = 1; j { allow.nomount; }",
            "j",
            "allow.mount",
            Some(Value::Bool(false)),
        ),
        ("j { allow.nomount; allow.mount = 1; }", "j", "allow.mount", s("1")),
        // wildcard hierarchy
        ("foo.* { x = 1; } foo.bar { } bar { }", "foo.bar", "x", s("1")),
        ("foo.* { x = 1; } foo.bar { } bar { }", "bar", "x", None),
        ("*.b { x = 1; } a.b { }", "a.b", "x", s("1")),
        // quoting and comments
        ("j { x = \"a b\" ; # c\n y = 'q' /* c */ ; // c\n }", "j", "y", s("q")),
        ("j { x = \"tab\\there\"; }", "j", "x", s("tab\there")),
        ("j { x = '\\101'; }", "j", "x", s("A")),
        ("j { exec.start = ''; }", "j", "exec.start", s("")),
    ];
    // The same cases after 40 other globals, so a jail collects more
    // parameters than the linear scan handles and the name index (with its
    // "no" spellings) decides instead.
    let filler: String = (0..40).map(|i| format!("f{i} = {i}; ")).collect();
    for (text, jail, p, want) in cases {
        let c = conf(text);
        assert_eq!(val(&c, jail, p), want, "{text:?} {jail}.{p}");
        let c = conf(&format!("{filler}{text}"));
        assert_eq!(val(&c, jail, p), want, "indexed: {text:?} {jail}.{p}");
    }
}

#[test]
fn jails_in_file_order_without_wildcards() {
    let c = conf("a = 1; b { } * { } x.* { } c { } \"d e\" { }");
    let names: Vec<&str> = c.jails().iter().map(|j| j.name.as_str()).collect();
    assert_eq!(names, vec!["b", "c", "d e"]);
    assert_eq!(
        c.jail("c").unwrap().location,
        Location {
            file: "/etc/jail.conf".into(),
            line: 1
        }
    );
    assert!(c.jail("*").is_none());
    // variables are not parameters
    let c = conf("$v = 1; j { }");
    assert_eq!(c.jail("j").unwrap().params().keys().collect::<Vec<_>>(), vec!["name"]);
}

#[test]
fn evaluation_errors_name_file_line_jail_and_variable() {
    let cases: &[(&str, usize, &str, &str)] = &[
        ("path = \"/j/$nope\";\nj { }", 1, "j", "variable \"nope\" not found"),
        (
            "j {\n x = 1;\n y = \"${undefined.var}\";\n}",
            3,
            "j",
            "\"undefined.var\" not found",
        ),
        ("persist;\nj { x = $persist; }", 2, "j", "no value"),
        ("j {\n $a = $b;\n $b = $a;\n}", 3, "j", "variable loop"),
        ("j { path = \"$path/x\"; }", 1, "j", "variable loop"),
        ("$l = a, b;\nj { x = \"pre$l\"; }", 2, "j", "is a list"),
        ("j {\n $path = x;\n}", 2, "j", "same name as a parameter"),
        ("j { p = 1; $p = 2; }", 1, "j", "same name as a parameter"),
        ("j {\n name = other;\n}", 2, "j", "cannot redefine parameter \"name\""),
        (
            "j { }\nk { }\nj { }",
            3,
            "j",
            "defined twice (first at /etc/jail.conf:1)",
        ),
    ];
    for (text, line, jail, msg) in cases {
        match err(text) {
            JailConfError::Invalid {
                file,
                line: l,
                jail: j,
                message,
            } => {
                assert_eq!(file, "/etc/jail.conf", "{text:?}");
                assert_eq!((l, j.as_str()), (*line, *jail), "{text:?}: {message}");
                assert!(message.contains(msg), "{text:?}: {message}");
            }
            other => panic!("{text:?}: {other:?}"),
        }
    }
    // Unused globals with undefined variables are fine when there is no jail.
    assert!(conf("path = \"/j/${host.hostname}\";").jails().is_empty());
}

#[test]
fn error_messages_and_exit_codes() {
    let e = err("j { x = $y; }");
    assert_eq!(e.to_string(), "/etc/jail.conf:1: jail j: x: variable \"y\" not found");
    assert_eq!(e.kind(), crate::error::ErrorKind::Config);
    let e = err("a = \"x");
    assert_eq!(e.to_string(), "/etc/jail.conf:1:5: unterminated string");
    assert_eq!(e.kind(), crate::error::ErrorKind::Config);
    let e = load("/nope.conf", &MemLoader::new()).unwrap_err();
    assert_eq!(e.to_string(), "/nope.conf: no such file");
    assert_eq!(e.kind(), crate::error::ErrorKind::NotFound);
    let e = err(".include \"x.conf\";");
    assert_eq!(
        e.to_string(),
        "/etc/jail.conf:1: cannot include /etc/x.conf: no such file"
    );
    assert_eq!(e.kind(), crate::error::ErrorKind::NotFound);
}

#[test]
fn load_follows_includes_with_variables_across_files() {
    let mut l = MemLoader::new();
    l.add(
        "/etc/jail.conf",
        "path = \"/jails/$name\";\n.include \"/etc/jail.conf.d/*.conf\";\n",
    );
    l.add(
        "/etc/jail.conf.d/www.conf",
        "www {\n  ip4.addr = \"lo1|10.0.0.5/24\";\n}\n",
    );
    l.add("/etc/jail.conf.d/db.conf", "db { ip4 = inherit; }");
    let c = load("/etc/jail.conf", &l).unwrap();
    let names: Vec<&str> = c.jails().iter().map(|j| j.name.as_str()).collect();
    assert_eq!(names, vec!["db", "www"]);
    let www = c.jail("www").unwrap();
    assert_eq!(www.path(), Some("/jails/www"));
    assert_eq!(
        www.location,
        Location {
            file: "/etc/jail.conf.d/www.conf".into(),
            line: 1
        }
    );
    assert_eq!(
        www.param_location("ip4.addr"),
        Some(&Location {
            file: "/etc/jail.conf.d/www.conf".into(),
            line: 2
        })
    );
    assert_eq!(c.jail("db").unwrap().ip4_mode().unwrap(), Some(Ip4Mode::Inherit));
}

#[test]
fn typed_accessors() {
    let c = conf(
        "exec.prestart = \"a\";\nexec.prestart += \"jnet hook prestart $name\";\n\
         j {\n  path = /jails/j;\n  host.hostname = j.example;\n  interface = em0;\n\
         ip4.addr = 192.0.2.1, lo1|10.0.0.2/24, \"re0|10.0.0.3/255.255.255.0 vhid 1\";\n\
         exec.start = '';\n  vnet = new;\n  allow.nomount = 1;\n}\n\
         k { ip4 = disable; vnet; novnet; exec.stop = x; }",
    );
    let j = c.jail("j").unwrap();
    assert_eq!(j.path(), Some("/jails/j"));
    assert_eq!(j.hostname(), Some("j.example"));
    assert_eq!(j.interface(), Some("em0"));
    assert_eq!(
        j.exec("prestart"),
        vec!["a".to_string(), "jnet hook prestart j".to_string()]
    );
    assert_eq!(j.exec("exec.prestart").len(), 2);
    assert!(j.exec("start").is_empty());
    assert!(j.vnet());
    assert_eq!(j.get_bool("allow.mount"), Some(false));
    assert_eq!(j.ip4_mode().unwrap(), Some(Ip4Mode::New));
    assert_eq!(
        j.ip4_addrs().unwrap(),
        vec![
            Ip4AddrEntry {
                interface: Some("em0".into()),
                address: Ipv4Addr::new(192, 0, 2, 1),
                prefix: None,
                options: vec![],
            },
            Ip4AddrEntry {
                interface: Some("lo1".into()),
                address: Ipv4Addr::new(10, 0, 0, 2),
                prefix: Some(24),
                options: vec![],
            },
            Ip4AddrEntry {
                interface: Some("re0".into()),
                address: Ipv4Addr::new(10, 0, 0, 3),
                prefix: Some(24),
                options: vec!["vhid".into(), "1".into()],
            },
        ]
    );
    let k = c.jail("k").unwrap();
    assert!(!k.vnet());
    assert_eq!(k.ip4_mode().unwrap(), Some(Ip4Mode::Disable));
    assert!(k.ip4_addrs().unwrap().is_empty());
    assert_eq!(k.exec("stop"), vec!["x".to_string()]);
    assert_eq!(k.get_str("exec.stop"), Some("x"));
    assert_eq!(k.get_list("nothing"), Vec::<&str>::new());
}

#[test]
fn ip4_mode_derivation() {
    let cases: &[(&str, Option<Ip4Mode>)] = &[
        ("j { }", None),
        ("j { ip4.addr = 10.0.0.1; }", Some(Ip4Mode::New)),
        ("j { ip4 = new; }", Some(Ip4Mode::New)),
        ("j { ip4 = new; ip4.addr = 10.0.0.1; }", Some(Ip4Mode::New)),
        ("ip4 = inherit; j { }", Some(Ip4Mode::Inherit)),
        ("j { ip4 = INHERIT; }", Some(Ip4Mode::Inherit)),
        ("j { ip4 = disable; }", Some(Ip4Mode::Disable)),
        ("j { ip4.addr = ''; }", None),
    ];
    for (text, want) in cases {
        assert_eq!(conf(text).jail("j").unwrap().ip4_mode().unwrap(), *want, "{text:?}");
    }
    for text in [
        "j {\n ip4 = inherit;\n ip4.addr = 10.0.0.1;\n}",
        "j {\n ip4 = sometimes;\n}",
    ] {
        match conf(text).jail("j").unwrap().ip4_mode() {
            Err(JailConfError::Invalid { line: 2 | 3, .. }) => {}
            other => panic!("{text:?}: {other:?}"),
        }
    }
}

#[test]
fn ip4_addr_entries() {
    // (entry, interface, address, prefix)
    type Good<'a> = (&'a str, Option<&'a str>, [u8; 4], Option<u8>);
    let good: &[Good] = &[
        ("10.0.0.1", None, [10, 0, 0, 1], None),
        ("lo1|127.1.0.2", Some("lo1"), [127, 1, 0, 2], None),
        (
            "bastille0|192.168.0.1/24",
            Some("bastille0"),
            [192, 168, 0, 1],
            Some(24),
        ),
        ("em0|10.1.1.1/32", Some("em0"), [10, 1, 1, 1], Some(32)),
        ("10.1.1.1/0", None, [10, 1, 1, 1], Some(0)),
        ("10.1.1.1/255.255.255.255", None, [10, 1, 1, 1], Some(32)),
        ("10.1.1.1/255.255.240.0", None, [10, 1, 1, 1], Some(20)),
        ("10.1.1.1/0.0.0.0", None, [10, 1, 1, 1], Some(0)),
    ];
    for (text, iface, a, p) in good {
        let e = model::parse_ip4_entry(text, None).unwrap_or_else(|m| panic!("{text}: {m}"));
        assert_eq!(e.interface.as_deref(), *iface, "{text}");
        assert_eq!(e.address, Ipv4Addr::from(*a), "{text}");
        assert_eq!(e.prefix, *p, "{text}");
    }
    let bad: &[(&str, &str)] = &[
        ("interface|x.x.x.x", "invalid IPv4 address"),
        ("10.0.0.256", "invalid IPv4 address"),
        ("10.0.0.1/33", "between 0 and 32"),
        ("10.0.0.1/", "invalid netmask"),
        ("10.0.0.1/255.0.255.0", "not contiguous"),
        ("10.0.0.1/abc", "invalid netmask"),
        ("|10.0.0.1", "invalid interface"),
        ("a b|10.0.0.1", "invalid interface"),
        ("em0|", "missing address"),
        ("2001:db8::1", "invalid IPv4 address"),
        ("host.example", "invalid IPv4 address"),
    ];
    for (text, msg) in bad {
        let m = model::parse_ip4_entry(text, None).unwrap_err();
        assert!(m.contains(msg), "{text}: {m}");
    }
    // The accessor reports the file:line of the ip4.addr statement.
    let c = conf("j {\n  interface = em0;\n  ip4.addr = 10.0.0.1, 10.0.0.300;\n}");
    let e = c.jail("j").unwrap().ip4_addrs().unwrap_err();
    assert_eq!(
        e.to_string(),
        "/etc/jail.conf:3: jail j: ip4.addr entry \"10.0.0.300\": invalid IPv4 address \"10.0.0.300\""
    );
}

#[test]
fn helper_functions() {
    for (a, b, eq) in [
        ("persist", "persist", true),
        ("persist", "nopersist", true),
        ("nopersist", "persist", true),
        ("allow.mount", "allow.nomount", true),
        ("allow.mount.nodevfs", "allow.mount.devfs", true),
        ("allow.mount", "allow.mount.devfs", false),
        ("allow.mount", "noallow.mount", true),
        ("a.b", "c.b", false),
        ("path", "paths", false),
    ] {
        assert_eq!(equal_opts(a, b), eq, "{a} vs {b}");
    }
    for (n, w) in [
        ("*", true),
        ("foo.*", true),
        ("*.bar", true),
        ("a*b", false),
        ("foo", false),
        ("f.*x", false),
    ] {
        assert_eq!(is_wild_name(n), w, "{n}");
    }
    for (j, w, m) in [
        ("foo", "*", true),
        ("foo.bar", "*", true),
        ("foo.bar", "foo.*", true),
        ("foo.bar.baz", "foo.*", true),
        ("foo", "foo.*", false),
        ("foobar.x", "foo.*", false),
        ("a.b", "*.b", true),
        ("a.c", "*.b", false),
    ] {
        assert_eq!(wild_match(j, w), m, "{j} ~ {w}");
    }
    assert_eq!(positive_name("allow.nomount"), ("allow.mount".into(), true));
    assert_eq!(positive_name("nopersist"), ("persist".into(), true));
    assert_eq!(positive_name("persist"), ("persist".into(), false));
    assert_eq!(positive_name("no"), ("no".into(), false));
}

/// H16 input A: a chain of 20,000 variables overflowed the stack of the
/// recursive resolver (the test thread's stack is smaller than main's, so
/// the old code aborted here too). It now resolves, and a loop closing the
/// same chain is reported at the reference that closes it.
#[test]
fn deep_variable_chain_resolves_without_recursion() {
    const N: usize = 20_000;
    let chain = |last: &str| {
        let mut t = String::from("w {\n");
        for i in 0..N {
            t.push_str(&format!(" $v{i} = \"$v{}\";\n", i + 1));
        }
        t.push_str(&format!(" $v{N} = {last};\n host.hostname = $v0;\n}}\n"));
        t
    };
    let c = conf(&chain("x"));
    assert_eq!(val(&c, "w", "host.hostname"), s("x"));
    match err(&chain("$v0")) {
        JailConfError::Invalid {
            line, jail, message, ..
        } => {
            assert_eq!((line, jail.as_str()), (N + 2, "w"), "{message}");
            assert!(message.contains("variable loop through \"v0\""), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

/// H16 input B: 40 doublings of a 16-byte string (a 924-byte file) grew to
/// gigabytes. The first variable past 1 MiB is refused with its file:line.
#[test]
fn doubling_variables_stop_at_the_value_cap() {
    let mut t = String::from("$a0 = \"xxxxxxxxxxxxxxxx\";\n");
    for i in 1..40 {
        t.push_str(&format!("$a{i} = \"${{a{0}}}${{a{0}}}\";\n", i - 1));
    }
    t.push_str("host.hostname = \"$a39\";\nw { }\n");
    let e = err(&t);
    // $a16 is 16 * 2^16 = 1 MiB of text, plus its NUL: one byte too many.
    assert_eq!(
        e.to_string(),
        "/etc/jail.conf:17: jail w: $a16: value expands to more than 1048576 bytes"
    );
    assert_eq!(e.kind(), crate::error::ErrorKind::Config);
    // One doubling less fits.
    let mut ok = String::from("$a0 = \"xxxxxxxxxxxxxxxx\";\n");
    for i in 1..16 {
        ok.push_str(&format!("$a{i} = \"${{a{0}}}${{a{0}}}\";\n", i - 1));
    }
    ok.push_str("w { host.hostname = \"$a15\"; }\n");
    match val(&conf(&ok), "w", "host.hostname") {
        Some(Value::Str(v)) => assert_eq!(v.len(), 16 << 15),
        other => panic!("{other:?}"),
    }
    // A list is capped as a whole, entry by entry.
    let mut list = String::from("$e = \"\"");
    for _ in 0..1000 {
        list.push_str(", \"\"");
    }
    list.push_str(";\n");
    for i in 0..1100 {
        list.push_str(&format!("$l{i} = $e, $e, $e, $e, $e, $e, $e, $e, $e, $e;\n"));
    }
    list.push_str("w { }\n");
    // 10 copies of 1001 NULs is 10,010 bytes per variable: under the cap;
    // 1,100 of them stay under the file total too.
    assert!(conf(&list).jail("w").is_some());
}

/// H16: a 512 KiB variable repeated in many parameters is refused once the
/// whole file's expansion passes 64 MiB, naming the parameter that did it.
#[test]
fn total_expansion_of_a_file_is_capped() {
    let mut t = String::from("$a0 = \"xxxxxxxxxxxxxxxx\";\n");
    for i in 1..16 {
        t.push_str(&format!("$a{i} = \"${{a{0}}}${{a{0}}}\";\n", i - 1));
    }
    t.push_str("w {\n");
    for i in 0..200 {
        t.push_str(&format!(" p{i} = $a15;\n"));
    }
    t.push_str("}\n");
    match err(&t) {
        JailConfError::Invalid { line, message, .. } => {
            assert!(message.contains("expands to more than 64 MiB"), "{message}");
            // The 16 variables take 1 MiB with their NULs; 125 parameters
            // of 512 KiB + 1 fit in the other 63 MiB, p125 does not.
            assert!(message.starts_with("p125: "), "{message}");
            assert_eq!(line, 17 + 1 + 125, "{message}");
        }
        other => panic!("{other:?}"),
    }
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    /// Fragments of jail.conf syntax, so random input reaches deep states.
    fn fragment() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("j".to_string()),
            Just("*".to_string()),
            Just("foo.*".to_string()),
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
            Just("#c\n".to_string()),
            Just("//c\n".to_string()),
            Just("/*".to_string()),
            Just("*/".to_string()),
            Just("nopersist".to_string()),
            Just("ip4.addr".to_string()),
            Just("lo1|10.0.0.1/24".to_string()),
            Just(".include \"i.conf\";".to_string()),
            Just(".include \"*.conf\";".to_string()),
            "[a-z$.]{1,4}",
            any::<char>().prop_map(|c| c.to_string()),
        ]
    }

    fn loader() -> MemLoader {
        let mut l = MemLoader::new();
        l.add("/etc/i.conf", "x = 1; k { y = $x; }");
        l.add("/etc/self.conf", ".include \"self.conf\";");
        l
    }

    fn exercise(text: &str) {
        if let Ok(c) = parse("/etc/jail.conf", text, &loader()) {
            for j in c.jails() {
                let _ = j.ip4_mode();
                let _ = j.ip4_addrs();
                let _ = j.exec("start");
                let _ = j.vnet();
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        #[test]
        fn never_panics_on_fragments(parts in proptest::collection::vec(fragment(), 0..40)) {
            exercise(&parts.concat());
        }

        #[test]
        fn never_panics_on_arbitrary_text(text in "\\PC{0,200}") {
            exercise(&text);
        }

        #[test]
        fn ip4_entry_never_panics(text in "[0-9a-z|/. ]{0,30}") {
            let _ = model::parse_ip4_entry(&text, Some("em0"));
        }
    }
}

/// The borrowed accessors (`iter`, `value`, `strs`) agree with the owned
/// map, in name order, for jails whose parameters differ in number and
/// order (the evaluator reuses one jail's name order for the next when
/// their names match).
#[test]
fn borrowed_view_matches_owned_map() {
    let c = conf(
        "z = 1; a { b = x, y; nopersist; } b { b = x; persist; } c { q = 2; b = 3; } d { b = 3; q = 2; } \
         e { allow.nomount; c += u; c += v; }",
    );
    for j in c.jails() {
        let owned: Vec<(String, Value)> = j.params().iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let borrowed: Vec<(String, Value)> = j.iter().map(|(k, v)| (k.to_string(), v.to_value())).collect();
        assert_eq!(borrowed, owned, "jail {}", j.name);
        for (k, v) in &owned {
            assert_eq!(
                j.value(k).map(|r| r.to_value()).as_ref(),
                Some(v),
                "jail {} {k}",
                j.name
            );
            let want: Vec<&str> = match v {
                Value::Bool(_) => vec![],
                Value::Str(s) => vec![s.as_str()],
                Value::List(l) => l.iter().map(String::as_str).collect(),
            };
            assert_eq!(j.strs(k).iter().collect::<Vec<_>>(), want);
            assert_eq!(j.strs(k).len(), want.len());
        }
        assert_eq!(j.value("absent"), None);
        assert!(j.strs("absent").is_empty());
    }
    let keys = |n: &str| {
        c.jail(n)
            .unwrap()
            .iter()
            .map(|(k, _)| k.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(keys("a"), ["b", "name", "persist", "z"]);
    assert_eq!(keys("c"), ["b", "name", "q", "z"]);
    assert_eq!(keys("d"), keys("c"));
    assert_eq!(keys("e"), ["allow.mount", "c", "name", "z"]);
    let a = c.jail("a").unwrap();
    assert_eq!(a.value("persist"), Some(ValueRef::Bool(false)));
    assert_eq!(a.get_list("b"), ["x", "y"]);
    assert_eq!(c.jail("e").unwrap().get_list("c"), ["u", "v"]);
    assert_eq!(c.jail("d").unwrap().param_location("q").map(|l| l.line), Some(1));
    assert_ne!(c.jail("a").unwrap(), c.jail("b").unwrap());
    assert_eq!(c.jail("c").unwrap().clone(), *c.jail("c").unwrap());
}

#[test]
fn ip6_addr_entries_and_mode() {
    use super::{Ip6AddrEntry, Ip6Mode};
    let c = conf(
        "j {\n interface = em0;\n ip6.addr = 2001:db8::1, \"lo1|2001:db8::2/64 prefixlen 64\", fd00::3/48;\n}\n\
         k { ip6 = disable; }\nl { ip6; }\n",
    );
    let j = c.jail("j").unwrap();
    assert_eq!(j.ip6_mode().unwrap(), Some(Ip6Mode::New));
    let e = j.ip6_addrs().unwrap();
    assert_eq!(
        e[1],
        Ip6AddrEntry {
            interface: Some("lo1".into()),
            address: "2001:db8::2".parse().unwrap(),
            prefix: Some(64),
            options: vec!["prefixlen".into(), "64".into()],
        }
    );
    assert_eq!((e[0].interface.as_deref(), e[0].prefix), (Some("em0"), None));
    assert_eq!((e[2].address, e[2].prefix), ("fd00::3".parse().unwrap(), Some(48)));
    assert_eq!(c.jail("k").unwrap().ip6_mode().unwrap(), Some(Ip6Mode::Disable));
    assert_eq!(c.jail("l").unwrap().ip6_mode().unwrap(), Some(Ip6Mode::New));
    match conf("j {\n ip6.addr = 2001:db8::1/+64;\n}")
        .jail("j")
        .unwrap()
        .ip6_addrs()
    {
        Err(JailConfError::Invalid { line: 2, message, .. }) => assert!(message.contains("prefix length"), "{message}"),
        other => panic!("{other:?}"),
    }
}

/// Jails under the same wildcard blocks reuse what those blocks gave the
/// previous jail (eval.rs `Prefix`); each must still get its own `name`,
/// its own blocks, and the errors that depend on the jail.
#[test]
fn wildcard_reuse_keeps_each_jail_its_own() {
    let c = conf(
        "* { exec.start = \"/bin/sh /etc/rc\"; $base = /j; path = \"$base/$name\"; }\n\
         a { host.hostname = a.example; }\nb.* { allow.mount; }\nb.x { }\nc { exec.start += y; }\n",
    );
    let path = |n: &str| c.jail(n).unwrap().get_str("path").map(str::to_string);
    assert_eq!(path("a").as_deref(), Some("/j/a"));
    // A numeric name is the jid: another implicit entry, not reused.
    let n = conf("* { exec.start = x; }\na { }\n7 { }\nb { }\n");
    assert_eq!(n.jail("7").unwrap().get_str("jid"), Some("7"));
    assert_eq!(n.jail("7").unwrap().get_str("name"), None);
    assert_eq!(n.jail("b").unwrap().get_str("name"), Some("b"));
    assert_eq!(n.jail("7").unwrap().get_str("exec.start"), Some("x"));
    assert_eq!(path("b.x").as_deref(), Some("/j/b.x"));
    assert_eq!(c.jail("b.x").unwrap().get_bool("allow.mount"), Some(true));
    assert_eq!(c.jail("a").unwrap().get_bool("allow.mount"), None);
    assert_eq!(c.jail("c").unwrap().get_list("exec.start"), ["/bin/sh /etc/rc", "y"]);
    assert_eq!(c.jail("a").unwrap().get_str("exec.start"), Some("/bin/sh /etc/rc"));
    assert_eq!(c.jail("a").unwrap().location.line, 2);
    assert_eq!(c.jail("c").unwrap().location.line, 5);
    // `name` set by a wildcard fits jail a only: b must still be refused.
    match err("* { name = a; }\na { }\nb { }\n") {
        JailConfError::Invalid { jail, message, .. } => {
            assert_eq!(jail, "b");
            assert!(message.contains("cannot redefine"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

//! Every report's `--format json` output validates against its JSON Schema
//! in schemas/, so the documented shapes cannot drift from the program.
//!
//! The reports run on the shipped example (examples/jnet.toml with its
//! jail.conf, imported into a temporary state directory); values the
//! example cannot produce (each kind of conflict, each anchor state, drift)
//! are serialized from jnet's own types and validated too.
//!
//! Validation uses a small validator for the subset of JSON Schema
//! (2020-12) the files use, below. It refuses any keyword it does not
//! implement, so a schema can never rely on a rule nobody checks; the
//! `jsonschema` crate would do the same with a much larger dependency tree.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

// ---- a validator for the keywords schemas/ uses --------------------------

const ANNOTATIONS: &[&str] = &["$schema", "$id", "title", "description", "$comment", "$defs"];

struct Validator<'a> {
    root: &'a Value,
}

impl Validator<'_> {
    fn resolve(&self, r: &str) -> &Value {
        let name = r
            .strip_prefix("#/$defs/")
            .unwrap_or_else(|| panic!("unsupported $ref {r}"));
        self.root
            .get("$defs")
            .and_then(|d| d.get(name))
            .unwrap_or_else(|| panic!("$ref {r}: no such definition"))
    }

    /// Errors of `v` against `s`, each with its JSON path.
    fn check(&self, s: &Value, v: &Value, path: &str, errs: &mut Vec<String>) {
        let s = s
            .as_object()
            .unwrap_or_else(|| panic!("{path}: schema is not an object"));
        for (k, kv) in s {
            match k.as_str() {
                k if ANNOTATIONS.contains(&k) => {}
                "$ref" => self.check(self.resolve(kv.as_str().unwrap()), v, path, errs),
                "type" => {
                    let types: Vec<&str> = match kv {
                        Value::String(t) => vec![t.as_str()],
                        Value::Array(a) => a.iter().map(|t| t.as_str().unwrap()).collect(),
                        _ => panic!("{path}: bad type"),
                    };
                    if !types.iter().any(|t| type_ok(t, v)) {
                        errs.push(format!("{path}: {v} is not of type {types:?}"));
                    }
                }
                "enum" => {
                    if !kv.as_array().unwrap().contains(v) {
                        errs.push(format!("{path}: {v} is not one of {kv}"));
                    }
                }
                "const" => {
                    if kv != v {
                        errs.push(format!("{path}: {v} is not {kv}"));
                    }
                }
                "minimum" | "maximum" => {
                    if let (Some(n), Some(lim)) = (v.as_f64(), kv.as_f64()) {
                        if (k == "minimum" && n < lim) || (k == "maximum" && n > lim) {
                            errs.push(format!("{path}: {n} is outside {k} {lim}"));
                        }
                    }
                }
                "format" => {
                    let ok = match (kv.as_str().unwrap(), v.as_str()) {
                        ("ipv4", Some(t)) => t.parse::<std::net::Ipv4Addr>().is_ok(),
                        ("ipv6", Some(t)) => t.parse::<std::net::Ipv6Addr>().is_ok(),
                        // A format only constrains strings.
                        ("ipv4" | "ipv6", None) => true,
                        (f, _) => panic!("{path}: unsupported format {f}"),
                    };
                    if !ok {
                        errs.push(format!("{path}: {v} is not a valid {kv}"));
                    }
                }
                "properties" | "required" | "additionalProperties" => {
                    let Some(o) = v.as_object() else { continue };
                    let props = s.get("properties").and_then(Value::as_object);
                    if k == "properties" {
                        for (name, ps) in props.unwrap() {
                            if let Some(x) = o.get(name) {
                                self.check(ps, x, &format!("{path}.{name}"), errs);
                            }
                        }
                    } else if k == "required" {
                        for r in kv.as_array().unwrap() {
                            if !o.contains_key(r.as_str().unwrap()) {
                                errs.push(format!("{path}: required property {r} is missing"));
                            }
                        }
                    } else if kv == &Value::Bool(false) {
                        for name in o.keys() {
                            if !props.is_some_and(|p| p.contains_key(name)) {
                                errs.push(format!("{path}: property {name:?} is not in the schema"));
                            }
                        }
                    } else {
                        panic!("{path}: only additionalProperties: false is supported");
                    }
                }
                "items" => {
                    if let Some(a) = v.as_array() {
                        for (i, x) in a.iter().enumerate() {
                            self.check(kv, x, &format!("{path}[{i}]"), errs);
                        }
                    }
                }
                "anyOf" | "oneOf" => {
                    let matching = kv
                        .as_array()
                        .unwrap()
                        .iter()
                        .filter(|b| {
                            let mut e = vec![];
                            self.check(b, v, path, &mut e);
                            e.is_empty()
                        })
                        .count();
                    let ok = if k == "anyOf" { matching >= 1 } else { matching == 1 };
                    if !ok {
                        errs.push(format!("{path}: {v} matches {matching} branches of {k}"));
                    }
                }
                other => panic!("{path}: schema keyword {other:?} is not supported by this validator"),
            }
        }
    }
}

const KEYWORDS: &[&str] = &[
    "$ref",
    "type",
    "enum",
    "const",
    "minimum",
    "maximum",
    "format",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "anyOf",
    "oneOf",
];

/// Every keyword anywhere in schema `s` is one the validator implements
/// (data reaches only some branches, so this walks the schema itself).
fn supported_everywhere(s: &Value, path: &str) {
    let o = s
        .as_object()
        .unwrap_or_else(|| panic!("{path}: schema is not an object"));
    for (k, v) in o {
        assert!(
            ANNOTATIONS.contains(&k.as_str()) || KEYWORDS.contains(&k.as_str()),
            "{path}: keyword {k:?} is not supported by the test's validator"
        );
        match k.as_str() {
            "$defs" | "properties" => {
                for (name, sub) in v.as_object().unwrap() {
                    supported_everywhere(sub, &format!("{path}/{k}/{name}"));
                }
            }
            "items" => supported_everywhere(v, &format!("{path}/items")),
            "anyOf" | "oneOf" => {
                for (i, sub) in v.as_array().unwrap().iter().enumerate() {
                    supported_everywhere(sub, &format!("{path}/{k}/{i}"));
                }
            }
            _ => {}
        }
    }
}

fn type_ok(t: &str, v: &Value) -> bool {
    match t {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        "number" => v.is_number(),
        "integer" => v.is_i64() || v.is_u64(),
        _ => panic!("unknown type {t}"),
    }
}

fn schema(name: &str) -> Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("schemas")
        .join(format!("{name}.schema.json"));
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Errors of `v` against schemas/`name`.schema.json (or its `$defs/def`).
fn errors(name: &str, def: Option<&str>, v: &Value) -> Vec<String> {
    let root = schema(name);
    let val = Validator { root: &root };
    let s = match def {
        Some(d) => val.resolve(&format!("#/$defs/{d}")).clone(),
        None => root.clone(),
    };
    let mut errs = vec![];
    val.check(&s, v, "$", &mut errs);
    errs
}

fn assert_valid(name: &str, def: Option<&str>, v: &Value) {
    let e = errors(name, def, v);
    assert!(
        e.is_empty(),
        "{name}{}: {v:#}\n{}",
        def.map(|d| format!("#{d}")).unwrap_or_default(),
        e.join("\n")
    );
}

// ---- running the reports -------------------------------------------------

struct Example {
    _dir: tempfile::TempDir,
    config: PathBuf,
    state: PathBuf,
}

impl Example {
    /// The shipped example, with its jail.conf imported and one pool
    /// assignment, in a temporary directory.
    fn new() -> Example {
        let dir = tempfile::tempdir().unwrap();
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
        for f in ["jnet.toml", "jail.conf"] {
            std::fs::copy(src.join(f), dir.path().join(f)).unwrap();
        }
        let e = Example {
            config: dir.path().join("jnet.toml"),
            state: dir.path().join("state"),
            _dir: dir,
        };
        e.ok(&["import"]);
        e.ok(&["assign", "dns", "--pool", "private"]);
        e
    }
    fn run(&self, args: &[&str]) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_jnet"))
            .arg("-c")
            .arg(&self.config)
            .arg("--state-dir")
            .arg(&self.state)
            .args(args)
            .env_remove("JNET_CONFIG")
            .env_remove("JNET_STATE_DIR")
            .output()
            .unwrap()
    }
    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success() || (args[0] == "check" && o.status.code() == Some(1)),
            "{args:?}: exit {:?}: {}",
            o.status.code(),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    }
    fn json(&self, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.extend(["--format", "json"]);
        let out = self.ok(&a);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{a:?}: not JSON ({e}): {out}"))
    }
}

/// The reports: command, schema file.
const REPORTS: &[(&[&str], &str)] = &[
    (&["list"], "list"),
    (&["pools"], "pools"),
    (&["inventory"], "inventory"),
    (&["check"], "check"),
    (&["status"], "status"),
    (&["pf", "status"], "pf-status"),
];

/// Commands that need to read the host's jails or firewall, which may need
/// root.
fn needs_host(args: &[&str]) -> bool {
    matches!(args, ["status"] | ["pf", "status"])
}

#[test]
fn every_report_validates_against_its_schema() {
    let ex = Example::new();
    let root = is_root();
    for (args, name) in REPORTS {
        if needs_host(args) && !root {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true: run as root to validate jnet {args:?}"
            );
            eprintln!(
                "SKIP: jnet {} --format json needs root to read the host",
                args.join(" ")
            );
            continue;
        }
        let v = ex.json(args);
        assert_valid(name, None, &v);
    }
    // The example must exercise the interesting parts, or the validation
    // above proves little: both modes, a pool address, a conflict.
    let list = ex.json(&["list"]);
    let modes: Vec<&str> = list["jails"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["mode"].as_str().unwrap())
        .collect();
    assert!(modes.contains(&"inherit") && modes.contains(&"dedicated"), "{modes:?}");
    let check = ex.json(&["check"]);
    assert!(
        !check["conflicts"].as_array().unwrap().is_empty(),
        "the example's staging/www clash is gone"
    );
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// `plan` of one jail (start and stop) and of the whole host.
#[test]
fn plan_reports_validate_against_their_schemas() {
    let ex = Example::new();
    let one = ex.json(&["plan", "www"]);
    assert_valid("plan", None, &one);
    assert!(!one["steps"].as_array().unwrap().is_empty(), "{one}");
    assert_valid("plan", None, &ex.json(&["plan", "www", "--stop"]));
    // Several jails, or --all: each in the walk's order (plan-multi).
    for args in [
        &["plan", "www", "db"][..],
        &["plan", "--all"],
        &["plan", "--all", "--stop"],
    ] {
        let multi = ex.json(args);
        assert_valid("plan-multi", None, &multi);
        let jails = multi["jails"].as_array().unwrap();
        assert!(jails.len() >= 2, "{args:?}: {multi}");
        // Nothing runs in the example: a stop has nothing to do.
        let stop = args.contains(&"--stop");
        assert!(
            stop || jails.iter().any(|j| !j["steps"].as_array().unwrap().is_empty()),
            "{multi}"
        );
    }
    let all = ex.json(&["plan"]);
    assert_valid("plan-all", None, &all);
    // Both modes and a firewall anchor, or the validation proves little.
    let jails = all["jails"].as_array().unwrap();
    assert!(jails.iter().any(|j| j["mode"] == "inherit") && jails.iter().any(|j| j["mode"] == "dedicated"));
    assert!(jails.iter().any(|j| j["firewall"].is_object()), "{all}");
}

/// start/stop/restart --format json need root and a host; their summary is
/// validated from jnet's own type, every outcome included.
#[test]
fn lifecycle_summaries_validate() {
    use jnet::engine::multi::{JailOutcome, JailResult, Summary, Verb};
    let o = |jail: &str, outcome: JailResult| JailOutcome {
        jail: jail.into(),
        outcome,
        target: true,
        steps: vec!["create jail www (path /)".into()],
        because: None,
        error: None,
        kind: None,
    };
    let all = JailResult::ALL;
    for verb in [Verb::Start, Verb::Stop, Verb::Restart] {
        let mut jails: Vec<JailOutcome> = all.iter().map(|r| o("www", r.clone())).collect();
        jails[5].error = Some("start www: step create jail failed".into());
        jails[6].because = Some("db".into());
        jails[6].target = false;
        let v = serde_json::to_value(Summary { verb, jails }).unwrap();
        assert_valid("lifecycle", None, &v);
    }
    let bad = json!({"verb": "start", "jails": [{"jail": "www", "outcome": "exploded", "target": true,
        "steps": [], "because": null, "error": null}]});
    assert!(!errors("lifecycle", None, &bad).is_empty());
}

#[test]
fn shapes_the_example_cannot_produce_validate_too() {
    use jnet::core::check::{Conflict, Other, Severity};
    use jnet::core::names::JailName;
    use jnet::core::ports::Proto;
    use jnet::core::rules::drift::State;

    let www = JailName::new("www").unwrap();
    let others = [
        Other::Listener {
            pid: Some(812),
            command: Some("nginx".into()),
            jail: None,
            address: "0.0.0.0".into(),
            dual_stack: false,
        },
        Other::Jail {
            name: JailName::new("staging").unwrap(),
            address: "*".into(),
        },
        Other::Exposure {
            jail: JailName::new("db").unwrap(),
            host_port: 80,
        },
        Other::Redirect {
            owner: "anchor ftp-proxy".into(),
            rule: "rdr pass on em0 proto tcp to port 80 -> 10.0.0.9".into(),
        },
    ];
    for (i, other) in others.into_iter().enumerate() {
        let c = Conflict {
            severity: if i % 2 == 0 { Severity::Error } else { Severity::Warning },
            proto: Proto::Tcp,
            port: 80,
            address: "192.0.2.10".into(),
            jail: www.clone(),
            other,
            message: "test".into(),
        };
        assert_valid("check", None, &json!({ "conflicts": [c] }));
    }
    let states = [
        State::InSync,
        State::NotLoaded,
        State::Drift {
            missing: vec!["rdr pass on em0 inet proto tcp from any to (em0:0) port 80 -> 192.0.2.10".into()],
            unexpected: vec![],
        },
        State::Stale {
            rules: vec!["nat on em0 from 10.66.0.2 to any -> (em0:0)".into()],
        },
        State::Empty,
    ];
    for st in states {
        let mut row = json!({"jail": "www", "anchor": "jnet/www", "phase": "running"});
        let Value::Object(extra) = serde_json::to_value(&st).unwrap() else {
            panic!()
        };
        row.as_object_mut().unwrap().extend(extra);
        assert_valid(
            "pf-status",
            None,
            &json!({"hooks_missing": ["rdr-anchor \"jnet/*\""], "anchors": [row]}),
        );
    }
    let drift = jnet::engine::report::Drift {
        kind: jnet::engine::report::DriftKind::Stray,
        address: "192.0.2.77".parse().unwrap(),
        interface: Some("vtnet0".into()),
        jail: None,
        pool: Some("lan".into()),
        message: "stray".into(),
    };
    assert_valid("inventory", Some("drift"), &serde_json::to_value(drift).unwrap());
    // Shared pools (issue 11): another host's lease (no phase), the hosts
    // with their stale flags, per-host counts of a pool.
    let other = jnet::engine::report::Assignment {
        jail: "db".into(),
        host: "jailhost08".into(),
        mode: jnet::store::Mode::Dedicated,
        address: Some("192.0.2.11".parse().unwrap()),
        pool: Some("lan".into()),
        interface: Some("vtnet0".into()),
        addresses: vec![jnet::engine::report::AddressRow::new(
            "192.0.2.11".parse().unwrap(),
            Some("lan".into()),
            Some("vtnet0".into()),
        )],
        phase: None,
        ports: vec![],
        expose: vec![],
    };
    assert_valid("inventory", Some("assignment"), &serde_json::to_value(&other).unwrap());
    let host = jnet::engine::report::HostReport {
        host: "jailhost08".into(),
        last_seen: 1.7e9,
        age_secs: 90_000.0,
        stale: true,
        leases: 1,
    };
    use jnet::engine::report::Count;
    // An IPv6 /64: counts beyond 2^53 are decimal strings.
    let pool6 = jnet::engine::report::PoolReport {
        name: "lan6".into(),
        family: jnet::core::model::AddressFamily::Inet6,
        network: "fd00:1::/64".into(),
        interface: "vtnet0".into(),
        size: Count((1 << 64) - 2),
        used: Count(1),
        reserved: Count(0),
        free: Count((1 << 64) - 3),
        utilisation: 0.0,
        nat: true,
        hosts: None,
    };
    let v = serde_json::to_value(&pool6).unwrap();
    assert_eq!(v["size"], "18446744073709551614", "{v}");
    assert_eq!(v["used"], 1, "{v}");
    assert_eq!(v["family"], "inet6", "{v}");
    assert_valid("pools", None, &json!({ "pools": [v.clone()] }));
    let pool = jnet::engine::report::PoolReport {
        name: "lan".into(),
        family: jnet::core::model::AddressFamily::Inet,
        network: "192.0.2.0/24".into(),
        interface: "vtnet0".into(),
        size: Count(253),
        used: Count(2),
        reserved: Count(0),
        free: Count(251),
        utilisation: 0.79,
        nat: false,
        hosts: Some(
            ["jailhost07", "jailhost08"]
                .map(|h| jnet::engine::report::PoolHost {
                    host: h.into(),
                    leases: 1,
                })
                .into(),
        ),
    };
    assert_valid(
        "pools",
        None,
        &json!({"pools": [serde_json::to_value(&pool).unwrap()], "hosts": [serde_json::to_value(&host).unwrap()]}),
    );
    assert_valid(
        "inventory",
        None,
        &json!({"pools": [serde_json::to_value(&pool).unwrap()], "assignments": [serde_json::to_value(&other).unwrap()],
            "drift": [], "hosts": [serde_json::to_value(&host).unwrap()]}),
    );
    let row = json!({"id": 3, "name": "www", "addresses": ["192.0.2.10"], "state": "running", "ports": ["tcp/80"]});
    assert_valid("status", None, &json!({ "jails": [row] }));
    let unmanaged = json!({"id": 4, "name": "old", "addresses": [], "state": "unmanaged", "ports": []});
    assert_valid("status", None, &json!({ "jails": [unmanaged] }));
}

#[test]
fn the_validator_rejects_what_the_schemas_forbid() {
    let good = json!({"jails": [{"jail": "www", "host": "h1", "mode": "dedicated", "address": "192.0.2.10", "pool": "lan",
        "interface": "vtnet0",
        "addresses": [{"address": "192.0.2.10", "family": "inet", "pool": "lan", "interface": "vtnet0"},
                      {"address": "2001:db8::10", "family": "inet6", "pool": "lan6", "interface": "vtnet0"}],
        "phase": "defined", "ports": ["tcp/80"], "expose": [],
        "exposures": [{"expose": "tcp/80", "origin": "profile", "source": "web"}]}]});
    assert_valid("list", None, &good);
    let mut cases: BTreeMap<&str, Value> = BTreeMap::new();
    let mut v = good.clone();
    v["jails"][0].as_object_mut().unwrap().remove("phase");
    cases.insert("required property", v);
    let mut v = good.clone();
    v["jails"][0]["colour"] = json!("blue");
    cases.insert("not in the schema", v);
    let mut v = good.clone();
    v["jails"][0]["mode"] = json!("vnet");
    cases.insert("is not one of", v);
    let mut v = good.clone();
    v["jails"][0]["address"] = json!("192.0.2.300");
    cases.insert("branches of anyOf", v);
    let mut v = good.clone();
    v["jails"][0]["ports"] = json!("tcp/80");
    cases.insert("is not of type", v);
    for (needle, v) in cases {
        let e = errors("list", None, &v);
        assert!(e.iter().any(|m| m.contains(needle)), "{needle}: {e:?}");
    }
    // An address entry of an unknown family, or with a field too many.
    let mut v = good.clone();
    v["jails"][0]["addresses"][1]["family"] = json!("ipx");
    assert!(errors("list", None, &v).iter().any(|m| m.contains("is not one of")));
    let mut v = good.clone();
    v["jails"][0]["addresses"][0]["prefix"] = json!(24);
    assert!(errors("list", None, &v).iter().any(|m| m.contains("not in the schema")));
    // oneOf: a conflict whose `other` matches no variant.
    let bad = json!({"conflicts": [{"severity": "error", "proto": "tcp", "port": 80, "address": "*", "jail": "www",
        "other": {"kind": "listener"}, "message": "m"}]});
    assert!(!errors("check", None, &bad).is_empty());
    let bad_port = json!({"conflicts": [{"severity": "error", "proto": "tcp", "port": 70000, "address": "*",
        "jail": "www", "other": {"kind": "jail", "name": "a", "address": "*"}, "message": "m"}]});
    assert!(errors("check", None, &bad_port).iter().any(|m| m.contains("maximum")));
}

#[test]
fn every_schema_file_is_used_and_well_formed() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|f| f.strip_suffix(".schema.json").map(String::from))
        .collect();
    names.sort();
    let mut known: Vec<&str> = REPORTS.iter().map(|(_, n)| *n).collect();
    known.extend(["plan", "plan-all", "plan-multi", "lifecycle"]);
    for n in &names {
        assert!(
            known.contains(&n.as_str()),
            "schemas/{n}.schema.json belongs to no report"
        );
        let s = schema(n);
        assert_eq!(s["$schema"], "https://json-schema.org/draft/2020-12/schema", "{n}");
        supported_everywhere(&s, n);
    }
    for (_, n) in REPORTS {
        assert!(names.iter().any(|x| x == n), "schemas/{n}.schema.json missing");
    }
}

//! nftables through nft(8), run by `os::runner`: atomic script loads
//! (`nft -f -`), listing and deleting one table, removing one jail's chains
//! from jnet's table, and reading other tables' dnat/redirect rules from
//! `nft -j list ruleset` (libnftables-json(5)).
//!
//! It never flushes the ruleset and never writes to a table other than the
//! one it is given. Rendering jnet's rules is done in `core::rules`; this
//! module only applies the text it gets.

use std::net::IpAddr;

use serde_json::Value;

use crate::core::listeners::ForeignRedirect;
use crate::core::ports::{PortRange, Proto};
use crate::os::runner;
use crate::os::OsError;

/// Where nft(8) is looked for, in order. why never $PATH: jnet runs as
/// root, and a PATH entry the caller controls would run its `nft` with
/// root's rights (hardening H12); the FreeBSD side names /sbin/pfctl for
/// the same reason. Debian and Fedora install nft in /usr/sbin; /sbin is
/// for systems without the merged /usr.
pub const NFT_DIRS: [&str; 4] = ["/usr/sbin", "/sbin", "/usr/bin", "/bin"];

/// The absolute path of nft(8): the first `NFT_DIRS` entry holding a
/// regular file `nft`, looked up once per process.
pub fn program() -> Result<&'static str, OsError> {
    static FOUND: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    FOUND
        .get_or_init(|| {
            NFT_DIRS
                .iter()
                .map(|d| std::path::Path::new(d).join("nft"))
                .find(|p| p.is_file())
                .map(|p| p.display().to_string())
        })
        .as_deref()
        .ok_or_else(|| OsError::Missing(format!("nft (looked in {})", NFT_DIRS.join(", "))))
}

fn nft(args: &[&str], stdin: Option<&str>) -> Result<runner::Output, OsError> {
    runner::run(program()?, args, stdin)
}

/// Errors reading nft's JSON output.
#[derive(Debug, thiserror::Error)]
pub enum NftError {
    #[error("nft {what}: cannot parse JSON output: {source}")]
    Json {
        what: String,
        #[source]
        source: serde_json::Error,
    },
}

impl From<NftError> for OsError {
    fn from(e: NftError) -> Self {
        OsError::Sys {
            op: e.to_string(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, "bad JSON"),
        }
    }
}

/// Applies `script` in one transaction (`nft -f -`): all of it or nothing.
pub fn load(script: &str) -> Result<(), OsError> {
    nft(&["-f", "-"], Some(script))?;
    Ok(())
}

fn objects(json: &str, what: &str) -> Result<Vec<Value>, NftError> {
    let v: Value = serde_json::from_str(json).map_err(|source| NftError::Json {
        what: what.to_string(),
        source,
    })?;
    Ok(v.get("nftables").and_then(Value::as_array).cloned().unwrap_or_default())
}

/// Whether table `family name` exists (from `nft -j list tables`).
pub fn table_exists(family: &str, name: &str) -> Result<bool, OsError> {
    let out = nft(&["-j", "list", "tables"], None)?;
    Ok(objects(&out.stdout, "list tables")?.iter().any(|o| {
        o.get("table").is_some_and(|t| {
            t.get("family").and_then(Value::as_str) == Some(family)
                && t.get("name").and_then(Value::as_str) == Some(name)
        })
    }))
}

/// The text listing of table `family name`, or None when it does not exist.
pub fn list_table(family: &str, name: &str) -> Result<Option<String>, OsError> {
    if !table_exists(family, name)? {
        return Ok(None);
    }
    Ok(Some(nft(&["list", "table", family, name], None)?.stdout))
}

/// Deletes table `family name`; returns false when it did not exist.
pub fn delete_table(family: &str, name: &str) -> Result<bool, OsError> {
    if !table_exists(family, name)? {
        return Ok(false);
    }
    nft(&["delete", "table", family, name], None)?;
    Ok(true)
}

/// Suffixes after `<jail>_` that name a jail's chain. Needed because jail
/// names may contain `_` themselves: `web_2` is not a chain of jail `web`.
/// Whether chain `chain` belongs to `jail`: exactly the chains the nft
/// renderer creates for it (`core::rules::nft::jail_chains`), so the
/// loader and the renderer can never disagree about ownership.
pub fn owns_chain(jail: &str, chain: &str) -> bool {
    crate::core::names::JailName::new(jail)
        .is_ok_and(|j| crate::core::rules::nft::jail_chains(&j).iter().any(|c| c == chain))
}

/// The JSON objects of `nft -j list table family table`, or None when the
/// table does not exist.
pub fn table_json(family: &str, table: &str) -> Result<Option<Vec<Value>>, OsError> {
    if !table_exists(family, table)? {
        return Ok(None);
    }
    let out = nft(&["-j", "list", "table", family, table], None)?;
    Ok(Some(objects(&out.stdout, &format!("list table {family} {table}"))?))
}

fn jump_target(expr: &Value) -> Option<&str> {
    ["jump", "goto"]
        .iter()
        .find_map(|k| expr.get(*k)?.get("target")?.as_str())
}

/// The script that removes `jail`'s chains from `family table` together
/// with every rule in other chains that jumps to them, built from the
/// table's JSON listing. Empty when there is nothing to remove.
pub fn flush_script(family: &str, table: &str, jail: &str, listing: &[Value]) -> String {
    let mut owned = Vec::new();
    for o in listing {
        if let Some(name) = o.get("chain").and_then(|c| c.get("name")).and_then(Value::as_str) {
            if owns_chain(jail, name) {
                owned.push(name.to_string());
            }
        }
    }
    let mut script = String::new();
    for o in listing {
        let Some(rule) = o.get("rule") else { continue };
        let (Some(chain), Some(handle)) = (
            rule.get("chain").and_then(Value::as_str),
            rule.get("handle").and_then(Value::as_u64),
        ) else {
            continue;
        };
        if owned.iter().any(|c| c == chain) {
            continue; // flushed below with its chain
        }
        let jumps = rule
            .get("expr")
            .and_then(Value::as_array)
            .is_some_and(|e| e.iter().filter_map(jump_target).any(|t| owned.iter().any(|c| c == t)));
        if jumps {
            script.push_str(&format!("delete rule {family} {table} {chain} handle {handle}\n"));
        }
    }
    // why: a chain must be empty and unreferenced before it can be deleted;
    // flushing all of them first also drops jumps among the jail's chains.
    for c in &owned {
        script.push_str(&format!("flush chain {family} {table} {c}\n"));
    }
    for c in &owned {
        script.push_str(&format!("delete chain {family} {table} {c}\n"));
    }
    script
}

/// Removes `jail`'s chains (and jumps to them) from `family table` in one
/// transaction. A missing table or no such chain is fine. Returns whether
/// anything was removed.
pub fn flush_jail(family: &str, table: &str, jail: &str) -> Result<bool, OsError> {
    let Some(listing) = table_json(family, table)? else {
        return Ok(false);
    };
    let script = flush_script(family, table, jail, &listing);
    if script.is_empty() {
        return Ok(false);
    }
    tracing::debug!(table, jail, "flushing jail chains");
    load(&script)?;
    Ok(true)
}

/// The listing of `jail`'s chains in `family table` (as `nft list chain`
/// prints them, concatenated), or None when it has none.
pub fn jail_rules(family: &str, table: &str, jail: &str) -> Result<Option<String>, OsError> {
    let Some(listing) = table_json(family, table)? else {
        return Ok(None);
    };
    let mut text = String::new();
    for o in &listing {
        if let Some(name) = o.get("chain").and_then(|c| c.get("name")).and_then(Value::as_str) {
            if owns_chain(jail, name) {
                text.push_str(&nft(&["list", "chain", family, table, name], None)?.stdout);
            }
        }
    }
    Ok(if text.is_empty() { None } else { Some(text) })
}

/// Every jail's chains in `family table` from one text listing of the
/// table (`nft list table`), keyed by jail name, each as [`jail_rules`]
/// gives it (`table ... { chain ... }` per chain, which is what `nft list
/// chain` prints); empty when the table does not exist.
pub fn all_jail_rules(family: &str, table: &str) -> Result<std::collections::BTreeMap<String, String>, OsError> {
    if !table_exists(family, table)? {
        return Ok(Default::default());
    }
    let listing = nft(&["list", "table", family, table], None)?.stdout;
    Ok(split_jail_chains(family, table, &listing))
}

/// The jail of a chain jnet's renderer names `jail_<jail>_{dnat,out,snat}`.
fn chain_owner(chain: &str) -> Option<&str> {
    let rest = chain.strip_prefix("jail_")?;
    let jail = ["_dnat", "_out", "_snat"].iter().find_map(|s| rest.strip_suffix(s))?;
    owns_chain(jail, chain).then_some(jail)
}

/// Splits a `nft list table` listing into its chains (`chain NAME {` up to
/// the `}` line at the same indentation) and groups the chains jails own.
pub fn split_jail_chains(family: &str, table: &str, listing: &str) -> std::collections::BTreeMap<String, String> {
    let mut out: std::collections::BTreeMap<String, String> = Default::default();
    let mut lines = listing.lines();
    while let Some(line) = lines.next() {
        let t = line.trim_start();
        let Some(name) = t.strip_prefix("chain ").and_then(|r| r.trim_end().strip_suffix('{')) else {
            continue;
        };
        let indent = &line[..line.len() - t.len()];
        let mut block = format!("table {family} {table} {{\n{line}\n");
        for l in lines.by_ref() {
            block.push_str(l);
            block.push('\n');
            if l.strip_prefix(indent).is_some_and(|r| r.trim_end() == "}") {
                break;
            }
        }
        block.push_str("}\n");
        if let Some(jail) = chain_owner(name.trim()) {
            out.entry(jail.to_string()).or_default().push_str(&block);
        }
    }
    out
}

fn port_ranges(v: &Value) -> Vec<PortRange> {
    let one = |v: &Value| -> Option<PortRange> {
        if let Some(n) = v.as_u64() {
            return u16::try_from(n).ok().and_then(|p| PortRange::single(p).ok());
        }
        if let Some(s) = v.as_str() {
            return s.parse::<u16>().ok().and_then(|p| PortRange::single(p).ok());
        }
        let r = v.get("range")?.as_array()?;
        let lo = u16::try_from(r.first()?.as_u64()?).ok()?;
        let hi = u16::try_from(r.get(1)?.as_u64()?).ok()?;
        PortRange::new(lo, hi).ok()
    };
    match v.get("set").and_then(Value::as_array) {
        Some(items) => items.iter().filter_map(one).collect(),
        None => one(v).into_iter().collect(),
    }
}

fn protos(v: &Value) -> Vec<Proto> {
    let one = |v: &Value| v.as_str().and_then(|s| s.parse::<Proto>().ok());
    match v.get("set").and_then(Value::as_array) {
        Some(items) => items.iter().filter_map(one).collect(),
        None => one(v).into_iter().collect(),
    }
}

/// Port redirections (dnat and redirect statements) in every table of a
/// `nft -j list ruleset` listing except jnet's own `inet <own_table>`.
/// A rule that does not restrict protocol or port counts for every one
/// (it redirects them all); a `!=` match restricts nothing.
pub fn parse_foreign_redirects(json: &str, own_table: &str) -> Result<Vec<ForeignRedirect>, NftError> {
    let mut out = Vec::new();
    for o in objects(json, "list ruleset")? {
        let Some(rule) = o.get("rule") else { continue };
        let family = rule.get("family").and_then(Value::as_str).unwrap_or("");
        let table = rule.get("table").and_then(Value::as_str).unwrap_or("");
        if family == "inet" && table == own_table {
            continue;
        }
        let Some(exprs) = rule.get("expr").and_then(Value::as_array) else {
            continue;
        };
        let Some(kind) = exprs
            .iter()
            .find_map(|e| ["dnat", "redirect"].into_iter().find(|k| e.get(*k).is_some()))
        else {
            continue;
        };
        let mut proto_set: Vec<Proto> = Vec::new();
        let mut ports: Vec<PortRange> = Vec::new();
        let mut address = None;
        for e in exprs {
            let Some(m) = e.get("match") else { continue };
            if m.get("op")
                .and_then(Value::as_str)
                .is_some_and(|op| op != "==" && op != "in")
            {
                continue;
            }
            let (Some(left), Some(right)) = (m.get("left"), m.get("right")) else {
                continue;
            };
            if let Some(p) = left.get("payload") {
                let proto = p.get("protocol").and_then(Value::as_str).unwrap_or("");
                match (proto, p.get("field").and_then(Value::as_str).unwrap_or("")) {
                    ("tcp" | "udp", "dport") => {
                        proto_set.extend(proto.parse::<Proto>().ok());
                        ports.extend(port_ranges(right));
                    }
                    ("th", "dport") => ports.extend(port_ranges(right)),
                    ("ip" | "ip6", "daddr") => address = right.as_str().and_then(|s| s.parse::<IpAddr>().ok()),
                    _ => {}
                }
            } else if left.get("meta").and_then(|m| m.get("key")).and_then(Value::as_str) == Some("l4proto") {
                proto_set.extend(protos(right));
            }
        }
        if proto_set.is_empty() {
            proto_set = vec![Proto::Tcp, Proto::Udp];
        }
        if ports.is_empty() {
            ports.extend(PortRange::new(1, u16::MAX).ok());
        }
        let chain = rule.get("chain").and_then(Value::as_str).unwrap_or("");
        let handle = rule.get("handle").and_then(Value::as_u64).unwrap_or(0);
        for proto in &proto_set {
            for range in &ports {
                out.push(ForeignRedirect {
                    proto: *proto,
                    ports: *range,
                    address,
                    owner: format!("nft table {family} {table}"),
                    rule: format!("chain {chain} handle {handle}: {proto} dport {range} {kind}"),
                });
            }
        }
    }
    Ok(out)
}

/// Foreign redirections of the calling thread's namespace.
pub fn foreign_redirects(own_table: &str) -> Result<Vec<ForeignRedirect>, OsError> {
    let out = nft(&["-j", "list", "ruleset"], None)?;
    Ok(parse_foreign_redirects(&out.stdout, own_table)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One text listing of the table, split per jail, gives each jail the
    /// rule lines its own `nft list chain` listings give (both captured
    /// from nft 1.0.6 in a scratch netns, the table listing cut to two
    /// jails and a chain no jail owns).
    #[test]
    fn table_listing_splits_into_each_jails_chains() {
        const TABLE: &str = "table inet jnet {\n\tchain jail_j0_snat {\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n\t\tip saddr 10.0.0.2 oifname \"eth0\" masquerade comment \"jnet:j0\"\n\t}\n\n\tchain pre {\n\t\tjump jail_j0_snat\n\t}\n\n\tchain jail_j1_dnat {\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n\t\tiifname \"eth0\" fib daddr type local tcp dport 1027 dnat ip to 10.0.0.3:80 comment \"jnet:j1\"\n\t\tiifname \"eth0\" fib daddr type local udp dport 1025 dnat ip to 10.0.0.3:53 comment \"jnet:j1\"\n\t}\n\n\tchain jail_j1_snat {\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n\t\tip saddr 10.0.0.3 oifname \"eth0\" masquerade comment \"jnet:j1\"\n\t}\n}\n";
        const J1_CHAINS: &str = "table inet jnet {\n\tchain jail_j1_dnat {\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n\t\tiifname \"eth0\" fib daddr type local tcp dport 1027 dnat ip to 10.0.0.3:80 comment \"jnet:j1\"\n\t\tiifname \"eth0\" fib daddr type local udp dport 1025 dnat ip to 10.0.0.3:53 comment \"jnet:j1\"\n\t}\n}\ntable inet jnet {\n\tchain jail_j1_snat {\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n\t\tip saddr 10.0.0.3 oifname \"eth0\" masquerade comment \"jnet:j1\"\n\t}\n}\n";
        use crate::core::rules::drift::{rule_lines, Syntax};
        let split = split_jail_chains("inet", "jnet", TABLE);
        assert_eq!(split.keys().collect::<Vec<_>>(), ["j0", "j1"]);
        let mut got = rule_lines(Syntax::Nft, &split["j1"]);
        let mut want = rule_lines(Syntax::Nft, J1_CHAINS);
        got.sort();
        want.sort();
        assert_eq!(got, want);
        assert_eq!(want.len(), 3);
        assert_eq!(rule_lines(Syntax::Nft, &split["j0"]).len(), 1);
        assert_eq!(chain_owner("jail_web_2_out"), Some("web_2"));
        assert_eq!(chain_owner("jail_web_x"), None);
    }

    // Captured from nft 1.0.6 (`nft -j list ruleset`) in a scratch netns.
    const RULESET: &str = r#"{"nftables": [{"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}}, {"table": {"family": "ip", "name": "foreign", "handle": 1}}, {"chain": {"family": "ip", "table": "foreign", "name": "pre", "handle": 1, "type": "nat", "hook": "prerouting", "prio": -100, "policy": "accept"}}, {"rule": {"family": "ip", "table": "foreign", "chain": "pre", "handle": 2, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 8080}}, {"dnat": {"addr": "10.1.1.1", "port": 80}}]}}, {"rule": {"family": "ip", "table": "foreign", "chain": "pre", "handle": 4, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "daddr"}}, "right": "192.0.2.7"}}, {"match": {"op": "==", "left": {"payload": {"protocol": "udp", "field": "dport"}}, "right": {"set": [53, {"range": [5000, 5010]}]}}}, {"dnat": {"addr": "10.1.1.2"}}]}}, {"rule": {"family": "ip", "table": "foreign", "chain": "pre", "handle": 6, "expr": [{"match": {"op": "==", "left": {"meta": {"key": "l4proto"}}, "right": {"set": ["tcp", "udp"]}}}, {"match": {"op": "==", "left": {"payload": {"protocol": "th", "field": "dport"}}, "right": {"range": [9000, 9001]}}}, {"redirect": {"port": 9100}}]}}, {"table": {"family": "inet", "name": "jnet", "handle": 2}}, {"chain": {"family": "inet", "table": "jnet", "name": "jail_www_dnat", "handle": 1, "type": "nat", "hook": "prerouting", "prio": -100, "policy": "accept"}}, {"chain": {"family": "inet", "table": "jnet", "name": "pre", "handle": 2}}, {"chain": {"family": "inet", "table": "jnet", "name": "jail_www_out", "handle": 3}}, {"rule": {"family": "inet", "table": "jnet", "chain": "jail_www_dnat", "handle": 4, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 81}}, {"dnat": {"family": "ip", "addr": "10.2.2.2"}}]}}, {"rule": {"family": "inet", "table": "jnet", "chain": "pre", "handle": 5, "expr": [{"jump": {"target": "jail_www_out"}}]}}]}"#;

    fn r(lo: u16, hi: u16) -> PortRange {
        PortRange::new(lo, hi).unwrap()
    }

    #[test]
    fn foreign_redirects_skip_own_table_and_expand_sets() {
        let got: Vec<(Proto, PortRange, Option<IpAddr>)> = parse_foreign_redirects(RULESET, "jnet")
            .unwrap()
            .into_iter()
            .map(|f| (f.proto, f.ports, f.address))
            .collect();
        let addr: Option<IpAddr> = Some("192.0.2.7".parse().unwrap());
        assert_eq!(
            got,
            vec![
                (Proto::Tcp, r(8080, 8080), None),
                (Proto::Udp, r(53, 53), addr),
                (Proto::Udp, r(5000, 5010), addr),
                (Proto::Tcp, r(9000, 9001), None),
                (Proto::Udp, r(9000, 9001), None),
            ]
        );
        // With another own table name, jnet's dnat on 81 becomes foreign.
        let other = parse_foreign_redirects(RULESET, "other").unwrap();
        assert!(other
            .iter()
            .any(|f| f.ports == r(81, 81) && f.owner == "nft table inet jnet"));
    }

    #[test]
    fn chain_ownership_is_not_fooled_by_underscores() {
        assert!(owns_chain("www", "jail_www_dnat"));
        assert!(owns_chain("www", "jail_www_out"));
        assert!(owns_chain("www", "jail_www_snat"));
        assert!(!owns_chain("www", "jail_www_2_dnat"));
        assert!(!owns_chain("www", "www"));
        assert!(!owns_chain("web", "jail_www_dnat"));
        assert!(owns_chain("www_2", "jail_www_2_dnat"));
        assert!(!owns_chain("www", "wwwx"));
        assert!(!owns_chain("www", "www."));
    }

    #[test]
    fn flush_script_removes_jumps_then_chains() {
        let listing = objects(RULESET, "t").unwrap();
        let listing: Vec<Value> = listing
            .into_iter()
            .filter(|o| {
                let x = o.get("rule").or(o.get("chain"));
                x.is_none_or(|x| x.get("table").and_then(Value::as_str) == Some("jnet"))
            })
            .collect();
        assert_eq!(
            flush_script("inet", "jnet", "www", &listing),
            "delete rule inet jnet pre handle 5\n\
             flush chain inet jnet jail_www_dnat\nflush chain inet jnet jail_www_out\n\
             delete chain inet jnet jail_www_dnat\ndelete chain inet jnet jail_www_out\n"
        );
        assert_eq!(flush_script("inet", "jnet", "db", &listing), "");
    }
}

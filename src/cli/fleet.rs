//! Printing the shared-pool verbs' reports (issue 11): the fleet's hosts,
//! `release --host H [JAIL]` and `store migrate|touch`.

use crate::cli::exit::ExitStatus;
use crate::cli::output::Table;
use crate::engine::api::fleet::{Migrated, ReclaimedLease};
use crate::engine::report::HostReport;
use crate::error::Result;

pub fn print_hosts(hosts: &[HostReport]) {
    let mut t = Table::new(&["HOST", "LEASES", "LAST SEEN (s ago)", "STALE"]);
    for h in hosts {
        t.row(vec![
            h.host.clone(),
            h.leases.to_string(),
            format!("{:.0}", h.age_secs),
            if h.stale { "STALE" } else { "no" }.to_string(),
        ]);
    }
    t.print();
}

pub fn release_host(host: &str, jail: Option<&str>, gone: &[ReclaimedLease]) -> Result<ExitStatus> {
    for l in gone {
        println!(
            "{}: released {} of pool {} (host {})",
            l.jail, l.address, l.pool, l.host
        );
    }
    match (gone.len(), jail) {
        (0, Some(j)) => println!("host {host} holds no lease for jail {j}; nothing changed"),
        (0, None) => println!("host {host} holds no leases; nothing changed"),
        (n, _) => println!("host {host}: {n} lease(s) reclaimed"),
    }
    Ok(ExitStatus::Ok)
}

pub fn migrated(m: &Migrated) -> Result<ExitStatus> {
    if m.from == m.to {
        println!("{}: schema is version {}; nothing to do", m.store, m.to);
    } else {
        println!("{}: schema migrated from version {} to {}", m.store, m.from, m.to);
    }
    Ok(ExitStatus::Ok)
}

pub fn touched((store, host): &(String, String)) -> Result<ExitStatus> {
    println!("{store}: host {host} seen");
    Ok(ExitStatus::Ok)
}

//! Firewall rule IR (rdr, nat, pass/label) and its pf and nft renderers.

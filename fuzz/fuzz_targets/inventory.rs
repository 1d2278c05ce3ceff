//! The inventory file reader (`store::file::format::parse`, which is what
//! `Store::read` and every writer run on the file's bytes), with a damaged
//! or hostile file as input. Besides "no panic" it checks what a reader
//! relies on: a file that parses renders back to a file that parses to the
//! same inventory, and the journal scanner never reports more valid bytes
//! than it was given.
#![no_main]
use jnet::store::file::format;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(p) = format::parse(data) else { return };
    assert!(p.valid_len <= data.len(), "valid_len past the end");
    assert!(p.header_len <= data.len(), "header_len past the end");
    if let Some(end) = p.base_end {
        assert!(end <= p.valid_len, "base ends after the valid content");
    }
    let _ = format::canonical_body(data, &p);
    let r = format::render(&p.inventory, p.header.generation.saturating_add(1));
    let back = format::parse(r.text.as_bytes()).expect("a rendered inventory parses");
    assert_eq!(back.inventory, p.inventory, "render/parse round trip changed the inventory");
    assert_eq!(back.records, 0);
});

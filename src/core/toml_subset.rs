//! A reader for the plain subset of TOML that jnet.toml files are written
//! in, fast enough for configs of 10,000 jails (issue 10).
//!
//! It accepts only: `[a]` and `[a.b]` table headers whose keys are bare
//! (`A-Za-z0-9_-`) or basic strings without escapes; `key = value` lines
//! with one bare key; values that are basic strings without escapes,
//! `true`, `false`, or arrays of such strings (over several lines, with
//! comments and a trailing comma); `#` comments; blank lines; LF or CRLF
//! line ends. Everything it accepts is TOML (1.0 and 1.1) and means what
//! it means there. Anything else, valid TOML or not (escapes, literal
//! strings, numbers, inline tables, arrays of tables, dotted keys, control
//! characters, a BOM), makes it give up with `None`, never an error: the
//! caller then reads the text with the full `toml` parser, which also
//! produces every error message. It does not check duplicate keys or
//! tables either; the caller maps the document onto its schema and gives
//! up on those the same way.

use std::ops::Range;

/// A value of the subset, with the byte span of its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Val<'a> {
    /// A basic string's contents (between the quotes); the span includes
    /// the quotes, as the `toml` crate's spans do.
    Str(&'a str, Range<usize>),
    Bool(bool, Range<usize>),
    /// An array of strings (read again, without allocating, by
    /// [`Items::iter`]) and the array's span.
    Array(Items<'a>, Range<usize>),
}

/// The strings of an array value, each with its span.
///
/// why not a `Vec`: two allocations per jail (ports, expose) were a tenth
/// of reading a 10,000-jail jnet.toml; the array was checked when it was
/// read, so going over it again cannot fail.
#[derive(Clone, Copy)]
pub struct Items<'a> {
    text: &'a str,
    /// Offset of the `[`.
    start: usize,
}

impl<'a> Items<'a> {
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, Range<usize>)> + 'a {
        let mut r = Reader {
            s: self.text.as_bytes(),
            text: self.text,
            i: self.start + 1,
            line: 0,
        };
        std::iter::from_fn(move || {
            r.array_space()?;
            if r.peek()? == b']' {
                return None;
            }
            let item = r.string()?;
            r.array_space()?;
            if r.bump()? == b']' {
                r.i -= 1;
            }
            Some(item)
        })
    }
}

impl PartialEq for Items<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for Items<'_> {}

impl std::fmt::Debug for Items<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// One `key = value` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry<'a> {
    pub key: &'a str,
    pub key_span: Range<usize>,
    pub value: Val<'a>,
}

/// A table: the root table (empty header) or one `[...]` section.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Table<'a> {
    /// Header keys with the span of each key's text.
    pub header: Vec<(&'a str, Range<usize>)>,
    /// 1-based line of the header (1 for the root table).
    pub line: usize,
    pub entries: Vec<Entry<'a>>,
}

/// Reads `text`; `None` when it strays outside the subset (see the module
/// doc). The root table comes first, then each section in file order.
pub fn parse(text: &str) -> Option<Vec<Table<'_>>> {
    let mut r = Reader {
        s: text.as_bytes(),
        text,
        i: 0,
        line: 1,
    };
    let mut tables = vec![Table {
        line: 1,
        ..Table::default()
    }];
    loop {
        r.skip_ws();
        match r.peek() {
            None => break,
            Some(b'\n' | b'\r' | b'#') => r.line_end()?,
            Some(b'[') => {
                r.i += 1;
                if r.peek() == Some(b'[') {
                    return None; // array of tables
                }
                let line = r.line;
                let mut header = Vec::with_capacity(2);
                loop {
                    r.skip_ws();
                    header.push(r.key()?);
                    r.skip_ws();
                    match r.bump()? {
                        b'.' => continue,
                        b']' => break,
                        _ => return None,
                    }
                }
                r.line_end()?;
                tables.push(Table {
                    header,
                    line,
                    entries: Vec::with_capacity(8),
                });
            }
            Some(_) => {
                let (key, key_span) = r.key()?;
                r.skip_ws();
                if r.bump()? != b'=' {
                    return None; // dotted key or garbage
                }
                r.skip_ws();
                let value = r.value()?;
                r.line_end()?;
                tables.last_mut()?.entries.push(Entry { key, key_span, value });
            }
        }
    }
    Some(tables)
}

/// Bytes that end (or spoil) a basic string: the closing quote, an escape,
/// control characters other than tab.
const STOP: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 0x20 {
        t[c] = c != b'\t' as usize;
        c += 1;
    }
    t[0x7f] = true;
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

struct Reader<'a> {
    s: &'a [u8],
    text: &'a str,
    i: usize,
    /// 1-based line of `i`.
    line: usize,
}

impl<'a> Reader<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn bump(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.i += 1;
        Some(c)
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }

    /// Optional comment, then a line end (or the end of the text).
    fn line_end(&mut self) -> Option<()> {
        self.skip_ws();
        if self.peek() == Some(b'#') {
            self.comment()?;
        }
        let end = match self.bump() {
            None => return Some(()),
            Some(b'\n') => Some(()),
            Some(b'\r') if self.bump() == Some(b'\n') => Some(()),
            _ => None,
        };
        self.line += 1;
        end
    }

    /// A `#` comment up to (not including) its line end; control
    /// characters other than tab are not allowed in comments.
    fn comment(&mut self) -> Option<()> {
        while let Some(c) = self.peek() {
            match c {
                b'\n' => return Some(()),
                b'\r' => return (self.s.get(self.i + 1) == Some(&b'\n')).then_some(()),
                b'\t' => {}
                0..=0x1f | 0x7f => return None,
                _ => {}
            }
            self.i += 1;
        }
        Some(())
    }

    /// A bare key or a basic-string key without escapes.
    fn key(&mut self) -> Option<(&'a str, Range<usize>)> {
        if self.peek() == Some(b'"') {
            let (s, span) = self.string()?;
            return Some((s, span));
        }
        let start = self.i;
        while matches!(self.peek(), Some(b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-')) {
            self.i += 1;
        }
        (self.i > start).then(|| (&self.text[start..self.i], start..self.i))
    }

    /// A basic string without escapes or control characters (tab allowed).
    fn string(&mut self) -> Option<(&'a str, Range<usize>)> {
        let start = self.i;
        if self.bump()? != b'"' {
            return None;
        }
        if self.s.get(self.i..self.i + 2) == Some(b"\"\"") {
            return None; // multi-line string (or an empty one before a quote)
        }
        let body = self.i;
        let len = self.s[body..].iter().position(|&c| STOP[c as usize])?;
        if self.s[body + len] != b'"' {
            return None;
        }
        self.i = body + len + 1;
        Some((&self.text[body..body + len], start..self.i))
    }

    fn value(&mut self) -> Option<Val<'a>> {
        let start = self.i;
        match self.peek()? {
            b'"' => {
                let (s, span) = self.string()?;
                Some(Val::Str(s, span))
            }
            b't' if self.s[self.i..].starts_with(b"true") => {
                self.i += 4;
                self.word_end()?;
                Some(Val::Bool(true, start..self.i))
            }
            b'f' if self.s[self.i..].starts_with(b"false") => {
                self.i += 5;
                self.word_end()?;
                Some(Val::Bool(false, start..self.i))
            }
            b'[' => {
                self.i += 1;
                loop {
                    self.array_space()?;
                    if self.peek()? == b']' {
                        self.i += 1;
                        break;
                    }
                    self.string()?;
                    self.array_space()?;
                    match self.bump()? {
                        b',' => {}
                        b']' => break,
                        _ => return None,
                    }
                }
                Some(Val::Array(Items { text: self.text, start }, start..self.i))
            }
            _ => None,
        }
    }

    /// After `true`/`false`: the word must end there (`trueish` is not TOML).
    fn word_end(&self) -> Option<()> {
        match self.peek() {
            None | Some(b' ' | b'\t' | b'\n' | b'\r' | b'#' | b',' | b']') => Some(()),
            _ => None,
        }
    }

    /// Whitespace, newlines and comments between array items.
    fn array_space(&mut self) -> Option<()> {
        loop {
            match self.peek()? {
                b' ' | b'\t' => self.i += 1,
                b'\n' => {
                    self.i += 1;
                    self.line += 1;
                }
                b'\r' if self.s.get(self.i + 1) == Some(&b'\n') => {
                    self.i += 2;
                    self.line += 1;
                }
                b'#' => self.comment()?,
                _ => return Some(()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_subset_with_spans() {
        let text = "# c\n[host]\nexternal_interface = \"em0\" # x\n\n[jails.\"w-1\"]\nports = [\n  \"tcp/80\", # web\n  \"udp/53\",\n]\nnat = false\r\n";
        let t = parse(text).unwrap();
        assert_eq!(t.len(), 3);
        assert!(t[0].header.is_empty() && t[0].entries.is_empty());
        assert_eq!(t[1].header[0].0, "host");
        assert_eq!((t[1].line, t[2].line), (2, 5));
        let e = &t[1].entries[0];
        assert_eq!(e.key, "external_interface");
        assert_eq!(e.value, Val::Str("em0", 32..37));
        assert_eq!(&text[32..37], "\"em0\"");
        assert_eq!(t[2].header.iter().map(|h| h.0).collect::<Vec<_>>(), ["jails", "w-1"]);
        assert_eq!(&text[t[2].header[1].1.clone()], "\"w-1\"");
        match &t[2].entries[0].value {
            Val::Array(items, _) => {
                let got: Vec<_> = items.iter().collect();
                assert_eq!(got.iter().map(|i| i.0).collect::<Vec<_>>(), ["tcp/80", "udp/53"]);
                assert_eq!(&text[got[1].1.clone()], "\"udp/53\"");
            }
            v => panic!("{v:?}"),
        }
        assert!(matches!(t[2].entries[1].value, Val::Bool(false, _)));
    }

    #[test]
    fn gives_up_outside_the_subset() {
        for text in [
            "a = \"x\\ty\"\n",
            "a = 'lit'\n",
            "a = 1\n",
            "a = { b = \"c\" }\n",
            "[[a]]\n",
            "a.b = \"c\"\n",
            "a = \"\"\"m\"\"\"\n",
            "a = \"x\"\rb = \"y\"\n",
            "a = \"x\u{1}\"\n",
            "a = truex\n",
            "\u{feff}a = true\n",
            "a = [\"x\" \"y\"]\n",
            "a = \"x\" b = \"y\"\n",
            "# \u{7f}\n",
            "[a\n",
            "a = [\"x\",\n",
        ] {
            assert_eq!(parse(text), None, "{text:?}");
        }
    }
}

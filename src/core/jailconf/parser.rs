//! Statement parser for jail.conf(5): turns tokens into jail(8)'s list of
//! definition blocks, following `.include` directives through a [`Loader`].
//!
//! Grammar (as jail(8) accepts it):
//!
//! ```text
//! file   := { stmt }
//! stmt   := ';' | param ';' | NAME '{' { param ';' | ';' } '}'
//! param  := name | name '=' values | name '+=' values | name values
//! name   := WORD | $VAR
//! values := WORD { ',' WORD }
//! ```
//!
//! Parameters outside a block belong to a `*` pseudo-jail, appended to the
//! previous block when that one is also named `*` (so their position among
//! the jails is kept: it decides precedence, see eval.rs). `.include "path";`
//! is a parameter statement without `=`; the path is taken relative to the
//! including file's directory, may be a glob (no match is fine, a missing
//! literal file is an error) and is parsed in place, also inside a jail
//! block. Includes nest at most 32 deep, as in jail(8).
//!
//! The result ([`Raw`]) is flat: statements, values and word parts are
//! ranges into shared lists, names are interned and locations are file
//! indices, so a file of many jails costs few allocations.
//!
//! Not done here: nested jail blocks (`a { b { } }`) are rejected; variable
//! substitution and precedence are eval.rs's job.

use super::intern::Sym;
use super::lexer::{column, lex, Kind, Lexeme, Mark, Part, Words};
use super::{JailConfError, Loader};

/// jail(8) stops following includes at this depth (include loops).
const MAX_INCLUDE_DEPTH: usize = 32;

/// Where a statement or block is: index into [`Raw::files`] and 1-based line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Loc {
    pub file: usize,
    pub line: usize,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Stmt {
    /// Parameter or variable name (variables without the `$`).
    pub name: Sym,
    pub is_var: bool,
    pub append: bool,
    /// Range of [`Raw::values`]: each value is a word.
    pub values: (usize, usize),
    pub loc: Loc,
}

#[derive(Debug, Clone)]
pub(crate) struct Block {
    pub name: String,
    pub loc: Loc,
    /// Range of [`Raw::params`] (a jail's statements are contiguous).
    pub params: (usize, usize),
    /// Index in [`Raw::values`] of the jail's name as a one-literal word
    /// (the implicit `name` parameter's value); `usize::MAX` for `*` blocks.
    pub name_value: usize,
}

/// Every block of the root file and its includes, in file order.
#[derive(Debug, Default)]
pub(crate) struct Raw {
    pub words: Words,
    /// Each value is a word: a range of `words.parts`.
    pub values: Vec<(usize, usize)>,
    pub params: Vec<Stmt>,
    pub jails: Vec<Block>,
    /// File names, one per file read (a file included twice is there twice).
    pub files: Vec<String>,
    #[cfg(test)]
    pub texts: Vec<String>,
}

impl Raw {
    pub fn file(&self, loc: Loc) -> &str {
        self.files.get(loc.file).map_or("", String::as_str)
    }
}

pub(crate) fn parse_all(file: &str, text: &str, loader: &dyn Loader) -> Result<Raw, JailConfError> {
    let mut p = Parser {
        loader,
        raw: Raw::default(),
        depth: 0,
    };
    p.parse_file(file, text, None)?;
    Ok(p.raw)
}

struct Parser<'a> {
    loader: &'a dyn Loader,
    raw: Raw,
    depth: usize,
}

fn syntax(file: &str, text: &str, at: Mark, message: impl Into<String>) -> JailConfError {
    JailConfError::Syntax {
        file: file.to_string(),
        line: at.line,
        column: column(text, at.off),
        message: message.into(),
    }
}

fn eof_mark(text: &str) -> Mark {
    Mark {
        line: 1 + text.bytes().filter(|&c| c == b'\n').count(),
        off: text.len(),
    }
}

fn describe(w: &Words, kind: &Kind) -> String {
    match kind {
        Kind::Word(a, b) => match w.single_lit(*a, *b) {
            Some(s) => format!("{s:?}"),
            None => "a value".to_string(),
        },
        Kind::Semi => "';'".into(),
        Kind::Comma => "','".into(),
        Kind::Eq => "'='".into(),
        Kind::PlusEq => "'+='".into(),
        Kind::LBrace => "'{'".into(),
        Kind::RBrace => "'}'".into(),
    }
}

/// Path of an included file: relative names are taken from the including
/// file's directory, as jail(8) does.
fn resolve_include(from: &str, name: &str) -> String {
    if name.starts_with('/') {
        return name.to_string();
    }
    match from.rfind('/') {
        Some(i) => format!("{}{}", &from[..=i], name),
        None => name.to_string(),
    }
}

fn has_glob_magic(path: &str) -> bool {
    path.contains(['*', '?', '['])
}

impl Parser<'_> {
    /// Parse one file. `within` is the jail block an `.include` appeared in.
    fn parse_file(&mut self, file: &str, text: &str, within: Option<usize>) -> Result<(), JailConfError> {
        let fi = self.raw.files.len();
        self.raw.files.push(file.to_string());
        #[cfg(test)]
        self.raw.texts.push(text.to_string());
        // why: sized from the text up front (a jail.conf statement is some
        // 20 bytes); growing these by doubling copied megabytes at 10,000
        // jails. Literal text never exceeds the source.
        let r = &mut self.raw;
        r.words.text.reserve(text.len());
        r.words.parts.reserve(text.len() / 16);
        r.values.reserve(text.len() / 16);
        r.params.reserve(text.len() / 24);
        r.jails.reserve(text.len() / 64);
        let toks = lex(text, &mut self.raw.words).map_err(|e| syntax(file, text, e.at, e.message))?;
        // The eof position is only needed for messages: computed then.
        let at = |i: usize| toks.get(i).map(|t| t.at).unwrap_or_else(|| eof_mark(text));
        // The block opened in this file: (jail index, position of its name).
        let mut block: Option<(usize, Mark)> = None;
        let mut i = 0;
        while i < toks.len() {
            let Lexeme { kind, at: pos } = toks[i];
            match kind {
                Kind::Semi => i += 1,
                Kind::RBrace if block.is_some() => {
                    block = None;
                    i += 1;
                }
                Kind::Word(a, b) if matches!(toks.get(i + 1), Some(t) if t.kind == Kind::LBrace) => {
                    if block.is_some() || within.is_some() {
                        return Err(syntax(
                            file,
                            text,
                            toks[i + 1].at,
                            "nested jail definitions are not supported",
                        ));
                    }
                    let name = match self.raw.words.word(a, b) {
                        [Part::Lit(x, y)] if x != y => self.raw.words.lit(*x, *y).to_string(),
                        [Part::Lit(..)] => return Err(syntax(file, text, pos, "empty jail name")),
                        _ => {
                            return Err(syntax(
                                file,
                                text,
                                pos,
                                "a jail name must be a plain word or quoted string without variables",
                            ))
                        }
                    };
                    self.raw.values.push((a, b));
                    let n = self.raw.params.len();
                    self.raw.jails.push(Block {
                        name,
                        loc: Loc {
                            file: fi,
                            line: pos.line,
                        },
                        params: (n, n),
                        name_value: self.raw.values.len() - 1,
                    });
                    block = Some((self.raw.jails.len() - 1, pos));
                    i += 2;
                }
                Kind::Word(..) => {
                    let target = block.map(|b| b.0).or(within);
                    i = self.param(file, fi, text, &toks, i, target)?;
                }
                other => {
                    return Err(syntax(
                        file,
                        text,
                        pos,
                        format!("unexpected {}", describe(&self.raw.words, &other)),
                    ));
                }
            }
        }
        if let Some((j, open)) = block {
            return Err(syntax(
                file,
                text,
                at(toks.len()),
                format!(
                    "missing '}}' for jail {:?} opened at line {}",
                    self.raw.jails[j].name, open.line
                ),
            ));
        }
        Ok(())
    }

    /// Parse one parameter statement starting at `toks[i]` (a word) and
    /// store it; returns the index after its `;`.
    fn param(
        &mut self,
        file: &str,
        fi: usize,
        text: &str,
        toks: &[Lexeme],
        mut i: usize,
        target: Option<usize>,
    ) -> Result<usize, JailConfError> {
        let at = |i: usize| toks.get(i).map(|t| t.at).unwrap_or_else(|| eof_mark(text));
        let start = toks[i].at;
        let Kind::Word(a, b) = toks[i].kind else {
            return Err(syntax(file, text, start, "expected a parameter name"));
        };
        let w = &mut self.raw.words;
        let (name, is_var) = match w.word(a, b) {
            [Part::Lit(x, y)] if x != y => {
                let (x, y) = (*x, *y);
                let name = w.text.get(x..y).unwrap_or("");
                (w.syms.intern(name), false)
            }
            [Part::Var(v, _)] if !w.syms.name(*v).is_empty() => (*v, true),
            [Part::Lit(..)] | [Part::Var(..)] => return Err(syntax(file, text, start, "empty parameter name")),
            _ => {
                return Err(syntax(
                    file,
                    text,
                    start,
                    "a parameter name must be a single word (variables are not expanded in names)",
                ))
            }
        };
        let shown = |w: &Words| w.syms.name(name).to_string();
        i += 1;
        #[derive(PartialEq)]
        enum Form {
            Bare,
            Set,
            Append,
            NameValue,
        }
        let form = match toks.get(i).map(|t| t.kind) {
            Some(Kind::Semi) => Form::Bare,
            Some(Kind::Eq) => {
                i += 1;
                Form::Set
            }
            Some(Kind::PlusEq) => {
                i += 1;
                Form::Append
            }
            Some(Kind::Word(..)) => Form::NameValue,
            Some(other) => {
                return Err(syntax(
                    file,
                    text,
                    at(i),
                    format!(
                        "expected '=', '+=', a value or ';' after {:?}, found {}",
                        shown(&self.raw.words),
                        describe(&self.raw.words, &other)
                    ),
                ))
            }
            None => {
                return Err(syntax(
                    file,
                    text,
                    eof_mark(text),
                    format!("expected ';' after {:?}, found end of file", shown(&self.raw.words)),
                ))
            }
        };
        let v0 = self.raw.values.len();
        if form != Form::Bare {
            loop {
                match toks.get(i).map(|t| t.kind) {
                    Some(Kind::Word(a, b)) => self.raw.values.push((a, b)),
                    Some(other) => {
                        return Err(syntax(
                            file,
                            text,
                            at(i),
                            format!(
                                "expected a value for {:?}, found {}",
                                shown(&self.raw.words),
                                describe(&self.raw.words, &other)
                            ),
                        ))
                    }
                    None => {
                        return Err(syntax(
                            file,
                            text,
                            eof_mark(text),
                            format!("expected a value for {:?}, found end of file", shown(&self.raw.words)),
                        ))
                    }
                }
                i += 1;
                match toks.get(i).map(|t| t.kind) {
                    Some(Kind::Comma) => i += 1,
                    Some(Kind::Semi) => break,
                    Some(other) => {
                        return Err(syntax(
                            file,
                            text,
                            at(i),
                            format!(
                                "expected ';' or ',' after the value of {:?}, found {}",
                                shown(&self.raw.words),
                                describe(&self.raw.words, &other)
                            ),
                        ))
                    }
                    None => {
                        return Err(syntax(
                            file,
                            text,
                            eof_mark(text),
                            format!(
                                "expected ';' after the value of {:?}, found end of file",
                                shown(&self.raw.words)
                            ),
                        ))
                    }
                }
            }
        }
        let v1 = self.raw.values.len();
        // `i` is at the terminating ';'.
        let loc = Loc {
            file: fi,
            line: start.line,
        };
        if !is_var && self.raw.words.syms.name(name) == ".include" {
            if form != Form::NameValue {
                return Err(syntax(
                    file,
                    text,
                    start,
                    "'.include' takes a file name: .include \"file\";",
                ));
            }
            let mut paths = Vec::with_capacity(v1 - v0);
            for &(a, b) in &self.raw.values[v0..v1] {
                match self.raw.words.single_lit(a, b) {
                    Some(s) => paths.push(s.to_string()),
                    None => {
                        return Err(syntax(
                            file,
                            text,
                            start,
                            "variables are not permitted in an '.include' file name",
                        ))
                    }
                }
            }
            self.raw.values.truncate(v0);
            for path in paths {
                self.include(file, start.line, &path, target)?;
            }
            return Ok(i + 1);
        }
        let param = Stmt {
            name,
            is_var,
            append: form == Form::Append,
            values: (v0, v1),
            loc,
        };
        let n = self.raw.params.len();
        // why: a statement always belongs to the last block: a jail block's
        // own (includes inside it cannot open blocks), or the `*` pseudo-jail
        // jail(8) gathers consecutive global statements into, placed where
        // they appear in the file. So each block's statements are contiguous.
        let last = match target {
            Some(j) => self.raw.jails.get_mut(j),
            None => match self.raw.jails.last_mut() {
                Some(j) if j.name == "*" && j.params.1 == n => Some(j),
                _ => None,
            },
        };
        match last {
            Some(j) if j.params.1 == n => j.params.1 = n + 1,
            _ => self.raw.jails.push(Block {
                name: "*".to_string(),
                loc,
                params: (n, n + 1),
                name_value: usize::MAX,
            }),
        }
        self.raw.params.push(param);
        Ok(i + 1)
    }

    fn include(&mut self, from: &str, line: usize, name: &str, target: Option<usize>) -> Result<(), JailConfError> {
        let path = resolve_include(from, name);
        let err = |message: String| JailConfError::Include {
            file: from.to_string(),
            line,
            path: path.clone(),
            message,
        };
        if self.depth >= MAX_INCLUDE_DEPTH {
            return Err(err(format!(
                "includes nested deeper than {MAX_INCLUDE_DEPTH} (include loop?)"
            )));
        }
        let files = if has_glob_magic(&path) {
            let mut list = self.loader.glob(&path).map_err(err)?;
            list.sort();
            list
        } else {
            vec![path.clone()]
        };
        for f in files {
            let text = self.loader.read(&f).map_err(|m| JailConfError::Include {
                file: from.to_string(),
                line,
                path: f.clone(),
                message: m,
            })?;
            tracing::debug!(from, line, file = %f, "jail.conf include");
            self.depth += 1;
            let r = self.parse_file(&f, &text, target);
            self.depth -= 1;
            r?;
        }
        Ok(())
    }
}

/// The parser's results in the shape they had before they were flattened
/// (owned names, values and locations per statement), so the unit tests
/// below check the parser itself, unchanged.
#[cfg(test)]
mod shape {
    use super::super::lexer::{pieces, Piece};
    use super::super::Location;
    use super::*;

    #[derive(Debug, Clone)]
    pub(crate) struct RawParam {
        pub name: String,
        pub is_var: bool,
        pub append: bool,
        pub values: Vec<Vec<Piece>>,
        pub loc: Location,
    }

    #[derive(Debug, Clone)]
    pub(crate) struct RawJail {
        pub name: String,
        pub loc: Location,
        pub params: Vec<RawParam>,
    }

    pub(crate) fn parse_root(file: &str, text: &str, loader: &dyn Loader) -> Result<Vec<RawJail>, JailConfError> {
        let raw = parse_all(file, text, loader)?;
        let location = |l: Loc| Location {
            file: raw.file(l).to_string(),
            line: l.line,
        };
        Ok(raw
            .jails
            .iter()
            .map(|j| RawJail {
                name: j.name.clone(),
                loc: location(j.loc),
                params: raw.params[j.params.0..j.params.1]
                    .iter()
                    .map(|p| RawParam {
                        name: raw.words.syms.name(p.name).to_string(),
                        is_var: p.is_var,
                        append: p.append,
                        values: raw.values[p.values.0..p.values.1]
                            .iter()
                            .map(|&(a, b)| pieces(&raw.texts[p.loc.file], &raw.words, a, b))
                            .collect(),
                        loc: location(p.loc),
                    })
                    .collect(),
            })
            .collect())
    }
}

#[cfg(test)]
use super::lexer::Piece;
#[cfg(test)]
use shape::{parse_root, RawJail};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::jailconf::MemLoader;

    fn parse(text: &str) -> Result<Vec<RawJail>, JailConfError> {
        parse_root("/etc/jail.conf", text, &MemLoader::default())
    }

    fn summary(j: &[RawJail]) -> Vec<(String, Vec<String>)> {
        j.iter()
            .map(|j| (j.name.clone(), j.params.iter().map(|p| p.name.clone()).collect()))
            .collect()
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn structure() {
        let j = parse("a=1; b; x { c = 2; ; } d += 3; e 4; * { f; } g;").unwrap();
        assert_eq!(
            summary(&j),
            vec![
                ("*".into(), s(&["a", "b"])),
                ("x".into(), s(&["c"])),
                ("*".into(), s(&["d", "e"])),
                // A global after an explicit `*` block joins that block.
                ("*".into(), s(&["f", "g"])),
            ]
        );
        assert!(j[2].params[0].append);
        assert!(!j[2].params[1].append);
        assert_eq!(j[2].params[1].values, vec![vec![Piece::Lit("4".into())]]);
        assert_eq!(j[1].loc.line, 1);
    }

    #[test]
    fn variables_and_lists() {
        let j = parse("$v = a, \"b c\", 'd';\n\"q n\" { }").unwrap();
        let p = &j[0].params[0];
        assert!(p.is_var);
        assert_eq!(p.name, "v");
        assert_eq!(p.values.len(), 3);
        assert_eq!(j[1].name, "q n");
    }

    #[test]
    fn syntax_errors() {
        let cases: &[(&str, usize, usize, &str)] = &[
            ("a = ;", 1, 5, "expected a value"),
            ("a = b", 1, 6, "expected ';'"),
            ("a = b c;", 1, 7, "expected ';' or ','"),
            ("a = b,;", 1, 7, "expected a value"),
            ("x {\n  a = 1;\n", 3, 1, "missing '}' for jail \"x\" opened at line 1"),
            ("}", 1, 1, "unexpected '}'"),
            ("= 3;", 1, 1, "unexpected '='"),
            ("x { y { } }", 1, 7, "nested jail"),
            ("$v { }", 1, 1, "jail name"),
            ("${new} {\n}", 1, 1, "jail name"),
            ("{name} {\n}", 1, 1, "unexpected '{'"),
            ("a$b = 1;", 1, 1, "single word"),
            ("a = 1;\n.include = \"x\";", 2, 1, ".include"),
            ("a = 1;\n.include \"$x\";", 2, 1, "variables are not permitted"),
            (
                "jailname {\n\tparameter = \"value\";\n\t...\n}",
                4,
                1,
                "expected '=', '+=', a value or ';'",
            ),
            ("[INCLUDES]\r\n\r\nbefore = paths.conf\r\n", 3, 8, "expected ';' or ','"),
            ("a = \"x", 1, 5, "unterminated string"),
        ];
        for (text, line, col, msg) in cases {
            match parse(text) {
                Err(JailConfError::Syntax {
                    file,
                    line: l,
                    column: c,
                    message,
                }) => {
                    assert_eq!(file, "/etc/jail.conf");
                    assert_eq!((l, c), (*line, *col), "{text:?}: {message}");
                    assert!(message.contains(msg), "{text:?}: {message}");
                }
                other => panic!("{text:?}: expected syntax error, got {other:?}"),
            }
        }
    }

    #[test]
    fn includes_relative_glob_and_in_block() {
        let mut l = MemLoader::default();
        l.add("/etc/jail.conf.d/b.conf", "b { x = 2; }");
        l.add("/etc/jail.conf.d/a.conf", "a { x = 1; }");
        l.add("/etc/sub/inner.conf", "y = 1;\n.include \"../jail.conf.d/a.conf\";");
        l.add("/etc/params.inc", "p = 1; q;");
        let text = "g = 0;\n.include \"jail.conf.d/*.conf\";\n.include \"/etc/none/*.conf\";\n\
                    c { .include \"params.inc\"; r; }\n.include \"sub/inner.conf\";";
        let j = parse_root("/etc/jail.conf", text, &l).unwrap();
        assert_eq!(
            summary(&j),
            vec![
                ("*".into(), s(&["g"])),
                ("a".into(), s(&["x"])),
                ("b".into(), s(&["x"])),
                ("c".into(), s(&["p", "q", "r"])),
                ("*".into(), s(&["y"])),
                ("a".into(), s(&["x"])),
            ]
        );
        assert_eq!(j[1].loc.file, "/etc/jail.conf.d/a.conf");
        assert_eq!(j[3].params[0].loc.file, "/etc/params.inc");
    }

    #[test]
    fn include_errors() {
        let mut l = MemLoader::default();
        l.add("/etc/loop.conf", ".include \"loop.conf\";");
        l.add("/etc/bad.conf", "a {");
        l.add("/etc/block.conf", "z { }");
        let cases: &[(&str, &str, usize, &str)] = &[
            (
                "a;\n.include \"missing.conf\";",
                "/etc/jail.conf",
                2,
                "/etc/missing.conf",
            ),
            (".include \"loop.conf\";", "/etc/loop.conf", 1, "nested deeper than 32"),
        ];
        for (text, file, line, msg) in cases {
            match parse_root("/etc/jail.conf", text, &l) {
                Err(e @ JailConfError::Include { .. }) => {
                    let JailConfError::Include { file: f, line: n, .. } = &e else {
                        unreachable!()
                    };
                    assert_eq!((f.as_str(), *n), (*file, *line), "{e}");
                    assert!(e.to_string().contains(msg), "{e}");
                }
                other => panic!("{text:?}: {other:?}"),
            }
        }
        // A syntax error inside an included file names that file.
        match parse_root("/etc/jail.conf", ".include \"bad.conf\";", &l) {
            Err(JailConfError::Syntax { file, line, .. }) => {
                assert_eq!((file.as_str(), line), ("/etc/bad.conf", 1))
            }
            other => panic!("{other:?}"),
        }
        // A jail block in a file included inside a block would nest.
        match parse_root("/etc/jail.conf", "x { .include \"block.conf\"; }", &l) {
            Err(JailConfError::Syntax { file, message, .. }) => {
                assert_eq!(file, "/etc/block.conf");
                assert!(message.contains("nested"));
            }
            other => panic!("{other:?}"),
        }
    }
}

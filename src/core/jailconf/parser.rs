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
//! Not done here: nested jail blocks (`a { b { } }`) are rejected; variable
//! substitution and precedence are eval.rs's job.

use super::lexer::{tokenize, Piece, Pos, Tok, Token};
use super::{JailConfError, Loader, Location};

/// jail(8) stops following includes at this depth (include loops).
const MAX_INCLUDE_DEPTH: usize = 32;

#[derive(Debug, Clone)]
pub(crate) struct RawParam {
    /// Parameter or variable name (variables without the `$`).
    pub name: String,
    pub is_var: bool,
    pub append: bool,
    /// Each value is a word: literal text and variable references.
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
    let mut p = Parser {
        loader,
        jails: Vec::new(),
        depth: 0,
    };
    p.parse_file(file, text, None)?;
    Ok(p.jails)
}

struct Parser<'a> {
    loader: &'a dyn Loader,
    jails: Vec<RawJail>,
    depth: usize,
}

fn syntax(file: &str, pos: Pos, message: impl Into<String>) -> JailConfError {
    JailConfError::Syntax {
        file: file.to_string(),
        line: pos.line,
        column: pos.column,
        message: message.into(),
    }
}

fn eof_pos(text: &str) -> Pos {
    let line = 1 + text.matches('\n').count();
    let last = text.rsplit('\n').next().unwrap_or("");
    Pos {
        line,
        column: last.chars().count() + 1,
    }
}

fn describe(tok: &Tok) -> String {
    match tok {
        Tok::Word(p) => match p.as_slice() {
            [Piece::Lit(s)] => format!("{s:?}"),
            _ => "a value".to_string(),
        },
        Tok::Semi => "';'".into(),
        Tok::Comma => "','".into(),
        Tok::Eq => "'='".into(),
        Tok::PlusEq => "'+='".into(),
        Tok::LBrace => "'{'".into(),
        Tok::RBrace => "'}'".into(),
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
        let toks = tokenize(text).map_err(|e| syntax(file, e.pos, e.message))?;
        let eof = eof_pos(text);
        let pos_at = |i: usize| toks.get(i).map(|t| t.pos).unwrap_or(eof);
        // The block opened in this file: (jail index, position of its name).
        let mut block: Option<(usize, Pos)> = None;
        let mut i = 0;
        while i < toks.len() {
            let Token { tok, pos } = &toks[i];
            match tok {
                Tok::Semi => i += 1,
                Tok::RBrace if block.is_some() => {
                    block = None;
                    i += 1;
                }
                Tok::Word(pieces) if matches!(toks.get(i + 1), Some(t) if t.tok == Tok::LBrace) => {
                    if block.is_some() || within.is_some() {
                        return Err(syntax(
                            file,
                            toks[i + 1].pos,
                            "nested jail definitions are not supported",
                        ));
                    }
                    let name = match pieces.as_slice() {
                        [Piece::Lit(s)] if !s.is_empty() => s.clone(),
                        [Piece::Lit(_)] => return Err(syntax(file, *pos, "empty jail name")),
                        _ => {
                            return Err(syntax(
                                file,
                                *pos,
                                "a jail name must be a plain word or quoted string without variables",
                            ))
                        }
                    };
                    self.jails.push(RawJail {
                        name,
                        loc: Location {
                            file: file.to_string(),
                            line: pos.line,
                        },
                        params: Vec::new(),
                    });
                    block = Some((self.jails.len() - 1, *pos));
                    i += 2;
                }
                Tok::Word(_) => {
                    let target = block.map(|b| b.0).or(within);
                    i = self.param(file, &toks, i, eof, target)?;
                }
                other => {
                    return Err(syntax(file, *pos, format!("unexpected {}", describe(other))));
                }
            }
        }
        if let Some((j, open)) = block {
            return Err(syntax(
                file,
                pos_at(toks.len()),
                format!(
                    "missing '}}' for jail {:?} opened at line {}",
                    self.jails[j].name, open.line
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
        toks: &[Token],
        mut i: usize,
        eof: Pos,
        target: Option<usize>,
    ) -> Result<usize, JailConfError> {
        let pos_at = |i: usize| toks.get(i).map(|t| t.pos).unwrap_or(eof);
        let start = toks[i].pos;
        let Tok::Word(pieces) = &toks[i].tok else {
            return Err(syntax(file, start, "expected a parameter name"));
        };
        let (name, is_var) = match pieces.as_slice() {
            [Piece::Lit(s)] if !s.is_empty() => (s.clone(), false),
            [Piece::Var(v, _)] if !v.is_empty() => (v.clone(), true),
            [Piece::Lit(_)] | [Piece::Var(..)] => return Err(syntax(file, start, "empty parameter name")),
            _ => {
                return Err(syntax(
                    file,
                    start,
                    "a parameter name must be a single word (variables are not expanded in names)",
                ))
            }
        };
        i += 1;
        #[derive(PartialEq)]
        enum Form {
            Bare,
            Set,
            Append,
            NameValue,
        }
        let form = match toks.get(i).map(|t| &t.tok) {
            Some(Tok::Semi) => Form::Bare,
            Some(Tok::Eq) => {
                i += 1;
                Form::Set
            }
            Some(Tok::PlusEq) => {
                i += 1;
                Form::Append
            }
            Some(Tok::Word(_)) => Form::NameValue,
            Some(other) => {
                return Err(syntax(
                    file,
                    pos_at(i),
                    format!(
                        "expected '=', '+=', a value or ';' after {name:?}, found {}",
                        describe(other)
                    ),
                ))
            }
            None => {
                return Err(syntax(
                    file,
                    eof,
                    format!("expected ';' after {name:?}, found end of file"),
                ))
            }
        };
        let mut values = Vec::new();
        if form != Form::Bare {
            loop {
                match toks.get(i).map(|t| &t.tok) {
                    Some(Tok::Word(p)) => values.push(p.clone()),
                    Some(other) => {
                        return Err(syntax(
                            file,
                            pos_at(i),
                            format!("expected a value for {name:?}, found {}", describe(other)),
                        ))
                    }
                    None => {
                        return Err(syntax(
                            file,
                            eof,
                            format!("expected a value for {name:?}, found end of file"),
                        ))
                    }
                }
                i += 1;
                match toks.get(i).map(|t| &t.tok) {
                    Some(Tok::Comma) => i += 1,
                    Some(Tok::Semi) => break,
                    Some(other) => {
                        return Err(syntax(
                            file,
                            pos_at(i),
                            format!(
                                "expected ';' or ',' after the value of {name:?}, found {}",
                                describe(other)
                            ),
                        ))
                    }
                    None => {
                        return Err(syntax(
                            file,
                            eof,
                            format!("expected ';' after the value of {name:?}, found end of file"),
                        ))
                    }
                }
            }
        }
        // `i` is at the terminating ';'.
        let loc = Location {
            file: file.to_string(),
            line: start.line,
        };
        if name == ".include" && !is_var {
            if form != Form::NameValue {
                return Err(syntax(file, start, "'.include' takes a file name: .include \"file\";"));
            }
            for v in &values {
                let path = match v.as_slice() {
                    [Piece::Lit(s)] => s.clone(),
                    _ => {
                        return Err(syntax(
                            file,
                            start,
                            "variables are not permitted in an '.include' file name",
                        ))
                    }
                };
                self.include(file, start.line, &path, target)?;
            }
            return Ok(i + 1);
        }
        let param = RawParam {
            name,
            is_var,
            append: form == Form::Append,
            values,
            loc,
        };
        match target {
            Some(j) => self.jails[j].params.push(param),
            None => {
                // why: jail(8) gathers consecutive global statements into one
                // `*` pseudo-jail placed where they appear in the file.
                match self.jails.last_mut() {
                    Some(j) if j.name == "*" => j.params.push(param),
                    _ => self.jails.push(RawJail {
                        name: "*".to_string(),
                        loc: param.loc.clone(),
                        params: vec![param],
                    }),
                }
            }
        }
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

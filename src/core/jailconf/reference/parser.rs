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

use super::super::{JailConfError, Loader, Location};
use super::lexer::{tokenize, Piece, Pos, Tok, Token};

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

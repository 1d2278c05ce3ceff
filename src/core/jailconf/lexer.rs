//! Tokenizer for jail.conf(5), following the lexical rules of jail(8).
//!
//! What it does: turns one file's text into words and punctuation with
//! line numbers and byte offsets. A *word* is everything jail(8) glues
//! together without intervening whitespace, comment or punctuation:
//! unquoted runs, `"..."` and `'...'` strings and `$var`/`${var}`
//! references, e.g. `10.240.0.${ip}` or `"/jails/"$name`. Backslash escapes
//! are decoded here (C escapes, octal `\NNN`, hex `\xNN`, backslash-newline
//! continuation), in unquoted words and in both kinds of quotes; variables
//! are recognised in unquoted words and double quotes only.
//!
//! Words are not allocated one by one: their literal text is appended to
//! one shared string ([`Words::text`]) and their parts to one shared list
//! ([`Words::parts`]); a token names a range of parts. Variable names are
//! interned. Columns are not tracked while scanning; [`column`] computes one
//! from a byte offset when a message needs it.
//!
//! What it does not do: statement structure (parser.rs) or variable
//! substitution (eval.rs). Error messages carry no file name; the parser adds
//! it.

use super::intern::{Interner, Sym};

/// A position: 1-based line and byte offset in the file's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Mark {
    pub line: usize,
    pub off: usize,
}

/// One part of a word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Part {
    /// Literal text: the byte range `start..end` of [`Words::text`].
    Lit(usize, usize),
    /// A variable reference (name without `$` and braces) and where its `$` was.
    Var(Sym, Mark),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A word: the range `start..end` of [`Words::parts`].
    Word(usize, usize),
    Semi,
    Comma,
    Eq,
    PlusEq,
    LBrace,
    RBrace,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Lexeme {
    pub kind: Kind,
    pub at: Mark,
}

/// A lexical error at a position (file name added by the caller).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LexFail {
    pub at: Mark,
    pub message: String,
}

/// Literal text, word parts and names of every file read so far.
#[derive(Debug, Default)]
pub(crate) struct Words {
    pub text: String,
    pub parts: Vec<Part>,
    pub syms: Interner,
}

impl Words {
    /// The text of a literal part.
    pub fn lit(&self, start: usize, end: usize) -> &str {
        self.text.get(start..end).unwrap_or("")
    }

    /// The parts of a word.
    pub fn word(&self, start: usize, end: usize) -> &[Part] {
        self.parts.get(start..end).unwrap_or(&[])
    }

    /// The text of a word that is exactly one literal part.
    pub fn single_lit(&self, start: usize, end: usize) -> Option<&str> {
        match self.word(start, end) {
            [Part::Lit(a, b)] => Some(self.lit(*a, *b)),
            _ => None,
        }
    }
}

/// 1-based column of byte offset `off` in `text`: characters since the
/// last newline before it, plus one (a tab is one column).
pub(crate) fn column(text: &str, off: usize) -> usize {
    let b = text.as_bytes();
    let off = off.min(b.len());
    let start = b[..off].iter().rposition(|&c| c == b'\n').map_or(0, |i| i + 1);
    b[start..off].iter().filter(|&&c| c & 0xC0 != 0x80).count() + 1
}

/// Bytes that may appear in an unquoted word as themselves, as jail(8)
/// defines them. `$`, `+`, `/` and `\` are word characters too but need a
/// look at the next character first (variables, `+=`, comments, escapes).
const PLAIN: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        t[c] = b.is_ascii_alphanumeric();
        c += 1;
    }
    let extra = b"_!%&()-.:<>?@[]^`|~*";
    let mut i = 0;
    while i < extra.len() {
        t[extra[i] as usize] = true;
        i += 1;
    }
    t
};

struct Lexer<'t, 'w> {
    text: &'t str,
    src: &'t [u8],
    i: usize,
    line: usize,
    out: Vec<Lexeme>,
    w: &'w mut Words,
    /// True while the last token is a word that the next word-ish construct
    /// must be glued onto (jail(8)'s `instr`).
    in_word: bool,
    /// Index in `w.parts` of the current word's first part.
    word_start: usize,
    /// Bytes of the literal part being built (escapes may produce arbitrary
    /// bytes; checked for UTF-8 when the part is closed).
    lit: Vec<u8>,
    lit_start: Mark,
}

/// Tokenize one file, appending its words to `w`.
pub(crate) fn lex(text: &str, w: &mut Words) -> Result<Vec<Lexeme>, LexFail> {
    let mut lx = Lexer {
        text,
        src: text.as_bytes(),
        i: 0,
        line: 1,
        out: Vec::with_capacity(text.len() / 6),
        word_start: w.parts.len(),
        w,
        in_word: false,
        lit: Vec::new(),
        lit_start: Mark { line: 1, off: 0 },
    };
    lx.run()?;
    Ok(lx.out)
}

impl Lexer<'_, '_> {
    fn mark(&self) -> Mark {
        Mark {
            line: self.line,
            off: self.i,
        }
    }

    fn peek(&self, ahead: usize) -> Option<u8> {
        self.src.get(self.i + ahead).copied()
    }

    /// The character at byte `i` (always a character boundary).
    fn char_at(&self, i: usize) -> Option<char> {
        self.text.get(i..).and_then(|s| s.chars().next())
    }

    fn err<T>(&self, at: Mark, message: impl Into<String>) -> Result<T, LexFail> {
        Err(LexFail {
            at,
            message: message.into(),
        })
    }

    /// Close the word being built (if any).
    fn end_word(&mut self) -> Result<(), LexFail> {
        self.flush_lit()?;
        self.in_word = false;
        Ok(())
    }

    /// Make sure the last token is a word to append parts to.
    fn start_piece(&mut self, at: Mark) {
        if !self.in_word {
            let n = self.w.parts.len();
            self.out.push(Lexeme {
                kind: Kind::Word(n, n),
                at,
            });
            self.word_start = n;
            self.in_word = true;
        }
    }

    fn push_part(&mut self, p: Part) {
        self.w.parts.push(p);
        let n = self.w.parts.len();
        if let Some(Lexeme {
            kind: Kind::Word(_, end),
            ..
        }) = self.out.last_mut()
        {
            *end = n;
        }
    }

    /// Literal source bytes `s..e` (whole characters) join the literal.
    fn push_src(&mut self, s: usize, e: usize, at: Mark) {
        if self.lit.is_empty() {
            self.lit_start = at;
        }
        self.lit.extend_from_slice(&self.src[s..e]);
    }

    fn push_lit_char(&mut self, c: char, at: Mark) {
        if self.lit.is_empty() {
            self.lit_start = at;
        }
        let mut buf = [0u8; 4];
        self.lit.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
    }

    fn flush_lit(&mut self) -> Result<(), LexFail> {
        if self.lit.is_empty() {
            return Ok(());
        }
        let Ok(s) = std::str::from_utf8(&self.lit) else {
            return self.err(self.lit_start, "escape sequences produce invalid UTF-8");
        };
        let a = self.w.text.len();
        // Adjacent literals merge so a word is as few parts as possible.
        let last = if self.w.parts.len() > self.word_start {
            self.w.parts.last().copied()
        } else {
            None
        };
        match last {
            Some(Part::Lit(x, y)) => {
                if y != a {
                    // why: the last part of a word is the last text added,
                    // so this copy does not happen; kept for correctness.
                    self.w.text.extend_from_within(x..y);
                }
                let x = if y != a { a } else { x };
                self.w.text.push_str(s);
                let b = self.w.text.len();
                if let Some(p) = self.w.parts.last_mut() {
                    *p = Part::Lit(x, b);
                }
            }
            _ => {
                self.w.text.push_str(s);
                let b = self.w.text.len();
                self.push_part(Part::Lit(a, b));
            }
        }
        self.lit.clear();
        Ok(())
    }

    /// An empty quoted string still makes the word exist (`exec.start = '';`).
    fn mark_empty_lit(&mut self) {
        if self.w.parts.len() == self.word_start {
            let n = self.w.text.len();
            self.push_part(Part::Lit(n, n));
        }
    }

    fn punct(&mut self, kind: Kind) -> Result<(), LexFail> {
        self.end_word()?;
        let at = self.mark();
        self.out.push(Lexeme { kind, at });
        Ok(())
    }

    fn run(&mut self) -> Result<(), LexFail> {
        while let Some(c) = self.peek(0) {
            match c {
                b' ' | b'\t' | b'\r' => {
                    self.end_word()?;
                    self.i += 1;
                }
                b'\n' => {
                    self.end_word()?;
                    self.i += 1;
                    self.line += 1;
                }
                b'#' => {
                    self.end_word()?;
                    self.skip_line();
                }
                b'/' if self.peek(1) == Some(b'/') => {
                    self.end_word()?;
                    self.skip_line();
                }
                b'/' if self.peek(1) == Some(b'*') => {
                    self.end_word()?;
                    self.skip_block_comment()?;
                }
                b'+' if self.peek(1) == Some(b'=') => {
                    self.punct(Kind::PlusEq)?;
                    self.i += 2;
                }
                b';' | b',' | b'=' | b'{' | b'}' => {
                    let kind = match c {
                        b';' => Kind::Semi,
                        b',' => Kind::Comma,
                        b'=' => Kind::Eq,
                        b'{' => Kind::LBrace,
                        _ => Kind::RBrace,
                    };
                    self.punct(kind)?;
                    self.i += 1;
                }
                b'"' => self.quoted(b'"')?,
                b'\'' => self.quoted(b'\'')?,
                b'$' => {
                    let at = self.mark();
                    self.start_piece(at);
                    self.dollar(false)?;
                }
                b'\\' => {
                    let at = self.mark();
                    self.start_piece(at);
                    self.i += 1;
                    if self.i >= self.src.len() {
                        // A lone backslash at end of input is itself.
                        self.push_lit_char('\\', at);
                    } else {
                        self.escape(at);
                    }
                }
                c if PLAIN[c as usize] || c == b'+' || c == b'/' => {
                    let at = self.mark();
                    self.start_piece(at);
                    let s = self.i;
                    self.i += 1;
                    while let Some(b) = self.peek(0) {
                        let more = PLAIN[b as usize]
                            || (b == b'+' && self.peek(1) != Some(b'='))
                            || (b == b'/' && !matches!(self.peek(1), Some(b'/' | b'*')));
                        if !more {
                            break;
                        }
                        self.i += 1;
                    }
                    self.push_src(s, self.i, at);
                }
                _ => {
                    let other = self.char_at(self.i).unwrap_or('\u{fffd}');
                    return self.err(self.mark(), format!("unexpected character {other:?}"));
                }
            }
        }
        self.end_word()
    }

    fn skip_line(&mut self) {
        let rest = &self.src[self.i..];
        self.i += rest.iter().position(|&c| c == b'\n').unwrap_or(rest.len());
    }

    fn skip_block_comment(&mut self) -> Result<(), LexFail> {
        let start = self.mark();
        self.i += 2;
        loop {
            match self.peek(0) {
                None => return self.err(start, "unterminated comment"),
                Some(b'*') if self.peek(1) == Some(b'/') => {
                    self.i += 2;
                    return Ok(());
                }
                Some(b'\n') => {
                    self.line += 1;
                    self.i += 1;
                }
                Some(_) => self.i += 1,
            }
        }
    }

    /// Decode one escape; the backslash (at `backslash`) is already
    /// consumed and a character follows. Produces bytes like jail(8) does.
    fn escape(&mut self, backslash: Mark) {
        if self.lit.is_empty() {
            self.lit_start = backslash;
        }
        let Some(c) = self.peek(0) else { return };
        self.i += 1;
        let byte: u8 = match c {
            b'0'..=b'7' => {
                let mut v = u32::from(c - b'0');
                for _ in 0..2 {
                    match self.peek(0) {
                        Some(d @ b'0'..=b'7') => {
                            v = v * 8 + u32::from(d - b'0');
                            self.i += 1;
                        }
                        _ => break,
                    }
                }
                // why: jail(8) stores the value in a char; \777 wraps.
                (v & 0xff) as u8
            }
            b'a' => 0x07,
            b'b' => 0x08,
            b'f' => 0x0c,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'v' => 0x0b,
            b'\n' => {
                // line continuation
                self.line += 1;
                return;
            }
            b'x' => {
                let mut v = 0u32;
                for _ in 0..2 {
                    match self.peek(0).and_then(|d| char::from(d).to_digit(16)) {
                        Some(d) => {
                            v = v * 16 + d;
                            self.i += 1;
                        }
                        None => break,
                    }
                }
                v as u8
            }
            _ => {
                let s = self.i - 1;
                let other = self.char_at(s).unwrap_or('\u{fffd}');
                self.i = s + other.len_utf8();
                // why: as before the rewrite, a literal that starts with
                // such an escape is placed after the escaped character.
                let after = self.mark();
                self.push_lit_char(other, after);
                return;
            }
        };
        self.lit.push(byte);
    }

    /// `$name`, `${name}` or a literal `$`. In double quotes a `"` ends a
    /// braced name early, which jail(8) reports as an unterminated variable.
    fn dollar(&mut self, in_dq: bool) -> Result<(), LexFail> {
        let at = self.mark();
        self.i += 1; // '$'
        match self.peek(0) {
            Some(c) if c.is_ascii_alphabetic() || c == b'_' => {
                let s = self.i;
                while self.peek(0).is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_') {
                    self.i += 1;
                }
                let sym = self.w.syms.intern(&self.text[s..self.i]);
                self.flush_lit()?;
                self.push_part(Part::Var(sym, at));
            }
            Some(b'{') => {
                self.i += 1;
                self.flush_lit()?;
                // The name may itself contain escapes; decode them into the
                // literal buffer and take it back out.
                loop {
                    match self.peek(0) {
                        Some(b'}') => {
                            self.i += 1;
                            break;
                        }
                        Some(b'\\') if self.peek(1).is_some() => {
                            let m = self.mark();
                            self.i += 1;
                            self.escape(m);
                        }
                        Some(c) if c != b'\n' && c != b'{' && !(in_dq && c == b'"') => {
                            let m = self.mark();
                            let ch = self.char_at(self.i).unwrap_or('\u{fffd}');
                            self.i += ch.len_utf8();
                            self.push_lit_char(ch, m);
                        }
                        _ => {
                            self.lit.clear();
                            return self.err(at, "unterminated variable");
                        }
                    }
                }
                let sym = match std::str::from_utf8(&self.lit) {
                    Ok(n) => self.w.syms.intern(n),
                    Err(_) => {
                        self.lit.clear();
                        return self.err(at, "variable name is not valid UTF-8");
                    }
                };
                self.lit.clear();
                self.push_part(Part::Var(sym, at));
            }
            _ => {
                let m = self.mark();
                self.push_lit_char('$', m);
            }
        }
        Ok(())
    }

    fn quoted(&mut self, q: u8) -> Result<(), LexFail> {
        let start = self.mark();
        self.start_piece(start);
        self.i += 1;
        loop {
            match self.peek(0) {
                None => return self.err(start, "unterminated string"),
                Some(c) if c == q => {
                    self.i += 1;
                    self.mark_empty_lit();
                    return Ok(());
                }
                Some(b'\\') => {
                    let m = self.mark();
                    self.i += 1;
                    if self.peek(0).is_none() {
                        return self.err(start, "unterminated string");
                    }
                    self.escape(m);
                }
                Some(b'$') if q == b'"' => self.dollar(true)?,
                Some(_) => {
                    let at = self.mark();
                    let s = self.i;
                    while let Some(c) = self.peek(0) {
                        if c == q || c == b'\\' || (c == b'$' && q == b'"') {
                            break;
                        }
                        if c == b'\n' {
                            self.line += 1;
                        }
                        self.i += 1;
                    }
                    self.push_src(s, self.i, at);
                }
            }
        }
    }
}

/// The tokenizer's results in the shape they had before words were shared
/// (one owned string per literal, columns counted), so the unit tests below
/// check the tokenizer itself, unchanged.
#[cfg(test)]
mod shape {
    use super::*;

    /// One part of a word: literal text or a variable reference.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub(crate) enum Piece {
        Lit(String),
        /// Variable name (without `$` and braces) and where the `$` was.
        Var(String, Pos),
    }

    /// 1-based line and column (columns count characters, a tab is one).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(crate) struct Pos {
        pub line: usize,
        pub column: usize,
    }

    #[derive(Debug, Clone, PartialEq, Eq)]
    pub(crate) enum Tok {
        Word(Vec<Piece>),
        Semi,
        Comma,
        Eq,
        PlusEq,
        LBrace,
        RBrace,
    }

    #[derive(Debug, Clone, PartialEq, Eq)]
    pub(crate) struct Token {
        pub tok: Tok,
        pub pos: Pos,
    }

    #[derive(Debug, Clone, PartialEq, Eq)]
    pub(crate) struct LexError {
        pub pos: Pos,
        pub message: String,
    }

    pub(crate) fn pos(text: &str, m: Mark) -> Pos {
        Pos {
            line: m.line,
            column: column(text, m.off),
        }
    }

    /// The parts of a word as owned pieces.
    pub(crate) fn pieces(text: &str, w: &Words, start: usize, end: usize) -> Vec<Piece> {
        w.word(start, end)
            .iter()
            .map(|p| match *p {
                Part::Lit(a, b) => Piece::Lit(w.lit(a, b).to_string()),
                Part::Var(s, m) => Piece::Var(w.syms.name(s).to_string(), pos(text, m)),
            })
            .collect()
    }

    pub(crate) fn tokenize(text: &str) -> Result<Vec<Token>, LexError> {
        let mut w = Words::default();
        let toks = lex(text, &mut w).map_err(|e| LexError {
            pos: pos(text, e.at),
            message: e.message,
        })?;
        Ok(toks
            .into_iter()
            .map(|t| Token {
                tok: match t.kind {
                    Kind::Word(a, b) => Tok::Word(pieces(text, &w, a, b)),
                    Kind::Semi => Tok::Semi,
                    Kind::Comma => Tok::Comma,
                    Kind::Eq => Tok::Eq,
                    Kind::PlusEq => Tok::PlusEq,
                    Kind::LBrace => Tok::LBrace,
                    Kind::RBrace => Tok::RBrace,
                },
                pos: pos(text, t.at),
            })
            .collect())
    }
}

#[cfg(test)]
pub(crate) use shape::{pieces, Piece, Pos};
#[cfg(test)]
use shape::{tokenize, Tok};

#[cfg(test)]
mod tests {
    use super::*;

    fn lit(s: &str) -> Piece {
        Piece::Lit(s.to_string())
    }

    fn words(text: &str) -> Vec<Vec<Piece>> {
        tokenize(text)
            .unwrap()
            .into_iter()
            .filter_map(|t| match t.tok {
                Tok::Word(p) => Some(p),
                _ => None,
            })
            .collect()
    }

    fn var_names(p: &[Piece]) -> Vec<(String, bool)> {
        p.iter()
            .map(|p| match p {
                Piece::Lit(s) => (s.clone(), false),
                Piece::Var(v, _) => (v.clone(), true),
            })
            .collect()
    }

    #[test]
    fn words_and_escapes() {
        let cases: &[(&str, &str)] = &[
            ("abc", "abc"),
            ("\"a b\"", "a b"),
            ("'a b'", "a b"),
            ("''", ""),
            ("\"\"", ""),
            (r#""a\nb""#, "a\nb"),
            (r#""a\tb""#, "a\tb"),
            (r#""q\"q""#, "q\"q"),
            (r#""b\\s""#, "b\\s"),
            (r#"'it\'s'"#, "it's"),
            (r#""\101\102""#, "AB"),
            (r#""\x41\x4a""#, "AJ"),
            (r#""\7""#, "\x07"),
            (r#""\303\251""#, "é"),
            ("\"a\\\nb\"", "ab"),
            ("foo\\\nbar", "foobar"),
            (r"a\ b", "a b"),
            ("/usr/local", "/usr/local"),
            ("a+b", "a+b"),
            ("*", "*"),
            ("foo.*", "foo.*"),
            ("lo1|127.1.0.2/24", "lo1|127.1.0.2/24"),
            ("\"multi\nline\"", "multi\nline"),
            ("'$notavar'", "$notavar"),
            ("\"$\"", "$"),
            ("a$", "a$"),
            ("\"é\"", "é"),
        ];
        for (input, want) in cases {
            let w = words(input);
            assert_eq!(w, vec![vec![lit(want)]], "input {input:?}");
        }
    }

    #[test]
    fn gluing_and_variables() {
        let cases: &[(&str, Vec<(&str, bool)>)] = &[
            ("10.240.0.${ip}", vec![("10.240.0.", false), ("ip", true)]),
            ("\"/var/jail/$name\"", vec![("/var/jail/", false), ("name", true)]),
            ("\"$a$b\"", vec![("a", true), ("b", true)]),
            ("$host.hostname", vec![("host", true), (".hostname", false)]),
            ("${host.hostname}", vec![("host.hostname", true)]),
            ("\"x${a}y\"'z'w", vec![("x", false), ("a", true), ("yzw", false)]),
            (
                "/jails/$name/root",
                vec![("/jails/", false), ("name", true), ("/root", false)],
            ),
            ("$_x1", vec![("_x1", true)]),
        ];
        for (input, want) in cases {
            let w = words(input);
            assert_eq!(w.len(), 1, "input {input:?}: {w:?}");
            let got = var_names(&w[0]);
            let want: Vec<(String, bool)> = want.iter().map(|(s, v)| (s.to_string(), *v)).collect();
            assert_eq!(got, want, "input {input:?}");
        }
    }

    #[test]
    fn separators_split_words() {
        assert_eq!(words("a b").len(), 2);
        assert_eq!(words("a/*c*/b").len(), 2);
        assert_eq!(words("a#c\nb").len(), 2);
        assert_eq!(words("a//c\nb").len(), 2);
        // jail(8) treats `//` as a comment even inside an unquoted path.
        assert_eq!(words("/usr//local"), vec![vec![lit("/usr")]]);
    }

    #[test]
    fn punctuation() {
        let toks: Vec<Tok> = tokenize("a+=b;c=d,e{}").unwrap().into_iter().map(|t| t.tok).collect();
        assert_eq!(
            toks,
            vec![
                Tok::Word(vec![lit("a")]),
                Tok::PlusEq,
                Tok::Word(vec![lit("b")]),
                Tok::Semi,
                Tok::Word(vec![lit("c")]),
                Tok::Eq,
                Tok::Word(vec![lit("d")]),
                Tok::Comma,
                Tok::Word(vec![lit("e")]),
                Tok::LBrace,
                Tok::RBrace,
            ]
        );
    }

    #[test]
    fn positions() {
        let toks = tokenize("a\n  b = \"x\";\n\tc").unwrap();
        let pos: Vec<(usize, usize)> = toks.iter().map(|t| (t.pos.line, t.pos.column)).collect();
        assert_eq!(pos, vec![(1, 1), (2, 3), (2, 5), (2, 7), (2, 10), (3, 2)]);
        let toks = tokenize("x = \"$v\";").unwrap();
        match &toks[2].tok {
            Tok::Word(p) => assert_eq!(p[0], Piece::Var("v".into(), Pos { line: 1, column: 6 })),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn errors_have_positions() {
        let cases: &[(&str, usize, usize, &str)] = &[
            ("a = \"abc", 1, 5, "unterminated string"),
            ("a = 'abc\n\n", 1, 5, "unterminated string"),
            ("\n/* open", 2, 1, "unterminated comment"),
            ("a = ${x\n}", 1, 5, "unterminated variable"),
            ("a = \"${x\"}", 1, 6, "unterminated variable"),
            ("a = ${x{}", 1, 5, "unterminated variable"),
            ("a = b\u{7}", 1, 6, "unexpected character"),
            ("  é", 1, 3, "unexpected character"),
            ("a = \"\\377\"", 1, 6, "invalid UTF-8"),
        ];
        for (input, line, col, msg) in cases {
            let e = tokenize(input).unwrap_err();
            assert_eq!((e.pos.line, e.pos.column), (*line, *col), "input {input:?}: {e:?}");
            assert!(e.message.contains(msg), "input {input:?}: {e:?}");
        }
    }
}

//! Tokenizer for jail.conf(5), following the lexical rules of jail(8).
//!
//! What it does: turns one file's text into words and punctuation with
//! line:column positions. A *word* is everything jail(8) glues together
//! without intervening whitespace, comment or punctuation: unquoted runs,
//! `"..."` and `'...'` strings and `$var`/`${var}` references, e.g.
//! `10.240.0.${ip}` or `"/jails/"$name`. Backslash escapes are decoded here
//! (C escapes, octal `\NNN`, hex `\xNN`, backslash-newline continuation), in
//! unquoted words and in both kinds of quotes; variables are recognised in
//! unquoted words and double quotes only.
//!
//! What it does not do: statement structure (parser.rs) or variable
//! substitution (eval.rs). Error messages carry no file name; the parser adds
//! it.

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

/// A lexical error at a position (file name added by the caller).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LexError {
    pub pos: Pos,
    pub message: String,
}

/// Characters that may appear in an unquoted word as themselves, as jail(8)
/// defines them. `$`, `*`, `+`, `/` and `\` are word characters too but need
/// a look at the next character first (variables, `+=`, comments, escapes).
fn is_plain_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_!%&()-.:<>?@[]^`|~*".contains(c)
}

struct Lexer {
    chars: Vec<char>,
    i: usize,
    line: usize,
    column: usize,
    out: Vec<Token>,
    /// True while the previous token is a word that the next word-ish
    /// construct must be glued onto (jail(8)'s `instr`).
    in_word: bool,
    /// Bytes of the literal piece being built (escapes may produce
    /// arbitrary bytes; checked for UTF-8 when the piece is closed).
    lit: Vec<u8>,
    lit_start: Pos,
}

pub(crate) fn tokenize(text: &str) -> Result<Vec<Token>, LexError> {
    let mut lx = Lexer {
        chars: text.chars().collect(),
        i: 0,
        line: 1,
        column: 1,
        out: Vec::new(),
        in_word: false,
        lit: Vec::new(),
        lit_start: Pos { line: 1, column: 1 },
    };
    lx.run()?;
    Ok(lx.out)
}

impl Lexer {
    fn pos(&self) -> Pos {
        Pos {
            line: self.line,
            column: self.column,
        }
    }

    fn peek(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.i + ahead).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.chars.get(self.i).copied()?;
        self.i += 1;
        if c == '\n' {
            self.line += 1;
            self.column = 1;
        } else {
            self.column += 1;
        }
        Some(c)
    }

    fn err<T>(&self, pos: Pos, message: impl Into<String>) -> Result<T, LexError> {
        Err(LexError {
            pos,
            message: message.into(),
        })
    }

    /// Close the word being built (if any).
    fn end_word(&mut self) -> Result<(), LexError> {
        self.flush_lit()?;
        self.in_word = false;
        Ok(())
    }

    /// Make sure the last token is a word to append pieces to.
    fn start_piece(&mut self, pos: Pos) {
        if !self.in_word {
            self.out.push(Token {
                tok: Tok::Word(Vec::new()),
                pos,
            });
            self.in_word = true;
        }
    }

    fn pieces(&mut self) -> &mut Vec<Piece> {
        match self.out.last_mut() {
            Some(Token { tok: Tok::Word(p), .. }) => p,
            // why: start_piece always runs before pieces() while in_word.
            _ => unreachable!("pieces() outside a word"),
        }
    }

    fn push_lit_char(&mut self, c: char) {
        if self.lit.is_empty() {
            self.lit_start = self.pos();
        }
        let mut buf = [0u8; 4];
        self.lit.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
    }

    fn flush_lit(&mut self) -> Result<(), LexError> {
        if self.lit.is_empty() {
            return Ok(());
        }
        let bytes = std::mem::take(&mut self.lit);
        let s = match String::from_utf8(bytes) {
            Ok(s) => s,
            Err(_) => {
                return self.err(self.lit_start, "escape sequences produce invalid UTF-8");
            }
        };
        // Adjacent literals merge so a word is as few pieces as possible.
        match self.pieces().last_mut() {
            Some(Piece::Lit(prev)) => prev.push_str(&s),
            _ => self.pieces().push(Piece::Lit(s)),
        }
        Ok(())
    }

    /// An empty quoted string still makes the word exist (`exec.start = '';`).
    fn mark_empty_lit(&mut self) {
        if self.pieces().is_empty() {
            self.pieces().push(Piece::Lit(String::new()));
        }
    }

    fn punct(&mut self, tok: Tok) -> Result<(), LexError> {
        self.end_word()?;
        let pos = self.pos();
        self.out.push(Token { tok, pos });
        Ok(())
    }

    fn run(&mut self) -> Result<(), LexError> {
        while let Some(c) = self.peek(0) {
            match c {
                ' ' | '\t' | '\r' | '\n' => {
                    self.end_word()?;
                    self.bump();
                }
                '#' => {
                    self.end_word()?;
                    self.skip_line();
                }
                '/' if self.peek(1) == Some('/') => {
                    self.end_word()?;
                    self.skip_line();
                }
                '/' if self.peek(1) == Some('*') => {
                    self.end_word()?;
                    self.skip_block_comment()?;
                }
                '+' if self.peek(1) == Some('=') => {
                    self.punct(Tok::PlusEq)?;
                    self.bump();
                    self.bump();
                }
                ';' | ',' | '=' | '{' | '}' => {
                    let tok = match c {
                        ';' => Tok::Semi,
                        ',' => Tok::Comma,
                        '=' => Tok::Eq,
                        '{' => Tok::LBrace,
                        _ => Tok::RBrace,
                    };
                    self.punct(tok)?;
                    self.bump();
                }
                '"' => self.quoted('"')?,
                '\'' => self.quoted('\'')?,
                '$' => {
                    let pos = self.pos();
                    self.start_piece(pos);
                    self.dollar(false)?;
                }
                '\\' => {
                    let pos = self.pos();
                    self.start_piece(pos);
                    if self.peek(1).is_none() {
                        // A lone backslash at end of input is itself.
                        self.push_lit_char('\\');
                        self.bump();
                    } else {
                        self.bump();
                        self.escape(pos);
                    }
                }
                c if is_plain_word_char(c) || c == '+' || c == '/' => {
                    let pos = self.pos();
                    self.start_piece(pos);
                    self.push_lit_char(c);
                    self.bump();
                }
                other => {
                    return self.err(self.pos(), format!("unexpected character {other:?}"));
                }
            }
        }
        self.end_word()
    }

    fn skip_line(&mut self) {
        while let Some(c) = self.peek(0) {
            if c == '\n' {
                break;
            }
            self.bump();
        }
    }

    fn skip_block_comment(&mut self) -> Result<(), LexError> {
        let start = self.pos();
        self.bump();
        self.bump();
        loop {
            match self.peek(0) {
                None => return self.err(start, "unterminated comment"),
                Some('*') if self.peek(1) == Some('/') => {
                    self.bump();
                    self.bump();
                    return Ok(());
                }
                Some(_) => {
                    self.bump();
                }
            }
        }
    }

    /// Decode one escape; the backslash is already consumed and a character
    /// follows. Produces bytes like jail(8) does.
    fn escape(&mut self, backslash: Pos) {
        if self.lit.is_empty() {
            self.lit_start = backslash;
        }
        let Some(c) = self.bump() else { return };
        let byte: u8 = match c {
            '0'..='7' => {
                let mut v = c as u32 - '0' as u32;
                for _ in 0..2 {
                    match self.peek(0) {
                        Some(d @ '0'..='7') => {
                            v = v * 8 + (d as u32 - '0' as u32);
                            self.bump();
                        }
                        _ => break,
                    }
                }
                // why: jail(8) stores the value in a char; \777 wraps.
                (v & 0xff) as u8
            }
            'a' => 0x07,
            'b' => 0x08,
            'f' => 0x0c,
            'n' => b'\n',
            'r' => b'\r',
            't' => b'\t',
            'v' => 0x0b,
            '\n' => return, // line continuation
            'x' => {
                let mut v = 0u32;
                for _ in 0..2 {
                    match self.peek(0).and_then(|d| d.to_digit(16)) {
                        Some(d) => {
                            v = v * 16 + d;
                            self.bump();
                        }
                        None => break,
                    }
                }
                v as u8
            }
            other => {
                self.push_lit_char(other);
                return;
            }
        };
        self.lit.push(byte);
    }

    /// `$name`, `${name}` or a literal `$`. In double quotes a `"` ends a
    /// braced name early, which jail(8) reports as an unterminated variable.
    fn dollar(&mut self, in_dq: bool) -> Result<(), LexError> {
        let pos = self.pos();
        self.bump(); // '$'
        match self.peek(0) {
            Some(c) if c.is_ascii_alphabetic() || c == '_' => {
                let mut name = String::new();
                while let Some(c) = self.peek(0) {
                    if c.is_ascii_alphanumeric() || c == '_' {
                        name.push(c);
                        self.bump();
                    } else {
                        break;
                    }
                }
                self.flush_lit()?;
                self.pieces().push(Piece::Var(name, pos));
            }
            Some('{') => {
                self.bump();
                self.flush_lit()?;
                // The name may itself contain escapes; decode them into the
                // literal buffer and take it back out.
                loop {
                    match self.peek(0) {
                        Some('}') => {
                            self.bump();
                            break;
                        }
                        Some('\\') if self.peek(1).is_some() => {
                            let at = self.pos();
                            self.bump();
                            self.escape(at);
                        }
                        Some(c) if c != '\n' && c != '{' && !(in_dq && c == '"') => {
                            self.push_lit_char(c);
                            self.bump();
                        }
                        _ => {
                            self.lit.clear();
                            return self.err(pos, "unterminated variable");
                        }
                    }
                }
                let name = match String::from_utf8(std::mem::take(&mut self.lit)) {
                    Ok(n) => n,
                    Err(_) => return self.err(pos, "variable name is not valid UTF-8"),
                };
                self.pieces().push(Piece::Var(name, pos));
            }
            _ => self.push_lit_char('$'),
        }
        Ok(())
    }

    fn quoted(&mut self, q: char) -> Result<(), LexError> {
        let start = self.pos();
        self.start_piece(start);
        self.bump();
        loop {
            match self.peek(0) {
                None => return self.err(start, "unterminated string"),
                Some(c) if c == q => {
                    self.bump();
                    self.mark_empty_lit();
                    return Ok(());
                }
                Some('\\') => {
                    let at = self.pos();
                    self.bump();
                    if self.peek(0).is_none() {
                        return self.err(start, "unterminated string");
                    }
                    self.escape(at);
                }
                Some('$') if q == '"' => self.dollar(true)?,
                Some(c) => {
                    self.push_lit_char(c);
                    self.bump();
                }
            }
        }
    }
}

//! Parser for the nats-server config file syntax (a relaxed JSON superset),
//! producing a tree in which every key and value remembers its file, line
//! and column, so that later checks can point at the offending spot.
//!
//! Supported: `#` and `//` comments; `key = v`, `key: v`, `key v`; optional
//! `;`/`,` terminators; maps `{}`, arrays `[]`; `"escaped"`, `'raw'`, bare
//! and `( block )` strings; integers with size suffixes, floats, booleans,
//! Zulu datetimes; `$VAR` references (enclosing maps, then the environment);
//! `include file`. Variables are resolved while parsing, so a reference sees
//! only what was defined before it, as in nats-server.
//!
//! Malformed input of any kind yields an error, never a panic: nesting,
//! include depth and environment-variable indirection are all bounded.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::error::{io_error_text, ConfigError};

/// Maps and arrays nested deeper than this are rejected (protects the stack).
const MAX_NESTING: usize = 100;
/// Include chains longer than this are rejected (catches include cycles).
const MAX_INCLUDE_DEPTH: usize = 10;
/// `$A` whose environment value refers to `$B` ... is followed this far.
const MAX_ENV_DEPTH: usize = 8;

/// A place in a config file. Columns count characters from 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pos {
    pub file: Arc<str>,
    pub line: u32,
    pub col: u32,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.col)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    String(String),
    Integer(i64),
    Float(f64),
    Bool(bool),
    /// `YYYY-MM-DDTHH:MM:SSZ`, kept as written.
    DateTime(String),
    Array(Vec<Node>),
    Map(Map),
}

impl Value {
    /// "an integer", "a string", ... for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::String(_) => "a string",
            Value::Integer(_) => "an integer",
            Value::Float(_) => "a float",
            Value::Bool(_) => "a boolean",
            Value::DateTime(_) => "a datetime",
            Value::Array(_) => "an array",
            Value::Map(_) => "a map",
        }
    }
}

/// A value and where it was written (for a `$VAR`, where it was referenced).
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: Value,
    pub pos: Pos,
}

/// One `key = value` of a map.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub key: String,
    pub key_pos: Pos,
    pub node: Node,
    /// Referenced as `$key` somewhere after its definition; nats-server does
    /// not report such keys as unknown fields.
    pub used_as_variable: bool,
}

/// Entries in file order; a key defined twice keeps only its last value.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Map {
    entries: Vec<Entry>,
}

impl Map {
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.key == key)
    }

    fn get_mut(&mut self, key: &str) -> Option<&mut Entry> {
        self.entries.iter_mut().find(|e| e.key == key)
    }

    fn insert(&mut self, entry: Entry) {
        self.entries.retain(|e| e.key != entry.key);
        self.entries.push(entry);
    }
}

/// Looks up an environment variable; injectable so tests need not touch
/// the real process environment.
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process environment, for [`parse_file`].
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Parses a config file; `include`s are relative to its directory.
pub fn parse_file(path: &Path, env: EnvLookup<'_>) -> Result<Map, ConfigError> {
    let source = read_source(path).map_err(ConfigError::new)?;
    Parser::new(&source, &path.display().to_string(), env).parse_document()
}

/// Parses `source` as if it were the contents of the file `file_name`.
pub fn parse_str(source: &str, file_name: &str, env: EnvLookup<'_>) -> Result<Map, ConfigError> {
    Parser::new(source, file_name, env).parse_document()
}

/// The file's text; on failure Go's wording (`open x: no such file ...`).
/// `dir` joined with `path` and cleaned lexically (`.` dropped, `..` taking
/// the previous component off), as Go's `filepath.Join` does: the path
/// nats-server names when an include cannot be opened.
fn clean_join(dir: &Path, path: &str) -> PathBuf {
    use std::path::Component;
    let mut cleaned = PathBuf::new();
    for component in dir.join(path).components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                if !cleaned.pop() {
                    cleaned.push("..");
                }
            }
            other => cleaned.push(other.as_os_str()),
        }
    }
    cleaned
}

fn read_source(path: &Path) -> Result<String, String> {
    let bytes =
        std::fs::read(path).map_err(|e| io_error_text("open", &path.display().to_string(), &e))?;
    // Binary junk must produce a parse error, not a UTF-8 failure.
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Where a value sits, which decides what may follow it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Context {
    Top,
    Map,
}

struct Parser<'a> {
    chars: Vec<char>,
    at: usize,
    line: u32,
    col: u32,
    file: Arc<str>,
    /// Directory that `include` paths are relative to.
    dir: PathBuf,
    /// Maps under construction, outermost first: the variable scopes.
    scopes: Vec<Map>,
    env: EnvLookup<'a>,
    nesting: usize,
    include_depth: usize,
    env_depth: usize,
}

/// Ends a bare (unquoted) string.
fn ends_bare_string(c: char) -> bool {
    matches!(c, '\n' | '\r' | ';' | ',' | ']' | '}' | ' ' | '\t' | '\'')
}

/// Ends a number; anything else turns the token into a bare string
/// (`3secret`, `1x`) as nats-server does.
fn ends_number(c: char) -> bool {
    matches!(c, '\n' | '\r' | ';' | ',' | ']' | '}' | ' ' | '\t')
}

fn is_newline(c: char) -> bool {
    c == '\n' || c == '\r'
}

fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

impl<'a> Parser<'a> {
    fn new(source: &str, file_name: &str, env: EnvLookup<'a>) -> Self {
        let dir = Path::new(file_name)
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        Parser {
            chars: source.chars().collect(),
            at: 0,
            line: 1,
            // nats-server's lexer counts the first line's columns from 0
            // and every later line's from 1 (it measures from the previous
            // newline); error positions follow it.
            col: 0,
            file: Arc::from(file_name),
            dir,
            scopes: Vec::new(),
            env,
            nesting: 0,
            include_depth: 0,
            env_depth: 0,
        }
    }

    // ---- character level -------------------------------------------------

    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).copied()
    }

    fn peek_second(&self) -> Option<char> {
        self.chars.get(self.at + 1).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.at += 1;
        if c == '\n' {
            self.line += 1;
            self.col = 1;
        } else {
            self.col += 1;
        }
        Some(c)
    }

    fn pos(&self) -> Pos {
        Pos {
            file: Arc::clone(&self.file),
            line: self.line,
            col: self.col,
        }
    }

    /// nats-server's frame for its lexer's errors (`Parse error on line
    /// 2: '...'`, which scripts and test harnesses look for) after our
    /// position; the message inside is percore's own wording.
    fn syntax_error(&self, pos: &Pos, message: impl fmt::Display) -> ConfigError {
        ConfigError::at(
            pos,
            format!("Parse error on line {}: '{message}'", pos.line),
        )
    }

    /// Error at the current character, naming it.
    fn unexpected(&self, expected: &str) -> ConfigError {
        let found = match self.peek() {
            None => "end of file".to_string(),
            Some('\n') | Some('\r') => "a new line".to_string(),
            Some(c) => format!("'{}'", c.escape_debug()),
        };
        self.syntax_error(&self.pos(), format!("expected {expected}, found {found}"))
    }

    fn skip_blanks(&mut self) {
        while self.peek().is_some_and(is_blank) {
            self.bump();
        }
    }

    fn skip_whitespace(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.bump();
        }
    }

    fn at_comment(&self) -> bool {
        match self.peek() {
            Some('#') => true,
            Some('/') => self.peek_second() == Some('/'),
            _ => false,
        }
    }

    /// Skips a comment up to (not including) the end of its line.
    fn skip_comment(&mut self) {
        while self.peek().is_some_and(|c| !is_newline(c)) {
            self.bump();
        }
    }

    // ---- structure -------------------------------------------------------

    fn parse_document(mut self) -> Result<Map, ConfigError> {
        self.scopes.push(Map::default());
        loop {
            self.skip_whitespace();
            match self.peek() {
                None => break,
                // A file may be wrapped in braces like a JSON object, and
                // stray terminators (`port: 4222;;`) are harmless.
                Some('{' | '}' | ';' | ',') => {
                    self.bump();
                }
                _ if self.at_comment() => self.skip_comment(),
                Some(_) => {
                    self.parse_entry(Context::Top)?;
                    self.end_top_value()?;
                }
            }
        }
        Ok(self.scopes.pop().unwrap_or_default())
    }

    /// After a top-level value: blanks, then a comment, new line, `;`, `,`,
    /// `}` or the end of the file.
    fn end_top_value(&mut self) -> Result<(), ConfigError> {
        self.skip_blanks();
        match self.peek() {
            None => Ok(()),
            Some(c) if is_newline(c) || matches!(c, ';' | ',' | '}') => {
                self.bump();
                Ok(())
            }
            _ if self.at_comment() => {
                self.skip_comment();
                Ok(())
            }
            _ => Err(self.unexpected("a new line, ';', ',' or a comment after the value")),
        }
    }

    /// `key [=|:] value`, or `include path`; stores the result in the
    /// innermost scope.
    fn parse_entry(&mut self, context: Context) -> Result<(), ConfigError> {
        let mut key_pos = self.pos();
        let (key, quoted) = self.parse_key()?;
        if quoted {
            // nats-server's lexer starts a quoted key after its quote, and
            // its errors point there.
            key_pos.col += 1;
        }
        if !quoted
            && key.eq_ignore_ascii_case("include")
            && self.peek().is_some_and(char::is_whitespace)
        {
            return self.parse_include(&key_pos);
        }
        // The key ends at white space, which may include new lines.
        self.skip_whitespace();
        if matches!(self.peek(), Some('=') | Some(':')) {
            self.bump();
            // After a separator a top-level value must be on the same line;
            // inside a map it may follow on the next one.
            match context {
                Context::Top => self.skip_blanks(),
                Context::Map => self.skip_whitespace(),
            }
        }
        if self.peek().is_none() || (context == Context::Map && self.peek() == Some('}')) {
            return Err(self.syntax_error(&key_pos, format!("key \"{key}\" has no value")));
        }
        let node = self.parse_value()?;
        self.current_scope().insert(Entry {
            key,
            key_pos,
            node,
            used_as_variable: false,
        });
        Ok(())
    }

    fn current_scope(&mut self) -> &mut Map {
        if self.scopes.is_empty() {
            self.scopes.push(Map::default());
        }
        let last = self.scopes.len() - 1;
        &mut self.scopes[last]
    }

    /// A quoted key is taken literally; a bare one runs to white space or a
    /// separator. Returns the key and whether it was quoted.
    fn parse_key(&mut self) -> Result<(String, bool), ConfigError> {
        let start = self.pos();
        match self.peek() {
            Some(quote @ ('"' | '\'')) => {
                self.bump();
                let mut key = String::new();
                loop {
                    match self.bump() {
                        None => return Err(self.syntax_error(&start, "unterminated quoted key")),
                        Some(c) if c == quote => return Ok((key, true)),
                        Some(c) => key.push(c),
                    }
                }
            }
            Some(c @ (':' | '=' | ',' | ']' | ';')) => {
                Err(self.syntax_error(&start, format!("unexpected '{c}' where a key was expected")))
            }
            _ => {
                let mut key = String::new();
                while let Some(c) = self.peek() {
                    if c.is_whitespace() || c == ':' || c == '=' {
                        break;
                    }
                    key.push(c);
                    self.bump();
                }
                Ok((key, false))
            }
        }
    }

    fn parse_value(&mut self) -> Result<Node, ConfigError> {
        let pos = self.pos();
        let value = match self.peek() {
            None => return Err(self.unexpected("a value")),
            Some(c) if is_newline(c) || matches!(c, ',' | ';' | ']' | '}') => {
                return Err(self.unexpected("a value"))
            }
            Some('[') => self.nested(Self::parse_array)?,
            Some('{') => self.nested(Self::parse_map)?,
            Some('"') => Value::String(self.parse_double_quoted()?),
            Some('\'') => Value::String(self.parse_single_quoted()?),
            Some('(') => Value::String(self.parse_block()?),
            Some('.') => {
                return Err(self.syntax_error(&pos, "a number must start with a digit, not '.'"))
            }
            Some(c) if c == '-' || c.is_ascii_digit() => self.parse_number_like()?,
            Some(_) => return self.parse_bare(),
        };
        Ok(Node { value, pos })
    }

    /// Runs a map or array parser one nesting level deeper.
    fn nested(
        &mut self,
        parse: fn(&mut Self) -> Result<Value, ConfigError>,
    ) -> Result<Value, ConfigError> {
        if self.nesting >= MAX_NESTING {
            return Err(self.syntax_error(
                &self.pos(),
                format!("maps and arrays are nested more than {MAX_NESTING} levels deep"),
            ));
        }
        self.nesting += 1;
        let result = parse(self);
        self.nesting -= 1;
        result
    }

    fn parse_map(&mut self) -> Result<Value, ConfigError> {
        let open = self.pos();
        self.bump(); // '{'
        self.scopes.push(Map::default());
        let result = self.parse_map_body(&open);
        let map = self.scopes.pop().unwrap_or_default();
        result.map(|()| Value::Map(map))
    }

    fn parse_map_body(&mut self, open: &Pos) -> Result<(), ConfigError> {
        loop {
            self.skip_whitespace();
            match self.peek() {
                None => return Err(self.syntax_error(open, "map is not closed with '}'")),
                Some('}') => {
                    self.bump();
                    return Ok(());
                }
                _ if self.at_comment() => self.skip_comment(),
                Some(_) => {
                    self.parse_entry(Context::Map)?;
                    self.end_map_value(open)?;
                }
            }
        }
    }

    /// After a map value: blanks, then a comment, new line, `,`, `;` or the
    /// closing `}` (left for the caller).
    fn end_map_value(&mut self, open: &Pos) -> Result<(), ConfigError> {
        self.skip_blanks();
        match self.peek() {
            None => Err(self.syntax_error(open, "map is not closed with '}'")),
            Some('}') => Ok(()),
            Some(c) if is_newline(c) || c == ',' || c == ';' => {
                self.bump();
                Ok(())
            }
            _ if self.at_comment() => {
                self.skip_comment();
                Ok(())
            }
            _ => Err(self.unexpected("',', ';', a new line or '}' after the map value")),
        }
    }

    fn parse_array(&mut self) -> Result<Value, ConfigError> {
        let open = self.pos();
        self.bump(); // '['
        let mut items = Vec::new();
        loop {
            self.skip_whitespace();
            match self.peek() {
                None => return Err(self.syntax_error(&open, "array is not closed with ']'")),
                Some(']') => {
                    self.bump();
                    return Ok(Value::Array(items));
                }
                Some(',') => return Err(self.unexpected("an array element")),
                _ if self.at_comment() => self.skip_comment(),
                Some(_) => {
                    items.push(self.parse_value()?);
                    self.end_array_element(&open)?;
                }
            }
        }
    }

    /// After an array element: blanks, then a comment, new line, `,` or the
    /// closing `]` (left for the caller).
    fn end_array_element(&mut self, open: &Pos) -> Result<(), ConfigError> {
        self.skip_blanks();
        match self.peek() {
            None => Err(self.syntax_error(open, "array is not closed with ']'")),
            Some(']') => Ok(()),
            Some(c) if is_newline(c) || c == ',' => {
                self.bump();
                Ok(())
            }
            _ if self.at_comment() => {
                self.skip_comment();
                Ok(())
            }
            _ => Err(self.unexpected("',', a new line or ']' after the array element")),
        }
    }

    // ---- strings -----------------------------------------------------------

    /// `"..."` with `\t \n \r \" \\ \xHH` escapes; may span lines.
    fn parse_double_quoted(&mut self) -> Result<String, ConfigError> {
        let start = self.pos();
        self.bump(); // '"'
        let mut bytes = Vec::new();
        loop {
            match self.bump() {
                None => return Err(self.syntax_error(&start, "unterminated string")),
                Some('"') => return Ok(String::from_utf8_lossy(&bytes).into_owned()),
                Some('\\') => self.parse_escape(&mut bytes)?,
                Some(c) => push_char(&mut bytes, c),
            }
        }
    }

    /// The character after a backslash (already consumed).
    fn parse_escape(&mut self, bytes: &mut Vec<u8>) -> Result<(), ConfigError> {
        let pos = self.pos();
        match self.bump() {
            Some('t') => bytes.push(b'\t'),
            Some('n') => bytes.push(b'\n'),
            Some('r') => bytes.push(b'\r'),
            Some('"') => bytes.push(b'"'),
            Some('\\') => bytes.push(b'\\'),
            Some('x') => {
                let high = self.bump().and_then(|c| c.to_digit(16));
                let low = self.bump().and_then(|c| c.to_digit(16));
                match (high, low) {
                    // Two hex digits are at most 0xff, so the cast is exact.
                    (Some(h), Some(l)) => bytes.push((h * 16 + l) as u8),
                    _ => {
                        return Err(
                            self.syntax_error(&pos, "'\\x' must be followed by two hex digits")
                        )
                    }
                }
            }
            other => {
                let shown = match other {
                    None => "end of file".to_string(),
                    Some(c) => format!("'\\{}'", c.escape_debug()),
                };
                return Err(self.syntax_error(
                    &pos,
                    format!("invalid escape {shown}; allowed are \\t \\n \\r \\\" \\\\ and \\xHH"),
                ));
            }
        }
        Ok(())
    }

    /// `'...'`, taken literally.
    fn parse_single_quoted(&mut self) -> Result<String, ConfigError> {
        let start = self.pos();
        self.bump(); // '\''
        let mut text = String::new();
        loop {
            match self.bump() {
                None => return Err(self.syntax_error(&start, "unterminated string")),
                Some('\'') => return Ok(text),
                Some(c) => text.push(c),
            }
        }
    }

    /// `( ... )`: raw text up to a `)` alone at the start of a line; the new
    /// line before that `)` is not part of the text.
    fn parse_block(&mut self) -> Result<String, ConfigError> {
        let start = self.pos();
        self.bump(); // '('
        let mut text = String::new();
        loop {
            match self.bump() {
                None => {
                    return Err(self.syntax_error(
                        &start,
                        "block string is not closed with ')' alone on a line",
                    ))
                }
                Some(')')
                    if text.ends_with('\n')
                        && self.peek().is_none_or(|c| c == '\n' || c == '\r') =>
                {
                    text.pop();
                    return Ok(text);
                }
                Some(c) => text.push(c),
            }
        }
    }

    /// An unquoted token that is not a number: a bool, a `$variable`, or a
    /// string (`127.0.0.1` style tokens come through `parse_number_like`).
    fn parse_bare(&mut self) -> Result<Node, ConfigError> {
        let pos = self.pos();
        let (text, escaped) = self.scan_bare(Vec::new(), false)?;
        if escaped {
            return Ok(Node {
                value: Value::String(text),
                pos,
            });
        }
        if let Some(b) = parse_bool_word(&text) {
            return Ok(Node {
                value: Value::Bool(b),
                pos,
            });
        }
        if let Some(name) = text.strip_prefix('$') {
            return self.resolve_variable(name, &pos);
        }
        Ok(Node {
            value: Value::String(text),
            pos,
        })
    }

    /// Continues a bare string whose first bytes are already in `bytes`.
    /// Returns the text and whether it contained escapes.
    fn scan_bare(
        &mut self,
        mut bytes: Vec<u8>,
        mut escaped: bool,
    ) -> Result<(String, bool), ConfigError> {
        while let Some(c) = self.peek() {
            if ends_bare_string(c) {
                break;
            }
            self.bump();
            if c == '\\' {
                self.parse_escape(&mut bytes)?;
                escaped = true;
            } else {
                push_char(&mut bytes, c);
            }
        }
        Ok((String::from_utf8_lossy(&bytes).into_owned(), escaped))
    }

    // ---- numbers -----------------------------------------------------------

    /// A token starting with a digit or `-`: integer (with size suffix),
    /// float, datetime, or (`127.0.0.1:4222`, `3secret`) a string.
    fn parse_number_like(&mut self) -> Result<Value, ConfigError> {
        let start = self.pos();
        let mut token = String::new();
        let negative = self.peek() == Some('-');
        if negative {
            token.push('-');
            self.bump();
            match self.peek() {
                Some(c) if c.is_ascii_digit() => {}
                Some('.') => {
                    return Err(
                        self.syntax_error(&start, "a number must start with a digit, not '.'")
                    )
                }
                _ => return Err(self.unexpected("a digit after '-'")),
            }
        }
        self.take_digits(&mut token);
        match self.peek() {
            Some('-') if !negative && token.len() == 4 => self.parse_datetime(token, &start),
            Some('-') if !negative => {
                Err(self.syntax_error(&start, "a datetime must have the form YYYY-MM-DDTHH:MM:SSZ"))
            }
            Some('.') => self.parse_float_or_address(token, &start),
            Some(c) if is_size_suffix(c) => self.parse_suffixed(token, &start),
            Some(c) if !ends_number(c) && !negative => self.finish_as_string(token),
            _ => Ok(Value::Integer(parse_integer(&token, &start)?)),
        }
    }

    fn take_digits(&mut self, token: &mut String) {
        while let Some(c) = self.peek().filter(char::is_ascii_digit) {
            token.push(c);
            self.bump();
        }
    }

    /// `1.5` is a float; `127.0.0.1` (and `127.0.0.1:4222`) a string.
    fn parse_float_or_address(
        &mut self,
        mut token: String,
        start: &Pos,
    ) -> Result<Value, ConfigError> {
        token.push('.');
        self.bump();
        if !self.peek().is_some_and(|c| c.is_ascii_digit()) {
            return Err(self.unexpected("a digit after '.'"));
        }
        self.take_digits(&mut token);
        if self.peek() == Some('.') {
            while let Some(c) = self
                .peek()
                .filter(|c| c.is_ascii_digit() || matches!(c, '.' | ':' | '-'))
            {
                token.push(c);
                self.bump();
            }
            return Ok(Value::String(token));
        }
        token
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(Value::Float)
            .ok_or_else(|| out_of_range("float", &token, start))
    }

    /// `64K`, `2MB`, `1GiB`; or a string such as `4kittens`.
    fn parse_suffixed(&mut self, mut token: String, start: &Pos) -> Result<Value, ConfigError> {
        let digits = token.len();
        while let Some(c) = self.peek() {
            let more = if token.len() == digits {
                is_size_suffix(c)
            } else {
                matches!(c, 'b' | 'B' | 'i' | 'I')
            };
            if !more {
                break;
            }
            token.push(c);
            self.bump();
        }
        if self.peek().is_some_and(|c| !ends_number(c)) {
            if token.starts_with('-') {
                return Err(self.unexpected("the end of the number"));
            }
            return self.finish_as_string(token);
        }
        let (number, suffix) = token.split_at(digits);
        let base = parse_integer(number, start)?;
        let multiplier = size_multiplier(suffix).ok_or_else(|| {
            self.syntax_error(
                start,
                format!("unknown size suffix \"{suffix}\" in '{token}'"),
            )
        })?;
        base.checked_mul(multiplier)
            .map(Value::Integer)
            .ok_or_else(|| out_of_range("integer", &token, start))
    }

    /// A token that started like a number but is not one: read on as a bare
    /// string (`3secret`).
    fn finish_as_string(&mut self, token: String) -> Result<Value, ConfigError> {
        let (text, _) = self.scan_bare(token.into_bytes(), false)?;
        Ok(Value::String(text))
    }

    /// `YYYY-MM-DDTHH:MM:SSZ`, the only datetime form nats-server accepts.
    fn parse_datetime(&mut self, mut token: String, start: &Pos) -> Result<Value, ConfigError> {
        const REST: &str = "-00-00T00:00:00Z";
        for expected in REST.chars() {
            let Some(c) = self.peek() else { break };
            let fits = if expected == '0' {
                c.is_ascii_digit()
            } else {
                c == expected
            };
            if !fits {
                break;
            }
            token.push(c);
            self.bump();
        }
        if token.len() != 4 + REST.len() || !datetime_in_range(&token) {
            return Err(self.syntax_error(
                start,
                format!("invalid datetime '{token}', the form is YYYY-MM-DDTHH:MM:SSZ"),
            ));
        }
        Ok(Value::DateTime(token))
    }

    // ---- variables and includes -------------------------------------------

    /// `$name`: the innermost enclosing map that defines `name`, else the
    /// environment. The result takes the position of the reference.
    fn resolve_variable(&mut self, name: &str, pos: &Pos) -> Result<Node, ConfigError> {
        // Unquoted bcrypt hashes (`$2a$11$...`) are literal strings.
        if name.starts_with("2a$") {
            return Ok(Node {
                value: Value::String(format!("${name}")),
                pos: pos.clone(),
            });
        }
        for scope in self.scopes.iter_mut().rev() {
            if let Some(entry) = scope.get_mut(name) {
                entry.used_as_variable = true;
                let mut node = entry.node.clone();
                node.pos = pos.clone();
                return Ok(node);
            }
        }
        let Some(text) = (self.env)(name) else {
            return Err(ConfigError::at(
                pos,
                format!(
                    "variable reference for '{name}' on line {} can not be found",
                    pos.line
                ),
            ));
        };
        self.parse_env_value(name, &text, pos)
    }

    /// An environment variable's value is parsed as a config value.
    fn parse_env_value(&self, name: &str, text: &str, pos: &Pos) -> Result<Node, ConfigError> {
        let could_not_parse = |reason: &str| {
            ConfigError::at(
                pos,
                format!(
                    "variable reference for '{name}' on line {} could not be parsed: {reason}",
                    pos.line
                ),
            )
        };
        if self.env_depth >= MAX_ENV_DEPTH {
            return Err(could_not_parse(
                "environment variables refer to each other too deeply",
            ));
        }
        let source = format!("value={text}");
        let env_file = format!("${name}");
        let mut parser = Parser::new(&source, &env_file, self.env);
        parser.include_depth = self.include_depth;
        parser.env_depth = self.env_depth + 1;
        // The stack is shared with this parser, so is the nesting budget.
        parser.nesting = self.nesting;
        let mut map = parser
            .parse_document()
            .map_err(|e| could_not_parse(e.message()))?;
        let mut node = match map.entries.pop() {
            Some(entry) if map.entries.is_empty() && entry.key == "value" => entry.node,
            _ => return Err(could_not_parse("it is not a single value")),
        };
        relocate(&mut node, pos);
        Ok(node)
    }

    /// `include path` (keyword already read): parses the file and merges its
    /// keys into the current map.
    fn parse_include(&mut self, pos: &Pos) -> Result<(), ConfigError> {
        self.skip_blanks();
        let path = self.parse_include_path()?;
        if self.include_depth >= MAX_INCLUDE_DEPTH {
            return Err(ConfigError::at(
                pos,
                format!("includes are nested more than {MAX_INCLUDE_DEPTH} deep (include cycle?)"),
            ));
        }
        let full = clean_join(&self.dir, &path);
        // As nats-server: a file that cannot be read is reported without a
        // position, naming the cleaned path; errors inside the included
        // file name that file themselves.
        let source = read_source(&full).map_err(|reason| {
            ConfigError::new(format!("error parsing include file '{path}', {reason}"))
        })?;
        let mut parser = Parser::new(&source, &full.display().to_string(), self.env);
        parser.include_depth = self.include_depth + 1;
        parser.env_depth = self.env_depth;
        parser.nesting = self.nesting;
        let included = parser.parse_document()?;
        let scope = self.current_scope();
        for entry in included.entries {
            scope.insert(entry);
        }
        Ok(())
    }

    fn parse_include_path(&mut self) -> Result<String, ConfigError> {
        let start = self.pos();
        match self.peek() {
            Some(quote @ ('"' | '\'')) => {
                self.bump();
                let mut path = String::new();
                loop {
                    match self.bump() {
                        None => return Err(self.syntax_error(&start, "unterminated include path")),
                        Some(c) if c == quote => return Ok(path),
                        Some(c) => path.push(c),
                    }
                }
            }
            None => Err(self.unexpected("a file name after include")),
            Some(c)
                if is_newline(c)
                    || c.is_ascii_digit()
                    || matches!(c, '[' | '{' | '(' | '-' | '\\' | ';' | '}') =>
            {
                Err(self.unexpected("a file name after include"))
            }
            Some(_) => {
                let mut path = String::new();
                while let Some(c) = self.peek() {
                    if is_newline(c) || is_blank(c) || matches!(c, ';' | '}' | '\'') {
                        break;
                    }
                    path.push(c);
                    self.bump();
                }
                Ok(path)
            }
        }
    }
}

fn push_char(bytes: &mut Vec<u8>, c: char) {
    let mut buf = [0u8; 4];
    bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
}

fn parse_bool_word(text: &str) -> Option<bool> {
    match text.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" => Some(true),
        "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

fn is_size_suffix(c: char) -> bool {
    matches!(c.to_ascii_lowercase(), 'k' | 'm' | 'g' | 't' | 'p' | 'e')
}

/// `k` = 1000, `kb`/`ki`/`kib` = 1024, and so on up to exa (case-insensitive).
fn size_multiplier(suffix: &str) -> Option<i64> {
    let lower = suffix.to_ascii_lowercase();
    let mut chars = lower.chars();
    let power = match chars.next()? {
        'k' => 1,
        'm' => 2,
        'g' => 3,
        't' => 4,
        'p' => 5,
        'e' => 6,
        _ => return None,
    };
    let base: i64 = match chars.as_str() {
        "" => 1000,
        "b" | "i" | "ib" => 1024,
        _ => return None,
    };
    base.checked_pow(power)
}

fn parse_integer(text: &str, pos: &Pos) -> Result<i64, ConfigError> {
    text.parse::<i64>()
        .map_err(|_| out_of_range("integer", text, pos))
}

/// nats-server's words for a number that does not fit (its parser's, not
/// its lexer's: no `Parse error` frame).
fn out_of_range(kind: &str, token: &str, pos: &Pos) -> ConfigError {
    ConfigError::at(pos, format!("{kind} '{token}' is out of the range"))
}

/// Month, day, hour, minute and second in their ranges (days per month are
/// not checked further).
fn datetime_in_range(token: &str) -> bool {
    let field = |from: usize, to: usize| token.get(from..to).and_then(|s| s.parse::<u32>().ok());
    matches!(
        (
            field(5, 7),
            field(8, 10),
            field(11, 13),
            field(14, 16),
            field(17, 19)
        ),
        (
            Some(1..=12),
            Some(1..=31),
            Some(0..=23),
            Some(0..=59),
            Some(0..=59)
        )
    )
}

/// Gives a value (and everything inside it) the position of a reference.
fn relocate(node: &mut Node, pos: &Pos) {
    node.pos = pos.clone();
    match &mut node.value {
        Value::Array(items) => items.iter_mut().for_each(|n| relocate(n, pos)),
        Value::Map(map) => {
            for entry in &mut map.entries {
                entry.key_pos = pos.clone();
                relocate(&mut entry.node, pos);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "ENV_SIZE" => Some("4k".to_string()),
            "ENV_MAP" => Some("{ a: 1, b: [x, y] }".to_string()),
            "ENV_HOST" => Some("10.0.0.1".to_string()),
            "ENV_BROKEN" => Some("\"open".to_string()),
            "ENV_CHAIN" => Some("$ENV_SIZE".to_string()),
            "ENV_LOOP" => Some("$ENV_LOOP".to_string()),
            _ => None,
        }
    }

    fn parse(source: &str) -> Result<Map, String> {
        parse_str(source, "t.conf", &env).map_err(|e| e.to_string())
    }

    fn parse_ok(source: &str) -> Map {
        match parse(source) {
            Ok(map) => map,
            Err(e) => panic!("unexpected error for {source:?}: {e}"),
        }
    }

    fn parse_err(source: &str) -> String {
        match parse(source) {
            Ok(map) => panic!("expected an error for {source:?}, got {map:?}"),
            Err(e) => e,
        }
    }

    fn value<'m>(map: &'m Map, key: &str) -> &'m Value {
        match map.get(key) {
            Some(entry) => &entry.node.value,
            None => panic!("no key {key:?} in {map:?}"),
        }
    }

    fn int(map: &Map, key: &str) -> i64 {
        match value(map, key) {
            Value::Integer(n) => *n,
            other => panic!("{key}: expected an integer, got {other:?}"),
        }
    }

    fn string(map: &Map, key: &str) -> String {
        match value(map, key) {
            Value::String(s) => s.clone(),
            other => panic!("{key}: expected a string, got {other:?}"),
        }
    }

    fn submap<'m>(map: &'m Map, key: &str) -> &'m Map {
        match value(map, key) {
            Value::Map(m) => m,
            other => panic!("{key}: expected a map, got {other:?}"),
        }
    }

    fn array<'m>(map: &'m Map, key: &str) -> Vec<&'m Value> {
        match value(map, key) {
            Value::Array(items) => items.iter().map(|n| &n.value).collect(),
            other => panic!("{key}: expected an array, got {other:?}"),
        }
    }

    /// A fresh directory for file-based tests.
    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("percore-conf-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        dir
    }

    fn write(path: &Path, text: &str) {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create dir");
        }
        std::fs::write(path, text).expect("write file");
    }

    #[test]
    fn assignment_forms_and_terminators() {
        let map = parse_ok("a = 1\nb: 2\nc 3\nd=4;\ne:5,\n  f   =   6   \ng\t7");
        for (key, n) in [
            ("a", 1),
            ("b", 2),
            ("c", 3),
            ("d", 4),
            ("e", 5),
            ("f", 6),
            ("g", 7),
        ] {
            assert_eq!(int(&map, key), n, "{key}");
        }
        // Several values on one line with terminators.
        let map = parse_ok("a = 1; b = 2, c = x");
        assert_eq!(int(&map, "a"), 1);
        assert_eq!(int(&map, "b"), 2);
        assert_eq!(string(&map, "c"), "x");
        // The value may follow the key on the next line when there is no separator.
        assert_eq!(int(&parse_ok("port\n4333"), "port"), 4333);
        // A file wrapped in braces, JSON style; quoted keys.
        let map = parse_ok("{\n \"port\": 4333, 'debug': true\n}\n");
        assert_eq!(int(&map, "port"), 4333);
        assert_eq!(value(&map, "debug"), &Value::Bool(true));
        assert!(parse_ok("").entries().is_empty());
        assert_eq!(int(&parse_ok("port: 4222;;\n;\n,"), "port"), 4222);
        assert!(parse_ok("  \n\n# only a comment\n").entries().is_empty());
    }

    #[test]
    fn comments() {
        let map = parse_ok(
            "# hash comment\n// slash comment\na = 1 # after a value\nb = 2 // after a value\n\
             m {\n  # inside a map\n  x = 1 // after a map value\n}\n\
             arr [\n  # inside an array\n  1 # after an element\n  2 // another\n]\n",
        );
        assert_eq!(int(&map, "a"), 1);
        assert_eq!(int(&map, "b"), 2);
        assert_eq!(int(submap(&map, "m"), "x"), 1);
        assert_eq!(
            array(&map, "arr"),
            vec![&Value::Integer(1), &Value::Integer(2)]
        );
        // Comment markers inside quoted strings are text.
        assert_eq!(string(&parse_ok("s = \"a # b // c\""), "s"), "a # b // c");
    }

    #[test]
    fn maps() {
        let map = parse_ok(
            "a { b { c: 1 } }\nd: { e = 2 }\nf = {g: 3, h: 4}\ni {\n  j: 5\n  k: 6;\n}\nempty {}",
        );
        assert_eq!(int(submap(submap(&map, "a"), "b"), "c"), 1);
        assert_eq!(int(submap(&map, "d"), "e"), 2);
        assert_eq!(int(submap(&map, "f"), "g"), 3);
        assert_eq!(int(submap(&map, "f"), "h"), 4);
        assert_eq!(int(submap(&map, "i"), "j"), 5);
        assert_eq!(int(submap(&map, "i"), "k"), 6);
        assert!(submap(&map, "empty").entries().is_empty());
        // Inside a map a value may follow its separator on the next line.
        assert_eq!(int(submap(&parse_ok("m {\n a:\n 1\n}"), "m"), "a"), 1);
        // Trailing separators are fine.
        assert_eq!(int(submap(&parse_ok("m { a: 1, }"), "m"), "a"), 1);
    }

    #[test]
    fn arrays() {
        let map = parse_ok(
            "a = [1, 2, 3]\nb [\n  x\n  y,\n  z\n]\nc: [1, [2, 3], {k: v}]\nd: []\ne: [1, 2,]",
        );
        let ints = |ns: &[i64]| ns.iter().map(|n| Value::Integer(*n)).collect::<Vec<_>>();
        assert_eq!(
            array(&map, "a"),
            ints(&[1, 2, 3]).iter().collect::<Vec<_>>()
        );
        assert_eq!(
            array(&map, "b"),
            vec![
                &Value::String("x".into()),
                &Value::String("y".into()),
                &Value::String("z".into())
            ]
        );
        let c = array(&map, "c");
        assert_eq!(c[0], &Value::Integer(1));
        assert!(matches!(c[1], Value::Array(inner) if inner.len() == 2));
        match c[2] {
            Value::Map(m) => assert_eq!(string(m, "k"), "v"),
            other => panic!("expected a map, got {other:?}"),
        }
        assert!(array(&map, "d").is_empty());
        assert_eq!(array(&map, "e").len(), 2);
        // Arrays of maps, the users-list shape.
        let map = parse_ok("users = [\n  {user: a, password: b}\n  {user: c, password: d}\n]");
        assert_eq!(array(&map, "users").len(), 2);
    }

    #[test]
    fn strings() {
        let map = parse_ok(concat!(
            "dq = \"tab\\there\\nnl \\\"q\\\" back\\\\slash \\x41\\r\"\n",
            "sq = 'raw \\t $X \"x\"'\n",
            "bare = hello\n",
            "ip = 127.0.0.1\n",
            "listen = 0.0.0.0:4222\n",
            "hostport = localhost:4222\n",
            "colon = :4222\n",
            "secret = 3secret\n",
            "kittens = 4kittens\n",
            "dollar = \"$NOT_A_VAR\"\n",
            "escaped_bare = a\\x41b\n",
            "empty = \"\"\n",
            "utf8 = \"h\u{e9}llo \u{1f600}\"\n",
            "multi = \"line1\nline2\"\n",
        ));
        assert_eq!(string(&map, "dq"), "tab\there\nnl \"q\" back\\slash A\r");
        assert_eq!(string(&map, "sq"), "raw \\t $X \"x\"");
        assert_eq!(string(&map, "bare"), "hello");
        assert_eq!(string(&map, "ip"), "127.0.0.1");
        assert_eq!(string(&map, "listen"), "0.0.0.0:4222");
        assert_eq!(string(&map, "hostport"), "localhost:4222");
        assert_eq!(string(&map, "colon"), ":4222");
        assert_eq!(string(&map, "secret"), "3secret");
        assert_eq!(string(&map, "kittens"), "4kittens");
        assert_eq!(string(&map, "dollar"), "$NOT_A_VAR");
        assert_eq!(string(&map, "escaped_bare"), "aAb");
        assert_eq!(string(&map, "empty"), "");
        assert_eq!(string(&map, "utf8"), "h\u{e9}llo \u{1f600}");
        assert_eq!(string(&map, "multi"), "line1\nline2");
    }

    #[test]
    fn block_strings() {
        let map = parse_ok("text = (\nline one\n  line (two)\n)\nafter = 1\n");
        assert_eq!(string(&map, "text"), "\nline one\n  line (two)");
        assert_eq!(int(&map, "after"), 1);
        assert_eq!(string(&parse_ok("t (\nx\n)"), "t"), "\nx");
        assert_eq!(
            parse_err("t = (\nnever closed) \n"),
            "t.conf:1:4: Parse error on line 1: 'block string is not closed with ')' alone on a line'"
        );
    }

    #[test]
    fn integers_and_size_suffixes() {
        let cases: &[(&str, i64)] = &[
            ("4222", 4222),
            ("-5", -5),
            ("0", 0),
            ("1k", 1000),
            ("1K", 1000),
            ("1kb", 1024),
            ("1KB", 1024),
            ("1ki", 1024),
            ("1kib", 1024),
            ("1KiB", 1024),
            ("64K", 64_000),
            ("2m", 2_000_000),
            ("2MB", 2_097_152),
            ("2mb", 2_097_152),
            ("2Mi", 2_097_152),
            ("2mib", 2_097_152),
            ("1g", 1_000_000_000),
            ("1GB", 1_073_741_824),
            ("1gi", 1_073_741_824),
            ("1gib", 1_073_741_824),
            ("1t", 1_000_000_000_000),
            ("1tb", 1 << 40),
            ("1p", 1_000_000_000_000_000),
            ("1pb", 1 << 50),
            ("1e", 1_000_000_000_000_000_000),
            ("1eb", 1 << 60),
            ("-2k", -2000),
            ("9223372036854775807", i64::MAX),
            ("-9223372036854775808", i64::MIN),
        ];
        for (text, expected) in cases {
            let map = parse_ok(&format!("n = {text}"));
            assert_eq!(int(&map, "n"), *expected, "{text}");
        }
    }

    #[test]
    fn floats_bools_datetimes() {
        let map = parse_ok("f = 1.5\ng = -2.25\nh = 10.0");
        assert_eq!(value(&map, "f"), &Value::Float(1.5));
        assert_eq!(value(&map, "g"), &Value::Float(-2.25));
        assert_eq!(value(&map, "h"), &Value::Float(10.0));
        for (text, b) in [
            ("true", true),
            ("TRUE", true),
            ("yes", true),
            ("Yes", true),
            ("on", true),
            ("ON", true),
            ("false", false),
            ("False", false),
            ("no", false),
            ("NO", false),
            ("off", false),
            ("Off", false),
        ] {
            assert_eq!(
                value(&parse_ok(&format!("b = {text}")), "b"),
                &Value::Bool(b),
                "{text}"
            );
        }
        // Quoted, they are strings.
        assert_eq!(string(&parse_ok("b = \"true\""), "b"), "true");
        assert_eq!(
            value(&parse_ok("d = 2020-01-02T03:04:05Z"), "d"),
            &Value::DateTime("2020-01-02T03:04:05Z".into())
        );
        assert_eq!(
            parse_err("d = 2020-13-02T03:04:05Z"),
            "t.conf:1:4: Parse error on line 1: 'invalid datetime '2020-13-02T03:04:05Z', the form is YYYY-MM-DDTHH:MM:SSZ'"
        );
        assert_eq!(
            parse_err("d = 2020-01-02"),
            "t.conf:1:4: Parse error on line 1: 'invalid datetime '2020-01-02', the form is YYYY-MM-DDTHH:MM:SSZ'"
        );
        assert_eq!(
            parse_err("d = 12-3"),
            "t.conf:1:4: Parse error on line 1: 'a datetime must have the form YYYY-MM-DDTHH:MM:SSZ'"
        );
    }

    #[test]
    fn number_errors() {
        assert_eq!(
            parse_err("n = 99999999999999999999"),
            "t.conf:1:4: integer '99999999999999999999' is out of the range"
        );
        assert_eq!(
            parse_err("n = 8eb"),
            "t.conf:1:4: integer '8eb' is out of the range"
        );
        assert_eq!(
            parse_err("n = 1kbb"),
            "t.conf:1:4: Parse error on line 1: 'unknown size suffix \"kbb\" in '1kbb''"
        );
        assert_eq!(
            parse_err("n = .5"),
            "t.conf:1:4: Parse error on line 1: 'a number must start with a digit, not '.''"
        );
        assert_eq!(
            parse_err("n = -.5"),
            "t.conf:1:4: Parse error on line 1: 'a number must start with a digit, not '.''"
        );
        assert_eq!(
            parse_err("n = -x"),
            "t.conf:1:5: Parse error on line 1: 'expected a digit after '-', found 'x''"
        );
        assert_eq!(
            parse_err("n = 1.x"),
            "t.conf:1:6: Parse error on line 1: 'expected a digit after '.', found 'x''"
        );
        assert_eq!(
            parse_err("n = 1.5x"),
            "t.conf:1:7: Parse error on line 1: 'expected a new line, ';', ',' or a comment after the value, found 'x''"
        );
    }

    #[test]
    fn positions_are_recorded() {
        let map = parse_ok("a = 1\n  m {\n    bb: \"x\"\n  }\n");
        let a = map.get("a").expect("a");
        // Line 1 counts from 0, later lines from 1, as nats-server's lexer.
        assert_eq!((a.key_pos.line, a.key_pos.col), (1, 0));
        assert_eq!((a.node.pos.line, a.node.pos.col), (1, 4));
        let m = map.get("m").expect("m");
        assert_eq!((m.key_pos.line, m.key_pos.col), (2, 3));
        assert_eq!((m.node.pos.line, m.node.pos.col), (2, 5));
        let bb = submap(&map, "m").get("bb").expect("bb");
        assert_eq!(bb.key_pos.to_string(), "t.conf:3:5");
        assert_eq!(bb.node.pos.to_string(), "t.conf:3:9");
    }

    #[test]
    fn duplicate_keys_keep_the_last_value() {
        let map = parse_ok("a = 1\nb = 2\na = 3");
        assert_eq!(int(&map, "a"), 3);
        let keys: Vec<&str> = map.entries().iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["b", "a"]);
    }

    #[test]
    fn variables_resolve_in_scope_order() {
        let map = parse_ok(
            "size = 2MB\nhost = outer\nm {\n  host = inner\n  a = $host\n  b = $size\n  n { c = $host }\n}\nd = $host\ne = [$size, {f: $host}]",
        );
        let m = submap(&map, "m");
        assert_eq!(string(m, "a"), "inner");
        assert_eq!(int(m, "b"), 2_097_152);
        assert_eq!(string(submap(m, "n"), "c"), "inner");
        assert_eq!(string(&map, "d"), "outer");
        let e = array(&map, "e");
        assert_eq!(e[0], &Value::Integer(2_097_152));
        match e[1] {
            Value::Map(f) => assert_eq!(string(f, "f"), "outer"),
            other => panic!("expected a map, got {other:?}"),
        }
        // Used definitions are marked; the reference carries its own position.
        assert!(map.get("size").expect("size").used_as_variable);
        assert!(!map.get("d").expect("d").used_as_variable);
        let d = map.get("d").expect("d");
        assert_eq!((d.node.pos.line, d.node.pos.col), (9, 5));
        // Maps and arrays can be referenced too.
        let map = parse_ok("defaults { x = 1 }\ncopy = $defaults");
        assert_eq!(int(submap(&map, "copy"), "x"), 1);
    }

    #[test]
    fn variables_fall_back_to_the_environment() {
        let map = parse_ok("a = $ENV_SIZE\nb = $ENV_MAP\nc = $ENV_HOST\nd = $ENV_CHAIN");
        assert_eq!(int(&map, "a"), 4000);
        assert_eq!(int(submap(&map, "b"), "a"), 1);
        assert_eq!(string(&map, "c"), "10.0.0.1");
        assert_eq!(int(&map, "d"), 4000);
        // A file definition shadows the environment.
        assert_eq!(int(&parse_ok("ENV_SIZE = 7\na = $ENV_SIZE"), "a"), 7);
        assert_eq!(
            parse_err("a = $ENV_BROKEN"),
            "t.conf:1:4: variable reference for 'ENV_BROKEN' on line 1 could not be parsed: \
             $ENV_BROKEN:1:6: Parse error on line 1: 'unterminated string'"
        );
        assert!(parse_err("a = $ENV_LOOP").contains("refer to each other too deeply"));
    }

    #[test]
    fn undefined_variables_are_errors() {
        assert_eq!(
            parse_err("port = 1\nx = $UNDEFINED_Q"),
            "t.conf:2:5: variable reference for 'UNDEFINED_Q' on line 2 can not be found"
        );
        // Only what is defined before the reference is visible.
        assert_eq!(
            parse_err("x { z = $port }\nport = 4222"),
            "t.conf:1:8: variable reference for 'port' on line 1 can not be found"
        );
        // A sibling map's keys are not in scope.
        assert_eq!(
            parse_err("x { y = 1 }\nport: $y"),
            "t.conf:2:7: variable reference for 'y' on line 2 can not be found"
        );
        assert_eq!(
            parse_err("x = $"),
            "t.conf:1:4: variable reference for '' on line 1 can not be found"
        );
    }

    #[test]
    fn bcrypt_hashes_are_literal() {
        let map = parse_ok("pass = $2a$11$W2zko751KUvVy59mUTWmpOdWjpEm5qhcCZRd05GjI/sSOT.xtiHyG");
        assert_eq!(
            string(&map, "pass"),
            "$2a$11$W2zko751KUvVy59mUTWmpOdWjpEm5qhcCZRd05GjI/sSOT.xtiHyG"
        );
        // Other bcrypt prefixes are variable references, as in nats-server.
        assert!(parse_err("pass = $2b$11$abc").contains("variable reference for '2b$11$abc'"));
    }

    #[test]
    fn includes_are_relative_to_the_including_file() {
        let dir = temp_dir("include");
        write(
            &dir.join("main.conf"),
            "include sub/a.conf\nfrom_a = $A\nm { include 'sub/b.conf' }\n",
        );
        write(&dir.join("sub/a.conf"), "A = 1\ninclude \"c.conf\"\n");
        write(&dir.join("sub/c.conf"), "C = 3\n");
        write(&dir.join("sub/b.conf"), "B = 2; x = y\n");
        let map = parse_file(&dir.join("main.conf"), &env).expect("parse");
        assert_eq!(int(&map, "A"), 1);
        assert_eq!(int(&map, "C"), 3);
        assert_eq!(int(&map, "from_a"), 1);
        assert!(map.get("A").expect("A").used_as_variable);
        assert_eq!(int(submap(&map, "m"), "B"), 2);
        // Included values carry their own file.
        let c = map.get("C").expect("C");
        assert_eq!(
            c.key_pos.to_string(),
            format!("{}:1:0", dir.join("sub/c.conf").display())
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn include_errors() {
        let dir = temp_dir("include-errors");
        write(
            &dir.join("missing.conf"),
            "port = 1\ninclude nothere.conf\n",
        );
        let err = parse_file(&dir.join("missing.conf"), &env).expect_err("missing include");
        // As nats-server 2.9.10: no position, the cleaned path.
        assert_eq!(
            err.to_string(),
            format!(
                "error parsing include file 'nothere.conf', open {}: no such file or directory",
                dir.join("nothere.conf").display()
            )
        );
        write(&dir.join("dotted.conf"), "include ./sub/../nothere.conf\n");
        let err = parse_file(&dir.join("dotted.conf"), &env).expect_err("missing include");
        assert_eq!(
            err.to_string(),
            format!(
                "error parsing include file './sub/../nothere.conf', open {}: no such file or directory",
                dir.join("nothere.conf").display()
            )
        );
        write(&dir.join("bad.conf"), "include inner.conf\n");
        write(&dir.join("inner.conf"), "a = 1\nb = \"open\n");
        let err = parse_file(&dir.join("bad.conf"), &env).expect_err("bad include");
        assert_eq!(
            err.to_string(),
            format!(
                "{}:2:5: Parse error on line 2: 'unterminated string'",
                dir.join("inner.conf").display()
            )
        );
        write(&dir.join("cycle.conf"), "include cycle.conf\n");
        let err = parse_file(&dir.join("cycle.conf"), &env).expect_err("cycle");
        assert!(err.to_string().contains("include cycle?"), "{err}");
        let err = parse_file(&dir.join("absent.conf"), &env).expect_err("absent");
        assert_eq!(
            err.to_string(),
            format!(
                "open {}: no such file or directory",
                dir.join("absent.conf").display()
            )
        );
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(
            parse_err("include\n"),
            "t.conf:1:7: Parse error on line 1: 'expected a file name after include, found a new line'"
        );
        assert_eq!(
            parse_err("include [a]"),
            "t.conf:1:8: Parse error on line 1: 'expected a file name after include, found '[''"
        );
    }

    #[test]
    fn syntax_errors_name_file_line_and_column() {
        let cases: &[(&str, &str)] = &[
            ("port:\n4222", "t.conf:1:5: Parse error on line 1: 'expected a value, found a new line'"),
            ("port", "t.conf:1:0: Parse error on line 1: 'key \"port\" has no value'"),
            ("a = 1\nport =", "t.conf:2:1: Parse error on line 2: 'key \"port\" has no value'"),
            (
                "port = 4222 host = \"h\"",
                "t.conf:1:12: Parse error on line 1: 'expected a new line, ';', ',' or a comment after the value, found 'h''",
            ),
            ("s = \"abc", "t.conf:1:4: Parse error on line 1: 'unterminated string'"),
            ("s = 'abc", "t.conf:1:4: Parse error on line 1: 'unterminated string'"),
            ("\"key = 1", "t.conf:1:0: Parse error on line 1: 'unterminated quoted key'"),
            ("m {\n a = 1\n", "t.conf:1:2: Parse error on line 1: 'map is not closed with '}''"),
            ("m { a = 1", "t.conf:1:2: Parse error on line 1: 'map is not closed with '}''"),
            ("a = [1, 2\n", "t.conf:1:4: Parse error on line 1: 'array is not closed with ']''"),
            ("a = [1 2]", "t.conf:1:7: Parse error on line 1: 'expected ',', a new line or ']' after the array element, found '2''"),
            ("a = [,]", "t.conf:1:5: Parse error on line 1: 'expected an array element, found ',''"),
            ("m { a }", "t.conf:1:4: Parse error on line 1: 'key \"a\" has no value'"),
            ("m { a = 1 b = 2 }", "t.conf:1:10: Parse error on line 1: 'expected ',', ';', a new line or '}' after the map value, found 'b''"),
            ("m { , }", "t.conf:1:4: Parse error on line 1: 'unexpected ',' where a key was expected'"),
            (": 1", "t.conf:1:0: Parse error on line 1: 'unexpected ':' where a key was expected'"),
            ("] = 1", "t.conf:1:0: Parse error on line 1: 'unexpected ']' where a key was expected'"),
            ("a = ,", "t.conf:1:4: Parse error on line 1: 'expected a value, found ',''"),
            (
                "s = \"a\\ub\"",
                "t.conf:1:7: Parse error on line 1: 'invalid escape '\\u'; allowed are \\t \\n \\r \\\" \\\\ and \\xHH'",
            ),
            ("s = \"\\x4\"", "t.conf:1:6: Parse error on line 1: ''\\x' must be followed by two hex digits'"),
            ("s = a'b", "t.conf:1:5: Parse error on line 1: 'expected a new line, ';', ',' or a comment after the value, found '\\'''"),
            ("a = 1 / 2", "t.conf:1:6: Parse error on line 1: 'expected a new line, ';', ',' or a comment after the value, found '/''"),
        ];
        for (source, expected) in cases {
            assert_eq!(&parse_err(source), expected, "source: {source:?}");
        }
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep_arrays = format!("a = {}", "[".repeat(100_000));
        assert!(parse_err(&deep_arrays).contains("nested more than 100 levels"));
        let deep_maps = format!("a = {}", "{ b = ".repeat(100_000));
        assert!(parse_err(&deep_maps).contains("nested more than 100 levels"));
        // 100 levels are fine.
        let ok = format!("a = {}1{}", "[".repeat(100), "]".repeat(100));
        parse_ok(&ok);
    }

    #[test]
    fn junk_never_panics() {
        let junk: Vec<u8> = (0u32..4096)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let dir = temp_dir("junk");
        write(&dir.join("junk.conf"), "");
        std::fs::write(dir.join("junk.conf"), &junk).expect("write");
        let _ = parse_file(&dir.join("junk.conf"), &env);
        let _ = std::fs::remove_dir_all(&dir);

        // Every prefix and every one-character deletion of a realistic file.
        let sample = "# c\nlisten: 0.0.0.0:4222\nsize = 2MB\nm { a: [1, 'x', \"y\\n\", {b: $size}], c: (\nblock\n) }\n\
                      t = 2020-01-02T03:04:05Z // d\nf = -1.5; g = yes, e = $ENV_MAP\ninclude nope.conf\n";
        let chars: Vec<char> = sample.chars().collect();
        for end in 0..=chars.len() {
            let prefix: String = chars[..end].iter().collect();
            let _ = parse(&prefix);
        }
        for skip in 0..chars.len() {
            let mutated: String = chars
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != skip)
                .map(|(_, c)| *c)
                .collect();
            let _ = parse(&mutated);
        }
        for special in [
            "\0", "\u{feff}", "\r\n", "\\", "$", "{", "}", "[", "]", "(", ")", "\"", "'", "-", ".",
        ] {
            let _ = parse(special);
            let _ = parse(&format!("a = {special}"));
            let _ = parse(&format!("m {{ a = {special}"));
        }
    }
}

//! The chunk-size line of a chunked body, checked against its grammar
//! (RFC 9112 §7.1, §7.1.1):
//!
//! ```text
//! chunk-size-line = 1*HEXDIG *( BWS ";" BWS token [ BWS "=" BWS ( token / quoted-string ) ] ) CRLF
//! ```
//!
//! `httparse::parse_chunk_size` skips everything after a `;` up to the next
//! LF, bare or not. A front end that ends the line at a bare LF and one that
//! skips it frame the body differently: that is a request-smuggling desync,
//! so the line is read here, byte by byte, and anything outside the grammar
//! is refused. Whitespace after the size with no `;` after it (`a \r\n`) is
//! outside the grammar (BWS only ever precedes a `;` or `=`) and is refused.

use super::HttpError;

/// Longest chunk-size line accepted (size, extensions, CRLF).
pub(crate) const MAX_LINE: usize = 1024;

/// Reads the chunk-size line at the start of `input`: `Ok(None)` until its
/// LF arrives, else the line's length (CRLF included) and the chunk size.
pub(crate) fn parse_size_line(input: &[u8]) -> Result<Option<(usize, u64)>, HttpError> {
    let window = &input[..input.len().min(MAX_LINE)];
    let Some(lf) = window.iter().position(|&b| b == b'\n') else {
        if input.len() >= MAX_LINE {
            return Err(HttpError::BadRequest("chunk size line too long"));
        }
        return Ok(None);
    };
    let line = window[..lf]
        .strip_suffix(b"\r")
        .ok_or(HttpError::BadRequest("chunk size line ends in a bare LF"))?;
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 {
        return Err(HttpError::BadRequest("empty chunk size"));
    }
    let size = line[..digits]
        .iter()
        .try_fold(0u64, |size, &digit| {
            let value = char::from(digit).to_digit(16)?;
            size.checked_mul(16)?.checked_add(u64::from(value))
        })
        .ok_or(HttpError::BadRequest("chunk size overflows"))?;
    check_extensions(&line[digits..])?;
    Ok(Some((lf + 1, size)))
}

const BAD_EXTENSION: HttpError = HttpError::BadRequest("malformed chunk extension");

/// `*( BWS ";" BWS token [ BWS "=" BWS ( token / quoted-string ) ] )`, all of `rest`.
fn check_extensions(mut rest: &[u8]) -> Result<(), HttpError> {
    while !rest.is_empty() {
        rest = skip_bws(rest).strip_prefix(b";").ok_or(BAD_EXTENSION)?;
        rest = skip_token(skip_bws(rest))?;
        if let Some(value) = skip_bws(rest).strip_prefix(b"=") {
            rest = skip_value(skip_bws(value))?;
        }
    }
    Ok(())
}

fn skip_bws(bytes: &[u8]) -> &[u8] {
    let spaces = bytes.iter().take_while(|&&b| b == b' ' || b == b'\t').count();
    &bytes[spaces..]
}

/// `1*tchar` at the start of `bytes`, skipped.
fn skip_token(bytes: &[u8]) -> Result<&[u8], HttpError> {
    match bytes.iter().take_while(|&&b| is_tchar(b)).count() {
        0 => Err(BAD_EXTENSION),
        length => Ok(&bytes[length..]),
    }
}

/// `token / quoted-string` at the start of `bytes`, skipped.
fn skip_value(bytes: &[u8]) -> Result<&[u8], HttpError> {
    let Some(mut rest) = bytes.strip_prefix(b"\"") else {
        return skip_token(bytes);
    };
    loop {
        match rest {
            [b'"', after @ ..] => return Ok(after),
            [b'\\', escaped, after @ ..] if is_quoted_pair_char(*escaped) => rest = after,
            [byte, after @ ..] if is_qdtext(*byte) => rest = after,
            _ => return Err(HttpError::BadRequest("malformed quoted string in a chunk extension")),
        }
    }
}

/// `tchar` (RFC 9110 §5.6.2).
fn is_tchar(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

/// `qdtext = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text` (RFC 9110 §5.6.4).
fn is_qdtext(byte: u8) -> bool {
    matches!(byte, b'\t' | b' ' | 0x21 | 0x23..=0x5B | 0x5D..=0x7E | 0x80..=0xFF)
}

/// What may follow a `\` in a quoted string: `HTAB / SP / VCHAR / obs-text`.
fn is_quoted_pair_char(byte: u8) -> bool {
    matches!(byte, b'\t' | b' '..=0x7E | 0x80..=0xFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn size_of(line: &[u8]) -> Result<Option<(usize, u64)>, HttpError> {
        parse_size_line(line)
    }

    #[test]
    fn valid_lines_give_their_size_and_length() {
        let cases: [(&[u8], u64); 12] = [
            (b"0\r\n", 0),
            (b"a\r\n", 10),
            (b"Ff\r\n", 255),
            (b"00000000000000000001\r\n", 1),
            (b"ffffffffffffffff\r\n", u64::MAX),
            (b"5;ext\r\n", 5),
            (b"5;a=b;c=d\r\n", 5),
            (b"5 ; a = b\r\n", 5),
            (b"5\t;\ta\t=\tb\r\n", 5),
            (b"5;a=\"b;c\"\r\n", 5),
            (b"5;a=\"q\\\"uo\\\\te \t\x80\"\r\n", 5),
            (b"5;a=\"\";!#$%&'*+-.^_`|~09AZaz=x\r\n", 5),
        ];
        for (line, size) in cases {
            let parsed = size_of(line).unwrap_or_else(|err| panic!("{:?}: {err}", line.escape_ascii().to_string()));
            assert_eq!(parsed, Some((line.len(), size)), "{}", line.escape_ascii());
        }
    }

    #[test]
    fn the_line_ends_at_its_first_lf_and_only_there() {
        assert_eq!(size_of(b"3;x=y\r\nabc\r\n"), Ok(Some((7, 3))));
        for partial in [&b""[..], b"5", b"5;a=\"b", b"5\r"] {
            assert_eq!(size_of(partial), Ok(None), "{}", partial.escape_ascii());
        }
    }

    #[test]
    fn lines_outside_the_grammar_are_refused() {
        let cases: [&[u8]; 24] = [
            b"\r\n",
            b";ext\r\n",
            b" 5\r\n",
            b"5 \r\n",
            b"5\t\r\n",
            b"5;\r\n",
            b"5;=b\r\n",
            b"5;a=\r\n",
            b"5;a \r\n",
            b"5;a=b \r\n",
            b"5;a b\r\n",
            b"5;a=\"b\r\n",
            b"5;a=\"b\"c\r\n",
            b"5;a=b\"c\"\r\n",
            b"5;a=\"b\\\x01\"\r\n",
            b"5;a=\"\x7f\"\r\n",
            b"5;a\x00\r\n",
            b"2;a\nAB\r\n",
            b"5\n",
            b"5\rx\r\n",
            b"5;a\rb\r\n",
            b"0x5\r\n",
            b"-5\r\n",
            b"10000000000000000\r\n",
        ];
        for line in cases {
            let err = size_of(line).expect_err(&line.escape_ascii().to_string());
            assert_eq!(err.status().code, 400, "{}: {err}", line.escape_ascii());
        }
    }

    #[test]
    fn the_line_length_is_capped() {
        let long_extension = format!("5;a={}\r\n", "b".repeat(MAX_LINE));
        assert!(size_of(long_extension.as_bytes()).is_err());
        assert!(size_of(&vec![b'0'; MAX_LINE]).is_err(), "no LF within the cap");
        let longest = format!("5;a={}\r\n", "b".repeat(MAX_LINE - 6));
        assert_eq!(longest.len(), MAX_LINE);
        assert_eq!(size_of(longest.as_bytes()), Ok(Some((MAX_LINE, 5))));
    }
}

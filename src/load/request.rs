//! The request bytes, rendered once per run.
//!
//! Every request of a run is identical, so a worker holds `pipeline` copies
//! back to back and writes a suffix of that buffer: the bytes still to send
//! always end on a request boundary, so any suffix is "the rest of one request
//! followed by whole requests". Nothing is formatted or allocated per request.

use super::{Config, ConnectionMode};

/// Renders one request for `config`.
pub(crate) fn render(config: &Config) -> Vec<u8> {
    let version = match config.mode {
        ConnectionMode::Http10 => "HTTP/1.0",
        ConnectionMode::KeepAlive | ConnectionMode::Close => "HTTP/1.1",
    };
    let has = |name: &str| config.headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
    let mut text = format!("GET {} {version}\r\n", config.target.path);
    if !has("host") {
        text.push_str(&format!("Host: {}\r\n", config.target.host_header));
    }
    if config.mode == ConnectionMode::Close && !has("connection") {
        text.push_str("Connection: close\r\n");
    }
    for (name, value) in &config.headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str("\r\n");
    text.into_bytes()
}

/// `depth` copies of `request`, back to back.
pub(crate) fn repeated(request: &[u8], depth: usize) -> Vec<u8> {
    request.repeat(depth)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::Target;

    fn config(mode: ConnectionMode, headers: &[(&str, &str)]) -> Config {
        let mut config = Config::new(Target::parse("http://127.0.0.1:8080/sleep?ms=1").unwrap());
        config.mode = mode;
        config.headers = headers
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect();
        config
    }

    #[test]
    fn keepalive_request_is_minimal_http11() {
        let text = render(&config(ConnectionMode::KeepAlive, &[]));
        assert_eq!(text, b"GET /sleep?ms=1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n");
    }

    #[test]
    fn close_mode_asks_the_server_to_close() {
        let text = String::from_utf8(render(&config(ConnectionMode::Close, &[("X-A", "1")]))).unwrap();
        assert!(text.contains("\r\nConnection: close\r\n"), "{text}");
        assert!(text.ends_with("X-A: 1\r\n\r\n"), "{text}");
    }

    #[test]
    fn http10_has_no_keepalive_and_user_host_wins() {
        let text = String::from_utf8(render(&config(ConnectionMode::Http10, &[("host", "example")]))).unwrap();
        assert_eq!(text, "GET /sleep?ms=1 HTTP/1.0\r\nhost: example\r\n\r\n");
    }
}

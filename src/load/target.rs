//! The target of a run: `http://host[:port][/path]`, parsed and resolved once.

use std::net::{SocketAddr, ToSocketAddrs};

use super::LoadError;

/// Where the requests go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The URL as given.
    pub url: String,
    /// The value of the `Host` header (`host` or `host:port`, as in the URL).
    pub host_header: String,
    /// The resolved address (the first one the resolver returned).
    pub addr: SocketAddr,
    /// Path and query, e.g. `/sleep?ms=20`; `/` when the URL has none.
    pub path: String,
}

impl Target {
    /// `path` (e.g. `/sleep?ms=20`) on the server at `addr`: what `compare`
    /// aims at once a server has announced its address. The path is checked
    /// as [`Target::parse`] checks it.
    /// A port of 0 stands for "not known yet" (a planned run whose server
    /// has not started).
    pub fn at(addr: SocketAddr, path: &str) -> Result<Self, LoadError> {
        let url = format!("http://{addr}{path}");
        let path = request_path(path).map_err(|reason| LoadError::InvalidUrl {
            url: url.clone(),
            reason: reason.to_owned(),
        })?;
        Ok(Self {
            url,
            host_header: addr.to_string(),
            addr,
            path,
        })
    }

    /// Parses an `http://` URL and resolves its host.
    ///
    /// `https` is refused (the load generator speaks plain HTTP/1.x only).
    pub fn parse(url: &str) -> Result<Self, LoadError> {
        let invalid = |reason: &str| LoadError::InvalidUrl {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        let rest = match url.split_once("://") {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => rest,
            Some((scheme, _)) => return Err(invalid(&format!("scheme {scheme:?} is not supported, only http"))),
            None => url,
        };
        let (authority, path) = match rest.find(['/', '?']) {
            Some(at) if rest.as_bytes()[at] == b'/' => (&rest[..at], &rest[at..]),
            Some(at) => (&rest[..at], &rest[at..]),
            None => (rest, "/"),
        };
        let path = request_path(path).map_err(invalid)?;
        if authority.is_empty() {
            return Err(invalid("no host"));
        }
        if authority.contains('@') {
            return Err(invalid("user information is not supported"));
        }
        let (host, port) = split_host_port(authority).ok_or_else(|| invalid("bad host or port"))?;
        let lookup = format!("{host}:{port}");
        let addr = lookup
            .to_socket_addrs()
            .map_err(|source| LoadError::Resolve {
                host: lookup.clone(),
                source,
            })?
            .next()
            .ok_or_else(|| LoadError::Resolve {
                host: lookup.clone(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no address"),
            })?;
        Ok(Self {
            url: url.to_owned(),
            host_header: authority.to_owned(),
            addr,
            path,
        })
    }
}

/// The request-target for a URL's path part (`/x`, `?q` or empty): the
/// fragment dropped, a bare query given its `/`.
fn request_path(raw: &str) -> Result<String, &'static str> {
    let path = raw.split('#').next().unwrap_or_default();
    let path = match path {
        "" => "/".to_owned(),
        query if query.starts_with('?') => format!("/{query}"),
        path if path.starts_with('/') => path.to_owned(),
        _ => return Err("the path must start with / or ?"),
    };
    if path.bytes().any(|b| b.is_ascii_control() || b == b' ') {
        return Err("the path contains spaces or control characters (percent-encode them)");
    }
    Ok(path)
}

/// Splits `host[:port]` or `[v6][:port]`; the host keeps its brackets off.
fn split_host_port(authority: &str) -> Option<(&str, u16)> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        match after {
            "" => (host, None),
            _ => (host, Some(after.strip_prefix(':')?)),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return None;
    }
    let port = match port {
        Some(port) => port.parse().ok().filter(|&p| p != 0)?,
        None => 80,
    };
    Some((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_host_port_and_path() {
        let target = Target::parse("http://127.0.0.1:8080/sleep?ms=20").unwrap();
        assert_eq!(target.addr, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(target.path, "/sleep?ms=20");
        assert_eq!(target.host_header, "127.0.0.1:8080");
    }

    #[test]
    fn aims_a_path_at_an_address() {
        let addr = "127.0.0.1:8080".parse().unwrap();
        let target = Target::at(addr, "/bytes?n=10").unwrap();
        assert_eq!(target, Target::parse("http://127.0.0.1:8080/bytes?n=10").unwrap());
        assert!(Target::at(addr, "no-slash").is_err());
        assert!(Target::at(addr, "/a b").is_err());
    }

    #[test]
    fn defaults_path_and_port() {
        let target = Target::parse("http://127.0.0.1").unwrap();
        assert_eq!(target.addr.port(), 80);
        assert_eq!(target.path, "/");
        let target = Target::parse("127.0.0.1:9/x#frag").unwrap();
        assert_eq!(target.path, "/x");
        let target = Target::parse("http://127.0.0.1:9?q=1").unwrap();
        assert_eq!(target.path, "/?q=1");
    }

    #[test]
    fn parses_ipv6_literals() {
        let target = Target::parse("http://[::1]:8080/").unwrap();
        assert_eq!(target.addr, "[::1]:8080".parse().unwrap());
        assert_eq!(target.host_header, "[::1]:8080");
    }

    #[test]
    fn refuses_what_it_cannot_do() {
        for url in [
            "https://127.0.0.1/",
            "http://",
            "http://127.0.0.1:0/",
            "http://127.0.0.1:x/",
            "http://a@b/",
        ] {
            assert!(Target::parse(url).is_err(), "{url}");
        }
    }
}

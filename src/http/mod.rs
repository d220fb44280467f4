//! The HTTP/1.1 codec both scopes share: request parsing (httparse), limits,
//! keep-alive rules, body discarding, response encoding.
//!
//! | module | holds |
//! |---|---|
//! | [`limits`](Limits) | sizes past which a request is refused |
//! | `request` | the parsed [`Request`] and the header rules (framing, `Host`, `Connection`) |
//! | `decoder` | [`RequestDecoder`]: bytes in any split → requests, bodies discarded |
//! | `chunked` | the chunk-size line, checked against its grammar (httparse's is lenient) |
//! | `response` | [`Response`], [`Status`], encoding with `Content-Length` always |
//! | `error` | [`HttpError`]: every refusal and its status |
//!
//! Bad input never panics and never hangs: each [`HttpError`] maps to one
//! status, and the server closes the connection after answering it.
//!
//! Framing is as strict as the strictest parsers: wherever two readings of
//! the same bytes could frame a request differently (a bare LF, a chunk
//! extension outside its grammar), the request is refused, so no request
//! can be smuggled behind another. README's "HTTP behaviour" lists the rules.

mod chunked;
mod date;
mod decoder;
mod error;
mod limits;
mod request;
mod response;

pub use decoder::{Decoded, RequestDecoder};
pub use error::HttpError;
pub use limits::Limits;
pub use request::{Method, Request, Version};
pub use response::{CONTINUE, Connection, Response, Status};

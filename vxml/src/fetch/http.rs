//! A small blocking HTTP/1.1 client for the interpreter's shells (http only; https is refused
//! with a clear message because no TLS stack with a GPL-compatible licence and without `ring`
//! is linked).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// A response.
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Final URL after redirects.
    pub url: String,
    /// Body.
    pub body: Vec<u8>,
}

/// Why a request failed before a status arrived.
#[derive(Debug)]
pub enum HttpError {
    /// The scheme is not http.
    Unsupported(String),
    /// Connection or protocol error.
    Io(String),
}

/// Sends a request, following up to five redirects.
pub fn request(
    method: &str,
    url: &str,
    content_type: Option<&str>,
    body: &[u8],
    timeout: Duration,
) -> Result<Response, HttpError> {
    let mut url = url.to_string();
    let mut method = method.to_string();
    let mut body = body.to_vec();
    for _ in 0..6 {
        let r = once(&method, &url, content_type, &body, timeout)?;
        if matches!(r.0, 301 | 302 | 303 | 307 | 308) {
            if let Some(loc) = r.2 {
                url = url::Url::parse(&url)
                    .and_then(|b| b.join(&loc))
                    .map(|u| u.to_string())
                    .map_err(|e| HttpError::Io(e.to_string()))?;
                if r.0 == 303 || ((r.0 == 301 || r.0 == 302) && method == "POST") {
                    method = "GET".into();
                    body.clear();
                }
                continue;
            }
        }
        return Ok(Response {
            status: r.0,
            url,
            body: r.1,
        });
    }
    Err(HttpError::Io(format!("too many redirects at {url}")))
}

fn once(
    method: &str,
    url: &str,
    content_type: Option<&str>,
    body: &[u8],
    timeout: Duration,
) -> Result<(u16, Vec<u8>, Option<String>), HttpError> {
    let u = url::Url::parse(url).map_err(|e| HttpError::Io(format!("{url}: {e}")))?;
    if u.scheme() != "http" {
        return Err(HttpError::Unsupported(u.scheme().to_string()));
    }
    let host = u
        .host_str()
        .ok_or_else(|| HttpError::Io(format!("{url}: no host")))?;
    let port = u.port_or_known_default().unwrap_or(80);
    let io = |e: std::io::Error| HttpError::Io(format!("{url}: {e}"));
    let addr = std::net::ToSocketAddrs::to_socket_addrs(&(host, port))
        .map_err(io)?
        .next()
        .ok_or_else(|| HttpError::Io(format!("{url}: no address")))?;
    let mut s = TcpStream::connect_timeout(&addr, timeout).map_err(io)?;
    s.set_read_timeout(Some(timeout)).map_err(io)?;
    s.set_write_timeout(Some(timeout)).map_err(io)?;
    let mut path = u.path().to_string();
    if let Some(q) = u.query() {
        path.push('?');
        path.push_str(q);
    }
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: outcall-vxml-run\r\nConnection: close\r\nAccept: */*\r\n");
    if method == "POST" {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
        if let Some(ct) = content_type {
            req.push_str(&format!("Content-Type: {ct}\r\n"));
        }
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).map_err(io)?;
    if method == "POST" {
        s.write_all(body).map_err(io)?;
    }
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line).map_err(io)?;
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| HttpError::Io(format!("{url}: bad status line {line:?}")))?;
    let mut len = None;
    let mut chunked = false;
    let mut location = None;
    loop {
        line.clear();
        if r.read_line(&mut line).map_err(io)? == 0 {
            break;
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            let v = v.trim();
            match k.trim().to_ascii_lowercase().as_str() {
                "content-length" => len = v.parse::<usize>().ok(),
                "transfer-encoding" => chunked = v.to_ascii_lowercase().contains("chunked"),
                "location" => location = Some(v.to_string()),
                _ => {}
            }
        }
    }
    let mut out = Vec::new();
    if chunked {
        loop {
            line.clear();
            r.read_line(&mut line).map_err(io)?;
            let n = usize::from_str_radix(line.trim().split(';').next().unwrap_or("0"), 16)
                .map_err(|_| HttpError::Io(format!("{url}: bad chunk size")))?;
            if n == 0 {
                break;
            }
            let mut chunk = vec![0; n];
            r.read_exact(&mut chunk).map_err(io)?;
            out.extend_from_slice(&chunk);
            line.clear();
            r.read_line(&mut line).map_err(io)?;
        }
    } else if let Some(n) = len {
        out.resize(n, 0);
        r.read_exact(&mut out).map_err(io)?;
    } else {
        r.read_to_end(&mut out).map_err(io)?;
    }
    Ok((status, out, location))
}

/// `application/x-www-form-urlencoded`.
pub fn urlencode(params: &[(String, String)]) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        s.append_pair(k, v);
    }
    s.finish()
}

/// `multipart/form-data` body and its content type.
pub fn multipart(params: &[(String, String)]) -> (String, Vec<u8>) {
    let boundary = "outcall-vxml-run-boundary-7f3a";
    let mut b = Vec::new();
    for (k, v) in params {
        b.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n")
                .as_bytes(),
        );
    }
    b.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), b)
}

//! Fetching for a shell of the interpreter (vxml-run, outcalld's session runner): `file:` and
//! `http:` URLs, with the interpreter's parameters encoded per method and `enctype`. This module
//! does I/O (blocking), behind the `fetch` feature; the interpreter itself never calls it.

pub mod http;

use crate::model::Method;
use crate::FetchResult;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

fn param_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Fetches a URL for the interpreter: `file:` or `http:` (GET with the parameters in the query,
/// or POST as `application/x-www-form-urlencoded` or `multipart/form-data` per `enctype`),
/// following redirects, within `timeout_ms`. An HTTP status outside 2xx is returned with its
/// code, so the interpreter throws `error.badfetch.http.NNN`.
pub fn get(
    method: Method,
    url: &str,
    params: &BTreeMap<String, Value>,
    enctype: &str,
    timeout_ms: u64,
) -> FetchResult {
    let u = match url::Url::parse(url) {
        Ok(u) => u,
        Err(e) => {
            return FetchResult::Err {
                status: None,
                message: format!("{url}: {e}"),
            }
        }
    };
    if u.scheme() == "file" {
        let path = match u.to_file_path() {
            Ok(p) => p,
            Err(()) => {
                return FetchResult::Err {
                    status: None,
                    message: format!("{url}: bad file URL"),
                }
            }
        };
        return match std::fs::read_to_string(&path) {
            Ok(body) => FetchResult::Ok {
                url: url.to_string(),
                body,
            },
            Err(e) => FetchResult::Err {
                status: None,
                message: format!("{}: {e}", path.display()),
            },
        };
    }
    let pairs: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (k.clone(), param_string(v)))
        .collect();
    let timeout = Duration::from_millis(timeout_ms.max(1));
    let r = match method {
        Method::Get => {
            let mut u2 = u.clone();
            if !pairs.is_empty() {
                let q = http::urlencode(&pairs);
                let full = match u2.query() {
                    Some(old) if !old.is_empty() => format!("{old}&{q}"),
                    _ => q,
                };
                u2.set_query(Some(&full));
            }
            http::request("GET", u2.as_str(), None, &[], timeout)
        }
        Method::Post => {
            if enctype.starts_with("multipart/form-data") {
                let (ct, body) = http::multipart(&pairs);
                http::request("POST", url, Some(&ct), &body, timeout)
            } else {
                http::request(
                    "POST",
                    url,
                    Some("application/x-www-form-urlencoded"),
                    http::urlencode(&pairs).as_bytes(),
                    timeout,
                )
            }
        }
    };
    match r {
        Ok(r) if (200..300).contains(&r.status) => FetchResult::Ok {
            url: r.url,
            body: String::from_utf8_lossy(&r.body).into_owned(),
        },
        Ok(r) => FetchResult::Err {
            status: Some(r.status),
            message: format!("{url}: HTTP {}", r.status),
        },
        Err(http::HttpError::Unsupported(s)) => FetchResult::Err {
            status: None,
            message: format!(
                "{url}: {s} is not supported (http and file only: no GPL-compatible TLS stack is linked)"
            ),
        },
        Err(http::HttpError::Io(m)) => FetchResult::Err {
            status: None,
            message: m,
        },
    }
}

//! Digest authentication for a UAC: RFC 2617 (MD5, qop=auth), RFC 7616 (SHA-256, `-sess`) as
//! profiled for SIP by RFC 3261 §22 and RFC 8760 (SHA-256 and SHA-512/256 for SIP).
//!
//! [`Challenge::parse`] reads a `WWW-Authenticate`/`Proxy-Authenticate` value,
//! [`Challenge::respond`] computes the credentials value, and [`DigestClient`] turns a 401/407 to
//! an INVITE or REGISTER into the re-sent request (new branch, CSeq + 1, nonce count kept per
//! nonce, and no endless loop when the server keeps refusing the same credentials).

use md5::Md5;
use rand::Rng;
use rsip::headers::UntypedHeader;
use rsip::Header;
use sha2::{Digest, Sha256, Sha512_256};

use crate::error::Error;
use crate::msg::{self, Request, Response};
use crate::transport;

/// Hash algorithms of RFC 7616 §3.3 / RFC 8760 §2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// MD5 (the default when absent, RFC 2617 §3.2.1).
    Md5,
    /// MD5-sess.
    Md5Sess,
    /// SHA-256 (RFC 8760 §2.2).
    Sha256,
    /// SHA-256-sess.
    Sha256Sess,
    /// SHA-512-256 (RFC 8760 §2.2).
    Sha512_256,
    /// SHA-512-256-sess.
    Sha512_256Sess,
}

impl Algorithm {
    fn parse(s: &str) -> Option<Self> {
        Some(match s.to_ascii_uppercase().as_str() {
            "MD5" => Self::Md5,
            "MD5-SESS" => Self::Md5Sess,
            "SHA-256" => Self::Sha256,
            "SHA-256-SESS" => Self::Sha256Sess,
            "SHA-512-256" => Self::Sha512_256,
            "SHA-512-256-SESS" => Self::Sha512_256Sess,
            _ => return None,
        })
    }

    /// The token used in headers.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Md5 => "MD5",
            Self::Md5Sess => "MD5-sess",
            Self::Sha256 => "SHA-256",
            Self::Sha256Sess => "SHA-256-sess",
            Self::Sha512_256 => "SHA-512-256",
            Self::Sha512_256Sess => "SHA-512-256-sess",
        }
    }

    fn is_sess(self) -> bool {
        matches!(
            self,
            Self::Md5Sess | Self::Sha256Sess | Self::Sha512_256Sess
        )
    }

    /// Lower-case hex of the hash of `data`.
    #[must_use]
    pub fn hash_hex(self, data: &str) -> String {
        let bytes: Vec<u8> = match self {
            Self::Md5 | Self::Md5Sess => Md5::digest(data.as_bytes()).to_vec(),
            Self::Sha256 | Self::Sha256Sess => Sha256::digest(data.as_bytes()).to_vec(),
            Self::Sha512_256 | Self::Sha512_256Sess => Sha512_256::digest(data.as_bytes()).to_vec(),
        };
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// A parsed Digest challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// `realm`.
    pub realm: String,
    /// `nonce`.
    pub nonce: String,
    /// `opaque`, echoed back.
    pub opaque: Option<String>,
    /// `algorithm` (MD5 when absent).
    pub algorithm: Algorithm,
    /// Offered qop values (empty: RFC 2069 compatibility mode).
    pub qop: Vec<String>,
    /// `stale=true`: the credentials were right, only the nonce expired.
    pub stale: bool,
}

/// Splits `k=v, k="v, w"` into pairs, honouring quotes and backslash escapes.
fn params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        let Some(eq) = rest.find('=') else { break };
        let key = rest[..eq]
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        rest = rest[eq + 1..].trim_start();
        let value;
        if let Some(q) = rest.strip_prefix('"') {
            let mut v = String::new();
            let mut chars = q.char_indices();
            let mut end = q.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            v.push(n);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    _ => v.push(c),
                }
            }
            value = v;
            rest = q[end.min(q.len())..].trim_start();
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            value = rest[..end].trim().to_owned();
            rest = &rest[end..];
        }
        rest = rest.trim_start_matches(',').trim_start();
        out.push((key, value));
    }
    out
}

impl Challenge {
    /// Parses a `WWW-Authenticate` or `Proxy-Authenticate` value.
    ///
    /// # Errors
    /// [`Error::Digest`] naming the problem: not Digest, no realm/nonce, unknown algorithm.
    pub fn parse(value: &str) -> Result<Self, Error> {
        let value = value.trim();
        let rest = match value.split_once(char::is_whitespace) {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("Digest") => rest,
            _ => return Err(Error::Digest(format!("not a Digest challenge: {value:?}"))),
        };
        let mut realm = None;
        let mut nonce = None;
        let mut c = Challenge {
            realm: String::new(),
            nonce: String::new(),
            opaque: None,
            algorithm: Algorithm::Md5,
            qop: Vec::new(),
            stale: false,
        };
        for (k, v) in params(rest) {
            match k.as_str() {
                "realm" => realm = Some(v),
                "nonce" => nonce = Some(v),
                "opaque" => c.opaque = Some(v),
                "algorithm" => {
                    c.algorithm = Algorithm::parse(&v)
                        .ok_or_else(|| Error::Digest(format!("unsupported algorithm {v:?}")))?;
                }
                "qop" => {
                    c.qop = v
                        .split(',')
                        .map(|q| q.trim().to_ascii_lowercase())
                        .collect();
                }
                "stale" => c.stale = v.eq_ignore_ascii_case("true"),
                _ => {}
            }
        }
        c.realm = realm.ok_or_else(|| Error::Digest(format!("no realm in {value:?}")))?;
        c.nonce = nonce.ok_or_else(|| Error::Digest(format!("no nonce in {value:?}")))?;
        Ok(c)
    }

    /// Computes the credentials value (`Digest username=…, response=…`) for `method` and
    /// `uri`. With qop offered, `auth` is used with `cnonce` and nonce count `nc`.
    ///
    /// # Errors
    /// [`Error::Digest`] if only `auth-int` is offered.
    pub fn respond(
        &self,
        username: &str,
        password: &str,
        method: &str,
        uri: &str,
        cnonce: &str,
        nc: u32,
    ) -> Result<String, Error> {
        let alg = self.algorithm;
        let use_qop = if self.qop.is_empty() {
            false
        } else if self.qop.iter().any(|q| q == "auth") {
            true
        } else {
            return Err(Error::Digest(format!("no supported qop in {:?}", self.qop)));
        };
        let mut ha1 = alg.hash_hex(&format!("{username}:{}:{password}", self.realm));
        if alg.is_sess() {
            ha1 = alg.hash_hex(&format!("{ha1}:{}:{cnonce}", self.nonce));
        }
        let ha2 = alg.hash_hex(&format!("{method}:{uri}"));
        let nc_hex = format!("{nc:08x}");
        let response = if use_qop {
            alg.hash_hex(&format!(
                "{ha1}:{}:{nc_hex}:{cnonce}:auth:{ha2}",
                self.nonce
            ))
        } else {
            alg.hash_hex(&format!("{ha1}:{}:{ha2}", self.nonce))
        };
        let q = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
        let mut out = format!(
            "Digest username=\"{}\", realm=\"{}\", nonce=\"{}\", uri=\"{}\", response=\"{response}\", algorithm={}",
            q(username),
            q(&self.realm),
            q(&self.nonce),
            q(uri),
            alg.name()
        );
        if use_qop {
            out.push_str(&format!(
                ", qop=auth, nc={nc_hex}, cnonce=\"{}\"",
                q(cnonce)
            ));
        }
        if let Some(o) = &self.opaque {
            out.push_str(&format!(", opaque=\"{}\"", q(o)));
        }
        Ok(out)
    }
}

/// Username and password for one trunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// Digest username.
    pub username: String,
    /// Digest password.
    pub password: String,
}

/// Answers 401/407 challenges for one request stream (one REGISTER binding or one INVITE).
#[derive(Debug, Clone)]
pub struct DigestClient {
    creds: Credentials,
    /// (realm, nonce, nonce count) of the last answered challenge per header kind.
    last: Vec<(bool, String, String, u32)>,
}

impl DigestClient {
    /// A client with these credentials.
    #[must_use]
    pub fn new(creds: Credentials) -> Self {
        Self {
            creds,
            last: Vec::new(),
        }
    }

    /// Builds the request to re-send after `response` (401 or 407) challenged `request`:
    /// the first supported challenge is answered (RFC 8760 §2.4: servers list their preferred
    /// algorithm first), CSeq is incremented (§22.2), and the Via gets a new branch.
    ///
    /// # Errors
    /// [`Error::Digest`] if the response is not a 401/407, no challenge is usable, or the server
    /// re-challenged the nonce we already answered without `stale=true` (wrong credentials).
    pub fn authorize(
        &mut self,
        request: &Request,
        response: &Response,
        rng: &mut impl Rng,
    ) -> Result<Request, Error> {
        let code = response.status_code.code();
        let proxy = match code {
            401 => false,
            407 => true,
            _ => return Err(Error::Digest(format!("{code} is not a challenge"))),
        };
        let values: Vec<&str> = response
            .headers
            .iter()
            .filter_map(|h| match h {
                Header::WwwAuthenticate(v) if !proxy => Some(v.value()),
                Header::ProxyAuthenticate(v) if proxy => Some(v.value()),
                _ => None,
            })
            .collect();
        let mut errors = Vec::new();
        let challenge = values
            .iter()
            .find_map(|v| {
                Challenge::parse(v)
                    .map_err(|e| errors.push(e.to_string()))
                    .ok()
            })
            .ok_or_else(|| Error::Digest(format!("no usable challenge in {code}: {errors:?}")))?;
        let nc = match self
            .last
            .iter_mut()
            .find(|(p, realm, _, _)| *p == proxy && *realm == challenge.realm)
        {
            Some((_, _, nonce, nc)) if *nonce == challenge.nonce => {
                if !challenge.stale {
                    return Err(Error::Digest(format!(
                        "credentials for realm {:?} refused",
                        challenge.realm
                    )));
                }
                *nc += 1;
                *nc
            }
            Some(entry) => {
                entry.2 = challenge.nonce.clone();
                entry.3 = 1;
                1
            }
            None => {
                self.last
                    .push((proxy, challenge.realm.clone(), challenge.nonce.clone(), 1));
                1
            }
        };
        let cnonce = format!("{:016x}", rng.gen::<u64>());
        let uri = request.uri.to_string();
        let value = challenge.respond(
            &self.creds.username,
            &self.creds.password,
            &request.method.to_string(),
            &uri,
            &cnonce,
            nc,
        )?;
        let mut next = request.clone();
        // Replace credentials for this realm (kind) and bump CSeq; fresh branch.
        next.headers.retain(|h| match h {
            Header::Authorization(_) => proxy,
            Header::ProxyAuthorization(_) => !proxy,
            Header::CSeq(_) => false,
            _ => true,
        });
        next.headers.push(if proxy {
            Header::ProxyAuthorization(rsip::headers::ProxyAuthorization::new(value))
        } else {
            Header::Authorization(rsip::headers::Authorization::new(value))
        });
        let cseq = msg::cseq(request).map_err(Error::BadMessage)?;
        next.headers.push(Header::CSeq(
            rsip::typed::CSeq {
                seq: cseq.seq + 1,
                method: cseq.method,
            }
            .into(),
        ));
        if let Ok(mut via) = msg::top_via(&next) {
            via.params.retain(|p| !matches!(p, rsip::Param::Branch(_)));
            via.params
                .insert(0, rsip::Param::Branch(transport::new_branch(rng).into()));
            if let Some(Header::Via(h)) = next
                .headers
                .iter_mut()
                .find(|h| matches!(h, Header::Via(_)))
            {
                *h = rsip::headers::Via::new(via.to_string());
            }
        }
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::SipMessage;
    use rand::{rngs::SmallRng, SeedableRng};

    fn field(v: &str, k: &str) -> Option<String> {
        params(v.split_once(' ').map_or(v, |(_, r)| r))
            .into_iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v)
    }

    #[test]
    fn rfc2617_section_3_5_md5_vector() {
        let c = Challenge::parse(
            "Digest realm=\"testrealm@host.com\", qop=\"auth,auth-int\", \
             nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"",
        )
        .unwrap();
        assert_eq!(c.algorithm, Algorithm::Md5);
        let v = c
            .respond(
                "Mufasa",
                "Circle Of Life",
                "GET",
                "/dir/index.html",
                "0a4f113b",
                1,
            )
            .unwrap();
        assert_eq!(
            field(&v, "response").unwrap(),
            "6629fae49393a05397450978507c4ef1"
        );
        assert_eq!(field(&v, "nc").unwrap(), "00000001");
        assert_eq!(
            field(&v, "opaque").unwrap(),
            "5ccc069c403ebaf9f0171e9517f40e41"
        );
    }

    #[test]
    fn rfc7616_section_3_9_1_sha256_and_md5_vectors() {
        let base = "realm=\"http-auth@example.org\", qop=\"auth, auth-int\", \
                    nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", \
                    opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\"";
        let cnonce = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";
        for (alg, want) in [
            (
                "SHA-256",
                "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
            ),
            ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
        ] {
            let c = Challenge::parse(&format!("Digest {base}, algorithm={alg}")).unwrap();
            let v = c
                .respond(
                    "Mufasa",
                    "Circle of Life",
                    "GET",
                    "/dir/index.html",
                    cnonce,
                    1,
                )
                .unwrap();
            assert_eq!(field(&v, "response").unwrap(), want, "{alg}");
            assert_eq!(field(&v, "algorithm").unwrap(), alg);
        }
    }

    #[test]
    fn rfc2069_mode_and_errors() {
        let c = Challenge::parse("Digest realm=\"r\", nonce=\"n\"").unwrap();
        let v = c.respond("u", "p", "REGISTER", "sip:r", "x", 1).unwrap();
        let ha1 = Algorithm::Md5.hash_hex("u:r:p");
        let ha2 = Algorithm::Md5.hash_hex("REGISTER:sip:r");
        assert_eq!(
            field(&v, "response").unwrap(),
            Algorithm::Md5.hash_hex(&format!("{ha1}:n:{ha2}"))
        );
        assert!(field(&v, "qop").is_none());
        assert!(Challenge::parse("Basic realm=\"r\"").is_err());
        assert!(Challenge::parse("Digest nonce=\"n\"").is_err());
        assert!(Challenge::parse("Digest realm=\"r\", nonce=\"n\", algorithm=SHA-1").is_err());
        let int_only =
            Challenge::parse("Digest realm=\"r\", nonce=\"n\", qop=\"auth-int\"").unwrap();
        assert!(int_only
            .respond("u", "p", "INVITE", "sip:x", "c", 1)
            .is_err());
    }

    #[test]
    fn sess_and_sha512_256() {
        let c = Challenge::parse(
            "Digest realm=\"r\", nonce=\"n\", qop=auth, algorithm=SHA-512-256-sess",
        )
        .unwrap();
        let v = c.respond("u", "p", "INVITE", "sip:x", "cn", 2).unwrap();
        let a = Algorithm::Sha512_256;
        let ha1 = a.hash_hex(&format!("{}:n:cn", a.hash_hex("u:r:p")));
        let ha2 = a.hash_hex("INVITE:sip:x");
        let want = a.hash_hex(&format!("{ha1}:n:00000002:cn:auth:{ha2}"));
        assert_eq!(field(&v, "response").unwrap(), want);
        assert_eq!(want.len(), 64);
    }

    fn parse_req(text: &str) -> Request {
        match msg::parse(text.as_bytes()).unwrap() {
            SipMessage::Request(r) => r,
            SipMessage::Response(_) => unreachable!(),
        }
    }

    #[test]
    fn client_answers_407_on_invite_and_401_on_register() {
        let mut rng = SmallRng::seed_from_u64(3);
        for (method, code, hdr, cred) in [
            ("INVITE", 407, "Proxy-Authenticate", "Proxy-Authorization"),
            ("REGISTER", 401, "WWW-Authenticate", "Authorization"),
        ] {
            let req = parse_req(&format!(
                "{method} sip:carrier.example SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKold;rport\r\n\
From: <sip:100@carrier.example>;tag=a\r\nTo: <sip:100@carrier.example>\r\nCall-ID: c1\r\n\
CSeq: 7 {method}\r\nContent-Length: 0\r\n\r\n"
            ));
            let resp_text = format!(
                "SIP/2.0 {code} Auth\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKold\r\n\
From: <sip:100@carrier.example>;tag=a\r\nTo: <sip:100@carrier.example>;tag=b\r\nCall-ID: c1\r\n\
CSeq: 7 {method}\r\n{hdr}: Digest realm=\"carrier\", nonce=\"abc\", algorithm=SHA-256, qop=\"auth\"\r\n\
{hdr}: Digest realm=\"carrier\", nonce=\"abc\", algorithm=MD5, qop=\"auth\"\r\nContent-Length: 0\r\n\r\n"
            );
            let SipMessage::Response(resp) = msg::parse(resp_text.as_bytes()).unwrap() else {
                panic!()
            };
            let mut client = DigestClient::new(Credentials {
                username: "100".into(),
                password: "secret".into(),
            });
            let next = client.authorize(&req, &resp, &mut rng).unwrap();
            assert_eq!(msg::cseq(&next).unwrap().seq, 8, "§22.2: CSeq incremented");
            assert_ne!(msg::branch(&next).unwrap(), msg::branch(&req).unwrap());
            let printed = msg::to_bytes(&SipMessage::Request(next.clone()));
            let text = String::from_utf8(printed.clone()).unwrap();
            let line = text.lines().find(|l| l.starts_with(cred)).expect(cred);
            assert!(
                line.contains("algorithm=SHA-256"),
                "first supported challenge: {line}"
            );
            // Verify as a server would.
            let v = line.split_once(": ").unwrap().1;
            let cn = field(v, "cnonce").unwrap();
            let a = Algorithm::Sha256;
            let ha1 = a.hash_hex("100:carrier:secret");
            let ha2 = a.hash_hex(&format!("{method}:sip:carrier.example"));
            let want = a.hash_hex(&format!("{ha1}:abc:00000001:{cn}:auth:{ha2}"));
            assert_eq!(field(v, "response").unwrap(), want);
            assert!(msg::parse(&printed).is_ok());
            // Same nonce again without stale: wrong credentials, no loop.
            assert!(client.authorize(&next, &resp, &mut rng).is_err());
            // With stale=true: answered again with nc=2.
            let stale = resp_text.replace("qop=\"auth\"\r\n", "qop=\"auth\", stale=TRUE\r\n");
            let SipMessage::Response(stale) = msg::parse(stale.as_bytes()).unwrap() else {
                panic!()
            };
            let again = client.authorize(&next, &stale, &mut rng).unwrap();
            let text = msg::to_bytes(&SipMessage::Request(again.clone()));
            let text = String::from_utf8(text).unwrap();
            assert_eq!(text.matches(cred).count(), 1, "old credentials replaced");
            assert!(text.contains("nc=00000002"));
            assert_eq!(msg::cseq(&again).unwrap().seq, 9);
        }
    }
}

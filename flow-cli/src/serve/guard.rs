//! What every request goes through: the host it names, where it comes
//! from, and for a request that changes anything, the token. Every answer
//! gets headers that keep a browser from running anything the page did not
//! ship (a Content-Security-Policy without inline scripts) or from reading
//! a log as HTML.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::state::AppState;

/// The policy of every page: scripts, styles and everything else only from
/// this server, no inline script, no frames, forms only to here.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

pub(crate) async fn guard(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let mut response = match check(&state, &request) {
        Ok(()) => next.run(request).await,
        Err(refused) => refused.into_response(),
    };
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

fn check(state: &AppState, request: &Request) -> Result<(), ApiError> {
    let headers = request.headers();
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    if !state.public && !loopback_host(host, state.addr.port()) {
        return Err(ApiError::forbidden(
            "wrong_host",
            format!(
                "this server answers to 127.0.0.1:{port} or localhost:{port} only, not to `{host}`",
                port = state.addr.port()
            ),
        ));
    }
    if matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) {
        return Ok(());
    }
    same_origin(headers, host)?;
    token(headers, &state.token)
}

/// Whether `host` (a Host header) names this machine's loopback on `port`.
fn loopback_host(host: &str, port: u16) -> bool {
    let Some((name, p)) = host.rsplit_once(':') else {
        return false;
    };
    p.parse::<u16>() == Ok(port)
        && (name == "localhost"
            || name
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback()))
}

/// Refuses a request a page of another origin sent: its `Origin` must be
/// this server's, and a browser that says the request is cross-site is
/// believed.
fn same_origin(headers: &HeaderMap, host: &str) -> Result<(), ApiError> {
    let refused = |from: &str| {
        ApiError::forbidden(
            "cross_origin",
            format!(
                "a request from `{from}` may not change anything here: actions are taken from \
                 this server's own pages (http://{host}) or by programs that send the token"
            ),
        )
    };
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("?");
        if origin != format!("http://{host}") {
            return Err(refused(origin));
        }
    }
    if let Some(site) = headers.get("sec-fetch-site")
        && (site.as_bytes() == b"cross-site" || site.as_bytes() == b"same-site")
    {
        return Err(refused("another site"));
    }
    Ok(())
}

/// Requires `Authorization: Bearer TOKEN`.
fn token(headers: &HeaderMap, expected: &str) -> Result<(), ApiError> {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match given {
        Some(t) if equal(t.trim().as_bytes(), expected.as_bytes()) => Ok(()),
        Some(_) => Err(ApiError::unauthorized(
            "wrong_token",
            "the token is wrong: use the one `flow serve` printed when it started (or was given \
             with --token / FLOW_TOKEN)",
        )),
        None => Err(ApiError::unauthorized(
            "token_required",
            "this action needs the token: send `Authorization: Bearer TOKEN` with the token \
             `flow serve` printed when it started (on the page: Sign in)",
        )),
    }
}

/// Compares in a time that does not depend on where they differ.
fn equal(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_hosts_on_the_port_pass() {
        assert!(loopback_host("127.0.0.1:8080", 8080));
        assert!(loopback_host("localhost:8080", 8080));
        assert!(loopback_host("[::1]:8080", 8080));
        assert!(loopback_host("127.0.0.2:8080", 8080));
        assert!(!loopback_host("127.0.0.1:8081", 8080));
        assert!(!loopback_host("evil.example:8080", 8080));
        assert!(!loopback_host("localhost", 8080));
        assert!(!loopback_host("", 8080));
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(equal(b"abc", b"abc"));
        assert!(!equal(b"abc", b"abd"));
        assert!(!equal(b"ab", b"abc"));
    }
}

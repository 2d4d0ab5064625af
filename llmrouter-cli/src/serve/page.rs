//! The chat page of `GET /`: one self-contained HTML file (`chat.html`: markup, style and script,
//! no external requests, no build step) compiled into the binary. It is served with a content
//! security policy that lets it load nothing and talk only to this server, so the page cannot
//! reach anything else even if it tried.

use axum::body::Body;
use axum::http::{HeaderValue, header};
use axum::response::Response;

/// The page, as written in `chat.html`.
pub const PAGE: &str = include_str!("chat.html");

/// Its content security policy: inline script and style only, requests to this origin only.
const POLICY: &str = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
                      connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; \
                      frame-ancestors 'none'";

/// `GET /`: the page. No key is needed to load it; the page asks for one when the API answers 401.
pub async fn page() -> Response {
    let mut response = Response::new(Body::from(PAGE));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(POLICY));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

#[cfg(test)]
mod tests {
    use super::PAGE;

    /// Nothing on the page is fetched from elsewhere: no URL with a scheme, no protocol-relative one.
    #[test]
    fn the_page_names_no_other_origin() {
        for needle in ["http://", "https://", "src=\"//", "href=\"//", "url(", "@import"] {
            assert!(!PAGE.contains(needle), "chat.html contains `{needle}`");
        }
    }
}

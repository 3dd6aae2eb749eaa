//! The client's address, as stored in a job's `job_client`.

use std::net::IpAddr;

use actix_web::HttpRequest;

/// The peer's IP; behind a trusted proxy, the last address of
/// `X-Forwarded-For` that is not itself a trusted proxy. A header sent by
/// anyone else is ignored: a client could write any address there.
pub fn client_ip(req: &HttpRequest, trusted_proxies: &[IpAddr]) -> String {
    let Some(peer) = req.peer_addr().map(|addr| addr.ip()) else { return String::new() };
    if !trusted_proxies.contains(&peer) {
        return peer.to_string();
    }
    let forwarded: Vec<IpAddr> = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|item| item.trim().parse().ok())
        .collect();
    forwarded.iter().rev().find(|ip| !trusted_proxies.contains(ip)).unwrap_or(&peer).to_string()
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    #[test]
    fn forwarded_for_counts_only_from_a_trusted_proxy() {
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let request = |peer: &str| {
            TestRequest::default()
                .peer_addr(format!("{peer}:4000").parse().unwrap())
                .insert_header(("x-forwarded-for", "6.6.6.6, 203.0.113.7"))
                .to_http_request()
        };
        assert_eq!(client_ip(&request("10.0.0.1"), &[proxy]), "203.0.113.7");
        assert_eq!(client_ip(&request("192.0.2.9"), &[proxy]), "192.0.2.9");
        assert_eq!(client_ip(&request("10.0.0.1"), &[]), "10.0.0.1");
    }
}

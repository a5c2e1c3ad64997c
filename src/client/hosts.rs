//! Where each Twilio product lives: `{product}.{edge}.{region}.twilio.com`, or one origin for
//! everything (`--twilio-base-url`: the simulator, a proxy, a test server).

use url::Url;

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Product {
    Api,
    Messaging,
    Accounts,
    BulkExports,
}

impl Product {
    fn host_label(self) -> &'static str {
        match self {
            Product::Api => "api",
            Product::Messaging => "messaging",
            Product::Accounts => "accounts",
            Product::BulkExports => "bulkexports",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Hosts {
    base: Option<Url>,
    region: Option<String>,
    edge: Option<String>,
}

impl Hosts {
    /// Twilio's hosts for a region and an edge. Each must be a host label of `a-z`, `0-9`
    /// and `-` (case is folded): anything else could point the credentials at another host
    /// (`x.example/#`), so it is refused.
    pub fn twilio(region: Option<&str>, edge: Option<&str>) -> Result<Hosts> {
        let clean = |what: &str, v: Option<&str>| -> Result<Option<String>> {
            let Some(v) = v.map(str::trim).filter(|s| !s.is_empty()) else {
                return Ok(None);
            };
            let v = v.to_ascii_lowercase();
            if !v
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            {
                return Err(Error::Input(format!(
                    "--{what} {v:?}: must be letters, digits and '-' only (a Twilio {what} such as {})",
                    if what == "region" { "ie1 or au1" } else { "dublin or sydney" }
                )));
            }
            Ok(Some(v))
        };
        Ok(Hosts {
            base: None,
            region: clean("region", region)?,
            edge: clean("edge", edge)?,
        })
    }

    /// Every product at one origin, same paths.
    pub fn single(base: &str) -> Result<Hosts> {
        let url = Url::parse(base.trim()).map_err(|e| {
            Error::Input(format!(
                "--twilio-base-url {base:?} is not a URL ({e}); e.g. http://127.0.0.1:4010"
            ))
        })?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(Error::Input(format!(
                "--twilio-base-url {base:?} must be an http:// or https:// origin, e.g. http://127.0.0.1:4010"
            )));
        }
        Ok(Hosts {
            base: Some(url),
            region: None,
            edge: None,
        })
    }

    /// The origin (`scheme://host[:port]`) of a product, no trailing slash.
    pub fn origin(&self, product: Product) -> String {
        if let Some(base) = &self.base {
            return base.origin().ascii_serialization();
        }
        let mut host = product.host_label().to_string();
        // The edge needs a region; Twilio's default region is us1.
        match (&self.edge, &self.region) {
            (Some(edge), region) => {
                host.push('.');
                host.push_str(edge);
                host.push('.');
                host.push_str(region.as_deref().unwrap_or("us1"));
            }
            (None, Some(region)) => {
                host.push('.');
                host.push_str(region);
            }
            (None, None) => {}
        }
        format!("https://{host}.twilio.com")
    }

    /// `origin + path` (path starts with `/`).
    pub fn url(&self, product: Product, path: &str) -> Url {
        Url::parse(&format!("{}{path}", self.origin(product))).expect("origin and path form a URL")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_follow_twilio_naming_or_one_origin() {
        let h = Hosts::twilio(None, None).unwrap();
        assert_eq!(h.origin(Product::Api), "https://api.twilio.com");
        assert_eq!(h.origin(Product::Messaging), "https://messaging.twilio.com");
        let h = Hosts::twilio(Some("IE1"), Some("dublin")).unwrap();
        assert_eq!(h.origin(Product::Api), "https://api.dublin.ie1.twilio.com");
        let h = Hosts::twilio(None, Some("sydney")).unwrap();
        assert_eq!(
            h.origin(Product::Accounts),
            "https://accounts.sydney.us1.twilio.com"
        );
        let h = Hosts::twilio(Some("au1"), None).unwrap();
        assert_eq!(
            h.origin(Product::BulkExports),
            "https://bulkexports.au1.twilio.com"
        );
        let h = Hosts::single("http://127.0.0.1:4010/").unwrap();
        assert_eq!(h.origin(Product::Messaging), "http://127.0.0.1:4010");
        assert_eq!(
            h.url(Product::Api, "/2010-04-01/Accounts.json").as_str(),
            "http://127.0.0.1:4010/2010-04-01/Accounts.json"
        );
        assert!(Hosts::single("ftp://x").is_err());
        for bad in ["a b", "x.example/#", "us1.evil.com", "a_b", "é"] {
            let err = Hosts::twilio(Some(bad), None).unwrap_err();
            assert!(err.to_string().contains("--region"), "{err}");
            assert!(Hosts::twilio(None, Some(bad)).is_err());
        }
    }
}

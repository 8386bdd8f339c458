//! Form parameters as OAuth requires them: each at most once (RFC 6749
//! section 3.1), empty values treated as absent.

use std::collections::HashMap;

/// Parsed `application/x-www-form-urlencoded` parameters.
#[derive(Debug, Default)]
pub(crate) struct Params(HashMap<String, String>);

impl Params {
    /// Parses a body or query string. `Err` names the first repeated parameter.
    pub(crate) fn parse(input: &[u8]) -> Result<Self, String> {
        let mut map = HashMap::new();
        for (name, value) in url::form_urlencoded::parse(input) {
            if map.insert(name.to_string(), value.into_owned()).is_some() {
                return Err(format!("parameter {name} is repeated"));
            }
        }
        Ok(Self(map))
    }

    /// A parameter's value, `None` when absent or empty.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsing() {
        let cases: &[(&str, Result<Option<&str>, ()>)] = &[
            ("a=1&b=2", Ok(Some("1"))),
            ("a=&b=2", Ok(None)),
            ("b=2", Ok(None)),
            ("a=1&a=2", Err(())),
            ("a=x%20y", Ok(Some("x y"))),
        ];
        for (input, expect) in cases {
            let got = Params::parse(input.as_bytes())
                .map(|p| p.get("a").map(str::to_owned))
                .map_err(|_| ());
            assert_eq!(got, expect.map(|o| o.map(str::to_owned)), "{input}");
        }
    }
}

//! Reading a tool's JSON arguments with errors the model can act on ("`limit` must be a
//! positive integer, got \"ten\""). Models sometimes send numbers and booleans as strings;
//! those are accepted. Unknown keys are ignored.

use serde_json::{Map, Value};

/// The arguments of one call, as a JSON object.
pub(crate) struct Args<'a> {
    tool: &'static str,
    map: Option<&'a Map<String, Value>>,
}

impl<'a> Args<'a> {
    /// `Null` counts as "no arguments"; anything but an object is an error.
    pub(crate) fn new(tool: &'static str, value: &'a Value) -> Result<Self, String> {
        match value {
            Value::Object(map) => Ok(Self {
                tool,
                map: Some(map),
            }),
            Value::Null => Ok(Self { tool, map: None }),
            other => Err(format!(
                "{tool}: the arguments must be a JSON object, got {}",
                kind(other)
            )),
        }
    }

    fn get(&self, key: &str) -> Option<&'a Value> {
        self.map?.get(key).filter(|v| !v.is_null())
    }

    pub(crate) fn str(&self, key: &str) -> Result<&'a str, String> {
        self.opt_str(key)?
            .ok_or_else(|| format!("{}: missing required parameter `{key}` (string)", self.tool))
    }

    pub(crate) fn opt_str(&self, key: &str) -> Result<Option<&'a str>, String> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(format!(
                "{}: parameter `{key}` must be a string, got {}",
                self.tool,
                kind(other)
            )),
        }
    }

    /// A non-negative integer (a whole-number float or a numeric string is accepted).
    pub(crate) fn opt_u64(&self, key: &str) -> Result<Option<u64>, String> {
        let Some(v) = self.get(key) else {
            return Ok(None);
        };
        let n = match v {
            Value::Number(n) => n.as_u64().or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && *f >= 0.0)
                    .map(|f| f as u64)
            }),
            Value::String(s) => s.trim().parse::<u64>().ok(),
            _ => None,
        };
        n.map(Some).ok_or_else(|| {
            format!(
                "{}: parameter `{key}` must be a non-negative integer, got {}",
                self.tool, v
            )
        })
    }

    /// A non-negative number.
    pub(crate) fn opt_f64(&self, key: &str) -> Result<Option<f64>, String> {
        let Some(v) = self.get(key) else {
            return Ok(None);
        };
        let n = match v {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse::<f64>().ok(),
            _ => None,
        };
        n.filter(|f| f.is_finite() && *f >= 0.0)
            .map(Some)
            .ok_or_else(|| {
                format!(
                    "{}: parameter `{key}` must be a non-negative number, got {}",
                    self.tool, v
                )
            })
    }

    pub(crate) fn opt_bool(&self, key: &str) -> Result<Option<bool>, String> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::String(s)) if s == "true" => Ok(Some(true)),
            Some(Value::String(s)) if s == "false" => Ok(Some(false)),
            Some(other) => Err(format!(
                "{}: parameter `{key}` must be true or false, got {other}",
                self.tool
            )),
        }
    }

    /// A JSON object of string values (e.g. `env`).
    pub(crate) fn opt_string_map(&self, key: &str) -> Result<Vec<(String, String)>, String> {
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(Value::Object(m)) => m
                .iter()
                .map(|(k, v)| match v {
                    Value::String(s) => Ok((k.clone(), s.clone())),
                    other => Err(format!(
                        "{}: `{key}.{k}` must be a string, got {}",
                        self.tool,
                        kind(other)
                    )),
                })
                .collect(),
            Some(other) => Err(format!(
                "{}: parameter `{key}` must be an object of strings, got {}",
                self.tool,
                kind(other)
            )),
        }
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_typed_values_and_explains_bad_ones() {
        let v = json!({"s": "x", "n": 3, "f": 2.0, "ns": "7", "b": "true", "bad": [1], "z": null});
        let a = Args::new("t", &v).unwrap();
        assert_eq!(a.str("s").unwrap(), "x");
        assert_eq!(a.opt_u64("n").unwrap(), Some(3));
        assert_eq!(a.opt_u64("f").unwrap(), Some(2));
        assert_eq!(a.opt_u64("ns").unwrap(), Some(7));
        assert_eq!(a.opt_bool("b").unwrap(), Some(true));
        assert_eq!(a.opt_str("z").unwrap(), None);
        let e = a.str("missing").unwrap_err();
        assert!(e.contains("missing required parameter `missing`"), "{e}");
        let e = a.opt_u64("s").unwrap_err();
        assert!(e.contains("`s` must be a non-negative integer"), "{e}");
        let e = a.opt_str("bad").unwrap_err();
        assert!(e.contains("got an array"), "{e}");
        assert!(Args::new("t", &json!([1])).is_err());
        assert!(
            Args::new("t", &Value::Null)
                .unwrap()
                .opt_str("s")
                .unwrap()
                .is_none()
        );
    }
}

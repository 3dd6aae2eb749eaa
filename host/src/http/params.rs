//! Request parameters the seed's way: the same route takes a query string
//! (GET), a JSON body or a form body (POST). `curl -d '{…}'` sends JSON with a
//! form content type, so a body starting with `{` is read as JSON.

use actix_web::HttpRequest;
use actix_web::web::Bytes;
use serde_json::{Map, Value};

use super::error::ApiError;

/// All parameters of a request: query first, body over it.
#[derive(Debug, Default)]
pub struct Params(pub Map<String, Value>);

impl Params {
    pub fn from_request(req: &HttpRequest, body: &Bytes) -> Result<Self, ApiError> {
        let mut map = Map::new();
        let query: Vec<(String, String)> = serde_urlencoded::from_str(req.query_string())
            .map_err(|err| ApiError::bad_params(format!("bad query string: {err}")))?;
        for (key, value) in query {
            map.insert(key, Value::String(value));
        }
        let trimmed = body.trim_ascii_start();
        if trimmed.first() == Some(&b'{') {
            match serde_json::from_slice::<Value>(body) {
                Ok(Value::Object(fields)) => map.extend(fields),
                Ok(_) | Err(_) => {
                    return Err(ApiError::bad_params("the body is not a JSON object"));
                }
            }
        } else if !trimmed.is_empty() {
            let form: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
                .map_err(|err| ApiError::bad_params(format!("the body is neither JSON nor a form: {err}")))?;
            for (key, value) in form {
                map.insert(key, Value::String(value));
            }
        }
        Ok(Self(map))
    }

    /// A non-empty string parameter; numbers are taken as their text.
    pub fn string(&self, key: &str) -> Result<Option<String>, ApiError> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(_) => Err(ApiError::bad_params(format!("{key} must be a string"))),
        }
    }

    pub fn required_string(&self, key: &str) -> Result<String, ApiError> {
        self.string(key)?.ok_or_else(|| ApiError::bad_params(format!("{key} is required")))
    }

    /// An integer parameter, from a JSON number or a numeric string.
    pub fn integer(&self, key: &str) -> Result<Option<i64>, ApiError> {
        let bad = || ApiError::bad_params(format!("{key} must be an integer"));
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::Number(n)) => n.as_i64().map(Some).ok_or_else(bad),
            Some(Value::String(s)) => s.trim().parse().map(Some).map_err(|_| bad()),
            Some(_) => Err(bad()),
        }
    }

    /// A yes/no parameter: `1`/`true` or `0`/`false` (JSON booleans too);
    /// absent is no.
    pub fn flag(&self, key: &str) -> Result<bool, ApiError> {
        let bad = || ApiError::bad_params(format!("{key} must be 1 or 0 (true or false)"));
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(Value::Number(n)) => match n.as_i64() {
                Some(0) => Ok(false),
                Some(1) => Ok(true),
                _ => Err(bad()),
            },
            Some(Value::String(s)) => match s.trim() {
                "" | "0" | "false" => Ok(false),
                "1" | "true" => Ok(true),
                _ => Err(bad()),
            },
            Some(_) => Err(bad()),
        }
    }

    /// The `job_tag` filter: `key=value` with a non-empty key.
    pub fn job_tag(&self) -> Result<Option<String>, ApiError> {
        let tag = self.string("job_tag")?;
        if tag.as_ref().is_some_and(|tag| tag.split_once('=').is_none_or(|(key, _)| key.trim().is_empty())) {
            return Err(ApiError::bad_params("job_tag must be key=value, e.g. region=bj"));
        }
        Ok(tag)
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key)
    }
}

//! API tokens: `name:role:token`, as given by `--api-tokens`, its file form
//! and `--admin-token`.

use std::fmt;

/// What a token may do. Each role includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Every read route: job and task details, lists, graphs, statistics.
    Read,
    /// Also the routes that change jobs: create, retry, cancel, delete.
    Write,
    /// Also `/admin/plugins*`.
    Admin,
}

impl Role {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "read" => Some(Self::Read),
            "write" => Some(Self::Write),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Read => "read",
            Self::Write => "write",
            Self::Admin => "admin",
        })
    }
}

/// One configured token. `name` is who it is (stored as a job's `operator`).
#[derive(Clone, PartialEq)]
pub struct ApiToken {
    pub name: String,
    pub role: Role,
    pub token: String,
}

/// Never prints the secret.
impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiToken").field("name", &self.name).field("role", &self.role).finish_non_exhaustive()
    }
}

pub const MIN_TOKEN_LEN: usize = 16;
const MAX_NAME_LEN: usize = 64;

/// Parses `name:role:token` entries; the error names the entry by its name
/// (never by its secret).
pub fn parse_list<'a>(entries: impl Iterator<Item = &'a str>) -> Result<Vec<ApiToken>, String> {
    let mut tokens = Vec::new();
    for (index, entry) in entries.map(str::trim).filter(|entry| !entry.is_empty()).enumerate() {
        let mut parts = entry.splitn(3, ':');
        let (Some(name), Some(role), Some(token)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(format!("entry {} is not name:role:token", index + 1));
        };
        let name = name.trim();
        if name.is_empty() || name.len() > MAX_NAME_LEN || !name.chars().all(|c| c.is_ascii_graphic()) {
            return Err(format!("entry {}: the name must be 1 to {MAX_NAME_LEN} visible ASCII characters", index + 1));
        }
        let role = Role::parse(role.trim())
            .ok_or_else(|| format!("token {name:?}: the role must be read, write or admin, not {:?}", role.trim()))?;
        let token = token.trim();
        if token.chars().count() < MIN_TOKEN_LEN || !token.chars().all(|c| c.is_ascii_graphic()) {
            return Err(format!(
                "token {name:?}: the token must be at least {MIN_TOKEN_LEN} visible ASCII characters (no spaces)"
            ));
        }
        tokens.push(ApiToken { name: name.to_owned(), role, token: token.to_owned() });
    }
    Ok(tokens)
}

/// Names and secrets must both be unique: a job's operator names one token.
pub fn check_unique(tokens: &[ApiToken]) -> Result<(), String> {
    for (index, token) in tokens.iter().enumerate() {
        for earlier in &tokens[..index] {
            if earlier.name == token.name {
                return Err(format!("two tokens are named {:?}", token.name));
            }
            if earlier.token == token.token {
                return Err(format!("tokens {:?} and {:?} have the same secret", earlier.name, token.name));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_parse_and_bad_ones_are_named_without_their_secret() {
        let tokens = parse_list("ci:write:0123456789abcdef, ops:admin:fedcba9876543210:with-colon".split(',')).unwrap();
        assert_eq!(tokens.len(), 2);
        assert_eq!((tokens[0].name.as_str(), tokens[0].role), ("ci", Role::Write));
        assert_eq!(tokens[1].token, "fedcba9876543210:with-colon");
        let short = parse_list(std::iter::once("ci:read:short")).unwrap_err();
        assert!(short.contains("\"ci\"") && short.contains("16") && !short.contains("short"), "{short}");
        assert!(parse_list(std::iter::once("ci:root:0123456789abcdef")).unwrap_err().contains("read, write or admin"));
        assert!(parse_list(std::iter::once("just-a-token-0123456789")).is_err());
        assert!(!format!("{:?}", tokens[0]).contains("0123456789abcdef"));
    }

    #[test]
    fn names_and_secrets_are_unique() {
        let twice = parse_list("a:read:0123456789abcdef,a:write:0123456789abcdeX".split(',')).unwrap();
        assert!(check_unique(&twice).unwrap_err().contains("named"));
        let same = parse_list("a:read:0123456789abcdef,b:write:0123456789abcdef".split(',')).unwrap();
        assert!(check_unique(&same).unwrap_err().contains("same secret"));
    }
}

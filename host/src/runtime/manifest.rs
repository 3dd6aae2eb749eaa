//! What a component declares about itself besides `metadata()`: a JSON custom
//! section named `xingqiao:plugin` at the component's top level, which
//! `xingqiao plugin build` writes from the project's declarations. The WIT
//! contract stays frozen; a component without the section gets the defaults.
//!
//! ```json
//! {"job_notifier": false, "sandbox": {"memory_mib": 128, "wasi": ["random", "clocks"]}}
//! ```
//!
//! - `job_notifier: false`: the plugin does not implement job_notifier, so the
//!   server never instantiates it for one (two instantiations less per job).
//! - `sandbox`: what a language runtime needs beyond the defaults, granted per
//!   plugin within the server's caps ([`super::SandboxLimits`]): more memory per
//!   call, real entropy (`random`), the real time (`clocks`). Without a grant a
//!   plugin reads a fixed byte cycle as random and a clock stopped at the Unix
//!   epoch. Files, sockets and the environment are never granted.

use serde::{Deserialize, Serialize};

use super::custom_section;
use super::error::PluginError;
use super::limits::SandboxLimits;

pub const SECTION: &str = custom_section::MANIFEST;

/// A WASI interface a plugin may be granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WasiGrant {
    /// `wasi:random`: real entropy instead of a fixed byte cycle.
    Random,
    /// `wasi:clocks`: the real wall and monotonic clocks instead of the epoch.
    Clocks,
}

impl std::fmt::Display for WasiGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Random => "random",
            Self::Clocks => "clocks",
        })
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SandboxRequest {
    /// Memory per call, MiB, instead of the server's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mib: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub wasi: Vec<WasiGrant>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    #[serde(default = "implemented")]
    pub job_notifier: bool,
    #[serde(default)]
    pub sandbox: SandboxRequest,
}

fn implemented() -> bool {
    true
}

impl Default for Manifest {
    fn default() -> Self {
        Self { job_notifier: true, sandbox: SandboxRequest::default() }
    }
}

/// What one plugin's calls get: the request, checked against the server's caps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Grants {
    pub memory_bytes: usize,
    pub random: bool,
    pub clocks: bool,
}

impl Grants {
    /// The defaults, for a plugin that asks for nothing.
    pub fn defaults(limits: &SandboxLimits) -> Self {
        Self { memory_bytes: limits.memory_bytes, random: false, clocks: false }
    }

    /// Refuses a request beyond the server's caps, naming it.
    pub fn grant(request: &SandboxRequest, limits: &SandboxLimits) -> Result<Self, PluginError> {
        let mut grants = Self::defaults(limits);
        if let Some(mib) = request.memory_mib {
            let bytes = usize::try_from(mib).unwrap_or(usize::MAX).saturating_mul(1 << 20);
            if bytes > limits.max_memory_bytes {
                return Err(PluginError::Sandbox(format!(
                    "it asks for {mib} MiB of memory per call; this server grants at most {} MiB",
                    limits.max_memory_bytes >> 20
                )));
            }
            grants.memory_bytes = bytes;
        }
        for wasi in &request.wasi {
            if !limits.grantable_wasi.contains(wasi) {
                return Err(PluginError::Sandbox(format!("it asks for wasi {wasi}, which this server does not grant")));
            }
            match wasi {
                WasiGrant::Random => grants.random = true,
                WasiGrant::Clocks => grants.clocks = true,
            }
        }
        Ok(grants)
    }
}

/// The manifest of a component: its `xingqiao:plugin` section, or the defaults.
pub fn read(bytes: &[u8]) -> Result<Manifest, PluginError> {
    let bad = |why: String| PluginError::BadMetadata(format!("the {SECTION} section {why}"));
    match custom_section::find(bytes, SECTION) {
        None => Ok(Manifest::default()),
        Some(data) => serde_json::from_slice(data).map_err(|err| bad(format!("is not a manifest: {err}"))),
    }
}

/// Appends the manifest as a custom section (what `plugin build` does).
pub fn append(bytes: &mut Vec<u8>, manifest: &Manifest) -> Result<(), serde_json::Error> {
    custom_section::append(bytes, SECTION, &serde_json::to_vec(manifest)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_appended_manifest_is_read_back_and_a_missing_one_is_the_default() {
        // A component header and one empty custom section of another name.
        let mut bytes = vec![0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00, 0, 2, 1, b'x'];
        assert_eq!(read(&bytes).unwrap(), Manifest::default());
        let manifest = Manifest {
            job_notifier: false,
            sandbox: SandboxRequest { memory_mib: Some(128), wasi: vec![WasiGrant::Clocks] },
        };
        append(&mut bytes, &manifest).unwrap();
        assert_eq!(read(&bytes).unwrap(), manifest);
    }

    #[test]
    fn a_request_beyond_the_caps_is_refused_by_name() {
        let limits = SandboxLimits::default();
        let grants = Grants::grant(&SandboxRequest { memory_mib: Some(128), wasi: vec![WasiGrant::Random] }, &limits);
        assert_eq!(grants.unwrap(), Grants { memory_bytes: 128 << 20, random: true, clocks: false });
        let too_much = SandboxRequest { memory_mib: Some(100_000), wasi: vec![] };
        let refused = Grants::grant(&too_much, &limits).unwrap_err().to_string();
        assert!(refused.contains("100000 MiB"), "{refused}");
        let no_clocks = SandboxLimits { grantable_wasi: vec![WasiGrant::Random], ..SandboxLimits::default() };
        let refused = Grants::grant(&SandboxRequest { memory_mib: None, wasi: vec![WasiGrant::Clocks] }, &no_clocks);
        assert!(refused.unwrap_err().to_string().contains("wasi clocks"));
    }

    #[test]
    fn a_malformed_manifest_is_a_load_error() {
        let mut bytes = vec![0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];
        let mut payload = vec![SECTION.len() as u8];
        payload.extend_from_slice(SECTION.as_bytes());
        payload.extend_from_slice(b"{\"sandbox\": {\"files\": true}}");
        bytes.push(0);
        bytes.push(payload.len() as u8);
        bytes.extend_from_slice(&payload);
        assert!(matches!(read(&bytes), Err(PluginError::BadMetadata(_))));
    }
}

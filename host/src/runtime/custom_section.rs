//! Custom sections at a component's top level: written by `plugin build` (and
//! by `build.rs` for the embedded demos, which includes this file), read when
//! a plugin is loaded. No dependencies, so the build script can share it.

/// The section holding a plugin's manifest (`super::manifest`).
pub const MANIFEST: &str = "xingqiao:plugin";

/// Appends a custom section `name` holding `data`.
pub fn append(bytes: &mut Vec<u8>, name: &str, data: &[u8]) {
    let mut payload = Vec::with_capacity(data.len() + name.len() + 5);
    leb128(&mut payload, name.len());
    payload.extend_from_slice(name.as_bytes());
    payload.extend_from_slice(data);
    bytes.push(0); // custom section id
    leb128(bytes, payload.len());
    bytes.extend_from_slice(&payload);
}

/// The data of the first top-level custom section called `name`. Only the
/// top level is walked (8-byte header, then id + size + contents), so nested
/// modules' sections are not mistaken for the component's.
pub fn find<'a>(bytes: &'a [u8], name: &str) -> Option<&'a [u8]> {
    let mut at = 8;
    while at < bytes.len() {
        let id = bytes[at];
        at += 1;
        let size = read_leb128(bytes, &mut at)?;
        let contents = bytes.get(at..at.checked_add(size)?)?;
        at += size;
        if id == 0 {
            let mut inner = 0;
            let len = read_leb128(contents, &mut inner)?;
            let section_name = contents.get(inner..inner.checked_add(len)?)?;
            if section_name == name.as_bytes() {
                return contents.get(inner + len..);
            }
        }
    }
    None
}

fn leb128(out: &mut Vec<u8>, mut value: usize) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn read_leb128(bytes: &[u8], at: &mut usize) -> Option<usize> {
    let mut value = 0usize;
    for shift in (0..35).step_by(7) {
        let byte = *bytes.get(*at)?;
        *at += 1;
        value |= usize::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

//! What the server accepts from a plugin: lengths in UTF-8 bytes and the task
//! cap. Generated from `limits.json`, which the server and the Python and
//! JavaScript helpers read too, so a native test refuses what the server refuses.

include!(concat!(env!("OUT_DIR"), "/limits.rs"));

/// A job_type or task label: 1 to `LABEL_MAX_BYTES` of `A-Z a-z 0-9 _ -`.
pub fn is_valid_name(name: &str) -> bool {
    (1..=LABEL_MAX_BYTES).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    /// The Python and JavaScript helpers carry copies (their build tools read
    /// only files inside the helper's folder); they must say the same.
    #[test]
    fn the_python_and_javascript_copies_match_limits_json() {
        let parse = |text: &str| serde_json::from_str::<serde_json::Value>(text).unwrap();
        let canonical = parse(include_str!("../limits.json"));
        assert_eq!(parse(include_str!("../python/xingqiao_plugin/limits.json")), canonical, "python copy");
        let js = include_str!("../js/limits.js");
        let body = &js[js.find("export default ").unwrap() + "export default ".len()..];
        assert_eq!(parse(body.trim().trim_end_matches(';')), canonical, "javascript copy");
    }

    #[test]
    fn names_are_ascii_words_of_bounded_length() {
        assert!(super::is_valid_name("task_1-a"));
        assert!(!super::is_valid_name(""));
        assert!(!super::is_valid_name("a b"));
        assert!(!super::is_valid_name(&"x".repeat(super::LABEL_MAX_BYTES + 1)));
    }
}
